"""The empirical neural tangent kernel (NTK) of every chain on a probe set.

    Θ_c(x_μ, x_ν) = Σ_l Σ_{i ∈ layer l} ∂f_c(x_μ)/∂θ_{c,l,i} · ∂f_c(x_ν)/∂θ_{c,l,i}

(Jacot, Gabriel, Hongler 2018; Eq. (5) of Geiger, Petrini & Wyart, Phys. Rep. 924, 2021), for the
network of chain c at its current parameters θ_c; shape (C, p, p) for p probe inputs.
With the output scaling of their Eq. (8), f = α(f̃_θ − f̃_θ(0)), the kernel of f is
α² times that of f̃, so the relative change below is the same for f and f̃.

Relative change from initialization (the lazy/feature-learning order parameter of
Geiger, Petrini & Wyart, Fig. 4: the cross-over line is ‖ΔΘ‖/‖Θ(0)‖ = 1):

    r_c(t) = ‖Θ_c(t) − Θ_c(0)‖_F / ‖Θ_c(0)‖_F.

Lazy limit (Chizat & Bach 2019; Geiger, Petrini & Wyart §4 (i)). Train f = α(f̃_θ − f̃_θ(0)) by gradient
flow on L̃ = L(f)/α², the normalization that makes the time scale α-independent:
    dθ/dt = −(1/α) Σ_μ ∂L/∂f_μ ∇_θ f̃_μ,    df/dt = −Θ̃(θ) ∂L/∂f.
The integrand of dθ/dt is O(1), so θ(t) − θ(0) = O(1/α) at any t = O(1), and
Θ̃(θ(t)) − Θ̃(θ(0)) = ∇_θΘ̃·(θ(t) − θ(0)) + O(1/α²): r(t) = c(t)/α + O(1/α²), with c(t)
given by the α → ∞ (linearized) trajectory. A fixed training-loss target is reached at a
time t* = t*_∞ + O(1/α), so r(t*) ∝ 1/α at large α (tested in tests/langevin/test_ntk.py).

Implementation: one reverse-mode Jacobian of Σ_c f_c(x) with respect to the batched θ
(torch.func.jacrev, vectorized over the p probe outputs). Because chains do not interact,
∂(Σ_c f_c(x_μ))/∂θ_c = ∂f_c(x_μ)/∂θ_c: every chain's Jacobian comes out of one call, with
no loop over chains or probe points. Memory: the Jacobian holds p × (C · parameters per
chain) numbers, which is what makes this an observable for small probe sets.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.func import jacrev

from langevin.types import Tensor, Theta


def chain_jacobians(predict: Callable[[Theta, Tensor], Tensor], theta: Theta,
                    x: Tensor) -> dict[str, Tensor]:
    """∂f_c(x_μ)/∂θ_{c,l} for every layer l: shape (C, p, *layer shape of one chain).

    predict(theta, x) must return (C, p) with row c a function of chain c's parameters only
    (every model of this package). x: (p, d) probe inputs.
    """
    num_chains = next(iter(theta.values())).shape[0]
    detached = {layer: param.detach() for layer, param in theta.items()}

    def summed_over_chains(params: Theta) -> Tensor:  # (p,)
        return predict(params, x).sum(0)

    jacobian = jacrev(summed_over_chains)(detached)  # layer -> (p, C, ...)
    out = {}
    for layer, jac in jacobian.items():
        if jac.shape[1] != num_chains:
            raise ValueError(f"predict must return (C, p); Jacobian of layer {layer!r} has "
                             f"shape {tuple(jac.shape)}")
        out[layer] = jac.movedim(0, 1)  # (C, p, ...)
    return out


def empirical_ntk(predict: Callable[[Theta, Tensor], Tensor], theta: Theta, x: Tensor,
                  layers: Sequence[str] | None = None) -> Tensor:
    """Θ_c(x_μ, x_ν) = Σ_{l ∈ layers} J_{c,l}(x_μ)·J_{c,l}(x_ν), shape (C, p, p).

    layers: the layers summed over (default: all of theta); a single layer gives that
    layer's contribution to the kernel.
    """
    jacobians = chain_jacobians(predict, theta, x)
    names = list(jacobians) if layers is None else list(layers)
    unknown = set(names) - set(jacobians)
    if unknown:
        raise ValueError(f"layers {sorted(unknown)} are not parameters of theta "
                         f"({sorted(jacobians)})")
    kernel = None
    for layer in names:
        jac = jacobians[layer]
        flat = jac.reshape(jac.shape[0], jac.shape[1], -1)  # (C, p, P_l)
        term = torch.matmul(flat, flat.transpose(-1, -2))
        kernel = term if kernel is None else kernel + term
    return kernel


def relative_ntk_change(ntk: Tensor, ntk_initial: Tensor) -> Tensor:
    """‖Θ_c − Θ_c(0)‖_F / ‖Θ_c(0)‖_F per chain: (C, p, p) × 2 -> (C,)."""
    if ntk.shape != ntk_initial.shape or ntk.ndim != 3:
        raise ValueError(f"both kernels must have the same shape (C, p, p), got "
                         f"{tuple(ntk.shape)} and {tuple(ntk_initial.shape)}")
    difference = torch.linalg.matrix_norm(ntk - ntk_initial)  # Frobenius by default
    return difference / torch.linalg.matrix_norm(ntk_initial)
