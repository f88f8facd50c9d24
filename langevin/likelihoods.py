"""Likelihoods on the network outputs: the data term L of the potential, batched over chains.

Convention (the project's one): U(θ) = L(f_θ) + Σ_l (γ_l/2)|θ_l|², stationary law
p(θ) ∝ exp(−U/T), prior variance T/γ_l per weight of layer l. Every entry below maps the
outputs f of shape (C, n) (chains on the leading axis) and the labels y of shape (n,) to

    loss (C,)        L_c = Σ_μ ℓ(f_{cμ}, y_μ)
    gradient (C, n)  ∂L_c/∂f_{cμ} = ∂ℓ/∂f (f_{cμ}, y_μ)

and chains never interact (row c of both depends on row c of f only). What exp(−L/T)
means at a temperature T depends on the loss:

- ``gaussian`` (the default; the potential's built-in likelihood):
      L = ½ Σ_μ (f_μ − y_μ)².
  exp(−L/T) = Π_μ N(y_μ; f_μ, T) up to a constant: a Gaussian observation model with
  noise variance σ² = T (it would be T/2 with a plain sum of squares).
- ``logistic`` (Bernoulli with labels y = ±1; the cross-entropy of Allen-Zhu & Li,
  arXiv:2005.10190 Eq. (3), and of Geiger et al. Eq. (4)):
      L = Σ_μ log(1 + e^{−y_μ f_μ}) = Σ_μ softplus(−y_μ f_μ),   ∂L/∂f_μ = −y_μ s(−y_μ f_μ),
  s the logistic sigmoid. exp(−L/T) = Π_μ s(y_μ f_μ)^{1/T}. At T = 1 this is exactly the
  Bernoulli likelihood p(y = ±1 | f) = s(±f), and the stationary law is the Bayesian
  posterior of logistic regression/classification with prior variances 1/γ_l. At T ≠ 1 it
  is a tempered (Gibbs) posterior: the likelihood raised to the power β = 1/T, as if every
  training point were observed 1/T times (T < 1 "cold", T > 1 "warm"), with the prior
  variance T/γ_l still set by γ_l. It is NOT a Bernoulli model with rescaled logits:
  s(f)^β + s(−f)^β ≠ 1 for β ≠ 1, so exp(−ℓ/T) is not a normalized label distribution.
  T → 0 at fixed γ_l is gradient flow on L + Σ_l (γ_l/2)|θ_l|² (MAP / training).
- ``hinge`` (linear hinge, γ = 1 of Geiger, Petrini & Wyart, Phys. Rep. 2021, Eq. (4)):
      L = Σ_μ max(0, Δ_μ),   Δ_μ = 1 − y_μ f_μ,   ∂L/∂f_μ = −y_μ 1[Δ_μ > 0]
  (the subgradient at the kink Δ_μ = 0 is taken as 0, as torch.relu's).
- ``quadratic_hinge`` (γ = 2 of the same Eq. (4); the loss their jamming analysis
  uses: "U corresponds to a quadratic hinge loss", a harmonic contact potential):
      L = ½ Σ_μ max(0, Δ_μ)²,   ∂L/∂f_μ = −y_μ max(0, Δ_μ).
  Geiger, Petrini & Wyart write (1/P) Σ_μ max(0, Δ_μ)²; the factor 2/P is a rescaling of T.
  For both hinges exp(−L/T) is not a normalized likelihood of any label model at any T: the
  stationary law is a Gibbs (pseudo-)posterior, T the weight of the loss against the prior.
  L = 0 exactly when every margin constraint y_μ f_μ ≥ 1 is met (the satisfiability /
  jamming criterion of Geiger, Petrini & Wyart); T → 0 is gradient descent on the hinge loss.

Geiger, Petrini & Wyart also divide their loss by P (the number of training points); here L is a
sum over points, as the Gaussian one, so its temperature T corresponds to their T/P.

`loss_and_parameter_gradient` back-propagates ∂L/∂f through any batched `predict(theta,
x)`: one torch.autograd.grad of Σ_c L_c gives every chain's own gradient, because chains
do not interact. `with_likelihood` wraps a model so that `langevin.potential.make_potential`
uses the chosen likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as torch_functional

from langevin.types import Tensor, Theta


class Likelihood(NamedTuple):
    """One registry entry: (f (C, n), y (n,)) -> (loss (C,), ∂L/∂f (C, n))."""

    loss_and_output_gradient: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
    binary_labels: bool  # labels must be ±1
    description: str


def _gaussian(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    residual = f - y  # (C, n)
    return 0.5 * (residual * residual).sum(-1), residual


def _logistic(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    # log(1 + e^{−yf}) = softplus(−yf): exact for large |f| (no overflow of e^{−yf}).
    margin = y * f
    loss = torch_functional.softplus(-margin).sum(-1)
    # d/df softplus(−y f) = −y s(−y f); s(−m) = 1 − s(m) evaluated directly (no cancellation).
    return loss, -y * torch.sigmoid(-margin)


def _hinge(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    violation = 1.0 - y * f  # Δ_μ
    active = (violation > 0).to(f.dtype)
    return torch.relu(violation).sum(-1), -y * active


def _quadratic_hinge(f: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    positive_part = torch.relu(1.0 - y * f)  # max(0, Δ_μ)
    return 0.5 * (positive_part * positive_part).sum(-1), -y * positive_part


LIKELIHOODS: dict[str, Likelihood] = {
    "gaussian": Likelihood(_gaussian, False, "½ Σ (f − y)²; noise variance T"),
    "logistic": Likelihood(_logistic, True, "Σ log(1 + e^{−y f}); Bernoulli at T = 1"),
    "hinge": Likelihood(_hinge, True, "Σ max(0, 1 − y f); Gibbs pseudo-posterior"),
    "quadratic_hinge": Likelihood(
        _quadratic_hinge, True, "½ Σ max(0, 1 − y f)²; Gibbs pseudo-posterior"),
}


def get_likelihood(name: str) -> Likelihood:
    if name not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got {name!r}")
    return LIKELIHOODS[name]


def check_labels(name: str, y: Tensor) -> None:
    """Raise a ValueError naming the likelihood when y does not suit it.

    y must be a 1-D tensor; for the binary likelihoods every label must be exactly ±1.
    """
    likelihood = get_likelihood(name)
    if y.ndim != 1:
        raise ValueError(f"labels for likelihood {name!r} must have shape (n,), "
                         f"got {tuple(y.shape)}")
    if likelihood.binary_labels:
        bad = (y != 1) & (y != -1)
        if bool(bad.any()):
            values = sorted({float(v) for v in y[bad][:5]})
            raise ValueError(f"likelihood {name!r} needs labels ±1, got values such as {values}")


def loss_and_parameter_gradient(
    likelihood: Likelihood,
    predict: Callable[[Theta, Tensor], Tensor],
    theta: Theta,
    x: Tensor,
    y: Tensor,
) -> tuple[Tensor, Theta]:
    """L_c (C,) and ∂L_c/∂θ_{c,l} for every layer, by one batched autograd pass.

    f = predict(θ, x) has shape (C, n); with g = ∂L/∂f from the likelihood,
        ∂L_c/∂θ_c = Σ_μ g_{cμ} ∂f_{cμ}/∂θ_c,
    computed as the vector-Jacobian product torch.autograd.grad(f, θ, grad_outputs=g),
    i.e. the gradient of Σ_c L_c: row c only involves chain c since chains do not
    interact. theta itself is not modified (the pass runs on detached copies).
    """
    with torch.enable_grad():
        leaves = {layer: param.detach().requires_grad_(True) for layer, param in theta.items()}
        f = predict(leaves, x)
        loss, output_gradient = likelihood.loss_and_output_gradient(f.detach(), y)
        names = list(leaves)
        grads = torch.autograd.grad(f, [leaves[n] for n in names], grad_outputs=output_gradient,
                                    allow_unused=True)
    gradient = {}
    for n, g in zip(names, grads):
        gradient[n] = torch.zeros_like(theta[n]) if g is None else g
    return loss, gradient


def unsatisfied_constraints(f: Tensor, y: Tensor) -> Tensor:
    """N_Δ per chain: the number of training points with margin y_μ f_μ < 1, i.e. Δ_μ > 0
    (Geiger, Petrini & Wyart: the unsatisfied constraints; zero hinge loss iff N_Δ = 0). Shape (C,)."""
    return ((1.0 - y * f) > 0).sum(-1)


@dataclass(frozen=True)
class ModelWithLikelihood:
    """A model whose `loss_and_gradient` uses a registry likelihood instead of ½Σ(f − y)².

    Satisfies `langevin.potential.Model`: `make_potential(ModelWithLikelihood(model,
    "logistic"), x, y, weight_decays)` builds U = L_logistic + Σ_l (γ_l/2)|θ_l|². The
    gradient comes from `loss_and_parameter_gradient` (autograd through model.predict).
    """

    model: Any
    likelihood_name: str

    def __post_init__(self) -> None:
        get_likelihood(self.likelihood_name)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.model.layer_names

    def predict(self, theta: Theta, x: Tensor) -> Tensor:
        return self.model.predict(theta, x)

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]:
        return loss_and_parameter_gradient(
            get_likelihood(self.likelihood_name), self.model.predict, theta, x, y)


def with_likelihood(model: Any, name: str) -> ModelWithLikelihood:
    """`model` with the likelihood `name` of LIKELIHOODS (validated here)."""
    return ModelWithLikelihood(model, name)
