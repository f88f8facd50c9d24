"""A study directory (experiments.studies): its study.json, its start-up, and running a study
in it under its lock with the stop request of runs. Independent of the registry, so that a
study module's own entry point (`python -m experiments.modular_addition_comparison`) takes the
same path as `langevin run NAME` without importing the registry that imports it.

    DIR/study.json   {"name", "params" (validated, every key), "version" (package), "git_commit"}
    DIR/.lock        held (flock, experiments.rundirs.lock) by the process that runs, resumes
                     or reports it: "<pid> <purpose>"

    start_study_dir(name, params, out) -> DIR      params already validated
    run_in_study_dir(DIR, name, run_study, params) -> exit code

Ctrl-C, SIGTERM or SIGUSR2 during `run_in_study_dir` (experiments.rundirs.stop) stop the
point in progress at its next step with a checkpoint written; the study's run loop raises
`stop.Interrupted` and the process prints one line, as a run does,
`interrupted at step S of point P; continue with: langevin resume DIR`, exit code 130.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from experiments.rundirs import failures, rundir, staging, stop
from experiments.rundirs.lock import LOCK_FILE, RunDirectoryLock

STUDY_FILE = "study.json"


def is_study_dir(path: Path) -> bool:
    return (Path(path) / STUDY_FILE).is_file()


def study_record(name: str, params: dict) -> dict:
    """The contents of study.json."""
    return {"name": name, "params": params, "version": rundir.package_version(),
            "git_commit": rundir.git_commit()}


def start_study_dir(name: str, params: dict, out: Path | None) -> Path:
    """Create the study directory with its study.json (staged beside it and renamed into
    place: absent or complete); `params` are validated by the caller."""
    target = Path(out) if out else rundir.default_run_dir(name)
    if is_study_dir(target):
        raise rundir.RunDirectoryError(
            f"study directory {str(target)!r} already exists; continue it with `langevin resume "
            f"{target}` or choose another --out")
    rundir.check_new_run_dir(target)
    return staging.create_directory_atomically(
        target, "study", lambda directory: rundir.write_json_atomic(directory / STUDY_FILE,
                                                                    study_record(name, params)))


def run_in_study_dir(study_dir: Path, name: str, run_study: Callable[[Path, dict], dict],
                     params: dict) -> int:
    """`run_study(study_dir, params)` under the directory's lock with the stop flag installed
    (module docstring). A stop request gives exit code 130 and one line on stderr; a second
    Ctrl-C, a full disk or memory become a `failures.RunFailure` saying that the finished
    points are kept and how to continue."""
    study_dir = Path(study_dir)
    resume = f"`langevin resume {study_dir}`"
    with RunDirectoryLock(study_dir, "run"):
        try:
            with stop.stop_on_signals():
                run_study(study_dir, params)
        except stop.Interrupted as err:
            print(f"{err}; continue with: langevin resume {study_dir}", file=sys.stderr)
            return failures.EXIT_INTERRUPTED
        except (KeyboardInterrupt, OSError, MemoryError, RuntimeError) as err:
            kept = ("the finished points are kept and the unfinished one continues from its "
                    "last checkpoint")
            if isinstance(err, KeyboardInterrupt):
                raise failures.RunFailure(f"interrupted; {kept}: continue with {resume}",
                                          failures.EXIT_INTERRUPTED) from err
            if isinstance(err, OSError) and failures.is_disk_problem(err):
                raise failures.RunFailure(
                    f"{failures.os_error_text(err)} while running study {name!r} in "
                    f"{str(study_dir)!r}; {kept}: free space or make it writable, then {resume}",
                    failures.EXIT_SYSTEM) from err
            if failures.is_out_of_memory(err):
                raise failures.RunFailure(
                    f"out of memory in study {name!r} ({type(err).__name__}: {err}); {kept}; "
                    "lower num_chains or width in a new study directory",
                    failures.EXIT_SYSTEM) from err
            raise
    print(f"study directory: {study_dir}")
    return 0


def lock_holder(study_dir: Path) -> dict | None:
    """{"pid", "purpose", "alive"} of the process holding DIR/.lock, read from the file (never
    locked here: the holder keeps it); None when nobody holds it (a released lock empties the
    file, experiments.rundirs.lock). `alive`: whether that pid is a live process of this host
    (False: its holder was killed, the kernel released the lock)."""
    path = Path(study_dir) / LOCK_FILE
    try:
        fields = path.read_text(errors="replace").split()
    except OSError:
        return None
    if not fields or not fields[0].isdigit():
        return None
    pid = int(fields[0])
    return {"pid": pid, "purpose": fields[1] if len(fields) > 1 else "", "alive": _alive(pid)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_or_continue(name: str, params: dict, out: Path,
                    run_study: Callable[[Path, dict], dict]) -> int:
    """A study module's own entry point (`python -m experiments.<module> --out DIR`): start the
    study directory, or continue it if it holds study `name` with these `params` (another
    study or other parameters are refused), then `run_in_study_dir`. A failure is one line
    `error: ...` with the command line's exit codes (experiments.rundirs.failures)."""
    try:
        if is_study_dir(out):
            record = rundir.read_json(Path(out) / STUDY_FILE)
            if record.get("name") != name or record.get("params") != params:
                raise rundir.RunDirectoryError(
                    f"{str(Path(out) / STUDY_FILE)!r} holds study {record.get('name')!r} with other "
                    f"parameters than these; continue it with `langevin resume {out}` or choose "
                    "another --out")
        else:
            start_study_dir(name, params, out)
        return run_in_study_dir(out, name, run_study, params)
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the entry point's boundary
        described = failures.describe(err)
        if described is None:
            raise
        print(f"error: {described[1]}", file=sys.stderr)
        return described[0]
