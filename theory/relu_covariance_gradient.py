"""The ReLU (arc-cosine, degree 1) Gram matrix under a general weight covariance Σ, and its
analytic gradient ∇_Σ (the ReLU counterpart of `theory.erf_covariance_gradient`).

Kernel (Cho & Saul 2009), w ~ N(0, Σ), no bias, c_μν = x_μᵀ Σ x_ν:

    K_μν(Σ) = E_w[relu(w·x_μ) relu(w·x_ν)] = (1/2π) [ √D_μν + c_μν (π − arccos ρ_μν) ],
    D_μν = c_μμ c_νν − c_μν²,   ρ_μν = c_μν/√(c_μμ c_νν),

equal to √(c_μμ c_νν)[sin θ + (π − θ) cos θ]/(2π), θ = arccos ρ; the diagonal is c_μμ/2.

Partial derivatives [DERIVED] (with d(−arccos ρ)/dc_μν = 1/√D and ∂ρ/∂c_μμ = −ρ/(2c_μμ)):

    ∂K_μν/∂c_μν = (π − arccos ρ_μν)/(2π)        (the step-function kernel, Price's theorem),
    ∂K_μν/∂c_μμ = √D_μν/(4π c_μμ)               (= ½ E[δ(u) relu(v)]),

both continuous up to ρ = 1 (where they are ½ and 0, so the diagonal K_μμ = c_μμ/2 is covered
by the same formulas). For a symmetric weight matrix C (n×n) and f(Σ) = Σ_μν C_μν K_μν(Σ), with
∂c_μν/∂Σ = ½(x_μ x_νᵀ + x_ν x_μᵀ):

    ∇_Σ f = Xᵀ (C ∘ A) X + 2 Xᵀ diag(Σ_ν C_μν B_μν) X,   A = ∂K/∂c_μν,  B = ∂K/∂c_μμ.

"Gradient" is the symmetric G with df = Tr(G dΣ) for every symmetric dΣ (the convention of
`theory.erf_covariance_gradient` and of the VGA equation, Seroussi, Naveh & Ringel, Nat. Commun. 2023). B needs c_μμ > 0 (no
zero input). Cost: O(n² d + n d²).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from theory.erf_covariance_gradient import checked_inputs_and_covariance

__all__ = ["ReluGram", "relu_gram", "relu_gram_gradient"]


class ReluGram(NamedTuple):
    """Gram K (n×n, unscaled: no σ_a²) and the intermediates the gradient reuses.

    inputs: X (n, d); covariance: Σ (d, d); overlaps: c = XΣXᵀ (n, n, exact diagonal);
    angles: arccos ρ (n, n); root_determinant: √D (n, n).
    """

    gram: np.ndarray
    inputs: np.ndarray
    covariance: np.ndarray
    overlaps: np.ndarray
    angles: np.ndarray
    root_determinant: np.ndarray


def relu_gram(X, Sigma) -> ReluGram:
    """K_μν = (√D_μν + c_μν(π − arccos ρ_μν))/(2π), c = XΣXᵀ, with intermediates."""
    X, Sigma = checked_inputs_and_covariance(X, Sigma)
    c = (X @ Sigma) @ X.T
    c = 0.5 * (c + c.T)
    diag = np.diagonal(c).copy()
    if np.any(diag <= 0):
        raise ValueError("x_μᵀΣx_μ must be > 0 for every input (Sigma positive definite, no zero input)")
    outer = np.outer(diag, diag)
    rho = np.clip(c / np.sqrt(outer), -1.0, 1.0)
    np.fill_diagonal(rho, 1.0)
    angles = np.arccos(rho)
    root_det = np.sqrt(np.maximum(outer - c * c, 0.0))
    np.fill_diagonal(root_det, 0.0)
    gram = (root_det + c * (math.pi - angles)) / (2.0 * math.pi)
    return ReluGram(0.5 * (gram + gram.T), X, Sigma, c, angles, root_det)


def relu_gram_gradient(state: ReluGram, weights) -> np.ndarray:
    """∇_Σ Σ_μν C_μν K_μν(Σ) for symmetric C = `weights` (n×n), as a symmetric d×d matrix."""
    C = np.asarray(weights, dtype=np.float64)
    n = state.gram.shape[0]
    if C.shape != (n, n) or not np.all(np.isfinite(C)):
        raise ValueError(f"weights must be a finite ({n}, {n}) array, got shape {C.shape}")
    C = 0.5 * (C + C.T)
    X = state.inputs
    cross = C * (math.pi - state.angles) / (2.0 * math.pi)          # C ∘ ∂K/∂c_μν
    diag_c = np.diagonal(state.overlaps)
    diagonal = 2.0 * (C * state.root_determinant).sum(axis=1) / (4.0 * math.pi * diag_c)
    G = X.T @ cross @ X + (X.T * diagonal) @ X
    return 0.5 * (G + G.T)
