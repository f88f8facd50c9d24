"""Converters between the Bayesian and the training statement of the posterior."""
import math

import pytest

from langevin import convention as cv


def test_round_trip_bayes_training_bayes():
    spec = cv.BayesianSpec({"w": 0.3, "a": 0.02}, noise_variance=0.07)
    for loss in ("half_sse", "sse"):
        back = cv.training_to_bayes(cv.bayes_to_training(spec, loss), loss)
        assert back.noise_variance == pytest.approx(spec.noise_variance, rel=1e-15)
        for layer in spec.prior_variances:
            assert back.prior_variances[layer] == pytest.approx(spec.prior_variances[layer], rel=1e-15)


def test_round_trip_training_bayes_training():
    spec = cv.TrainingSpec(0.004, {"w": 12.0, "a": 3.5})
    back = cv.bayes_to_training(cv.training_to_bayes(spec))
    assert back.temperature == pytest.approx(spec.temperature, rel=1e-15)
    assert back.weight_decays == pytest.approx(spec.weight_decays, rel=1e-15)


def test_fan_in_prior_gives_gamma_equal_T_fan_in_over_sigma2():
    # docs/conventions.md: to get σ_l²/fan_in set γ_l = T·fan_in/σ_l².
    d, width, sigma_w2, sigma_a2, chi, noise = 150, 700, 0.5, 8.0, 700.0, 0.3
    variances = cv.two_layer_prior_variances(d, width, sigma_w2, sigma_a2, chi)
    T = cv.temperature_from_noise_variance(cv.scaled_noise_variance(noise, chi))
    spec = cv.bayes_to_training(cv.BayesianSpec(variances, cv.scaled_noise_variance(noise, chi)))
    assert spec.temperature == pytest.approx(noise / chi)
    assert spec.weight_decays["w"] == pytest.approx(T * d / sigma_w2)
    assert spec.weight_decays["a"] == pytest.approx(T * chi * width / sigma_a2)


def test_sse_convention_of_the_ringel_group_code():
    # AdaptiveGPs: SSE loss, temperature = 2σ², wd = ½ T fan_in ⇒ prior variance 2/fan_in.
    sigma2, fan_in = 1e-3, 64
    T = cv.temperature_from_noise_variance(sigma2, loss="sse")
    assert T == pytest.approx(2e-3)
    assert cv.prior_variance_from_weight_decay(0.5 * T * fan_in, T) == pytest.approx(2 / fan_in)
    assert cv.noise_variance_from_temperature(T, loss="sse") == pytest.approx(sigma2)


def test_chi_for_scaling():
    assert cv.chi_for_scaling("standard", 64) == 1.0
    assert cv.chi_for_scaling("mean_field", 64) == 64.0
    with pytest.raises(ValueError, match="scaling"):
        cv.chi_for_scaling("ntk", 64)


@pytest.mark.parametrize("bad", [-1.0, 0.0, math.inf, math.nan])
def test_invalid_values_are_named(bad):
    with pytest.raises(ValueError, match="temperature"):
        cv.noise_variance_from_temperature(bad)
    with pytest.raises(ValueError, match="noise_variance"):
        cv.temperature_from_noise_variance(bad)
    with pytest.raises(ValueError, match="weight_decay"):
        cv.prior_variance_from_weight_decay(bad, 1.0)
    with pytest.raises(ValueError, match="loss"):
        cv.temperature_from_noise_variance(1.0, loss="mse")


@pytest.mark.parametrize("chi", [1.0, 37.0])
def test_layer_prior_rule_matches_the_two_layer_rule_and_inverts(chi):
    d, width, sigma_w2, sigma_a2 = 7, 37, 1.3, 0.6
    two_layer = cv.two_layer_prior_variances(d, width, sigma_w2, sigma_a2, chi)
    assert cv.layer_prior_variance("weight", sigma_w2, d, chi) == two_layer["w"]
    assert cv.layer_prior_variance("readout", sigma_a2, width, chi) == two_layer["a"]
    assert cv.layer_prior_variance("bias", 0.2, 1, chi) == 0.2
    for role, numerator, fan_in in (("weight", sigma_w2, d), ("readout", sigma_a2, width),
                                    ("bias", 0.2, 1)):
        variance = cv.layer_prior_variance(role, numerator, fan_in, chi)
        assert cv.layer_prior_numerator(role, variance, fan_in, chi) == pytest.approx(numerator,
                                                                                     rel=1e-14)
    with pytest.raises(ValueError, match="role"):
        cv.layer_prior_variance("conv", 1.0, 3, 1.0)


@pytest.mark.parametrize("chi", [1.0, 64.0])
def test_noise_variance_scaling_inverts(chi):
    """σ² = σ̃²/χ and back: the config's noise variance is the χ-scaled one."""
    assert cv.scaled_noise_variance(3.0, chi) == 3.0 / chi
    assert cv.unscaled_noise_variance(cv.scaled_noise_variance(3.0, chi), chi) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="chi"):
        cv.unscaled_noise_variance(1.0, 0.0)
