"""The launch records of a run directory (`RUN_DIR/launch/`), read by `langevin status`.

    submitted.json   written by the submitting process: executor, job id, submitit folder,
                     submission count and time
    events.jsonl     appended by the job: {"event": "start" | "requeue" | "end", "time",
                     ...} one JSON object per line (a job's own writes only: the submitting
                     process never appends here, so writers never interleave)
    job.log          the output of `python -m experiments.cli resume RUN_DIR`, all attempts

Standard library only (imported by the job processes, which never import torch).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import time
import zipfile
from pathlib import Path

LAUNCH_DIR = "launch"
SUBMITTED_FILE = "submitted.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "job.log"
CHECKPOINT_FILE = Path("checkpoint") / "state.pt"  # = langevin.checkpoint's layout


def launch_dir(run_dir: Path) -> Path:
    path = Path(run_dir) / LAUNCH_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def record_submission(run_dir: Path, executor: str, job_id: str, folder: Path | None,
                      submitted_at: float) -> None:
    """`submitted_at`: time.time() just before the submission (a job may start, and log
    its start, before this record is written)."""
    path = launch_dir(run_dir) / SUBMITTED_FILE
    previous = read_submission(run_dir) or {}
    _write_json_atomic(path, {"executor": executor, "job_id": str(job_id),
                              "folder": None if folder is None else str(folder),
                              "submissions": int(previous.get("submissions", 0)) + 1,
                              "time": submitted_at})


def read_submission(run_dir: Path) -> dict | None:
    path = Path(run_dir) / LAUNCH_DIR / SUBMITTED_FILE
    if not path.is_file():
        return None
    with open(path) as handle:
        return json.load(handle)


def append_event(run_dir: Path, event: str, **fields) -> None:
    line = json.dumps({"event": event, "time": time.time(), **fields}) + "\n"
    with open(launch_dir(run_dir) / EVENTS_FILE, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_events(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / LAUNCH_DIR / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
    return events


def last_error_line(run_dir: Path) -> str | None:
    """The last line starting with 'error:' (else the last non-empty line) of job.log's
    last attempt."""
    path = Path(run_dir) / LAUNCH_DIR / LOG_FILE
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    attempt = lines[max((i for i, line in enumerate(lines) if line.startswith("=== attempt")),
                        default=-1) + 1:]
    errors = [line for line in attempt if line.startswith("error:")]
    if errors:
        return errors[-1]
    rest = [line for line in attempt if line and "chain-step" not in line]
    return rest[-1] if rest else None


class _TensorFreeUnpickler(pickle.Unpickler):
    """Reads the plain fields of a torch.save'd checkpoint; tensors come back as None."""

    def find_class(self, module: str, name: str):
        if module == "torch" or module.startswith("torch."):
            return lambda *args, **kwargs: None
        if (module, name) == ("collections", "OrderedDict"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a checkpoint")

    def persistent_load(self, pid):
        return None


def checkpoint_progress(run_dir: Path, checkpoint_file: Path = CHECKPOINT_FILE) -> tuple[int, float] | None:
    """(step, modification time) of the last checkpoint `run_dir/checkpoint_file`, without
    importing torch (the checkpoint is torch.save's zip archive; only its pickle is read)."""
    path = Path(run_dir) / checkpoint_file
    try:
        mtime = path.stat().st_mtime
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            payload = _TensorFreeUnpickler(io.BytesIO(archive.read(name))).load()
        return int(payload["step"]), mtime
    except (OSError, StopIteration, KeyError, zipfile.BadZipFile, pickle.UnpicklingError,
            EOFError):
        return None


def slurm_state(submitted: dict) -> str | None:
    """SLURM's state of a submitted job (via submitit and sacct), None if unknown."""
    if shutil.which("sacct") is None:
        return None
    try:
        import submitit

        job = submitit.SlurmJob(folder=submitted["folder"], job_id=submitted["job_id"])
        return str(job.state).split()[0]
    except Exception:  # noqa: BLE001 - no sacct, no submitit, or an unknown job: unknown
        return None
