"""Where the native CPU kernel (`sampler.cpu_kernel = "native"`) is built: the one place
that reads the build's environment.

    compiler: $CC, else "cc"
    cache:    $LANGEVIN_NATIVE_CACHE, else $XDG_CACHE_HOME/langevin/native,
              else ~/.cache/langevin/native

`langevin.native` itself takes these as a `BuildSettings` argument.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

from langevin.native.build import BuildSettings
from langevin.native.two_layer import load_kernel, unavailable_reason


def native_build_settings() -> BuildSettings:
    """The compiler and cache directory of this process's environment (module docstring)."""
    explicit = os.environ.get("LANGEVIN_NATIVE_CACHE")
    if explicit:
        cache = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache = Path(base) / "langevin" / "native"
    return BuildSettings(cache=cache, compiler=os.environ.get("CC", "cc"))


def load_two_layer_kernel() -> ctypes.CDLL:
    """The two-layer erf kernel, built on first use with `native_build_settings()`."""
    return load_kernel(native_build_settings())


def two_layer_kernel_unavailable() -> str | None:
    """None when the kernel builds and loads here, else why not."""
    return unavailable_reason(native_build_settings())
