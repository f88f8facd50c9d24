"""The command line's error boundary: every expected failure becomes one message that
names the file or config key and what to do, and an exit code; nothing else (a bug)
keeps its traceback. `langevin --debug ...` shows the traceback of every failure.

Exit codes: 2 bad input (config, data, a file that is not what it should be), 3 the
sampler diverged, 4 the run directory is in use by another process, 5 the machine
refused (disk full, read-only, permission, memory), 130 interrupted.
"""
from __future__ import annotations

import errno

from experiments.rundirs import rundir
from experiments.rundirs.lock import RunDirectoryBusy
from experiments.setup import config as cfg
from experiments.setup.data import DataError
from experiments.setup.resources import ResourceError
from langevin.checkpoint import CheckpointError
from langevin.run import NonFiniteError
from langevin.store import StoreError

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_BUSY = 4
EXIT_SYSTEM = 5
EXIT_INTERRUPTED = 130


class RunFailure(Exception):
    """A failure already put into words (with its exit code) by the phase it happened in."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def os_error_text(err: OSError) -> str:
    """`err` in words, with the file it concerns."""
    reason = _OS_REASONS.get(err.errno, err.strerror or type(err).__name__)
    target = err.filename if err.filename is not None else None
    return f"{reason} ({target})" if target else reason


def is_disk_problem(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in _OS_REASONS


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
        or "DefaultCPUAllocator" in text)


def describe(err: BaseException) -> tuple[int, str] | None:
    """(exit code, message) of an expected failure; None for anything else."""
    if isinstance(err, RunFailure):
        return err.code, str(err)
    if isinstance(err, RunDirectoryBusy):
        return EXIT_BUSY, str(err)
    if isinstance(err, NonFiniteError):
        return EXIT_DIVERGED, str(err)
    if isinstance(err, ResourceError):
        return EXIT_SYSTEM, str(err)
    if isinstance(err, (cfg.ConfigError, DataError, CheckpointError, StoreError,
                        rundir.CorruptFileError, rundir.RunDirectoryError)):
        return EXIT_BAD_INPUT, str(err)
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted before sampling started; nothing was written"
    if is_out_of_memory(err):
        return EXIT_SYSTEM, (f"out of memory ({type(err).__name__}: {err}); lower "
                             "sampler.num_chains, model.width or data.n_train")
    if isinstance(err, (FileNotFoundError, NotADirectoryError, IsADirectoryError,
                        FileExistsError)):
        return EXIT_BAD_INPUT, os_error_text(err) if err.filename else str(err)
    if isinstance(err, OSError):
        return EXIT_SYSTEM, f"cannot write or read a file: {os_error_text(err)}"
    if isinstance(err, ValueError):  # validation errors of the config and of the sampler
        return EXIT_BAD_INPUT, str(err)
    return None
