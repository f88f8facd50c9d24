"""The erf Gram matrix under a general weight covariance Σ, and its analytic gradient ∇_Σ.

Kernel (Williams 1997), w ~ N(0, Σ), no bias:

    K_μν(Σ) = E_w[erf(w·x_μ) erf(w·x_ν)] = (2/π) arcsin ρ_μν,
    ρ_μν = 2 c_μν / √(p_μ p_ν),   c_μν = x_μᵀ Σ x_ν,   p_μ = 1 + 2 c_μμ.

Gradient [DERIVED]. For a symmetric weight matrix C (n×n) and f(Σ) = Σ_μν C_μν K_μν(Σ), with
dK/dρ = (2/π)/√(1−ρ²), ∂ρ_μν/∂c_μν = 2/√(p_μ p_ν), ∂ρ_μν/∂c_μμ = −ρ_μν/p_μ and
∂c_μν/∂Σ = ½(x_μ x_νᵀ + x_ν x_μᵀ):

    ∇_Σ f = Xᵀ (E ∘ 2/√(p pᵀ)) X − 2 Xᵀ diag(Σ_ν E_μν ρ_μν / p_μ) X,   E = (2/π) C/√(1 − ρ²).

"Gradient" means the symmetric matrix G with df = Tr(G dΣ) for every symmetric dΣ (the convention
in which ∇_Σ ½ log det Σ = ½ Σ⁻¹, used by the VGA stationarity equation of Seroussi, Naveh & Ringel, Nat. Commun. 2023).
|ρ_μν| < 1 strictly for any PSD Σ (p_μ > 2c_μμ), so the gradient has no singularity. The diagonal
terms μ = ν are covered by the same formula (checked against d/dc arcsin(2c/(1+2c))).
Cost: O(n² d + n d²) for the gradient, O(n² d) for the Gram.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from theory.kernels import activation_kernel

__all__ = ["ErfGram", "erf_gram", "erf_gram_gradient"]


class ErfGram(NamedTuple):
    """Gram K (n×n, unscaled: no σ_a²) and the intermediates the gradient reuses.

    inputs: X (n, d); covariance: Σ (d, d); correlation: ρ (n, n); norms: p = 1 + 2 diag(XΣXᵀ) (n,).
    """

    gram: np.ndarray
    inputs: np.ndarray
    covariance: np.ndarray
    correlation: np.ndarray
    norms: np.ndarray


def checked_inputs_and_covariance(X, Sigma) -> tuple[np.ndarray, np.ndarray]:
    """X as a finite float64 (n, d) array and the symmetrized finite (d, d) covariance Σ."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array, got shape {X.shape}")
    Sigma = np.asarray(Sigma, dtype=np.float64)
    if Sigma.shape != (X.shape[1],) * 2 or not np.all(np.isfinite(Sigma)):
        raise ValueError(f"Sigma must be a finite ({X.shape[1]}, {X.shape[1]}) array, got shape {Sigma.shape}")
    return X, 0.5 * (Sigma + Sigma.T)


def erf_gram(X, Sigma) -> ErfGram:
    """K_μν = (2/π) arcsin(2x_μᵀΣx_ν/√((1+2x_μᵀΣx_μ)(1+2x_νᵀΣx_ν))), with intermediates."""
    X, Sigma = checked_inputs_and_covariance(X, Sigma)
    projected = X @ Sigma
    c = projected @ X.T
    c = 0.5 * (c + c.T)
    diag = np.diagonal(c).copy()
    if np.any(diag < 0):
        raise ValueError("Sigma must be positive semi-definite (found x_μᵀΣx_μ < 0)")
    norms = 1.0 + 2.0 * diag
    rho = np.clip(2.0 * c / np.sqrt(np.outer(norms, norms)), -1.0, 1.0)
    gram = activation_kernel("erf", diag[:, None], c, diag[None, :])
    return ErfGram(0.5 * (gram + gram.T), X, Sigma, rho, norms)


def erf_gram_gradient(state: ErfGram, weights) -> np.ndarray:
    """∇_Σ Σ_μν C_μν K_μν(Σ) for symmetric C = `weights` (n×n), as a symmetric d×d matrix."""
    C = np.asarray(weights, dtype=np.float64)
    n = state.gram.shape[0]
    if C.shape != (n, n) or not np.all(np.isfinite(C)):
        raise ValueError(f"weights must be a finite ({n}, {n}) array, got shape {C.shape}")
    C = 0.5 * (C + C.T)
    rho, p, X = state.correlation, state.norms, state.inputs
    E = (2.0 / math.pi) * C / np.sqrt(1.0 - rho * rho)
    cross = E * (2.0 / np.sqrt(np.outer(p, p)))
    diagonal = (E * rho).sum(axis=1) / p
    G = X.T @ cross @ X - 2.0 * (X.T * diagonal) @ X
    return 0.5 * (G + G.T)
