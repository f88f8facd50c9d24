"""The potential U and its gradient for all chains at once.

    U_c(θ) = ½ Σ_μ (f_c(x_μ) − y_μ)² + Σ_l (γ_l/2) |θ_{c,l}|² [+ Σ_j V_j(θ_c)],
    ∇_l U_c = ∂L_c/∂θ_l + γ_l θ_{c,l} [+ Σ_j ∂V_j/∂θ_l].

Optional extras of `make_potential`: `num_outputs = P > 1` for a model with P outputs per input
(targets (n, P), flattened to (n·P,) for the model, whose `predict` is then (C, n·P)); and
`extra_terms`, potential terms V_j: θ ↦ (V_j (C,), {layer: ∂V_j/∂θ_layer}) (e.g. the sextic mode
decay of `langevin.models.modular_quadratic`). Without them the scalar-output path is unchanged.

Chains do not interact: U_c and ∇U_c depend on chain c's parameters only.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple, Protocol, Sequence

import torch

from langevin.types import Tensor, Theta


class Model(Protocol):
    """What the potential needs from a network family."""

    @property
    def layer_names(self) -> tuple[str, ...]: ...

    def predict(self, theta: Theta, x: Tensor) -> Tensor: ...

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]: ...


class PotentialValue(NamedTuple):
    potential: Tensor  # (C,) U_c
    loss: Tensor  # (C,) L_c = ½ Σ (f − y)²
    gradient: Theta  # per layer, (C, ...) ∇U_c


PotentialFn = Callable[[Theta], PotentialValue]


PotentialTerm = Callable[[Theta], tuple[Tensor, Theta]]


def make_potential(
    model: Model, x_train: Tensor, y_train: Tensor, weight_decays: Mapping[str, float],
    num_outputs: int = 1, extra_terms: Sequence[PotentialTerm] = (),
) -> PotentialFn:
    """Return θ ↦ (U, L, ∇U) for the Gaussian-likelihood, Gaussian-prior posterior (plus any
    `extra_terms`; `num_outputs` > 1: targets (n, num_outputs), module docstring)."""
    missing = set(model.layer_names) - set(weight_decays)
    if missing:
        raise ValueError(f"weight_decays lacks layers {sorted(missing)}")
    for layer, decay in weight_decays.items():
        if not decay >= 0:
            raise ValueError(f"weight_decays[{layer!r}] must be non-negative, got {decay!r}")
    if num_outputs != 1:
        if x_train.ndim != 2 or tuple(y_train.shape) != (x_train.shape[0], num_outputs):
            raise ValueError(
                f"x_train must be (n, d) and y_train (n, {num_outputs}) for a model with "
                f"{num_outputs} outputs, got {tuple(x_train.shape)} and {tuple(y_train.shape)}")
        y_train = y_train.reshape(-1)
    elif x_train.ndim != 2 or y_train.ndim != 1 or x_train.shape[0] != y_train.shape[0]:
        raise ValueError(
            f"x_train must be (n, d) and y_train (n,), got {tuple(x_train.shape)} "
            f"and {tuple(y_train.shape)}"
        )
    decays = {layer: float(weight_decays[layer]) for layer in model.layer_names}
    terms = tuple(extra_terms)

    def potential(theta: Theta) -> PotentialValue:
        loss, data_gradient = model.loss_and_gradient(theta, x_train, y_train)
        value = loss
        gradient = {}
        for layer, decay in decays.items():
            param = theta[layer]
            reduce_dims = tuple(range(1, param.ndim))
            value = value + 0.5 * decay * (param * param).sum(reduce_dims)
            # ∇_l U = ∂L/∂θ_l + γ_l θ_l, summed into the one new tensor γ_l θ_l (the same
            # two roundings as data_gradient + decay * param: addition commutes).
            gradient[layer] = torch.mul(param, decay).add_(data_gradient[layer])
        for term in terms:
            term_value, term_gradient = term(theta)
            value = value + term_value
            for layer, part in term_gradient.items():
                gradient[layer] = gradient[layer] + part
        return PotentialValue(potential=value, loss=loss, gradient=gradient)

    return potential


def gaussian_potential(curvatures: Mapping[str, float]) -> PotentialFn:
    """U_c = Σ_l (k_l/2)|θ_{c,l}|² (no data term): the exact test target of the integrators."""
    ks = {layer: float(k) for layer, k in curvatures.items()}

    def potential(theta: Theta) -> PotentialValue:
        first = next(iter(theta.values()))
        value = torch.zeros(first.shape[0], dtype=first.dtype, device=first.device)
        gradient = {}
        for layer, k in ks.items():
            param = theta[layer]
            value = value + 0.5 * k * (param * param).sum(tuple(range(1, param.ndim)))
            gradient[layer] = k * param
        return PotentialValue(potential=value, loss=torch.zeros_like(value), gradient=gradient)

    return potential
