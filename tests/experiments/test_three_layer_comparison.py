"""The three-layer adaptive-kernel equations of state beside a run
(experiments.compare.three_layer_comparison, Seroussi, Naveh & Ringel 2023, `AdaptiveGPs` notebook).

Fast: where the section applies; the hidden-kernel observable on prior draws is the GP's K1 = Q1;
the section on synthetic draws (estimators, both signs, GP); both signs reduce to the GP at
infinite width; a tiny run end to end.

Slow (the sign flag): a sampled 3-layer network at the adaptive_three_layer size against both
log-det signs (see the comment above the test).
"""
import json

import numpy as np
import pytest
import torch
import xarray as xr

from experiments import presets
from experiments.cli import execute, start_run
from experiments.compare.three_layer_comparison import (applies, compare_three_layer, solve_both_signs,
                                                table_columns, width_path)
from experiments.reporting.summary_table import theory_table
from theory.network_prior import NetworkPrior
from experiments.setup.data import single_index_data
from langevin import observables as obs
from langevin.integrators import LangevinState
from langevin.models.fc import FullyConnectedNetwork
from theory.three_layer_adaptive import three_layer_gp


def _prior(**changes):
    values = dict(architecture="fc", activation="erf", input_dim=4, widths=(12, 12),
                  weight_variances=(2.0, 2.0), readout_variance_tilde=1.0, bias_variance=0.0,
                  chi=1.0, noise_variance_tilde=0.05)
    values.update(changes)
    return NetworkPrior(**values)


def _data():
    return single_index_data(4, 12, 8, [0.0, 1.0, 0.0, -0.3], seed=4)


def test_the_section_applies_to_two_hidden_erf_layers_without_bias():
    assert applies(_prior()) and applies(_prior(widths=(12, 8)))
    assert not applies(_prior(widths=(12,), weight_variances=(2.0,)))
    assert not applies(_prior(activation="tanh"))
    assert not applies(_prior(bias_variance=0.5))
    assert width_path((16, 16))[0] == 1e4 and width_path((16, 16))[-1] == pytest.approx(16.0)


def test_hidden_kernel_observable_on_prior_draws_is_the_gp_kernel():
    # Prior draws: E[(1/N2) h hᵀ] = σ_2² κ_erf(σ_1² XXᵀ/d) = K1 of the GP solution, exactly at any
    # width (W independent of the first layer); within 4 MCSE over independent draws.
    data = _data()
    gp = three_layer_gp(data.x_train, data.y_train, input_variance=2.0, hidden_variance=2.0,
                        readout_variance=1.0, noise_variance=0.05)
    model = FullyConnectedNetwork(4, (12, 12), "erf", {"w": 2.0 / 4, "w2": 2.0 / 12, "a": 1.0 / 12})
    theta = model.sample_prior(8000, torch.Generator().manual_seed(3), torch.float64, "cpu")
    state = LangevinState(theta=theta, potential=None, loss=None, gradient={})
    observable = obs.hidden_preactivation_kernel(model.preactivations,
                                                 torch.as_tensor(data.x_train))
    K = observable.fn(state)["hidden_kernel"].numpy()
    assert observable.dims == {"hidden_kernel": ("train_point", "train_point_other")}
    draws = K.reshape(80, 100, 12, 12)
    mean = draws.mean(axis=(0, 1))
    error = draws.std(axis=(0, 1)) / np.sqrt(8000)  # independent draws
    assert np.all(np.abs(mean - gp.hidden_kernel) < 4 * error + 1e-12)


def _synthetic(prior, data, name="theory", seed=0):
    solutions = solve_both_signs(prior, data)
    s = solutions[name]
    rng = np.random.default_rng(seed)
    w = data.teacher_direction
    parallel = float(w @ s.covariance @ w)
    perp = (float(np.trace(s.covariance)) - parallel) / 3
    noise = rng.standard_normal((2, 8, 200))
    K = s.hidden_kernel + 0.02 * rng.standard_normal((8, 200, 12, 12))
    K = 0.5 * (K + K.transpose(0, 1, 3, 2))
    ds = xr.Dataset({
        "w_second_moment_parallel": (("chain", "draw"), parallel * (1 + 0.02 * noise[0])),
        "w_second_moment_perp": (("chain", "draw"), perp * (1 + 0.02 * noise[1])),
        "hidden_kernel": (("chain", "draw", "train_point", "train_point_other"), K)})
    return solutions, ds


def test_section_on_synthetic_draws_of_the_derived_sign():
    prior, data = _prior(widths=(100, 100)), _data()  # a short continuation path (seconds)
    solutions, ds = _synthetic(prior, data)
    out = compare_three_layer(prior, data, ds)["three_layer"]
    assert all(s["converged"] for s in out["solutions"].values())
    assert out["solutions"]["theory"]["logdet_sign"] == -1
    keys = ["sigma_parallel", "sigma_perp", "hidden_kernel_target", "hidden_kernel_trace"]
    entries = [out[k] for k in keys] + list(out["hidden_kernel_eigenvalues"].values())
    for entry in entries:
        assert abs(entry["sampled"] - entry["theory"]) < 4 * entry["mcse"] + 1e-3 * abs(entry["theory"])
    top = np.linalg.eigvalsh(solutions["theory"].hidden_kernel)[::-1][:3]
    assert [out["hidden_kernel_eigenvalues"][k]["theory"] for k in "123"] == pytest.approx(top)
    assert out["sigma_perp"]["gp"] == pytest.approx(2.0 / 4)
    # the two signs are different equations: at this width they must give different Σ
    assert abs(out["sigma_perp"]["theory"] - out["sigma_perp"]["theory_notebook_sign"]) > 1e-4
    assert "three_layer.sigma_perp" in theory_table({"three_layer": out})
    row = table_columns({"theory": {"three_layer": out}})
    assert row["C1"] == 100 and "K1_eig1_plus" in row and "sigma_perp_gp" in row
    assert compare_three_layer(_prior(activation="tanh"), data, ds) == {}
    assert compare_three_layer(prior, data, ds.drop_vars("hidden_kernel")) == {}  # opt-in


def test_both_signs_reduce_to_the_gp_at_infinite_width():
    prior, data = _prior(widths=(1e9, 1e9)), _data()
    solutions = solve_both_signs(prior, data)
    for name in ("theory", "theory_notebook_sign"):
        np.testing.assert_allclose(solutions[name].covariance, solutions["gp"].covariance, atol=1e-7)
        np.testing.assert_allclose(solutions[name].hidden_kernel, solutions["gp"].hidden_kernel,
                                   atol=1e-7)


def test_a_tiny_three_layer_run_has_the_section(tmp_path):
    settings = ["sampler.num_chains=2", "sampler.num_steps=100", "sampler.burn_in=0",
                "sampler.thin=10", "sampler.progress=false", "diagnostics.bias_check=off",
                "model.widths=[100, 100]", "data.n_train=8", "data.n_test=8", "data.d=4"]
    overrides = presets.get_preset("adaptive_three_layer").overrides
    run_dir, config = start_run("adaptive_three_layer", [overrides], settings, tmp_path / "run")
    assert execute(run_dir, config, "adaptive_three_layer") == 0
    section = json.loads((run_dir / "summary.json").read_text())["theory"]["three_layer"]
    assert section["widths"] == [100, 100]
    assert {"sigma_parallel", "sigma_perp", "hidden_kernel_trace"} <= set(section)
    assert len(section["hidden_kernel_eigenvalues"]) == 3


# --- slow: the sign flag against sampled networks ----------------------------------------------
# The adaptive_three_layer size (d = 8, n = 32, C1 = C2 = 16, σ_1² = σ_2² = 2, σ̃_a² = 1, T = 0.05,
# He1 − 0.3 He3), 16 chains, 5000 + 20000 steps at step_size 0.002. The sign s multiplies the
# log-det (Occam) term of the K1 equation only; the data term acts along the target. So the
# quantities that tell the signs apart are those across the target: Σ_perp (the first-layer weight
# variance orthogonal to w*) and Tr K1/n (the bulk of the hidden kernel). There the theory gives
# (×d for Σ_perp) 1.78 (s = −1) against 2.06 (s = +1), GP 2; Tr K1/n 1.032 against 1.147, GP 1.035.
# Tolerance per sign s and quantity X: |X_sampled − X_s| < 4 MCSE + allowance_s,
#   allowance_s = ε_s² |X_GP| + δ_T |X_s|,   ε_s = (X_s − X_GP)/X_GP,
# (i) ε_s² |X_GP|: the equations of state are the first order of the 1/C expansion around the GP
#     (X_s − X_GP = O(1/C)); the neglected second order is O(ε²) relative, its coefficient taken as 1
#     (an assumption, stated here);
# (ii) δ_T = |T_virial − T|/T + 4 MCSE/T of the layer that carries X (w for Σ, w2 for K1), measured
#     in the same run: the virial temperature equals T exactly at equilibrium of the exact dynamics,
#     so its deviation bounds the run's combined step-size and burn-in error on second moments.
# The derived sign must pass and the notebook's must fail, on both quantities. Along the target
# (not asserted) both signs under-predict: the data term dominates there and the first-order
# closure misses part of the feature learning (short trial: Σ_par 0.404 ± 0.010 against 0.370
# (s = −1) / 0.401 (s = +1); yᵀK1y/yᵀy 10.9 ± 0.2 against 9.13 / 9.34, GP 4.77).
# Run once (7 min on 2 busy cores): passed. Σ_perp 0.2174 ± 0.0012 against 0.2219 (s = −1, within
# 4 MCSE + allowance 0.012 with δ_T = 3.2 %) and 0.2575 (s = +1, off by 0.040 > 0.013); Tr K1/n
# 1.036 ± 0.005 against 1.032 (s = −1) and 1.147 (s = +1, off by 0.110 > 0.036).
SIGN_RUN = ["sampler.num_chains=16", "sampler.num_steps=20000", "sampler.burn_in=5000",
            "sampler.thin=100", "sampler.progress=false", "diagnostics.bias_check=off"]


@pytest.mark.slow
def test_sampled_three_layer_network_selects_the_derived_logdet_sign(tmp_path):
    overrides = presets.get_preset("adaptive_three_layer").overrides
    run_dir, config = start_run("adaptive_three_layer", [overrides], SIGN_RUN, tmp_path / "run")
    assert execute(run_dir, config, "adaptive_three_layer") == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    section = summary["theory"]["three_layer"]
    assert all(s["converged"] for s in section["solutions"].values())
    thermometer = summary["thermometer"]
    T = summary["convention"]["temperature"]
    for quantity, layer in (("sigma_perp", "w"), ("hidden_kernel_trace", "w2")):
        entry = section[quantity]
        t = thermometer[layer]
        delta_T = (abs(t["mean"] - T) + 4 * t["mcse"]) / T
        verdict = {}
        for sign in ("theory", "theory_notebook_sign"):
            epsilon = (entry[sign] - entry["gp"]) / entry["gp"]
            allowance = epsilon ** 2 * abs(entry["gp"]) + delta_T * abs(entry[sign])
            verdict[sign] = abs(entry["sampled"] - entry[sign]) < 4 * entry["mcse"] + allowance
        print(quantity, entry, "delta_T", delta_T, verdict)
        assert verdict == {"theory": True, "theory_notebook_sign": False}, (quantity, entry, delta_T)
