"""`langevin status OUT`: the state of every job of a run, a sweep or a sharded run (a study
directory: `experiments.studies.study_status`, its points finished / total and the one in progress).

Read from the run directories alone (no torch, no scheduler needed):

- `meta.json`: status (completed, interrupted, failed: ...) and the segments' rates;
- the checkpoint: the step reached and when (`records.checkpoint_progress`);
- `launch/`: submissions, job starts, requeues and ends, the last error line;
- where present, submitit's job records: SLURM's state through `sacct`, and the result
  file of a finished submitit job (its error, if it failed).

State of a job:

    done         meta status "completed"
    failed       meta status "failed: ...", or the job ended with an error
    running      the job started and has not ended (local: its process is alive)
    queued       submitted, not started yet (SLURM: PENDING)
    interrupted  stopped at a checkpoint; `langevin resume OUT` continues it
    created      never started

Rate: chain-steps/s of the running attempt (steps since its start over the time to
the last checkpoint), else of the last segment in meta.json. ETA = remaining
chain-steps / rate.
"""
from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path
from typing import NamedTuple

from experiments import studies, sweep
from experiments.launch import records
from experiments.launch.plan import leaf_jobs, point_dirs
from experiments.launch.records import slurm_state
from experiments.setup import config as cfg


_SLURM_ENDED = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "COMPLETED",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


class JobStatus(NamedTuple):
    label: str
    state: str
    step: int | None
    total_steps: int
    chains: int
    rate: float | None  # chain-steps per second
    eta_seconds: float | None
    requeues: int
    job_id: str | None
    note: str | None  # the last error line of a failed job, the scheduler's state, ...


def _submitit_error(submitted: dict) -> str | None:
    """The last line of a submitit job's error, from its result file, if it failed."""
    if not submitted or not submitted.get("folder"):
        return None
    path = Path(submitted["folder"]) / f"{submitted['job_id']}_0_result.pkl"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            outcome, value = pickle.load(handle)
    except Exception:  # noqa: BLE001 - unreadable result: say nothing
        return None
    if outcome != "error":
        return None
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[-1] if lines else "error"


def _alive(pid: int | None, host: str | None) -> bool | None:
    """Whether a process of this host is alive (None: another host, unknown)."""
    if pid is None or host != os.uname().nodename:
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_toml_sampler(run_dir: Path) -> dict:

    return cfg.merge(cfg.default_config(), cfg.load_toml(run_dir / "config.toml"))["sampler"]


def job_status(run_dir: Path, label: str) -> JobStatus:
    run_dir = Path(run_dir)
    sampler = _read_toml_sampler(run_dir)
    total = sampler["burn_in"] + sampler["num_steps"]
    chains = sampler["num_chains"]
    meta = json.loads((run_dir / "meta.json").read_text())
    status = meta.get("status", "created")
    events = records.read_events(run_dir)
    submitted = records.read_submission(run_dir)
    progress = records.checkpoint_progress(run_dir)
    step = None if progress is None else progress[0]
    starts = [e for e in events if e["event"] == "start"]
    requeues = sum(e["event"] == "requeue" for e in events)
    last = events[-1] if events else None
    job_id = submitted.get("job_id") if submitted else None
    note = None
    event = last["event"] if last else None
    resubmitted = submitted is not None and (last is None or submitted["time"] > last["time"])
    if status == "completed":
        state, step = "done", total
    elif resubmitted:
        error = _submitit_error(submitted)
        scheduler = slurm_state(submitted) if submitted["executor"] == "slurm" else None
        state, note = ("failed", error) if error else ("queued", scheduler)
    elif event == "start":
        alive = _alive(last.get("pid"), last.get("host"))
        scheduler = slurm_state(submitted) if submitted and submitted["executor"] == "slurm" else None
        if alive is False or scheduler in _SLURM_ENDED:
            state = "interrupted"
            note = (f"the job ended without a clean stop (scheduler: {scheduler})"
                    if scheduler else "the job's process is gone")
        else:
            state = "running"
    elif event == "requeue":
        state, note = "queued", "requeued"
    elif status.startswith("failed"):
        state, note = "failed", records.last_error_line(run_dir) or status
    elif event == "end" and last.get("error"):
        state, note = "failed", last["error"]
    elif status == "interrupted" or step is not None:
        state = "interrupted"
        if last is None and submitted is None and status != "interrupted":
            note = "no job records (inline run): still running in its process, or killed"
    else:
        state = "created"
    rate = _rate(meta, starts[-1] if starts else None, progress, chains, state)
    remaining = None if step is None else total - step
    eta = (remaining * chains / rate if rate and remaining is not None and state == "running"
           else None)
    return JobStatus(label, state, step, total, chains, rate, eta, requeues, job_id, note)


def _rate(meta: dict, start: dict | None, progress, chains: int, state: str) -> float | None:
    if state == "running" and start is not None and progress is not None:
        started_step = start.get("step") or 0
        seconds = progress[1] - start["time"]
        if progress[0] > started_step and seconds > 0:
            return (progress[0] - started_step) * chains / seconds
    segments = meta.get("segments") or []
    if segments:
        return segments[-1].get("chain_steps_per_second")
    return None


def collect(top: Path) -> list[JobStatus]:
    jobs = leaf_jobs(Path(top))
    out = [job_status(job.run_dir, job.label) for job in jobs]
    created = {job.run_dir for job in jobs} | {job.run_dir.parent for job in jobs}
    for point in point_dirs(Path(top)):  # sweep points not created yet
        if point not in created:
            out.append(JobStatus(point.name, "created", None, 0, 0, None, None, 0, None,
                                 "not created yet (langevin resume creates it)"))
    return out


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def format_table(rows: list[JobStatus]) -> str:
    width = max([len("job"), *(len(r.label) for r in rows)])
    lines = [f"{'job':{width}s}  {'state':11s}  {'step':>15s}  {'chain-steps/s':>13s}  "
             f"{'ETA':>9s}  {'requeued':>8s}  job id / note"]
    for r in rows:
        step = "-" if r.step is None else f"{r.step}/{r.total_steps}"
        rate = "-" if r.rate is None else f"{r.rate:.3g}"
        tail = " ".join(x for x in (r.job_id, r.note) if x)
        lines.append(f"{r.label:{width}s}  {r.state:11s}  {step:>15s}  {rate:>13s}  "
                     f"{_duration(r.eta_seconds):>9s}  {r.requeues:>8d}  {tail}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
                 + f"  ({time.strftime('%H:%M:%S')})")
    return "\n".join(lines)


def cmd_status(args) -> int:
    top = Path(args.run_dir)
    if studies.is_study_dir(top):  # a study: its points finished / total and the one in progress
        study = studies.study_status(top)
        print(json.dumps(study, indent=2) if args.json else studies.format_study_status(study))
        return 0
    if not (sweep.is_sweep_dir(top) or (top / "config.toml").is_file()):
        raise FileNotFoundError(f"{str(top)!r} is not a run, sweep, sharded run or study directory")
    rows = collect(top)
    if args.json:
        print(json.dumps([row._asdict() for row in rows], indent=2))
    else:
        print(format_table(rows))
    return 1 if any(r.state == "failed" for r in rows) else 0


def add_parser(sub) -> None:
    status = sub.add_parser("status", help="state, step, rate and ETA of every job of a run, "
                                           "sweep or sharded run; a study's points finished and "
                                           "the one in progress")
    status.add_argument("run_dir")
    status.add_argument("--json", action="store_true",
                        help="one JSON object per job (a study: one object)")
    status.set_defaults(func=cmd_status)
