"""An exclusive lock on a run directory: one process at a time samples into it or
writes its report.

The lock is `fcntl.flock(LOCK_EX | LOCK_NB)` on the file `DIR/.lock`, which holds the
pid of its holder ("<pid> <purpose>", emptied when it releases the lock). The kernel
releases a flock when its holder exits, however it exits (SIGKILL included), so a lock is
never stale: a leftover `.lock` file of a dead process does not block anyone. A second process is refused with `RunDirectoryBusy`
naming the holder's pid. flock locks an open file description, so the lock taken on
`.lock` inside a staging directory survives the rename of that directory into place.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock."""


class RunDirectoryLock:
    """`with RunDirectoryLock(run_dir):` — exclusive use of `run_dir` (see module doc)."""

    def __init__(self, run_dir: str | Path, purpose: str = "run"):
        self.run_dir = Path(run_dir)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> "RunDirectoryLock":
        path = self.run_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fields = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            holder = fields[0] if fields else "unknown"
            raise RunDirectoryBusy(
                f"run directory {str(self.run_dir)!r} is in use by process {holder} "
                f"(`langevin {fields[1] if len(fields) > 1 else 'run'}`); wait for that process to end "
                f"or stop it (kill -INT {holder} checkpoints it), then try again") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.purpose}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:  # an empty .lock: nobody holds it (a killed holder leaves its pid, not alive)
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "RunDirectoryLock":
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()
