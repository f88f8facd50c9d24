"""The interface every network family of the sampler implements, and the generic
gradient built from it.

All shapes are per chain with chains leading: a parameter of layer l has shape
(C, *parameter_shapes()[l]); inputs x are (n, d) (shared by all chains), targets y (n,).

The data term of the potential is L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² ("half_sse", so the
observation-noise variance is σ² = T; langevin.convention). `loss_and_gradient` returns
(L_c of shape (C,), ∂L_c/∂θ_c per layer). `autograd_loss_and_gradient` gives it for any
model from its batched `predict`: one `torch.autograd.grad` of Σ_c L_c over the
hand-batched tensors. Chains do not interact, so ∂(Σ_c' L_c')/∂θ_c = ∂L_c/∂θ_c: one
backward pass yields every chain's own gradient.
"""
from __future__ import annotations

from typing import Mapping, Protocol

import torch

from langevin.types import Tensor, Theta


class Model(Protocol):
    """A network family batched over chains (one file per architecture).

    layer_names       parameter tensors, in the order `sample_prior` draws them
    parameter_shapes  shape of one chain's tensor of every layer
    fan_ins           inputs feeding one unit of every layer (prior rule σ_l²/fan_in)
    prior_variances   variance of ONE weight of every layer (Gaussian prior, mean 0)
    predict           f_c(x_μ), shape (C, n)
    loss_and_gradient (L_c (C,), ∂L_c/∂θ per layer), L = ½ Σ_μ (f − y)²
    preactivations    every hidden layer's pre-activations, a list of (C, n, N_l)
    hidden_units      Σ_l N_l per example (memory estimates: activations are C·n·Σ_l N_l)
    """

    @property
    def layer_names(self) -> tuple[str, ...]: ...

    @property
    def prior_variances(self) -> Mapping[str, float]: ...

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]: ...

    def fan_ins(self) -> dict[str, int]: ...

    def sample_prior(self, num_chains: int, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Theta: ...

    def predict(self, theta: Theta, x: Tensor) -> Tensor: ...

    def loss_and_gradient(self, theta: Theta, x: Tensor, y: Tensor) -> tuple[Tensor, Theta]: ...

    def preactivations(self, theta: Theta, x: Tensor) -> list[Tensor]: ...

    def hidden_units(self) -> int: ...


def half_squared_error(prediction: Tensor, y: Tensor) -> Tensor:
    """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)², shape (C,), from predictions (C, n) and y (n,)."""
    residual = prediction - y
    return 0.5 * (residual * residual).sum(-1)


def autograd_loss_and_gradient(model: Model, theta: Theta, x: Tensor,
                               y: Tensor) -> tuple[Tensor, Theta]:
    """(L_c, ∂L_c/∂θ_c) for every chain from ONE autograd pass of Σ_c L_c.

    The inputs are detached copies, so `theta` is never modified and no graph outlives
    the call; works under `torch.no_grad()` callers (grad mode is enabled locally).
    """
    names = model.layer_names
    with torch.enable_grad():
        leaves = {name: theta[name].detach().requires_grad_(True) for name in names}
        loss = half_squared_error(model.predict(leaves, x), y)
        grads = torch.autograd.grad(loss.sum(), [leaves[name] for name in names])
    return loss.detach(), dict(zip(names, grads))


def sample_gaussian_prior(model: Model, num_chains: int, generator: torch.Generator,
                          dtype: torch.dtype, device: torch.device | str) -> Theta:
    """θ_l ~ N(0, prior_variances[l]) for every weight of every chain, drawn layer by layer
    in `layer_names` order (that order fixes the random stream of a seeded run)."""
    theta = {}
    for layer in model.layer_names:
        shape = (num_chains, *model.parameter_shapes()[layer])
        noise = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        theta[layer] = noise * model.prior_variances[layer] ** 0.5
    return theta


def check_prior_variances(prior_variances: Mapping[str, float],
                          layer_names: tuple[str, ...]) -> None:
    """Exactly the model's layers, each with a positive finite variance."""
    if set(prior_variances) != set(layer_names):
        raise ValueError(f"prior_variances must have exactly the layers {layer_names}, "
                         f"got {sorted(prior_variances)}")
    for layer, variance in prior_variances.items():
        if not (variance > 0 and variance < float("inf")):
            raise ValueError(f"prior_variances[{layer!r}] must be positive, got {variance!r}")
