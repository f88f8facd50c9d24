"""experiments.compare.theory_inputs: the one translation of a run into the theory solvers'
`theory.network_prior.NetworkPrior` (χ-scaled numerators and χ, read from meta.json's convention)."""
import dataclasses

import pytest

from experiments import presets
from experiments.compare.theory_inputs import is_two_layer, network_prior, two_layer_inputs
from experiments.setup import config as cfg
from theory.network_prior import NetworkPrior


def _mean_field_run():
    config, _ = cfg.resolve([presets.get_preset("gfl_single_index").overrides], [])
    width, chi = config["model"]["width"], 128.0
    # What a mean-field run records (meta.json "convention"): σ̃² = χ σ².
    meta = {"convention": {"chi": chi, "sigma_w2": 1.0, "sigma_a2": 2.0, "noise_variance_tilde": 0.5 * chi,
                           "noise_variance": 0.5}}
    return config, meta, width, chi


def test_a_two_layer_run_becomes_one_record():
    config, meta, width, chi = _mean_field_run()
    d = config["data"]["d"]
    assert is_two_layer(config)
    prior = network_prior(config, meta, d)
    assert isinstance(prior, NetworkPrior)
    assert (prior.architecture, prior.widths, prior.weight_variances, prior.bias_variance) == ("fc", (width,), (1.0,), 0.0)
    assert (prior.readout_variance_tilde, prior.noise_variance_tilde, prior.chi) == (2.0, 0.5 * chi, chi)
    assert prior.readout_variance == 2.0 / chi and prior.noise_variance == pytest.approx(0.5, rel=1e-15)
    inputs = two_layer_inputs(config, meta, n_train=config["data"]["n_train"], input_dim=d)
    assert inputs.prior == prior and inputs.width == width and isinstance(inputs.width, int)
    assert inputs.gp_sigma_a2 == prior.readout_variance and inputs.noise_variance == prior.noise_variance
    # Runs stored before σ̃² was recorded: σ̃² = σ² χ.
    old = {"convention": {k: v for k, v in meta["convention"].items() if k != "noise_variance_tilde"}}
    assert network_prior(config, old, d).noise_variance_tilde == pytest.approx(0.5 * chi, rel=1e-15)


def test_the_landau_problem_rescales_the_numerators_by_y1_squared():
    config, meta, _, _ = _mean_field_run()
    inputs = two_layer_inputs(config, meta, n_train=config["data"]["n_train"], input_dim=config["data"]["d"])
    target = (0.0, 2.0, 0.0, 1.0)  # y = 2 He_1 + He_3: y_1 = 2, ε = 1/2
    prior, epsilon, y1 = inputs._replace(hermite_coefficients=target).landau_problem()
    assert (epsilon, y1) == (0.5, 2.0)
    assert prior == dataclasses.replace(inputs.prior, readout_variance_tilde=2.0 / 4,
                                        noise_variance_tilde=inputs.prior.noise_variance_tilde / 4)
    assert inputs._replace(hermite_coefficients=(0.0, 1.0)).landau_problem() is None
