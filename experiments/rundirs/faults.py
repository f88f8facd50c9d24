"""Fault injection at the write points of a run, for the crash-safety tests.

`langevin.run.run_chains(fault_hook=...)` calls the hook at every point of its
flush/checkpoint sequence (see `langevin.run`); `experiments.runner.start_run` at
"startup:data", "startup:meta" and "startup:publish" (before writing data.npz, meta.json
and renaming the staged run directory into place). The command line installs a hook only
when the environment variable `LANGEVIN_FAULT_AT` is set (it is read here and nowhere
else):

    LANGEVIN_FAULT_AT="<point>#<n>"   act at the n-th call (1-based) of that point,
                                      e.g. "append:root:f_test#2", "checkpoint:replace#1"
    LANGEVIN_FAULT="kill"             SIGKILL this process (default)
                   "enospc"           raise OSError(ENOSPC), as a full disk does
                   "stop"             SIGSTOP this process (it continues on SIGCONT):
                                      holds it at that point, e.g. with its lock
                   "sigint", "sigterm"  send this process SIGINT / SIGTERM and go on: a
                                      Ctrl-C or a cluster's stop at exactly that point
                                      (experiments.rundirs.stop: the next step checkpoints)
"""
from __future__ import annotations

import errno
import os
import signal
from typing import Callable

FAULT_AT_VARIABLE = "LANGEVIN_FAULT_AT"
FAULT_KIND_VARIABLE = "LANGEVIN_FAULT"
FAULT_KINDS = ("kill", "enospc", "stop", "sigint", "sigterm")
_SIGNALS = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM}


def make_fault_hook(point: str, occurrence: int, kind: str = "kill") -> Callable[[str], None]:
    """A hook that acts (`kind`, one of FAULT_KINDS) at the `occurrence`-th `point`."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"{FAULT_KIND_VARIABLE} must be one of {FAULT_KINDS}, got {kind!r}")
    seen = {"count": 0}

    def hook(name: str) -> None:
        if name != point:
            return
        seen["count"] += 1
        if seen["count"] != occurrence:
            return
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
            return
        if kind in _SIGNALS:
            os.kill(os.getpid(), _SIGNALS[kind])
            return
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"<injected at {point}>")

    return hook


def hook_from_environment() -> Callable[[str], None] | None:
    spec = os.environ.get(FAULT_AT_VARIABLE)
    if not spec:
        return None
    point, _, occurrence = spec.rpartition("#")
    if not point or not occurrence.isdigit():
        raise ValueError(f"{FAULT_AT_VARIABLE} must be '<point>#<n>', got {spec!r}")
    return make_fault_hook(point, int(occurrence), os.environ.get(FAULT_KIND_VARIABLE, "kill"))
