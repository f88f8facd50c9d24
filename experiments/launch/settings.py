"""From the `[launch]` config section to submitit's parameters (and sbatch text).

SLURM (submitit.SlurmExecutor.update_parameters; sbatch option in brackets):

    launch.time_limit_min  -> time            [--time, minutes]
    launch.cpus_per_job    -> cpus_per_task   [--cpus-per-task]
    launch.gpus_per_job    -> gpus_per_node   [--gpus-per-node], if 1
    launch.mem_gb          -> mem             [--mem=<N>GB], if > 0
    launch.partition / account / qos          [--partition / --account / --qos], if set
    launch.signal_delay_s  -> signal_delay_s  [--signal=USR2@<s>]
    launch.max_parallel    -> array_parallelism [--array=0-<n-1>%<p>], if > 0
    launch.sbatch_options  -> additional_parameters (each '--name=value' or '--flag')
    launch.setup           -> setup (shell lines before srun)

one task on one node per job (--nodes=1, --ntasks-per-node=1).

Local (submitit.LocalExecutor): timeout_min (launch.time_limit_min; 0: a year),
signal_delay_s, and per job slot gpus_per_node = 1 with visible_gpus = (that GPU,)
(CUDA_VISIBLE_DEVICES = its index), or gpus_per_node = 0 (CUDA_VISIBLE_DEVICES empty:
a CPU job sees no GPU).
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

NO_LIMIT_MIN = 60 * 24 * 365  # a local job without launch.time_limit_min


class LaunchError(ValueError):
    """The executor cannot run here (no submitit, no GPU ...); names the key to change.
    A ValueError, so the command line reports it like a bad config value (exit code 2)."""


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise LaunchError("launch.executor 'local' and 'slurm' need submitit: "
                          "pip install -e '.[cluster]'") from None
    return submitit


def _option(text: str) -> tuple[str, object]:
    name, sep, value = text[2:].partition("=")
    return name, (value if sep else True)


def slurm_parameters(launch: dict, job_name: str) -> dict:
    """submitit.SlurmExecutor parameters of one job (see the module docstring)."""
    params = {"job_name": job_name, "time": int(launch["time_limit_min"]), "nodes": 1,
              "ntasks_per_node": 1, "cpus_per_task": int(launch["cpus_per_job"]),
              "signal_delay_s": int(launch["signal_delay_s"]), "stderr_to_stdout": False}
    if launch["gpus_per_job"] > 0:
        params["gpus_per_node"] = int(launch["gpus_per_job"])
    if launch["mem_gb"] > 0:
        mem = launch["mem_gb"]
        params["mem"] = f"{int(mem)}GB" if float(mem).is_integer() else f"{int(mem * 1024)}MB"
    for key in ("partition", "account", "qos"):
        if launch[key]:
            params[key] = launch[key]
    if launch["max_parallel"] > 0:
        params["array_parallelism"] = int(launch["max_parallel"])
    if launch["sbatch_options"]:
        params["additional_parameters"] = dict(_option(o) for o in launch["sbatch_options"])
    if launch["setup"]:
        params["setup"] = list(launch["setup"])
    return params


def submitit_command(folder: Path, python: str | None = None) -> str:
    """The command each SLURM job runs (submitit's: load the pickled RunJob and call it)."""
    python = shlex.quote(sys.executable) if python is None else python
    return f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}"


def sbatch_text(launch: dict, folder: Path, job_name: str, num_jobs: int) -> str:
    """The sbatch script submitit's SlurmExecutor writes for `num_jobs` jobs (an array if
    more than one), built without a cluster and without submitting."""
    import_submitit()
    from submitit.slurm.slurm import _make_sbatch_string  # SlurmExecutor's own builder

    return _make_sbatch_string(command=submitit_command(folder), folder=folder,
                               map_count=num_jobs if num_jobs > 1 else None,
                               **slurm_parameters(launch, job_name))


def visible_gpus() -> list[int]:
    """GPU indices this process may use: CUDA_VISIBLE_DEVICES if set, else all."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        entries = [e.strip() for e in listed.split(",") if e.strip()]
        if not all(e.isdigit() for e in entries):
            raise LaunchError(f"CUDA_VISIBLE_DEVICES = {listed!r} lists devices by name; the "
                              "local executor pins GPUs by index: list indices instead")
        return [int(e) for e in entries]
    import torch

    return list(range(torch.cuda.device_count()))


def local_slots(launch: dict) -> list[tuple[int, ...]]:
    """One entry per job that may run at once: (gpu index,) per GPU job, () per CPU job."""
    limit = launch["max_parallel"]
    if launch["gpus_per_job"] > 0:
        gpus = visible_gpus()
        if not gpus:
            raise LaunchError("launch.gpus_per_job = 1 but this machine has no visible GPU: "
                              "set launch.gpus_per_job = 0 and sampler.device = 'cpu'")
        slots = [(gpu,) for gpu in gpus]
        return slots[:limit] if limit > 0 else slots
    count = limit if limit > 0 else max(1, (os.cpu_count() or 1) // launch["cpus_per_job"])
    return [()] * count


def local_parameters(launch: dict, slot: tuple[int, ...]) -> dict:
    """submitit.LocalExecutor parameters of a job in `slot`."""
    limit = launch["time_limit_min"]
    return {"timeout_min": float(limit if limit > 0 else NO_LIMIT_MIN),
            "signal_delay_s": int(launch["signal_delay_s"]),
            "gpus_per_node": len(slot), "visible_gpus": tuple(slot)}
