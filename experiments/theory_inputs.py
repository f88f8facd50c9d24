"""Translation of a run's convention into the plain numbers the `theory` package takes.

The one place where a run's config/meta (χ-scaled Bayesian view, unnormalized Hermite
coefficients) becomes theory inputs:

    readout variance numerator of the NNGP:  σ_a² = σ̃_a²/χ   (a ~ N(0, σ̃_a²/(χN)))
    GP / likelihood noise:                   σ² = σ̃²/χ = T     (loss ½ SSE)
    input weights:                           w ~ N(0, σ_w²/d · I)
    target:  y = Σ_k c_k He_k(w*·x) = Σ_k (c_k √k!) Ĥe_k(w*·x)
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class TwoLayerTheoryInputs(NamedTuple):
    activation: str
    input_dim: int
    width: int
    chi: float
    sigma_w2: float  # w ~ N(0, sigma_w2/d)
    sigma_a2_tilde: float  # σ̃_a² of the χ convention
    gp_sigma_a2: float  # σ̃_a²/χ: the readout numerator of the NNGP kernel
    noise_variance: float  # σ² = σ̃²/χ = T
    n_train: int
    hermite_coefficients: tuple[float, ...]  # c_k on He_k (unnormalized)

    @property
    def normalized_hermite_coefficients(self) -> np.ndarray:
        """c_k √k!: the coefficients on Ĥe_k = He_k/√k!."""
        return np.array([c * math.sqrt(math.factorial(k))
                         for k, c in enumerate(self.hermite_coefficients)])


def two_layer_inputs(config: dict, meta: dict, n_train: int, input_dim: int) -> TwoLayerTheoryInputs:
    convention = meta["convention"]
    coefficients = tuple(config["data"]["hermite_coefficients"]) \
        if config["data"]["source"] == "single_index" else ()
    return TwoLayerTheoryInputs(
        activation=config["model"]["activation"], input_dim=int(input_dim),
        width=int(config["model"]["width"]), chi=float(convention["chi"]),
        sigma_w2=float(convention["sigma_w2"]), sigma_a2_tilde=float(convention["sigma_a2"]),
        gp_sigma_a2=float(convention["sigma_a2"]) / float(convention["chi"]),
        noise_variance=float(convention["noise_variance"]), n_train=int(n_train),
        hermite_coefficients=coefficients,
    )
