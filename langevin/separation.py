"""Class separation of a representation: within-class against between-class scatter.

For representations h_i ∈ R^N of n points with labels in K ≥ 2 classes (class k has n_k
points, mean μ_k; μ̄ = (1/K) Σ_k μ_k), as in the law of data separation (H. He, W. Su,
PNAS 120, e2221704120 (2023), after Papyan, Han & Donoho PNAS 2020 on neural collapse;
used by C. Shi, L. Pan, I. Dokmanić,
"Spring-block theory of feature learning in deep neural networks", Phys. Rev. Lett. 2025):

    Σ_k = (1/n_k) Σ_{i ∈ k} (h_i − μ_k)(h_i − μ_k)ᵀ        class covariance
    Σ_w = Ave_k Σ_k = (1/K) Σ_k Σ_k                        within-class scatter
    Σ_b = Cov(μ_k) = (1/K) Σ_k (μ_k − μ̄)(μ_k − μ̄)ᵀ        between-class scatter
    D   = Tr(Σ_w Σ_b⁺)                                     (`separation_fuzziness`)
    D'  = Tr Σ_w / Tr Σ_b                                  (`trace_ratio`, the
                                                           alternative form)

Σ_b⁺ is the Moore–Penrose pseudo-inverse. D → 0 under neural collapse; the law of data
separation says log D_ℓ decreases roughly linearly with the layer index ℓ. With balanced
classes Σ_w equals He & Su's (1/n) Σ_i (h_i − μ_{k(i)})(…)ᵀ; with unbalanced classes this
module follows the Ave_k of Shi, Pan & Dokmanić (every class weighs 1/K).

D is invariant under h → a·hQ + b for any orthogonal Q, scalar a ≠ 0 and vector b
(Σ_w, Σ_b → a² QᵀΣQ, and (QᵀΣ_bQ)⁺ = QᵀΣ_b⁺Q), so it does not depend on the basis of
the representation or on its scale.

Computation without a rank cut-off: Σ_b = B Bᵀ with B = [μ_k − μ̄]_k/√K of shape (N, K),
whose columns sum to zero, so B = B_r Vᵀ with V (K, K−1) an orthonormal basis of 1^⊥ and
B_r = B V. When the K means are affinely independent (generic; needs N ≥ K − 1), B_r has
full column rank, Σ_b⁺ = B_r G⁻² B_rᵀ with G = B_rᵀB_r, and

    D = Tr(G⁻¹ (B_rᵀ Σ_w B_r) G⁻¹),

a (K−1)×(K−1) computation that never forms an N × N matrix. For K = 2 with δ = μ_1 − μ_2:
D = 4 δᵀΣ_wδ / |δ|⁴.

Shapes: representations (C, n, N) (chains on the leading axis), labels (n,) shared by all
chains; results (C,). No loop over chains or classes.
"""
from __future__ import annotations

import math

import torch

from langevin.types import Tensor


def _class_structure(representations: Tensor, labels: Tensor):
    if representations.ndim != 3:
        raise ValueError(f"representations must have shape (C, n, N), got "
                         f"{tuple(representations.shape)}")
    if labels.ndim != 1 or labels.shape[0] != representations.shape[1]:
        raise ValueError(f"labels must have shape (n,) = ({representations.shape[1]},), got "
                         f"{tuple(labels.shape)}")
    _, class_index = torch.unique(labels, return_inverse=True)
    num_classes = int(class_index.max()) + 1
    if num_classes < 2:
        raise ValueError(f"labels must contain at least 2 classes, got {num_classes}")
    dtype = representations.dtype
    one_hot = torch.nn.functional.one_hot(class_index, num_classes).to(dtype)  # (n, K)
    counts = one_hot.sum(0)  # (K,)
    means = torch.matmul(one_hot.T, representations) / counts[:, None]  # (C, K, N)
    residuals = representations - means[:, class_index, :]  # (C, n, N): h_i − μ_{k(i)}
    weights = 1.0 / (num_classes * counts[class_index])  # (n,): Σ_w = Σ_i w_i r_i r_iᵀ
    centred_means = means - means.mean(1, keepdim=True)  # (C, K, N): μ_k − μ̄
    return num_classes, residuals, weights, centred_means


def _contrast_basis(num_classes: int, dtype: torch.dtype, device) -> Tensor:
    """V (K, K−1): orthonormal columns spanning the vectors orthogonal to (1, …, 1)
    (Helmert contrasts: column j ∝ (1, …, 1, −j, 0, …, 0) with j ones, norm √(j(j+1)))."""
    row = torch.arange(num_classes, dtype=dtype, device=device)[:, None]
    column = torch.arange(1, num_classes, dtype=dtype, device=device)[None, :]
    entries = torch.where(row < column, torch.ones_like(row * column),
                          torch.where(row == column, -column.expand_as(row * column),
                                      torch.zeros_like(row * column)))
    return entries / torch.sqrt(column * (column + 1))


def within_and_between_scatter(representations: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Σ_w and Σ_b as defined in the module docstring, each (C, N, N) (for small N)."""
    num_classes, residuals, weights, centred_means = _class_structure(representations, labels)
    within = torch.matmul(residuals.transpose(-1, -2) * weights, residuals)
    between = torch.matmul(centred_means.transpose(-1, -2), centred_means) / num_classes
    return within, between


def separation_fuzziness(representations: Tensor, labels: Tensor) -> Tensor:
    """D = Tr(Σ_w Σ_b⁺) per chain, shape (C,) (module docstring; He & Su 2023).

    Requires the K class means of every chain to be affinely independent (else Σ_b⁺ changes
    rank and D is not a continuous function of h); then no rank tolerance is involved.
    """
    num_classes, residuals, weights, centred_means = _class_structure(representations, labels)
    if representations.shape[-1] < num_classes - 1:
        raise ValueError(f"Tr(Σ_w Σ_b⁺) needs representation width N ≥ K − 1 = "
                         f"{num_classes - 1}, got N = {representations.shape[-1]}")
    basis = _contrast_basis(num_classes, representations.dtype, representations.device)
    # B_r = B V with B = [μ_k − μ̄]/√K: (C, N, K−1)
    reduced = torch.matmul(centred_means.transpose(-1, -2), basis) / math.sqrt(num_classes)
    gram = torch.matmul(reduced.transpose(-1, -2), reduced)  # G = B_rᵀB_r, (C, K−1, K−1)
    projected = torch.matmul(residuals, reduced)  # (C, n, K−1): r_i·B_r
    within_reduced = torch.matmul(projected.transpose(-1, -2) * weights, projected)  # B_rᵀΣ_wB_r
    half = torch.linalg.solve(gram, within_reduced)  # G⁻¹ (B_rᵀΣ_wB_r)
    # Tr(G⁻¹ A G⁻¹) = Tr(G⁻² A) = Tr(G⁻¹ (G⁻¹ A)) computed with a second solve
    return torch.diagonal(torch.linalg.solve(gram, half.transpose(-1, -2)), dim1=-2,
                          dim2=-1).sum(-1)


def trace_ratio(representations: Tensor, labels: Tensor) -> Tensor:
    """D' = Tr Σ_w / Tr Σ_b per chain, shape (C,) (the alternative form)."""
    num_classes, residuals, weights, centred_means = _class_structure(representations, labels)
    within = ((residuals * residuals).sum(-1) * weights).sum(-1)
    between = (centred_means * centred_means).sum((-1, -2)) / num_classes
    return within / between
