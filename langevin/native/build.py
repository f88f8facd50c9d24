"""Compile a C source of `langevin.native` into a shared library on first use, and load it.

    <cache>/<stem>-<key>.so,   key = sha256(source, compiler version, flags, CPU flags)[:16]

The compiler and the cache directory are a `BuildSettings` record passed by the caller
(`experiments.setup.step_options.native_build_settings` reads them from `$CC`,
`$LANGEVIN_NATIVE_CACHE` and `$XDG_CACHE_HOME`). The library is built with
`-O3 -march=native -fopenmp -fPIC -shared`, so it is specific to the host CPU: the key
contains the CPU's feature flags, and a cache shared between machines of different CPUs
holds one library per CPU.

Writes are atomic: the compiler writes a temporary file in the cache directory, which is
renamed onto the final name only after the compiler succeeded, so a build killed at any
point leaves either no library or a complete one (a leftover temporary is never loaded).
Any failure (no compiler, a compile error, a library that does not load) raises
`NativeKernelUnavailable` with the compiler's output.

OpenMP: the library links libgomp; torch (imported first) has already loaded its own
libgomp.so.1, which the dynamic linker then reuses, so torch and the kernel share one
OpenMP runtime and thread pool.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch  # noqa: F401 - loaded first, so its libgomp is the one the library binds to

FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11")
SOURCE_DIR = Path(__file__).resolve().parent
# Libraries already loaded by this process (dlopen is per process): (stem, settings) -> handle.
_LOADED: dict[tuple[str, "BuildSettings"], ctypes.CDLL] = {}


class NativeKernelUnavailable(RuntimeError):
    """A native kernel cannot be built or loaded here (the message says why)."""


@dataclass(frozen=True)
class BuildSettings:
    """Where compiled libraries are kept (`cache`, a directory) and the C compiler that
    builds them (`compiler`, a command on PATH)."""
    cache: Path
    compiler: str = "cc"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler_version(cc: str) -> str:
    try:
        done = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NativeKernelUnavailable(f"the C compiler {cc!r} cannot be run ({err}); set the "
                                      "compiler ($CC) or use sampler.cpu_kernel = 'torch'") from err
    return done.stdout


def library_path(stem: str, settings: BuildSettings) -> Path:
    """Where the library of `SOURCE_DIR/<stem>.c` for this compiler and CPU lives."""
    cc = settings.compiler
    if shutil.which(cc) is None:
        raise NativeKernelUnavailable(f"no C compiler {cc!r} on PATH (set $CC, or use "
                                      "sampler.cpu_kernel = 'torch')")
    source = (SOURCE_DIR / f"{stem}.c").read_bytes()
    digest = hashlib.sha256()
    for part in (source, _compiler_version(cc).encode(), " ".join(FLAGS).encode(),
                 _cpu_flags().encode(), platform.machine().encode()):
        digest.update(part)
        digest.update(b"\0")
    return Path(settings.cache) / f"{stem}-{digest.hexdigest()[:16]}.so"


def build(stem: str, settings: BuildSettings) -> Path:
    """The library of `<stem>.c`, compiled now unless a complete one is in the cache."""
    target = library_path(stem, settings)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    os.close(handle)
    try:
        command = [settings.compiler, *FLAGS, "-o", temporary, str(SOURCE_DIR / f"{stem}.c")]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise NativeKernelUnavailable(
                f"compiling {stem}.c failed ({' '.join(command)}):\n{done.stderr.strip()}")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def load(stem: str, settings: BuildSettings) -> ctypes.CDLL:
    """The loaded library of `<stem>.c` (built on first use; one load per process)."""
    key = (stem, settings)
    if key not in _LOADED:
        path = build(stem, settings)
        try:
            _LOADED[key] = ctypes.CDLL(str(path))
        except OSError as err:
            raise NativeKernelUnavailable(f"the compiled kernel {path} does not load: {err}") from err
    return _LOADED[key]
