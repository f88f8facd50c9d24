"""Two-layer networks f_c(x) = Σ_i a_{c,i} φ(w_{c,i}·x + b_{c,i}): the analytic
(fused) backward pass, and `TwoLayerNetwork`, the fc network with one hidden layer.

    theta["w"]: (C, N, d)   input weights,  prior w_i ~ N(0, σ_w²/d · I_d)
    theta["a"]: (C, N)      readout,        prior a_i ~ N(0, σ̃_a²/(χN))
    theta["b1"]: (C, N)     optional biases (fc with bias = True), prior N(0, σ_b²)

No Python loop over chains: the forward pass is one batched matmul h = X wᵀ of shape
(C, n, N); the backward pass is two more matmuls. Tests compare it with the generic
autograd pass and with a per-chain reference.
"""
from __future__ import annotations

from typing import Mapping

from langevin.activations import Activation
from langevin.models.protocol import Tensor, Theta

import torch


def workspace_buffer(workspace: dict, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """The scratch tensor `name` of `shape` (dtype and device of `like`) kept in
    `workspace` between calls; a new one when the shape, dtype or device changed."""
    buffer = workspace.get(name)
    if (buffer is None or buffer.shape != shape or buffer.dtype != like.dtype
            or buffer.device != like.device):
        buffer = torch.empty(shape, dtype=like.dtype, device=like.device)
        workspace[name] = buffer
    return buffer


def two_layer_loss_and_gradient(phi: Activation, w: Tensor, a: Tensor, x: Tensor, y: Tensor,
                                 b: Tensor | None = None,
                                 bias_layer: str = "b1",
                                 workspace: dict | None = None) -> tuple[Tensor, Theta]:
    """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² (shape (C,)) and its analytic gradient.

    With r = f − y and h = X wᵀ (+ b):
        ∂L/∂a_i = Σ_μ r_μ φ(h_{μi})
        ∂L/∂w_i = Σ_μ r_μ a_i φ'(h_{μi}) x_μ
        ∂L/∂b_i = Σ_μ r_μ a_i φ'(h_{μi})
    Each chain's gradient depends only on its own parameters.

    `workspace` (a dict owned by the caller, or None): the two (C, n, N) temporaries h
    (overwritten by r a φ'(h)) and φ(h) are kept there and reused by the next call of the
    same shape instead of being allocated (fresh memory costs page faults that were a
    third of the small step). The floating-point operations are the same either way, so
    the results are bitwise equal (tested); the returned tensors never alias the
    workspace. Used only when the activation has `value_into` and `derivative_into`.
    """
    reuse = (workspace is not None and phi.value_into is not None
             and phi.derivative_into is not None)
    if reuse:
        shape = (w.shape[0], x.shape[0], w.shape[1])
        h = torch.matmul(x, w.transpose(-1, -2), out=workspace_buffer(workspace, "h", shape, w))
        if b is not None:
            h.add_(b.unsqueeze(-2))
        features = phi.value_into(h, workspace_buffer(workspace, "features", shape, w))
    else:
        h = torch.matmul(x, w.transpose(-1, -2))
        if b is not None:
            h = h + b.unsqueeze(-2)
        features = phi.value(h)
    residual = torch.matmul(features, a.unsqueeze(-1)).squeeze(-1) - y
    loss = 0.5 * (residual * residual).sum(-1)
    grad_a = torch.matmul(residual.unsqueeze(-2), features).squeeze(-2)
    # (C, n, N): r_μ a_i φ'(h_μi), built in place: at large sizes the step is bound by
    # memory traffic through these (C, n, N) temporaries, not by the matmuls.
    if reuse:
        backward = phi.derivative_into(h, h)  # h is not needed after this
    else:
        backward = phi.derivative(h)  # a fresh tensor (activations.py contract)
    backward.mul_(residual.unsqueeze(-1)).mul_(a.unsqueeze(-2))
    grads = {"w": torch.matmul(backward.transpose(-1, -2), x), "a": grad_a}
    if b is not None:
        grads[bias_layer] = backward.sum(-2)
    return loss, grads


def TwoLayerNetwork(input_dim: int, width: int, activation: str,  # noqa: N802 - a model name
                    prior_variances: Mapping[str, float]):
    """f(x) = Σ_{i=1}^{N} a_i φ(w_i·x): `fc.FullyConnectedNetwork` with one hidden layer of
    width N and no bias, layers ("w", "a"); prior_variances = {"w": σ_w²/d, "a": σ̃_a²/(χN)}
    (see `convention.two_layer_prior_variances`). Its gradient is the analytic fast path."""
    from langevin.models.fc import FullyConnectedNetwork

    return FullyConnectedNetwork(input_dim, (width,), activation, prior_variances)
