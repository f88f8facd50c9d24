"""Sharded runs: one run's chains split over K jobs (K GPUs, or K cluster jobs).

`sampler.shards = K` turns the run directory OUT into

    OUT/config.toml      the run's resolved config (sampler.shards = K, all C chains)
    OUT/meta.json        status "completed" once every shard is
    OUT/data.npz         the one data set every shard samples
    OUT/shards.json      the manifest: seeds, chains and directories of the shards
    OUT/shard-k/         an ordinary run directory (sampler.shards = 1) with C_k chains
    OUT/summary.json     the report of the merged posterior (K shards, C chains in all)
    OUT/figures/

Chains: shard k gets C_k = ⌊C/K⌋ + [k < C mod K] chains (C = sampler.num_chains), so
Σ C_k = C; the merged posterior has the chains of shard 0, then shard 1, ... (the
`shard` coordinate of `langevin.export.merge_chains` says which).

Seeds: the sampler seed of shard k of a K-shard run with seed s (0 ≤ s < 2²⁹) is

    shard_seed(s, k, K) = 2⁶¹ + (s·2¹⁶ + K)·2¹⁶ + k,

an injective map of (s, K, k) into [2⁶¹, 2⁶²) (every seed must be below 2⁶²,
experiments.setup.config): two shards of any two sharded runs never share a seed, and no shard
seed equals an unsharded run's seed below 2⁶¹ (seeds in [2⁶¹, 2⁶²) are reserved for
shards). The data seed is the run's own: every shard samples the
same posterior. Each shard is an ordinary run, so its config hash is that of an
unsharded run with its own seed and chain count (sampler.shards and [launch] are not
hashed), and it checkpoints and resumes bit-identically like any run.

The merged report (R̂ across all K·C chains, one summary, one set of figures) is
`experiments.reporting.report.write_report(OUT)`; its step-size-bias check continues the chains
of shard 0 (a subset of the chains of the same posterior).
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Callable

from experiments.rundirs import rundir
from experiments.rundirs.run_draws import q_group
from experiments.setup import config as cfg
from experiments.setup import launch_keys
from langevin.export import SHARDS_MANIFEST, open_samples

SHARD_SEED_BASE = 2**61


def shard_seed(seed: int, index: int, count: int) -> int:
    """Sampler seed of shard `index` of `count`: 2⁶¹ + (seed·2¹⁶ + count)·2¹⁶ + index."""
    if not 0 <= seed < launch_keys.MAX_SHARDED_SEED:
        raise ValueError(f"seed {seed} outside [0, {launch_keys.MAX_SHARDED_SEED})")
    if not 0 <= index < count <= launch_keys.MAX_SHARDS:
        raise ValueError(f"shard index {index} of {count} shards is out of range")
    return SHARD_SEED_BASE + (((seed << 16) + count) << 16) + index


def shard_chains(num_chains: int, count: int) -> list[int]:
    """C_k = ⌊C/K⌋ + [k < C mod K] for k = 0..K−1."""
    return [num_chains // count + (k < num_chains % count) for k in range(count)]


def shard_dir_name(index: int) -> str:
    return f"shard-{index}"


def is_sharded_dir(path: Path) -> bool:
    return (Path(path) / SHARDS_MANIFEST).is_file()


def shard_config(config: dict, index: int) -> dict:
    """The ordinary run config of shard `index` of a sharded run's config."""
    count = config["sampler"]["shards"]
    out = copy.deepcopy(config)
    out["sampler"]["shards"] = 1
    out["sampler"]["seed"] = shard_seed(config["sampler"]["seed"], index, count)
    out["sampler"]["num_chains"] = shard_chains(config["sampler"]["num_chains"], count)[index]
    return out


def create_shards(run_dir: Path, config: dict) -> list[Path]:
    """Write shard-k/ (config, data, meta) and the manifest into the run directory
    `run_dir`, which already holds the run's config.toml, data.npz and meta.json."""
    run_dir = Path(run_dir)
    count = config["sampler"]["shards"]
    parent_meta = rundir.read_json(run_dir / rundir.META_FILE)
    members = []
    for index in range(count):
        shard = shard_config(config, index)
        directory = rundir.create_run_dir(run_dir / shard_dir_name(index))
        rundir.write_text_atomic(directory / rundir.CONFIG_FILE, cfg.dumps_toml(shard))
        shutil.copyfile(run_dir / rundir.DATA_FILE, directory / rundir.DATA_FILE)
        meta = copy.deepcopy(parent_meta)
        meta.update(sampler_seed=shard["sampler"]["seed"], config_hash=cfg.config_hash(shard),
                    shard={"index": index, "of": count, "run_seed": config["sampler"]["seed"]})
        rundir.write_json_atomic(directory / rundir.META_FILE, meta)
        members.append({"dir": directory.name, "seed": shard["sampler"]["seed"],
                        "num_chains": shard["sampler"]["num_chains"]})
    manifest = {"shards": count, "seed": config["sampler"]["seed"],
                "num_chains": config["sampler"]["num_chains"], "members": members,
                "stores": [f"{m['dir']}/{rundir.SAMPLES_DIR}" for m in members]}
    rundir.write_json_atomic(run_dir / SHARDS_MANIFEST, manifest)
    return [run_dir / m["dir"] for m in members]


def shard_dirs(run_dir: Path) -> list[Path]:
    manifest = rundir.read_json(Path(run_dir) / SHARDS_MANIFEST)
    return [Path(run_dir) / member["dir"] for member in manifest["members"]]


def is_completed(run_dir: Path) -> bool:
    meta_path = Path(run_dir) / rundir.META_FILE
    return meta_path.is_file() and rundir.read_json(meta_path).get("status") == "completed"


def update_status(run_dir: Path) -> str:
    """Set the sharded run's meta status from its shards': completed when all are."""
    statuses = [rundir.read_json(d / rundir.META_FILE).get("status", "created")
                for d in shard_dirs(run_dir)]
    done = sum(s == "completed" for s in statuses)
    failed = [s for s in statuses if s.startswith("failed")]
    status = ("completed" if done == len(statuses) else failed[0] if failed
              else f"partial: {done}/{len(statuses)} shards completed")
    meta_path = Path(run_dir) / rundir.META_FILE
    meta = rundir.read_json(meta_path)
    meta["status"] = status
    rundir.write_json_atomic(meta_path, meta)
    return status


def execute_inline(run_dir: Path, execute: Callable, name: str,
                   write_report: Callable[[Path], Path]) -> int:
    """Sample the unfinished shards one after the other in this process, then report
    (`write_report`: experiments.reporting.report.write_report, passed in so that this module stays
    below the report in the import graph)."""
    for directory in shard_dirs(run_dir):
        if is_completed(directory):
            continue
        code = execute(directory, rundir.load_config(directory), name, report=False)
        if code != 0:
            update_status(run_dir)
            return code
    return finish(run_dir, write_report)


def finish(run_dir: Path, write_report: Callable[[Path], Path]) -> int:
    """After the shards: the sharded run's status and, when all completed, its report."""
    status = update_status(run_dir)
    if status != "completed":
        print(f"{run_dir}: {status}")
        return 1
    write_report(run_dir)
    print(f"run directory: {run_dir} ({len(shard_dirs(run_dir))} shards)")
    return 0


def open_merged(run_dir: Path, group: str = ""):
    """The merged posterior of the shards' stores (`langevin.export.merge_chains`)."""
    return open_samples(Path(run_dir), group=group or None)


def report_inputs(run_dir: Path) -> dict:
    """What `experiments.reporting.report` needs, for the merged posterior of a sharded run:
    config and meta of the run, the (loaded) merged draws, q draws, and the directory
    (shard 0) whose checkpoint the step-size-bias check continues."""
    run_dir = Path(run_dir)
    first = shard_dirs(run_dir)[0]
    config = rundir.load_config(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    first_meta = rundir.read_json(first / rundir.META_FILE)
    meta["convention"] = first_meta["convention"]
    ds = open_merged(run_dir).load()
    if ds.sizes.get("draw", 0) == 0:
        empty = [d.name for d in shard_dirs(run_dir) if not (d / rundir.SAMPLES_DIR).exists()]
        raise ValueError(f"{str(run_dir)!r}: a shard has no stored draws yet "
                         f"({', '.join(empty) or 'see langevin status'}); nothing to report")
    group = q_group(config)
    q = None
    try:
        grouped = open_merged(run_dir, group)
        if "q" in grouped and grouped.sizes.get("draw", 0) > 0:
            q = grouped["q"].load()
    except (FileNotFoundError, KeyError, OSError):
        q = None
    return {"config": config, "meta": meta, "ds": ds, "q": q, "bias_dir": first,
            "bias_config": rundir.load_config(first)}
