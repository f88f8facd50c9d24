"""The [launch] section and sampler.shards: where a run executes and how its chains are
split (experiments.launch, experiments.rundirs.shards); merged into experiments.setup.config.SCHEMA."""
from __future__ import annotations

from experiments.setup.config_keys import ConfigError, Key, non_negative, one_of, positive

# None of these keys changes a stored number of a
# run directory, so none is hashed: a run may be resumed on another executor or cluster.
# A sharded run's shard directories are ordinary runs (sampler.shards = 1) with their own
# sampler.seed and sampler.num_chains (experiments.rundirs.shards.shard_seed).

def _string_list(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def _sbatch_options(v):
    if not all(isinstance(x, str) and x.startswith("--") and len(x) > 2 for x in v):
        return "must be a list of sbatch options written '--name=value' or '--flag'"
    return None


LAUNCH_EXECUTORS = ("inline", "local", "slurm")
MAX_SHARDS = 2**16 - 1  # experiments.rundirs.shards.shard_seed packs the shard count in 16 bits
MAX_SHARDED_SEED = 2**29  # ... and the run's seed in 29 bits (shard seeds stay below 2^62)

SHARDS_KEY = Key(
    int, 1, positive, "split the chains into this many jobs (run directories shard-k/), "
    "merged into one posterior by report/open_samples; seeds: experiments.rundirs.shards.shard_seed")
LAUNCH_KEYS = {
    "executor": Key(str, "inline", one_of(*LAUNCH_EXECUTORS),
                    "inline: in this process, one run after the other; local: separate "
                    "processes on this machine (one per visible GPU, or max_parallel CPU "
                    "jobs); slurm: one SLURM job per run (a job array), requeued on timeout "
                    "or preemption (needs the [cluster] extra)"),
    "gpus_per_job": Key(int, 0, lambda v: None if v in (0, 1) else
                        "must be 0 or 1 (a run samples on one device; split chains over GPUs "
                        "with sampler.shards)", "GPUs of one job (1 needs sampler.device = 'cuda')"),
    "cpus_per_job": Key(int, 1, positive, "CPU cores of one job (slurm --cpus-per-task)"),
    "mem_gb": Key(float, 0.0, non_negative, "memory of one job in GB (0: the cluster's default)"),
    "partition": Key(str, "", None, "slurm partition ('': the cluster's default)"),
    "account": Key(str, "", None, "slurm account ('': none)"),
    "qos": Key(str, "", None, "slurm quality of service ('': none)"),
    "time_limit_min": Key(int, 0, non_negative,
                          "wall-time limit of one job in minutes; required for slurm; local: "
                          "0 means none. A job checkpoints and is requeued before the limit"),
    "signal_delay_s": Key(int, 120, positive,
                          "seconds before the time limit at which the job checkpoints (USR2)"),
    "max_requeues": Key(int, 10, non_negative,
                        "timeouts after which a job is not requeued again (preemptions do not "
                        "count on slurm)"),
    "max_parallel": Key(int, 0, non_negative,
                        "jobs running at once (slurm: the array's %limit; local: 0 = one per "
                        "visible GPU, or one per CPU core for CPU jobs)"),
    "sbatch_options": Key(list, [], _sbatch_options,
                          "extra sbatch options, e.g. ['--constraint=a100', '--mail-type=END']"),
    "setup": Key(list, [], _string_list,
                 "shell lines run before each slurm job, e.g. ['module load cuda', "
                 "'source .venv/bin/activate']"),
}
# Options the [launch] keys set: given in launch.sbatch_options they would contradict them.
SBATCH_OWNED = {"partition": "partition", "time": "time_limit_min", "account": "account",
                 "qos": "qos", "mem": "mem_gb", "cpus-per-task": "cpus_per_job",
                 "gpus-per-node": "gpus_per_job", "gres": "gpus_per_job", "array": "max_parallel",
                 "signal": "signal_delay_s", "output": None, "error": None, "job-name": None}


def validate_launch(config: dict) -> None:
    """Cross-key rules of [launch] and sampler.shards (each error names its key)."""
    launch, sampler = config["launch"], config["sampler"]
    shards, chains = sampler["shards"], sampler["num_chains"]
    if shards > chains:
        raise ConfigError(f"config key 'sampler.shards' = {shards} exceeds sampler.num_chains = "
                          f"{chains}: every shard needs at least one chain")
    if shards > MAX_SHARDS:
        raise ConfigError(f"config key 'sampler.shards' = {shards} exceeds {MAX_SHARDS}")
    if shards > 1 and not 0 <= sampler["seed"] < MAX_SHARDED_SEED:
        raise ConfigError(f"config key 'sampler.seed' = {sampler['seed']} must be in "
                          f"[0, {MAX_SHARDED_SEED}) when sampler.shards > 1 (shard seeds are "
                          "derived from it without collisions; experiments.rundirs.shards.shard_seed)")
    for option in launch["sbatch_options"]:
        name = option[2:].split("=", 1)[0]
        if name in SBATCH_OWNED:
            owner = SBATCH_OWNED[name]
            hint = f"set launch.{owner} instead" if owner else "it is set by the launcher"
            raise ConfigError(f"config key 'launch.sbatch_options' must not contain "
                              f"{option!r}: {hint}")
    executor, device = launch["executor"], sampler["device"]
    if executor == "inline":
        return
    if executor == "slurm" and launch["time_limit_min"] == 0:
        raise ConfigError("config key 'launch.time_limit_min' must be set (> 0) for "
                          "launch.executor = 'slurm': the job checkpoints and requeues itself "
                          "before that limit")
    if device.startswith("cuda:"):
        raise ConfigError(f"config key 'sampler.device' = {device!r} names a GPU, but with "
                          f"launch.executor = {executor!r} the executor assigns each job its GPU "
                          "(CUDA_VISIBLE_DEVICES): use sampler.device = 'cuda'")
    if device == "cuda" and launch["gpus_per_job"] == 0:
        raise ConfigError("config key 'launch.gpus_per_job' must be 1 for sampler.device = "
                          f"'cuda' with launch.executor = {executor!r}")
    if device == "cpu" and launch["gpus_per_job"] > 0:
        raise ConfigError("config key 'launch.gpus_per_job' = 1 but sampler.device = 'cpu': "
                          "set sampler.device = 'cuda' to sample on the GPU")
