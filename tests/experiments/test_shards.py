"""Sharded chains: sampler.shards = 2 samples two run directories whose merged posterior
(open_samples, to_arviz, the report) is the concatenation of the shards' chains, with
R-hat across all of them; a shard killed mid-run is resumed alone to the same draws."""
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from experiments import cli, presets
from experiments.launch import records, status
from experiments.rundirs import shards
from experiments.setup.config import ConfigError, config_hash, resolve
from langevin import diagnostics
from langevin.export import open_samples, to_arviz
from tests.experiments.launch_helpers import FAST, assert_same_draws, set_args, wait_for

SHARDED = [*FAST, "sampler.num_steps=4000", "sampler.shards=2", "sampler.seed=3"]


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded") / "run"
    assert cli.main(["run", "smoke", *set_args(SHARDED), "--out", str(out)]) == 0
    return out


def test_merged_posterior_is_the_concatenation_of_the_shards(sharded_run):
    parts = [xr.open_zarr(sharded_run / f"shard-{k}" / "samples.zarr", consolidated=False).load()
             for k in range(2)]
    merged = open_samples(sharded_run).load()
    assert merged.sizes["chain"] == 4 and merged.attrs["shards"] == 2
    np.testing.assert_array_equal(merged["shard"].values, [0, 0, 1, 1])
    np.testing.assert_array_equal(merged["chain"].values, np.arange(4))
    for name in parts[0].data_vars:
        np.testing.assert_array_equal(
            merged[name].values, np.concatenate([p[name].values for p in parts], axis=0))
    # the shards are different chains: different seeds, different draws
    assert not np.array_equal(parts[0]["train_loss"].values, parts[1]["train_loss"].values)
    posterior = to_arviz(merged).posterior
    assert posterior.sizes["chain"] == 4
    # one summary over all 4 chains: R-hat across the shards
    summary = json.loads((sharded_run / "summary.json").read_text())
    assert summary["run"]["num_chains"] == 4 and summary["run"]["shards"] == 2
    values = merged["train_loss"].transpose("chain", "draw").values
    expected = float(diagnostics.rank_normalized_split_rhat(values))
    assert summary["diagnostics"]["train_loss"]["r_hat"] == pytest.approx(expected, rel=1e-12)
    assert (sharded_run / "figures").is_dir() and any((sharded_run / "figures").iterdir())


def test_shard_configs_differ_from_the_run_only_by_seed_and_chains(sharded_run):
    config, _ = resolve([presets.get_preset("smoke").overrides], SHARDED)
    seeds = [shards.shard_seed(3, k, 2) for k in range(2)]
    assert json.loads((sharded_run / "shards.json").read_text())["members"] == [
        {"dir": f"shard-{k}", "seed": seeds[k], "num_chains": 2} for k in range(2)]
    for k in range(2):
        ordinary, _ = resolve([presets.get_preset("smoke").overrides],
                              [*SHARDED, "sampler.shards=1", f"sampler.seed={seeds[k]}",
                               "sampler.num_chains=2"])
        assert config_hash(shards.shard_config(config, k)) == config_hash(ordinary)
        meta = json.loads((sharded_run / f"shard-{k}" / "meta.json").read_text())
        assert meta["config_hash"] == config_hash(ordinary)
    # the seed map is injective over (seed, shards, index), above every seed < 2**61 and
    # within the valid seeds [0, 2**62), also at its largest arguments
    derived = {shards.shard_seed(s, k, n) for s in range(4) for n in range(1, 5) for k in range(n)}
    assert len(derived) == sum(range(1, 5)) * 4 and min(derived) >= 2**61
    assert shards.shard_seed(2**29 - 1, 2**16 - 2, 2**16 - 1) < 2**62
    assert shards.shard_chains(7, 3) == [3, 2, 2]


def test_more_shards_than_chains_is_refused():
    with pytest.raises(ConfigError, match="sampler.shards"):
        resolve([presets.get_preset("smoke").overrides], ["sampler.shards=5"])


def test_a_killed_shard_is_resumed_alone_to_the_same_draws(tmp_path, sharded_run):
    out = tmp_path / "killed"
    process = subprocess.Popen(  # the same run, in a process killed during shard 1
        [sys.executable, "-m", "experiments.cli", "run", "smoke", *set_args(SHARDED),
         "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (records.checkpoint_progress(out / "shard-1") or (0,))[0] >= 300,
                 "shard 1 sampling")
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    rows = {r.label: r.state for r in status.collect(out)}
    assert rows == {"shard-0": "done", "shard-1": "interrupted"}
    segments_before = json.loads((out / "shard-0" / "meta.json").read_text())["segments"]
    assert cli.main(["resume", str(out)]) == 0
    assert json.loads((out / "shard-0" / "meta.json").read_text())["segments"] == segments_before
    assert json.loads((out / "meta.json").read_text())["status"] == "completed"
    assert_same_draws(open_samples(sharded_run), open_samples(out))
