"""Atomic creation of a new run or study directory: assembled in a private staging directory
beside the target (experiments.rundirs.rundir.make_staging_dir) under the start-up lock, then
renamed into place, so the target is afterwards either absent or complete."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from experiments.rundirs import failures, rundir
from experiments.rundirs.lock import RunDirectoryLock


def create_directory_atomically(target: Path, kind: str, fill: Callable[[Path], None]) -> Path:
    """Create `target` with the files `fill(staging)` writes into the staging directory; returns
    `target`. `kind` names the directory in messages ("run", "study"). A failure removes the
    staging directory and leaves `target` as it was; an OSError other than a missing file becomes
    a one-line RunFailure (EXIT_SYSTEM) saying nothing was written."""
    try:
        staging = rundir.make_staging_dir(target)
    except OSError as err:
        raise failures.RunFailure(f"cannot create the {kind} directory {str(target)!r}: "
                                  f"{failures.os_error_text(err)}", failures.EXIT_SYSTEM) from err
    lock = RunDirectoryLock(staging, "start-up")
    try:
        lock.acquire()
        fill(staging)
        created = rundir.publish_staging_dir(staging, target)
    except BaseException as err:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise failures.RunFailure(
                f"cannot create the {kind} directory {str(target)!r}: "
                f"{failures.os_error_text(err)}; nothing was written", failures.EXIT_SYSTEM) from err
        raise
    lock.release()
    return created
