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
from langevin.types import Tensor, Theta

import torch


def workspace_buffer(workspace: dict, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """The scratch tensor `name` of `shape` (dtype and device of `like`) kept in
    `workspace` between calls: the leading rows of the kept tensor when it has the same
    trailing shape and at least shape[0] rows (the last, smaller chain block), else a
    new one."""
    buffer = workspace.get(name)
    if (buffer is None or buffer.shape[1:] != shape[1:] or buffer.shape[0] < shape[0]
            or buffer.dtype != like.dtype or buffer.device != like.device):
        buffer = torch.empty(shape, dtype=like.dtype, device=like.device)
        workspace[name] = buffer
    return buffer[:shape[0]]


def _loss_and_gradient_of_block(phi: Activation, w: Tensor, a: Tensor, x: Tensor, y: Tensor,
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


# Chain blocks (CPU). Measured (benchmarks/README.md): blocks small enough for the
# caches were slower at both benchmark sizes (at (16, 64, 128) the step is fastest as one
# block; at (150, 700, 3000) one chain's two (n, N) temporaries are 17 MB, half the L3,
# and blocks of 2-4 chains ran at 0.5-1.0x the unblocked step). What blocks do buy is
# memory: the temporaries of C chains are 2·C·n·N values (4.3 GB each at 512 chains of the
# paper's size), so a CPU step is cut into blocks whose temporaries fit this budget.
CHAIN_BLOCK_BYTES = 2**30
TEMPORARIES = 2  # h (overwritten by r a φ'(h)) and φ(h)
ALIGNMENT_BYTES = 64  # the vector width the CPU BLAS kernels align to


def blocks_are_bitwise(num_train: int, width: int, element_size: int) -> bool:
    """Whether chain blocks give bitwise the numbers of one batched call. The batched
    BLAS kernels (readout matvecs, ∂L/∂a) round a chain's result differently when its
    rows start at an address not aligned to 64 bytes, and a batch of ONE chain goes to a
    different (matrix-vector) kernel; measured on torch 2.13 CPU. So blocks are used only
    when n·size and N·size are multiples of 64 bytes (every chain's rows aligned in both
    layouts) and every block has at least 2 chains."""
    return (num_train * element_size) % ALIGNMENT_BYTES == 0 and (
        width * element_size) % ALIGNMENT_BYTES == 0


def automatic_chain_block(num_chains: int, num_train: int, width: int, element_size: int,
                          device: torch.device, budget: int = CHAIN_BLOCK_BYTES) -> int:
    """Chains per block: all of them on CUDA, when their temporaries fit `budget`, or
    when blocks would not be bitwise (`blocks_are_bitwise`); otherwise the most chains
    whose TEMPORARIES (n, N) tensors fit `budget`, at least 2, never leaving a last
    block of 1 chain (the block size is then raised by one)."""
    per_chain = TEMPORARIES * num_train * width * element_size
    if (device.type != "cpu" or num_chains * per_chain <= budget
            or not blocks_are_bitwise(num_train, width, element_size)):
        return num_chains
    block = max(2, budget // per_chain)
    if num_chains % block == 1:
        block += 1
    return min(block, num_chains)


def two_layer_loss_and_gradient(phi: Activation, w: Tensor, a: Tensor, x: Tensor, y: Tensor,
                                 b: Tensor | None = None,
                                 bias_layer: str = "b1",
                                 workspace: dict | None = None,
                                 chain_block: int | None = None) -> tuple[Tensor, Theta]:
    """L_c and ∂L_c/∂θ_c of every chain (equations: `_loss_and_gradient_of_block`),
    computed `chain_block` chains at a time (None: `automatic_chain_block`; blocks only
    with a workspace, i.e. eager). Every chain's numbers are the same whatever the block
    (each op is per chain or elementwise; tested bitwise against the unblocked call); the
    loop runs over blocks of chains, not over chains, and is one block for small problems.
    """
    num_chains = w.shape[0]
    if chain_block is None:
        chain_block = (num_chains if workspace is None else automatic_chain_block(
            num_chains, x.shape[0], w.shape[1], w.element_size(), w.device))
    if chain_block >= num_chains:
        return _loss_and_gradient_of_block(phi, w, a, x, y, b, bias_layer, workspace)
    loss = w.new_empty(num_chains)
    grads = {"w": torch.empty_like(w, memory_format=torch.contiguous_format),
             "a": torch.empty_like(a, memory_format=torch.contiguous_format)}
    if b is not None:
        grads[bias_layer] = torch.empty_like(b, memory_format=torch.contiguous_format)
    for start in range(0, num_chains, chain_block):
        block = slice(start, min(start + chain_block, num_chains))
        block_loss, block_grads = _loss_and_gradient_of_block(
            phi, w[block], a[block], x, y, None if b is None else b[block], bias_layer,
            workspace)
        loss[block] = block_loss
        for layer, value in block_grads.items():
            grads[layer][block] = value
    return loss, grads


def TwoLayerNetwork(input_dim: int, width: int, activation: str,  # noqa: N802 - a model name
                    prior_variances: Mapping[str, float]):
    """f(x) = Σ_{i=1}^{N} a_i φ(w_i·x): `fc.FullyConnectedNetwork` with one hidden layer of
    width N and no bias, layers ("w", "a"); prior_variances = {"w": σ_w²/d, "a": σ̃_a²/(χN)}
    (see `convention.two_layer_prior_variances`). Its gradient is the analytic fast path."""
    from langevin.models.fc import FullyConnectedNetwork

    return FullyConnectedNetwork(input_dim, (width,), activation, prior_variances)
