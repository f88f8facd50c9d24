"""Exact converters between the Bayesian and the training statement of a posterior.

The one convention of the package (docs/conventions.md):

    U(θ) = L(θ) + Σ_l (γ_l/2)|θ_l|²,   L = ½ Σ_μ (f(x_μ) − y_μ)²   ("half_sse"),
    dθ = −∇U dt + √(2T) dW,   stationary law p(θ) ∝ exp(−U(θ)/T).

Reading exp(−U/T) as prior × likelihood:

    prior variance of every weight of layer l:  v_l = T/γ_l      (so γ_l = T·fan_in/σ_l²
                                                                   for v_l = σ_l²/fan_in)
    observation-noise variance:                 σ² = T            with L = ½ SSE,
                                                σ² = T/2          with L = SSE ("sse",
                                                                   PyTorch MSELoss(sum),
                                                                   the Ringel-group codes).

The sampler always uses L = ½ SSE. The "sse" option exists only to translate runs
stated in the other convention (e.g. AdaptiveGPs: T = 2σ², wd = ½T·fan_in).

Mean-field factor χ (docs/conventions.md): readout prior variance σ̃_a²/(χN) and noise variance
σ̃²/χ; χ = 1 is standard scaling, χ = N mean-field scaling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

# T = factor · σ²: L = ½ SSE gives σ² = T; L = SSE gives σ² = T/2.
_TEMPERATURE_PER_NOISE_VARIANCE = {"half_sse": 1.0, "sse": 2.0}


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


def _check_loss(loss: str) -> float:
    if loss not in _TEMPERATURE_PER_NOISE_VARIANCE:
        raise ValueError(
            f"loss must be one of {sorted(_TEMPERATURE_PER_NOISE_VARIANCE)}, got {loss!r}"
        )
    return _TEMPERATURE_PER_NOISE_VARIANCE[loss]


def temperature_from_noise_variance(noise_variance: float, loss: str = "half_sse") -> float:
    """T = σ² for L = ½ SSE, T = 2σ² for L = SSE."""
    return _check_loss(loss) * _check_positive("noise_variance", noise_variance)


def noise_variance_from_temperature(temperature: float, loss: str = "half_sse") -> float:
    """σ² = T for L = ½ SSE, σ² = T/2 for L = SSE."""
    return _check_positive("temperature", temperature) / _check_loss(loss)


def weight_decay_from_prior_variance(prior_variance: float, temperature: float) -> float:
    """γ_l = T / v_l, with v_l the prior variance of one weight of layer l."""
    return _check_positive("temperature", temperature) / _check_positive(
        "prior_variance", prior_variance
    )


def prior_variance_from_weight_decay(weight_decay: float, temperature: float) -> float:
    """v_l = T / γ_l."""
    return _check_positive("temperature", temperature) / _check_positive(
        "weight_decay", weight_decay
    )


@dataclass(frozen=True)
class BayesianSpec:
    """Posterior stated as prior variance per weight of each layer and noise variance σ²."""

    prior_variances: Mapping[str, float]
    noise_variance: float


@dataclass(frozen=True)
class TrainingSpec:
    """Posterior stated as a Langevin temperature T and a weight decay γ_l per layer."""

    temperature: float
    weight_decays: Mapping[str, float]


def bayes_to_training(spec: BayesianSpec, loss: str = "half_sse") -> TrainingSpec:
    """T from σ² (T = σ² for ½ SSE), then γ_l = T / v_l for every layer."""
    temperature = temperature_from_noise_variance(spec.noise_variance, loss)
    decays = {
        layer: weight_decay_from_prior_variance(variance, temperature)
        for layer, variance in spec.prior_variances.items()
    }
    return TrainingSpec(temperature=temperature, weight_decays=decays)


def training_to_bayes(spec: TrainingSpec, loss: str = "half_sse") -> BayesianSpec:
    """v_l = T / γ_l for every layer and σ² = T (½ SSE) or T/2 (SSE)."""
    variances = {
        layer: prior_variance_from_weight_decay(decay, spec.temperature)
        for layer, decay in spec.weight_decays.items()
    }
    return BayesianSpec(
        prior_variances=variances,
        noise_variance=noise_variance_from_temperature(spec.temperature, loss),
    )


def two_layer_prior_variances(
    input_dim: int, width: int, sigma_w2: float, sigma_a2: float, chi: float
) -> dict[str, float]:
    """Per-weight prior variances of f(x) = Σ_c a_c φ(w_c·x).

    w_c ~ N(0, σ_w²/d · I_d) and a_c ~ N(0, σ̃_a²/(χ N)) (docs/conventions.md table).
    """
    if int(input_dim) < 1:
        raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
    if int(width) < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    return {
        "w": _check_positive("sigma_w2", sigma_w2) / int(input_dim),
        "a": _check_positive("sigma_a2", sigma_a2) / (_check_positive("chi", chi) * int(width)),
    }


def scaled_noise_variance(noise_variance_tilde: float, chi: float) -> float:
    """Likelihood variance σ² = σ̃²/χ of the χ-scaled convention."""
    return _check_positive("noise_variance", noise_variance_tilde) / _check_positive("chi", chi)


def unscaled_noise_variance(noise_variance: float, chi: float) -> float:
    """Inverse of `scaled_noise_variance`: σ̃² = χ σ² (the config's posterior.noise_variance)."""
    return _check_positive("noise_variance", noise_variance) * _check_positive("chi", chi)


def chi_for_scaling(scaling: str, width: int) -> float:
    """χ = 1 for "standard", χ = width for "mean_field"."""
    if scaling == "standard":
        return 1.0
    if scaling == "mean_field":
        return float(width)
    raise ValueError(f"scaling must be 'standard' or 'mean_field', got {scaling!r}")


# Prior rule of one layer (docs/conventions.md): the variance of one weight is
#   "weight":  σ_l²/fan_in            (hidden and input layers)
#   "readout": σ̃_a²/(χ · fan_in)      (the last layer; χ = 1 standard, χ = N mean field)
#   "bias":    σ_b²                   (no fan-in)
# These two functions are the one place where χ enters the prior.
LAYER_ROLES = ("weight", "readout", "bias")


def _check_role(role: str) -> None:
    if role not in LAYER_ROLES:
        raise ValueError(f"layer role must be one of {LAYER_ROLES}, got {role!r}")


def layer_prior_variance(role: str, numerator: float, fan_in: int, chi: float) -> float:
    """Variance of one weight: σ²/fan_in, σ̃_a²/(χ fan_in) or σ_b² (see LAYER_ROLES)."""
    _check_role(role)
    numerator = _check_positive("prior variance numerator", numerator)
    if role == "bias":
        return numerator
    if int(fan_in) < 1:
        raise ValueError(f"fan_in must be a positive integer, got {fan_in!r}")
    scale = _check_positive("chi", chi) if role == "readout" else 1.0
    return numerator / (scale * int(fan_in))


def layer_prior_numerator(role: str, prior_variance: float, fan_in: int, chi: float) -> float:
    """Inverse of `layer_prior_variance`: σ² = v·fan_in, σ̃_a² = v·χ·fan_in, σ_b² = v."""
    _check_role(role)
    prior_variance = _check_positive("prior_variance", prior_variance)
    if role == "bias":
        return prior_variance
    scale = _check_positive("chi", chi) if role == "readout" else 1.0
    return prior_variance * scale * int(fan_in)
