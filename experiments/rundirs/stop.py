"""The stop request of a run or a study in progress: SIGINT (Ctrl-C), SIGTERM and SIGUSR2
(SLURM's and submitit's warning before a time limit) set a flag that the sampler loop
(`langevin.run.run_chains(stop_requested=...)`) polls every step; it then flushes its draws,
writes its checkpoint and returns with status "interrupted" (nothing since the last
checkpoint is lost). A second SIGINT stops at once (KeyboardInterrupt, still resumable from
the last checkpoint); repeated SIGTERM/SIGUSR2 (a cluster signals every process) only stop once.

    with stop_on_signals() as flag:      install the handlers; restored on exit
        run_chains(..., stop_requested=flag)    or  stop_requested=requested

One flag per process: a `stop_on_signals()` inside another (a run executed by a study,
experiments.runner inside experiments.studies) returns the outer flag and installs nothing,
so a stop request during a study reaches the run in progress and the study both; a run
stopped there (experiments.runner.execute with `nested()`) raises `Interrupted` instead of
returning exit code 130, so the study stops without handling that code.
`requested()` is the active flag's state (False outside any `stop_on_signals()`): a study's
point loop passes it to `run_chains` and raises `Interrupted` when a point stopped.
"""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator

_USR2 = () if sys.platform == "win32" else (signal.SIGUSR2,)  # POSIX only
SIGNALS = (signal.SIGINT, signal.SIGTERM, *_USR2)


class StopFlag:
    """True once a stop signal arrived (module docstring); callable as `stop_requested`."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> dict:
        """Install the handlers; returns the previous ones for `restore`."""

        def handler(signum, _frame):
            if self.requested and signum == signal.SIGINT:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            if self.requested:
                return
            self.requested = True
            print(f"\nreceived {signal.Signals(signum).name}: checkpointing and stopping ...",
                  file=sys.stderr)

        return {sig: signal.signal(sig, handler) for sig in SIGNALS}

    @staticmethod
    def restore(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Interrupted(Exception):
    """A study stopped on request at `step` of its point `where` (checkpoint written): the
    study's run loop raises it when `run_chains` returned status "interrupted"."""

    def __init__(self, where: str, step: int) -> None:
        super().__init__(f"interrupted at step {step} of {where}")
        self.where, self.step = where, step


_ACTIVE: list[StopFlag] = []


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    """The process's stop flag with its signal handlers installed (the outer one if nested)."""
    if _ACTIVE:
        _ACTIVE.append(_ACTIVE[-1])
        try:
            yield _ACTIVE[-1]
        finally:
            _ACTIVE.pop()
        return
    flag = StopFlag()
    previous = flag.install()
    _ACTIVE.append(flag)
    try:
        yield flag
    finally:
        _ACTIVE.pop()
        StopFlag.restore(previous)


def nested() -> bool:
    """Whether this is a `stop_on_signals()` inside another (a run inside a study)."""
    return len(_ACTIVE) > 1


def requested() -> bool:
    """Whether the active flag (if any) has been set: `run_chains(stop_requested=requested)`."""
    return bool(_ACTIVE) and _ACTIVE[-1].requested
