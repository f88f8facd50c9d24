"""Activation functions with their derivatives, for the analytic backward pass.

Registry: plain dict name -> Activation(value, derivative[, value_into, derivative_into]).
The derivative is used by `models.two_layer.two_layer_loss_and_gradient`, which modifies
it in place: every `derivative` must return a fresh tensor, never a view of its input.
Tests compare the resulting gradients with autograd.

`value_into(h, out)` / `derivative_into(h, out)` (optional, None when absent) write φ(h)
/ φ'(h) into a preallocated `out` of h's shape and return it; `derivative_into` also
accepts out = h (it then overwrites h). They perform exactly the floating-point
operations of `value` / `derivative` (bitwise equal results, tested), so the fast path
that reuses buffers across steps (`two_layer`) leaves every run's floats unchanged.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from langevin.types import Tensor


class Activation(NamedTuple):
    value: Callable[[Tensor], Tensor]
    derivative: Callable[[Tensor], Tensor]
    value_into: Callable[[Tensor, Tensor], Tensor] | None = None
    derivative_into: Callable[[Tensor, Tensor], Tensor] | None = None


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)  # d/dz erf(z) = (2/√π) e^{−z²}


def _erf_derivative(h: Tensor) -> Tensor:
    return h.square().neg_().exp_().mul_(_TWO_OVER_SQRT_PI)


def _erf_derivative_into(h: Tensor, out: Tensor) -> Tensor:
    # h·h is h.square() bit for bit (pow with exponent 2 multiplies); out may be h.
    return torch.mul(h, h, out=out).neg_().exp_().mul_(_TWO_OVER_SQRT_PI)


def _tanh_derivative_into(h: Tensor, out: Tensor) -> Tensor:
    return torch.tanh(h, out=out).square_().neg_().add_(1.0)


def _tanh_derivative(h: Tensor) -> Tensor:
    return torch.tanh(h).square_().neg_().add_(1.0)


def _relu_derivative(h: Tensor) -> Tensor:
    # The subgradient at 0 is taken as 0 (as torch.relu's autograd does).
    return (h > 0).to(h.dtype)


# Symmetric ReLU (Allen-Zhu & Li, arXiv:2005.10190): φ(h) = ReLU(h − β) − ReLU(−h − β), the soft
# threshold sign(h) max(|h| − β, 0), at the fixed threshold β = SYMMETRIC_RELU_THRESHOLD
# (β = 0 would make it the identity); φ'(h) = 1[|h| > β] (0 at the kinks).
SYMMETRIC_RELU_THRESHOLD = 1.0


def _symmetric_relu(h: Tensor) -> Tensor:
    return torch.nn.functional.softshrink(h, SYMMETRIC_RELU_THRESHOLD)


def _symmetric_relu_derivative(h: Tensor) -> Tensor:
    return (h.abs() > SYMMETRIC_RELU_THRESHOLD).to(h.dtype)


ACTIVATIONS: dict[str, Activation] = {
    "erf": Activation(torch.erf, _erf_derivative, lambda h, out: torch.erf(h, out=out),
                      _erf_derivative_into),
    "relu": Activation(torch.relu, _relu_derivative),
    "tanh": Activation(torch.tanh, _tanh_derivative, lambda h, out: torch.tanh(h, out=out),
                       _tanh_derivative_into),
    "linear": Activation(lambda h: h, torch.ones_like),
    "quadratic": Activation(lambda h: h * h, lambda h: 2.0 * h,
                            lambda h, out: torch.mul(h, h, out=out),
                            lambda h, out: torch.mul(h, 2.0, out=out)),
    "symmetric_relu": Activation(_symmetric_relu, _symmetric_relu_derivative),
}


def get_activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
