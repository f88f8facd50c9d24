"""Replica exchange through the config and the command line (experiments.tempering_*)."""
import hashlib
import json

import numpy as np
import pytest
import torch
import xarray as xr

from experiments.cli import main
from experiments.reporting.tempering_report import hysteresis_table, rung_traces
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data
from experiments.setup.tempering_config import TEMPERING_KEYS


def test_the_new_keys_leave_the_hash_of_existing_configs_unchanged():
    for overrides in ({}, {"sampler": {"integrator": "baoab", "friction": 2.0}},
                      {"model": {"width": 8}}):
        config, _ = cfg.resolve([overrides])
        without = {s: dict(v) for s, v in config.items()}
        for key in TEMPERING_KEYS:
            del without["sampler"][key]
        hashed = {s: {k: v for k, v in vals.items() if cfg._hashed(s, k, config)}
                  for s, vals in without.items()}
        hashed = {s: vals for s, vals in hashed.items() if vals}
        legacy = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
        assert cfg.config_hash(config) == legacy
    tempered, _ = cfg.resolve([{"sampler": {"tempering": "noise_variance", "num_chains": 16,
                                            "ladder": [0.1, 0.2]}}])
    assert cfg.config_hash(tempered) != cfg.config_hash(cfg.resolve([{"sampler": {
        "num_chains": 16}}])[0])


@pytest.mark.parametrize("settings, key", [
    ({"tempering": "noise_variance", "ladder": [0.2, 0.1]}, "sampler.ladder"),
    ({"tempering": "noise_variance", "ladder": [0.1]}, "sampler.ladder"),
    ({"tempering": "noise_variance"}, "sampler.ladder_min"),
    ({"tempering": "noise_variance", "ladder": [0.1, 0.2], "ladder_rungs": 3}, "sampler.ladder"),
    ({"tempering": "noise_variance", "ladder": [0.1, 0.2, 0.3]}, "sampler.num_chains"),
    ({"tempering": "temperature", "ladder_min": 0.1, "ladder_max": 0.05, "ladder_rungs": 2},
     "sampler.ladder_min"),
    ({"ladder": [0.1, 0.2]}, "sampler.ladder"),
    ({"swap_every": 5}, "sampler.swap_every"),
    ({"tempering": "annealing"}, "sampler.tempering"),
])
def test_bad_tempering_settings_name_the_key(settings, key):
    with pytest.raises(cfg.ConfigError, match=key.replace(".", r"\.")):
        cfg.resolve([{"sampler": settings}])


def test_init_q_puts_every_neuron_at_the_requested_teacher_overlap():
    config, _ = cfg.resolve([{"sampler": {"init_q": 1.0, "num_chains": 3},
                              "model": {"width": 5}, "data": {"d": 4}}])
    data = make_data(config)
    theta = build_run(config, data).initial_theta
    q = theta["w"] @ torch.as_tensor(data.teacher_direction, dtype=theta["w"].dtype)
    torch.testing.assert_close(q.abs(), torch.ones_like(q))
    assert (q > 0).any() and (q < 0).any()


def test_rung_traces_invert_the_stored_replica_permutation():
    replica = np.array([[0, 1], [1, 0], [2, 3], [3, 2]])  # (slot, draw), C = 1... R = 4
    np.testing.assert_array_equal(rung_traces(replica, 1), [[0, 1], [1, 0], [2, 3], [3, 2]])
    replica = np.array([[0, 2], [1, 1], [2, 0], [3, 3]])  # C = 2: slots (0,0),(0,1),(1,0),(1,1)
    np.testing.assert_array_equal(rung_traces(replica, 2), [[0, 1], [0, 0], [1, 0], [1, 1]])


def test_tempered_smoke_run_stores_draws_by_rung_and_records_the_ladder(tmp_path):
    run_dir = tmp_path / "run"
    args = ["run", "smoke", "--out", str(run_dir), "--set", "sampler.progress=false",
            "--set", "sampler.tempering=noise_variance", "--set", "sampler.ladder=[0.08, 0.1, 0.13]",
            "--set", "sampler.num_chains=6", "--set", "sampler.swap_every=5",
            "--set", "sampler.num_steps=600", "--set", "sampler.burn_in=400",
            "--set", "sampler.checkpoint_every=250"]
    assert main(args) == 0
    meta = json.loads((run_dir / "meta.json").read_text())
    tempering = meta["tempering"]
    assert tempering["ladder_frozen"] and len(tempering["ladder"]) == 3
    assert tempering["ladder"][0] == 0.08 and tempering["ladder"][-1] == 0.13
    assert sum(tempering["swap_attempts"]) == 2 * 600 // 5  # one pair per round, 2 systems
    ds = xr.open_zarr(run_dir / "samples.zarr", consolidated=False)
    np.testing.assert_array_equal(ds["rung_noise_variance"].values[:, 0],
                                  np.repeat(tempering["ladder"], 2))
    assert ds["replica"].dims == ("chain", "draw")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [row["sigma2"] for row in summary["table"]] == tempering["ladder"]
    assert len(summary["rungs"]) == 3 and "acceptance_rate" in summary["tempering"]
    assert summary["rungs"][0]["thermometer"]["w"]["target_temperature"] == 1.0
    assert (run_dir / "figures" / "rung_traces.png").is_file()
    # The report is rebuilt from the run directory alone.
    assert main(["report", str(run_dir)]) == 0
    # A plain run started on the feature-learning side, beside the nearest rung.
    plain_dir = tmp_path / "plain"
    assert main(["run", "smoke", "--out", str(plain_dir), "--set", "sampler.progress=false",
                 "--set", "sampler.init_q=1.0", "--set", "sampler.num_steps=200",
                 "--set", "sampler.burn_in=100", "--set", "diagnostics.bias_check=off"]) == 0
    (row,) = hysteresis_table(run_dir, [plain_dir])
    assert row["init_q"] == 1.0 and row["sigma2"] == pytest.approx(0.1)
    assert row["tempered_sigma2"] == tempering["ladder"][1]  # the nearest (adapted) rung
    assert 0.0 <= row["well_mass"] <= 1.0 and 0.0 <= row["tempered_well_mass"] <= 1.0
