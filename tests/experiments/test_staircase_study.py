"""The sampled staircase study (experiments.staircase_study): parameters, the L_3 estimator, the P* crossing and
its uncertainty, and a tiny end-to-end study that is reused on a second call."""
import json
import math

import numpy as np
import pytest

from experiments import presets, studies
from experiments import staircase_study as study
from experiments.cli import main
from experiments.compare import staircase as compare
from experiments.rundirs import rundir
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data


@pytest.mark.parametrize("key, value", [
    ("dims", [4, 4]), ("dims", []), ("epsilon", 0.1), ("epsilon", True), ("noise_variance", -1.0),
    ("num_chains", 1), ("width_per_dim", 2.5), ("samples_factors", [2.0, 1.0]), ("width_factors", [1]),
    ("fraction", 1.5), ("num_steps", 10), ("data_seed_checks", [1]), ("aligned_start_q", -1.0), ("no_such_key", 3),
    ("finite_data_draws", 0),
])
def test_bad_parameters_name_key_and_value(key, value):
    with pytest.raises(ValueError) as info:
        study.check_parameters({key: value})
    assert repr(key) in str(info.value) and repr(value) in str(info.value)


def test_defaults_are_valid_and_merged():
    params = study.check_parameters({"dims": [8, 4]})
    assert params["dims"] == [4, 8] and params["epsilon"] == study.DEFAULTS["epsilon"]


def test_learnability_estimator_on_draws_with_known_chain_means():
    """Each chain's draws are its mean ± an alternating offset, so the per-chain means are exact: L_k = mean of
    the chain means / (1 + 3ε, 6ε), MCSE = their standard deviation / √C."""
    eps, num_chains, num_draws = -0.1, 5, 40
    chain_l3 = np.array([0.61, 0.64, 0.60, 0.66, 0.63])
    chain_l1 = np.array([0.99, 1.00, 1.01, 0.98, 1.02])
    wiggle = np.where(np.arange(num_draws) % 2 == 0, 0.05, -0.05)
    projection = np.stack([(chain_l1[:, None] + wiggle) * (1 + 3 * eps),
                           (chain_l3[:, None] + wiggle) * 6 * eps], axis=-1)
    out = compare.sampled_learnabilities(projection, eps)
    assert out["L3"] == pytest.approx(chain_l3.mean(), rel=1e-12)
    assert out["L1"] == pytest.approx(chain_l1.mean(), rel=1e-12)
    assert out["L3_mcse"] == pytest.approx(chain_l3.std(ddof=1) / math.sqrt(num_chains), rel=1e-12)
    assert out["L1_mcse"] == pytest.approx(chain_l1.std(ddof=1) / math.sqrt(num_chains), rel=1e-12)
    with pytest.raises(ValueError, match="shape"):
        compare.sampled_learnabilities(projection[:1], eps)


def test_crossing_and_its_uncertainty_on_a_synthetic_curve():
    """L(P) = α + β log P is linear in log P, so the interpolated P* is exact; its standard error matches the spread
    of P* over independent Gaussian perturbations of the two bracketing values."""
    alpha, beta = 0.2, 0.12
    grid = np.array([50.0, 100.0, 200.0, 400.0])
    curve = alpha + beta * np.log(grid)
    sigma = np.array([0.004, 0.003, 0.005, 0.002])
    out = compare.threshold_crossing(grid, curve, sigma, 0.9)
    exact = math.exp((0.9 - alpha) / beta)
    assert out["status"] == "crossed" and out["samples"] == pytest.approx(exact, rel=1e-12)
    assert out["bracket"] == [200.0, 400.0]
    rng = np.random.default_rng(0)
    draws = [compare.threshold_crossing(grid, curve + sigma * rng.standard_normal(4), sigma, 0.9)["samples"]
             for _ in range(4000)]
    spread = np.std(draws, ddof=1)
    # the spread's own standard error is ≈ spread/√(2·4000) = 1.1 %; the linearization adds O(σ/slope) ≈ 1 %
    assert out["se"] == pytest.approx(spread, rel=0.06)
    assert compare.threshold_crossing(grid, curve - 1.0, sigma)["status"] == "below"
    assert compare.threshold_crossing(grid, curve + 1.0, sigma)["status"] == "above"


def test_hermite_projections_refused_for_other_networks():
    config, _ = cfg.resolve([{"model": {"activation": "relu"}, "data": {"d": 4, "n_train": 8, "n_test": 4},
                              "observables": {"hermite_projections": True}}], [])
    with pytest.raises(ValueError, match="observables.hermite_projections"):
        build_run(config, make_data(config))


TINY = {"dims": [3], "samples_factors": [0.5, 1.0], "width_factors": [2], "data_seed_checks": [], "aligned_start_q": 0.0,
        "num_chains": 2, "burn_in": 100, "num_steps": 200, "thin": 10, "gp_dims": [3, 4], "adaptive_dims": [3, 4],
        "finite_data_draws": 1000}


def _set_args(params: dict) -> list[str]:
    return [a for key, value in params.items() for a in ("--set", f"{key}={json.dumps(value)}")]


def test_staircase_is_a_registered_study():
    assert studies.STUDIES["staircase"].module is study
    assert "staircase" not in presets.PRESETS


def test_tiny_study_writes_summary_and_figures_and_reuses_its_runs(tmp_path, monkeypatch):
    """`langevin run staircase`, then `langevin resume` (every run finished: nothing is sampled) and `langevin report`
    (rebuilt from the stored runs)."""
    out = tmp_path / "study"
    assert main(["run", "staircase", *_set_args(TINY), "--out", str(out)]) == 0
    table = rundir.read_json(out / rundir.SUMMARY_FILE)
    json.dumps(table, allow_nan=False)
    assert [pt["check"] for pt in table["points"]] == ["grid", "grid", "width"]
    for pt in table["points"]:
        assert 0 < pt["L3"]["mcse"] and pt["L3"]["adaptive"] > pt["L3"]["gp"]
        assert 0 < pt["L3"]["landau"] < 1
        assert 0 < pt["L3"]["finite_data_vga"] < 1.5 and 0 < pt["L3"]["finite_data_vga_se"]
        assert 0 < pt["L3"]["finite_data_gp"] < 1.5 and 0 < pt["L3"]["finite_data_gp_se"]
    assert [t["d"] for t in table["thresholds"]] == [3]
    assert table["fits"]["gp"]["dims"] == [3, 4] and table["fits"]["adaptive"]["dims"] == [3, 4]
    for name in ("staircase.png", "staircase_learnability.png"):
        assert (out / rundir.FIGURES_DIR / name).stat().st_size > 0

    def refuse(*_args, **_kwargs):
        raise AssertionError("a finished run was sampled again")

    monkeypatch.setattr(study, "execute", refuse)
    monkeypatch.setattr(study, "start_run", refuse)
    assert main(["resume", str(out)]) == 0
    again = rundir.read_json(out / rundir.SUMMARY_FILE)
    assert [pt["L3"]["sampled"] for pt in again["points"]] == [pt["L3"]["sampled"] for pt in table["points"]]
    (out / rundir.SUMMARY_FILE).unlink()
    assert main(["report", str(out)]) == 0
    assert rundir.read_json(out / rundir.SUMMARY_FILE)["points"] == again["points"]
    with pytest.raises(ValueError, match="different configuration"):
        study.run_study(out, {**TINY, "num_steps": 300})


def test_hermite_projections_key_at_its_default_leaves_the_config_hash_unchanged():
    config, _ = cfg.resolve([{}], [])
    before = {s: {k: v for k, v in values.items() if (s, k) != ("observables", "hermite_projections")}
              for s, values in config.items()}
    assert cfg.config_hash(config) == cfg.config_hash(before)
    recorded, _ = cfg.resolve([{}], ["observables.hermite_projections=true"])
    assert cfg.config_hash(recorded) != cfg.config_hash(config)
