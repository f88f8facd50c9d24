"""Translation of a run's convention into the plain numbers the `theory` package takes.

The one place where a run's config/meta (χ-scaled Bayesian view, unnormalized Hermite
coefficients) becomes theory inputs:

    readout variance numerator of the NNGP:  σ_a² = σ̃_a²/χ   (a ~ N(0, σ̃_a²/(χN)))
    GP / likelihood noise:                   σ² = σ̃²/χ = T     (loss ½ SSE)
    input weights:                           w ~ N(0, σ_w²/d · I)
    target:  y = Σ_k c_k He_k(w*·x) = Σ_k (c_k √k!) Ĥe_k(w*·x)

Every theory solver takes the network as one `theory.network_prior.NetworkPrior` (the χ-scaled
numerators σ̃_a², σ̃² and χ; the record forms σ̃_a²/χ and σ̃²/χ itself), built here only:
`network_prior` for any architecture, `TwoLayerTheoryInputs.network_prior` for the two-layer
theories; data-side numbers (n, the target's Hermite coefficients, ε) stay beside it. A scan
varies the record with `dataclasses.replace`. The grokking paper's σ_a² and σ² are the physical
σ̃_a²/χ and σ̃²/χ (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1).

Cubic teacher with y_1 ≠ 1 [DERIVED]: the Landau action depends on (u, b, c) only through
u (b − 2c h)², and (I + κ⟨M⟩)τ = y is linear in (τ, y) at fixed ⟨M⟩. So y = y_1 (He_1 + ε He_3)
with ε = y_3/y_1 is the y_1 = 1 problem at u → u y_1², κ unchanged, i.e. σ̃_a² → σ̃_a²/y_1²
and σ̃² → σ̃²/y_1² (u ∝ σ̃_a²/σ̃⁴, κ ∝ σ̃_a²/σ̃²), with (b, c) = y_1 (b′, c′): p(q) and the
learnabilities 1 − b′, 1 − c′/ε are those of the rescaled problem (`landau_problem`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from experiments.setup.architectures import canonical_name, fc_widths, get_entry
from experiments.setup.data import target_hermite_coefficients
from langevin.convention import unscaled_noise_variance
from theory.network_prior import NetworkPrior, check_two_layer


class TwoLayerTheoryInputs(NamedTuple):
    """A two-layer run for the theory side: its network record and the data-side numbers.

    prior: fc, one hidden layer, no bias (`network_prior`); n_train: n; hermite_coefficients: c_k
    on He_k (unnormalized) of a single-index target, () otherwise. The named properties below
    read the record (σ_a² = σ̃_a²/χ and σ² = σ̃²/χ are the record's own).
    """

    prior: NetworkPrior
    n_train: int
    hermite_coefficients: tuple[float, ...]  # c_k on He_k (unnormalized)

    @property
    def activation(self) -> str:
        return self.prior.activation

    @property
    def input_dim(self) -> int:
        return self.prior.input_dim

    @property
    def width(self):
        """N as the run states it (an int for a run)."""
        return self.prior.widths[0]

    @property
    def chi(self) -> float:
        return self.prior.chi

    @property
    def sigma_w2(self) -> float:
        """σ_w²: w ~ N(0, σ_w²/d)."""
        return self.prior.input_variance

    @property
    def gp_sigma_a2(self) -> float:
        """σ̃_a²/χ: the readout numerator of the NNGP kernel."""
        return self.prior.readout_variance

    @property
    def noise_variance(self) -> float:
        """σ² = σ̃²/χ = T."""
        return self.prior.noise_variance

    @property
    def noise_variance_tilde(self) -> float:
        """σ̃²: the χ-scaled noise numerator."""
        return self.prior.noise_variance_tilde

    @property
    def normalized_hermite_coefficients(self) -> np.ndarray:
        """c_k √k!: the coefficients on Ĥe_k = He_k/√k!."""
        return np.array([c * math.sqrt(math.factorial(k))
                         for k, c in enumerate(self.hermite_coefficients)])

    def coefficient(self, degree: int) -> float:
        """c_k on He_k (0 beyond the stored coefficients)."""
        c = self.hermite_coefficients
        return float(c[degree]) if degree < len(c) else 0.0

    @property
    def linear_cubic_target(self) -> tuple[float, float] | None:
        """(y_1, y_3) when y = y_1 He_1 + y_3 He_3 exactly (the single-index GFL target), else None."""
        c = self.hermite_coefficients
        others = [v for k, v in enumerate(c) if k not in (1, 3) and v != 0.0]
        if not c or others or (self.coefficient(1) == 0.0 and self.coefficient(3) == 0.0):
            return None
        return self.coefficient(1), self.coefficient(3)

    def landau_problem(self) -> tuple[NetworkPrior, float, float] | None:
        """(prior, ε, y_1) for y = y_1(He_1 + ε He_3), both y_k ≠ 0, else None.

        The prior (σ̃_a², σ̃² divided by y_1²) and ε = y_3/y_1 describe the y_1 = 1 problem of the
        module docstring; multiply its (b, c) by y_1. The number of samples is `n_train`.
        """
        target = self.linear_cubic_target
        if target is None or target[0] == 0.0 or target[1] == 0.0:
            return None
        y1, y3 = target
        prior = dataclasses.replace(self.prior, readout_variance_tilde=self.prior.readout_variance_tilde / (y1 * y1),
                                    noise_variance_tilde=self.prior.noise_variance_tilde / (y1 * y1))
        return prior, y3 / y1, y1


def network_prior(config: dict, meta: dict, input_dim: int) -> NetworkPrior:
    """The run's prior and likelihood for the theory side (NNGP kernels of any registered
    architecture), read from meta.json's convention (so a report uses the physics the run
    was sampled with). Runs stored before per-layer variances existed have one number
    sigma_w2 and no sigma_b2: σ_l² = sigma_w2 for every hidden layer, no biases."""
    convention = meta["convention"]
    architecture = canonical_name(config["model"]["architecture"])
    entry = get_entry(architecture)
    priors = entry.layer_priors(config, input_dim)
    num_hidden = sum(1 for p in priors if p.role == "weight")
    sigma_w2 = convention["sigma_w2"]
    sigma_w2 = tuple(float(v) for v in sigma_w2) if isinstance(sigma_w2, list) \
        else (float(sigma_w2),) * num_hidden
    widths = fc_widths(config) if architecture == "fc" else ()
    return NetworkPrior(
        architecture=architecture, activation=config["model"]["activation"],
        input_dim=int(input_dim), widths=widths, weight_variances=sigma_w2,
        readout_variance_tilde=float(convention["sigma_a2"]),
        bias_variance=float(convention.get("sigma_b2") or 0.0), chi=float(convention["chi"]),
        noise_variance_tilde=_noise_variance_tilde(convention),
        geometry=entry.geometry(config, input_dim))


def _noise_variance_tilde(convention: dict) -> float:
    """σ̃² from meta.json's convention (σ² χ for runs stored before it was recorded)."""
    if "noise_variance_tilde" in convention:
        return float(convention["noise_variance_tilde"])
    return unscaled_noise_variance(float(convention["noise_variance"]), float(convention["chi"]))


def is_two_layer(config: dict) -> bool:
    """One hidden fc layer without biases: the network of the two-layer theories
    (single-index spectra, GFL, Landau), which take `TwoLayerTheoryInputs`."""
    return (canonical_name(config["model"]["architecture"]) == "fc"
            and len(fc_widths(config)) == 1 and not config["model"]["bias"])


def two_layer_inputs(config: dict, meta: dict, n_train: int, input_dim: int) -> TwoLayerTheoryInputs:
    """The run's `network_prior` with n and the target's Hermite coefficients (one hidden fc
    layer without biases: `is_two_layer`)."""
    coefficients = target_hermite_coefficients(config["data"]) \
        if config["data"]["source"] == "single_index" else ()
    prior = network_prior(config, meta, input_dim)
    check_two_layer(prior, positive_noise=False)
    return TwoLayerTheoryInputs(prior=prior, n_train=int(n_train), hermite_coefficients=tuple(coefficients))
