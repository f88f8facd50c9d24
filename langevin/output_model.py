"""A network with a registry likelihood, an output scale α and optional centring at the
initialization: the classification form of the potential's data term.

    f_c(x) = α f̃_c(x)                      (center_at_init False)
    f_c(x) = α [f̃_c(x) − f̃_{θ⁰_c}(x)]      (center_at_init True; θ⁰_c chain c's start)
    L_c    = α⁻² Σ_μ ℓ(f_c(x_μ), y_μ)

with f̃ the network's own output and ℓ a loss of `langevin.likelihoods.LIKELIHOODS`; the
potential is then U = L + Σ_l (γ_l/2)|θ_l|² (langevin.potential.make_potential).

This is Eq. (8) of Geiger, Petrini & Wyart (Phys. Rep. 924, 2021) with their rescaled loss
L̃ = L/α²: dividing by α² makes gradient flow move the outputs on a time scale that does
not depend on α at large α (the lazy limit is then a well-defined kernel dynamics), so
one step size serves a sweep over α. It changes neither the zero-loss set of the hinge
losses (L = 0 iff every margin α y_μ f̃_μ ≥ 1 however L is scaled) nor the minimizers of
L at T = 0 without weight decay; at T > 0 it is part of the target: exp(−U/T) with
U = α⁻² Σ ℓ + prior. For the Gaussian loss, ½α⁻²(αf̃ − y)² is a Gaussian observation of
f = αf̃ with noise variance α²T. Centring makes f ≡ 0 at the start of every chain, so the
output scale sets the size of the change of f, not of a random initial function.

The reference θ⁰ is given at construction (the chains' initial parameters); f̃_{θ⁰}(x)
is recomputed (without gradient) on each call, for the training and any other inputs.
Gradients: one batched autograd pass through `predict`
(`langevin.likelihoods.loss_and_parameter_gradient`), so every architecture works,
including the fused two-layer network (whose analytic backward is for ½Σ(f − y)² only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from langevin.likelihoods import Likelihood, get_likelihood, loss_and_parameter_gradient

Tensor = torch.Tensor
Theta = dict[str, Tensor]


def scaled_likelihood(likelihood: Likelihood, output_scale: float) -> Likelihood:
    """ℓ ↦ α⁻² ℓ: loss and ∂/∂f both divided by α²."""
    factor = 1.0 / (output_scale * output_scale)

    def loss_and_output_gradient(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        loss, gradient = likelihood.loss_and_output_gradient(f, y)
        return factor * loss, factor * gradient

    return Likelihood(loss_and_output_gradient, likelihood.binary_labels,
                      f"{likelihood.description}, divided by alpha^2")


@dataclass(frozen=True)
class OutputModel:
    """`model` with likelihood `likelihood_name`, output scale α and, when
    `reference_theta` is given, outputs centred at it (module docstring). Satisfies
    `langevin.models.Model`; the prior, shapes and pre-activations are the base model's."""

    model: Any
    likelihood_name: str = "gaussian"
    output_scale: float = 1.0
    reference_theta: Mapping[str, Tensor] | None = None

    def __post_init__(self) -> None:
        get_likelihood(self.likelihood_name)
        if not (math.isfinite(self.output_scale) and self.output_scale > 0):
            raise ValueError(f"output_scale must be finite and positive, got {self.output_scale!r}")

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.model.layer_names

    @property
    def prior_variances(self) -> Mapping[str, float]:
        return self.model.prior_variances

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.model.parameter_shapes()

    def fan_ins(self) -> dict[str, int]:
        return self.model.fan_ins()

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Theta:
        return self.model.sample_prior(num_chains, generator, dtype, device)

    def preactivations(self, theta: Theta, x: Tensor) -> list[Tensor]:
        return self.model.preactivations(theta, x)

    def hidden_units(self) -> int:
        return self.model.hidden_units()

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        """f = α f̃(θ, x), or α [f̃(θ, x) − f̃(θ⁰, x)]; shape (C, n)."""
        raw = self.model.predict(theta, x)
        if self.reference_theta is not None:
            with torch.no_grad():
                initial = self.model.predict(dict(self.reference_theta), x)
            raw = raw - initial
        return self.output_scale * raw

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        """(L_c, ∂L_c/∂θ_c), L = α⁻² Σ_μ ℓ(f_μ, y_μ), by one batched autograd pass."""
        likelihood = scaled_likelihood(get_likelihood(self.likelihood_name), self.output_scale)
        return loss_and_parameter_gradient(likelihood, self.predict, theta, x, y)
