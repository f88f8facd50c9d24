"""The local kernel renormalization of a shallow CNN/LCN beside a run
(experiments.compare.proportional_cnn_comparison, Aiudi et al., arXiv 2307.11807).

Fast: the conversion of the run's convention onto the theory's blocks (the one-patch network is
the fc scalar theory on the same data; Q = I gives the registry's CNN-GP), the readout estimator
(prior draws give Q̂ = I), the section on draws from the predicted posterior, a tiny run end to
end with its printed table, and the sweep table/figure.
"""
import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

from experiments import presets
from experiments.cli import execute, start_run
from experiments.compare.proportional_cnn_comparison import (applies, compare_proportional_cnn,
                                                     draw_test_errors, sampled_order_parameters,
                                                     table_columns, theory_blocks,
                                                     theory_predictions)
from experiments.reporting.summary_table import theory_table
from experiments.setup.architectures import get_entry
from theory.network_prior import NetworkPrior
from experiments.setup.digits import digits_data
from langevin import observables as obs
from langevin.integrators import LangevinState
from langevin.models.conv import LocalPatchNetwork, patch_prior_variances
from theory.gaussian_process import gp_posterior
from theory.kernels import two_layer_gram
from theory.proportional_cnn import cnn_prediction
from theory.proportional_one_layer import renormalized_prediction, solve_one_layer


def _prior(**changes):
    values = dict(architecture="cnn", activation="erf", input_dim=64, widths=(),
                  weight_variances=(1.5,), readout_variance_tilde=2.0, bias_variance=0.0,
                  chi=1.0, noise_variance_tilde=0.1, geometry=((8, 8), (4, 4), (4, 4)))
    values.update(changes)
    return NetworkPrior(**values)


def _digits(n_train=24):
    return digits_data(classes=(3, 8), n_train=n_train, seed=2)


def test_the_section_applies_to_standard_bias_free_odd_non_overlapping_patch_networks():
    assert applies(_prior()) and applies(_prior(architecture="lcn", activation="linear"))
    assert not applies(_prior(architecture="fc", geometry=None, widths=(16,)))
    assert not applies(_prior(activation="relu"))
    assert not applies(_prior(chi=64.0))
    assert not applies(_prior(bias_variance=0.1))
    assert not applies(_prior(geometry=((8, 8), (4, 4), (2, 2))))  # overlapping patches


def test_blocks_at_q_identity_are_the_registry_cnn_gp():
    # K_R(Q = I) = (1/M) Σ_p K_pp must be the prior covariance of the sampled network, i.e. the
    # registry's NNGP of the architecture (σ̃_a²/χ)(1/M)Σ_p κ_pp, on train, test-train, test diagonal.
    prior, data = _prior(), _digits()
    B, B_test, B_diag = theory_blocks(prior, data)
    idx = np.arange(B.shape[0])
    gram, diag = get_entry("cnn").nngp(prior)
    np.testing.assert_allclose(B[idx, idx].mean(0), gram(data.x_train, None), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(B_test[idx, idx].mean(0), gram(data.x_test, data.x_train), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(B_diag[idx, idx].mean(0), diag(data.x_test), rtol=1e-12)
    # and the Q = I prediction (infinite channels) is the CNN-GP posterior
    gp = gp_posterior(gram(data.x_train, None), gram(data.x_test, data.x_train), diag(data.x_test),
                      data.y_train, prior.noise_variance)
    at_identity = cnn_prediction(np.eye(4), B, B_test, B_diag, data.y_train,
                                 noise_variance=prior.noise_variance)
    np.testing.assert_allclose(at_identity.mean_test, gp.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(at_identity.variance_test, gp.variance, rtol=1e-9, atol=1e-12)


def test_one_patch_network_is_the_fc_scalar_theory_on_the_same_run():
    # One patch covering the 64 pixels: f = Σ_c a_c φ(w_c·x), a ~ N(0, σ̃_a²/N_c), w ~ N(0, σ_w²/64):
    # the fc network of width N_c. Its local Q (1x1) and predictions must be the fc scalar solver's.
    prior = _prior(geometry=((64,), (64,), (64,)), noise_variance_tilde=0.05)
    data, channels = _digits(), 8
    out = theory_predictions(prior, channels, data)
    K = two_layer_gram(data.x_train, None, "erf", 2.0, sigma_w2=1.5)
    K0 = two_layer_gram(data.x_test, data.x_train, "erf", 2.0, sigma_w2=1.5)
    k00 = np.diag(two_layer_gram(data.x_test, None, "erf", 2.0, sigma_w2=1.5))
    fc = solve_one_layer(K, data.y_train, width=channels, noise_variance=0.05)
    assert out["local"]["converged"] and fc.converged
    assert out["local"]["order_parameters"][0, 0] == pytest.approx(fc.order_parameter, rel=1e-6)
    assert out["global_rescaling"]["order_parameter"] == pytest.approx(fc.order_parameter, rel=1e-9)
    q = fc.order_parameter
    expected = renormalized_prediction(q * K, q * K0, q * k00, data.y_train, noise_variance=0.05,
                                       y_test=data.y_test)
    np.testing.assert_allclose(out["renormalized"]["test_mean"], expected.mean_test, rtol=1e-5, atol=1e-8)
    assert out["renormalized"]["test_error"] == pytest.approx(expected.test_error, rel=1e-6)
    bound = out["global_rescaling_bound"]
    assert bound["test_error"] <= min(expected.test_error, out["nngp"]["test_error"]) + 1e-12


def test_readout_estimator_gives_the_identity_on_prior_draws():
    # Prior draws (independent): E[Σ_c a_pc a_qc] = σ̃_a²/(χM) δ_pq, so Q̂ = I within 4 MCSE.
    M, K, sa2 = 4, 6, 2.0
    model = LocalPatchNetwork((8, 8), 4, 4, K, "erf", patch_prior_variances(16, M, K, 1.0, sa2),
                              shared=True)
    theta = model.sample_prior(4000, torch.Generator().manual_seed(5), torch.float64, "cpu")
    state = LangevinState(theta=theta, gradient={}, loss=None, potential=None)
    gram = obs.readout_patch_gram().fn(state)["readout_patch_gram"].numpy()
    assert gram.shape == (4000, M, M)
    Q, mcse = sampled_order_parameters(gram.reshape(40, 100, M, M), _prior(readout_variance_tilde=sa2))
    assert np.all(np.abs(Q - np.eye(M)) < 4 * mcse)
    assert np.all(mcse < 0.05)


def _sampled_dataset(prior, channels, data, seed=0):
    theory = theory_predictions(prior, channels, data)
    rng = np.random.default_rng(seed)
    mean, var = theory["renormalized"]["test_mean"], theory["renormalized"]["test_variance"]
    f = mean + np.sqrt(var) * rng.standard_normal((16, 100, len(mean)))
    Q = theory["local"]["order_parameters"]
    M = len(Q)
    # readout Gram draws with mean σ̃_a² Q/(χM)
    gram = (prior.readout_variance_tilde / M) * (Q + 0.05 * rng.standard_normal((16, 100, M, M)))
    gram = 0.5 * (gram + gram.transpose(0, 1, 3, 2))
    ds = xr.Dataset({"f_test": (("chain", "draw", "test_point"), f),
                     "readout_patch_gram": (("chain", "draw", "patch", "patch_other"), gram)})
    return theory, ds


@pytest.mark.parametrize("architecture", ["cnn", "lcn"])
def test_section_on_draws_from_the_predicted_posterior(architecture):
    prior, data = _prior(architecture=architecture), _digits()
    theory, ds = _sampled_dataset(prior, 4, data)
    out = compare_proportional_cnn(prior, 4, data, ds)["proportional_cnn"]
    order = out["order_parameters"]
    assert order["converged"] and order["form"] == architecture and order["alpha"] == 24 / 4
    Q = np.array(order["theory"])
    if architecture == "lcn":
        assert np.all(Q[~np.eye(4, dtype=bool)] == 0.0)
    for name, entry in order["entries"].items():
        assert abs(entry["sampled"] - entry["theory"]) < 4 * entry["mcse"], name
    error = out["test_error"]
    assert abs(error["sampled"] - error["theory"]) < 4 * error["mcse"] + 1e-3 * error["theory"]
    assert error["global_rescaling_bound"] <= min(error["nngp"], error["global_rescaling"]) + 1e-12
    rows = theory_table({"proportional_cnn": out})
    assert "proportional_cnn.test_error" in rows and "global_rescaling_bound" in rows
    assert "proportional_cnn.order_parameters.entries.Q[0,1]" in rows
    assert compare_proportional_cnn(_prior(activation="relu"), 4, data, ds) == {}


def test_a_tiny_cnn_run_reports_the_section_and_the_sweep_table_and_figure(tmp_path):
    settings = ["model.architecture=cnn", "model.channels=2", "data.digits_n_train=16",
                "sampler.num_chains=2", "sampler.num_steps=100", "sampler.burn_in=0",
                "sampler.thin=10", "sampler.progress=false", "diagnostics.bias_check=off"]
    overrides = presets.get_preset("proportional_cnn").overrides
    run_dir, config = start_run("proportional_cnn", [overrides], settings, tmp_path / "run")
    assert execute(run_dir, config, "proportional_cnn") == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    section = summary["theory"]["proportional_cnn"]
    assert np.array(section["order_parameters"]["sampled"]).shape == (4, 4)
    row = table_columns(summary)
    assert row["alpha"] == 8.0 and math.isfinite(row["err_global_bound"]) and "Q00_sampled" in row
    table = [{"model.architecture": "cnn", **row},
             {"model.architecture": "fc", "err_sampled": 0.2, "err_mcse": 0.01,
              "err_theory": 0.21, "err_nngp": 0.22}]
    draw_test_errors("proportional_cnn", "model.architecture", table, tmp_path / "figures")
    assert (tmp_path / "figures" / "proportional_cnn_test_error.png").stat().st_size > 0


def test_fc_section_has_the_global_rescaling_bound():
    # The fc net's own bound (min over q of the test error with kernel qK) sits in its section,
    # at or below its Q̄ prediction and the NNGP (q = Q̄ and q = 1 are candidates of the minimum).
    from experiments.compare.proportional_comparison import compare_proportional

    data = _digits()
    prior = _prior(architecture="fc", geometry=None, widths=(16,), noise_variance_tilde=0.05)
    f = np.zeros((4, 50, len(data.y_test))) + np.random.default_rng(1).standard_normal((4, 50, 1))
    ds = xr.Dataset({"f_test": (("chain", "draw", "test_point"), f)})
    error = compare_proportional(prior, data, ds)["proportional"]["test_error"]
    assert error["global_rescaling_bound"] <= min(error["theory"], error["nngp"]) + 1e-12
