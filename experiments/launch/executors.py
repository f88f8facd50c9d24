"""Submit jobs (`jobs.RunJob`, one per run directory) with submitit.

`submit_local` waits for its jobs: a pool with one worker per slot
(`settings.local_slots`: one per visible GPU, or launch.max_parallel CPU jobs) hands each
slot's job to submitit's LocalExecutor pinned to that slot's GPU, so at most one job
runs per GPU; submitit runs, signals and requeues it. The pool only bounds concurrency:
the order is the order of the jobs.

`submit_slurm` returns after submitting: one SlurmExecutor job per run directory, all in
one job array when there are several (`--array=0-<n-1>%<launch.max_parallel>`); SLURM
schedules them and submitit requeues each on timeout or preemption.
"""
from __future__ import annotations

import queue
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from experiments.launch import records, settings
from experiments.launch.jobs import RunJob

SUBMITIT_DIR = "submitit"


class Job(NamedTuple):
    run_dir: Path  # an ordinary run directory (a run, a sweep point, or a shard)
    label: str  # its name relative to the directory given on the command line
    report: bool  # write its own report (False: a shard, reported merged)


def submitit_folder(top: Path) -> Path:
    return (Path(top) / records.LAUNCH_DIR / SUBMITIT_DIR).absolute()


def _threads(launch: dict) -> int:
    return int(launch["cpus_per_job"]) if launch["gpus_per_job"] == 0 else 0


def submit_local(jobs: list[Job], launch: dict, top: Path) -> list[int]:
    """Run `jobs` on this machine, at most one per slot at once; returns exit codes
    (0 done, 130 interrupted, 1 failed) in the order of `jobs`."""
    submitit = settings.import_submitit()
    slots = settings.local_slots(launch)
    folder = submitit_folder(top)
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)

    def run_one(job: Job) -> int:
        slot = free.get()
        try:
            executor = submitit.LocalExecutor(folder=folder,
                                              max_num_timeout=launch["max_requeues"])
            executor.update_parameters(**settings.local_parameters(launch, slot))
            submitted_at = time.time()
            handle = executor.submit(RunJob(str(job.run_dir.absolute()), job.report,
                                            _threads(launch)))
            records.record_submission(job.run_dir, "local", handle.job_id, folder, submitted_at)
            where = f"GPU {slot[0]}" if slot else "CPU"
            print(f"started {job.label} ({where}, job {handle.job_id})", flush=True)
            try:
                result = handle.result()
            except Exception as err:  # noqa: BLE001 - submitit re-raises the job's error
                reason = records.last_error_line(job.run_dir) or _last_line(err)
                print(f"failed {job.label}: {reason}", file=sys.stderr, flush=True)
                return 1
            print(f"{result['status']} {job.label}", flush=True)
            return 0 if result["status"] == "completed" else 130
        finally:
            free.put(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        return list(pool.map(run_one, jobs))


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def submit_slurm(jobs: list[Job], launch: dict, top: Path, job_name: str) -> list[str]:
    """Submit `jobs` to SLURM (a job array if several); returns their job ids."""
    submitit = settings.import_submitit()
    folder = submitit_folder(top)
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=launch["max_requeues"])
    executor.update_parameters(**settings.slurm_parameters(launch, job_name))
    handles = []
    submitted_at = time.time()
    with executor.batch():
        for job in jobs:
            handles.append(executor.submit(RunJob(str(job.run_dir.absolute()), job.report,
                                                  _threads(launch))))
    for job, handle in zip(jobs, handles):
        records.record_submission(job.run_dir, "slurm", handle.job_id, folder, submitted_at)
    return [str(handle.job_id) for handle in handles]
