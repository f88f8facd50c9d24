"""What a `langevin run` / `langevin resume` submits, and what it does afterwards.

The jobs of a directory OUT are its ordinary run directories ("leaves"):

    a run                      OUT itself
    a sharded run              OUT/shard-k/                       (reported merged)
    a sweep                    OUT/<key>=<value>/                 (each reports itself)
    a sweep of sharded runs    OUT/<key>=<value>/shard-k/

`start` creates every run directory first (every config validated before anything is
written, the executor checked before anything is created), then submits all leaves.
`resume` submits only the unfinished leaves (SLURM jobs still queued or running are not
submitted twice). After a local executor's jobs, `finish` writes the merged reports of
sharded runs and the sweep table; after SLURM jobs, `langevin report OUT` does (or a
later `langevin resume OUT`, which submits nothing when all is done and reports).
"""
from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Callable

from experiments import sweep
from experiments.launch import records, settings
from experiments.launch.executors import Job, submit_local, submit_slurm
from experiments.presets import get_preset
from experiments.reporting.report import write_report
from experiments.rundirs import rundir, shards
from experiments.setup import config as cfg


def preflight(launch: dict) -> None:
    """Check the executor can run here, before any directory is created."""
    if launch["executor"] == "inline":
        return
    settings.import_submitit()
    if launch["executor"] == "local":
        settings.local_slots(launch)
    elif shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise settings.LaunchError("launch.executor = 'slurm' but sbatch/srun are not on PATH: "
                                   "submit from a SLURM login node (or use --executor local)")


def _run_leaves(run_dir: Path, label: str, report: bool) -> list[Job]:
    if shards.is_sharded_dir(run_dir):
        return [Job(d, f"{label}/{d.name}" if label else d.name, False)
                for d in shards.shard_dirs(run_dir)]
    return [Job(run_dir, label or run_dir.name, report)]


def point_dirs(top: Path) -> list[Path]:
    """The run directories directly under OUT: the sweep's points, or OUT itself."""
    top = Path(top)
    if sweep.is_sweep_dir(top):
        spec = rundir.read_json(top / sweep.SWEEP_FILE)
        return [top / sweep.subdir_name(spec["key"], value) for value in spec["values"]]
    return [top]


def leaf_jobs(top: Path) -> list[Job]:
    top = Path(top)
    out = []
    for point in point_dirs(top):
        label = "" if point == top else point.name
        if (point / rundir.CONFIG_FILE).is_file():
            out.extend(_run_leaves(point, label, True))
    return out


def is_done(job: Job) -> bool:
    if not shards.is_completed(job.run_dir):
        return False
    return not job.report or (job.run_dir / rundir.SUMMARY_FILE).is_file()


def top_launch(top: Path) -> dict:
    """The [launch] section of OUT's runs (a sweep: of its first point)."""
    top = Path(top)
    if sweep.is_sweep_dir(top):
        spec = rundir.read_json(top / sweep.SWEEP_FILE)
        config, _ = cfg.resolve([get_preset(spec["preset"]).overrides],
                                [*spec["set"], *sweep.assignments(spec["key"], spec["values"][0])])
        return config["launch"]
    return rundir.load_config(top)["launch"]


def with_executor(top: Path, executor: str | None) -> dict:
    """OUT's [launch] with launch.executor replaced, re-validated."""
    top = Path(top)
    first = next((p for p in point_dirs(top) if (p / rundir.CONFIG_FILE).is_file()), None)
    if first is None:
        return top_launch(top) if executor is None else {**top_launch(top), "executor": executor}
    config = rundir.load_config(first)
    if executor is not None:
        config = copy.deepcopy(config)
        config["launch"]["executor"] = executor
        cfg.validate(config)
    return config["launch"]


def submit(top: Path, jobs: list[Job], launch: dict, name: str) -> int:
    if launch["executor"] == "local":
        codes = submit_local(jobs, launch, top)
        finish_code = finish(top)
        failed = [j.label for j, c in zip(jobs, codes) if c == 1]
        if failed:
            print(f"failed: {', '.join(failed)}; see `langevin status {top}`", file=sys.stderr)
            return 1
        return 130 if any(c == 130 for c in codes) else finish_code
    ids = submit_slurm(jobs, launch, top, name)
    print(f"submitted {len(ids)} SLURM job(s) ({ids[0].split('_')[0]}); watch with "
          f"`langevin status {top}`; when done: `langevin report {top}`")
    return 0


def start(name: str, preset, overrides: list[dict], set_args: list[str], out: Path,
          start_run: Callable, launch: dict) -> int:
    """Create every run directory of a run or sweep, then submit its leaves."""
    preflight(launch)
    if preset is not None and preset.sweep:
        sweep.create_sweep(name, preset, set_args, out, start_run)
        top = Path(out)
    else:
        top, _ = start_run(name, overrides, set_args, out)
    return submit(top, leaf_jobs(top), launch, name)


def _still_scheduled(job: Job) -> bool:
    """A SLURM job of this run directory that is still pending or running."""
    submitted = records.read_submission(job.run_dir)
    if not submitted or submitted["executor"] != "slurm" or shutil.which("sacct") is None:
        return False
    return records.slurm_state(submitted) in {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING",
                                      "COMPLETING", "SUSPENDED", "RESIZING"}


def resume(top: Path, executor: str | None, start_run: Callable) -> int:
    """Submit the unfinished leaves of OUT with its [launch] (or `executor`)."""
    top = Path(top)
    launch = with_executor(top, executor)
    preflight(launch)
    if sweep.is_sweep_dir(top):
        sweep.ensure_points(top, start_run)
    name = rundir.read_json(point_dirs(top)[0] / rundir.META_FILE).get("name", "run")
    jobs = [j for j in leaf_jobs(top) if not is_done(j) and not _still_scheduled(j)]
    if not jobs:
        print("nothing to resubmit: every job is done or still scheduled")
        return finish(top)
    return submit(top, jobs, launch, name)


def finish(top: Path) -> int:
    """Reports that need every job: merged reports of sharded runs, the sweep table."""
    top = Path(top)
    code = 0
    for point in point_dirs(top):
        if shards.is_sharded_dir(point) and not (point / rundir.SUMMARY_FILE).is_file():
            if all(shards.is_completed(d) for d in shards.shard_dirs(point)):
                code = max(code, shards.finish(point, write_report))
            else:
                shards.update_status(point)
                code = 1
    if sweep.is_sweep_dir(top):
        if all(is_done(j) for j in leaf_jobs(top)) and all(
                (p / rundir.SUMMARY_FILE).is_file() for p in point_dirs(top)):
            sweep.write_sweep_report(top)
        else:
            print(f"the sweep is unfinished; see `langevin status {top}`")
            code = max(code, 1)
    return code
