"""Gaussian-process regression on finite data: the infinite-width posterior of the network outputs.

Naveh et al., PRE 2021 (Langevin training ⇒ NNGP posterior as N → ∞). With
Gram K = K(X, X) (n, n), k_* = K(X, x*) (rows of K_test_train, shape (n_test, n)),
k_** = K(x*, x*) and observation-noise variance σ² (`noise_variance`):

    posterior mean        f̄(x*) = k_*ᵀ (K + σ²I)⁻¹ y
    latent variance       Σ(x*) = k_** − k_*ᵀ (K + σ²I)⁻¹ k_*
    discrepancy           t̄ = (K + σ²I)⁻¹ y,  so that  y − f̄(X) = σ² t̄ on the training set
    log evidence          log p(y) = −½ yᵀ(K+σ²I)⁻¹y − ½ log det(K+σ²I) − (n/2) log 2π

Noise convention (docs/conventions.md): σ² is the Bayesian observation-noise variance. For Langevin with
L = ½ Σ_μ (f − y)² it equals the temperature T; with L = Σ_μ (f − y)² it is T/2. Mean-field
users pass σ² = σ̃²/χ. The variance returned is that of the latent f (add σ² for a noisy label).

Numerics: one Cholesky factorization of K + σ²I (LAPACK potrf); σ² = 0 is allowed when K is
positive definite. If K + σ²I is not numerically positive definite the functions raise a
ValueError naming noise_variance instead of returning a silent result. The reported
condition number is LAPACK's 1-norm estimate (pocon) from the factor, O(n²) extra work.
The latent variance is returned as computed (it can be ~−1e-16·k_** from rounding at
interpolated points; it is not clipped).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import linalg

__all__ = ["GPPosterior", "gp_posterior", "gp_posterior_covariance"]

# Relative tolerance for the symmetry check of K_train.
_SYMMETRY_TOLERANCE = 1e-10


class GPPosterior(NamedTuple):
    """GP posterior at n_test points (Naveh et al., PRE 2021).

    mean (n_test,), variance (n_test,) of the latent f, log_marginal_likelihood (float),
    condition_number (1-norm estimate of K + σ²I), discrepancy t̄ = (K + σ²I)⁻¹ y (n,).
    """

    mean: np.ndarray
    variance: np.ndarray
    log_marginal_likelihood: float
    condition_number: float
    discrepancy: np.ndarray


class _Factor(NamedTuple):
    lower: np.ndarray  # Cholesky factor L of K + σ²I (lower triangular)
    condition_number: float


def _check_noise_variance(noise_variance) -> float:
    try:
        value = float(noise_variance)
    except (TypeError, ValueError):
        raise ValueError(f"noise_variance must be a non-negative number, got {noise_variance!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"noise_variance must be finite and non-negative, got {noise_variance!r}")
    return value


def _check_train(K_train) -> np.ndarray:
    K_train = np.asarray(K_train, dtype=np.float64)
    if K_train.ndim != 2 or K_train.shape[0] != K_train.shape[1] or K_train.shape[0] == 0:
        raise ValueError(f"K_train must be a non-empty square (n, n) matrix, got shape {K_train.shape}")
    if not np.all(np.isfinite(K_train)):
        raise ValueError("K_train must be finite")
    scale = max(np.abs(K_train).max(), 1e-300)
    if np.abs(K_train - K_train.T).max() > _SYMMETRY_TOLERANCE * scale:
        raise ValueError("K_train must be symmetric (max |K − Kᵀ| exceeds 1e-10 · max |K|)")
    return K_train


def _check_test_train(K_test_train, n: int) -> np.ndarray:
    K_test_train = np.asarray(K_test_train, dtype=np.float64)
    if K_test_train.ndim != 2 or K_test_train.shape[1] != n:
        raise ValueError(f"K_test_train must have shape (n_test, {n}) to match K_train, "
                         f"got {K_test_train.shape}")
    if not np.all(np.isfinite(K_test_train)):
        raise ValueError("K_test_train must be finite")
    return K_test_train


def _factorize(K_train: np.ndarray, noise_variance: float) -> _Factor:
    n = K_train.shape[0]
    regularized = K_train + noise_variance * np.eye(n)
    lower, info = linalg.lapack.dpotrf(regularized, lower=1, clean=1)
    if info != 0:
        raise ValueError(
            f"K_train + noise_variance·I is not numerically positive definite (Cholesky failed at "
            f"pivot {info}) with noise_variance={noise_variance!r}; increase noise_variance or "
            "check that K_train is a positive semi-definite Gram")
    norm_1 = np.abs(regularized).sum(axis=0).max()
    reciprocal, info = linalg.lapack.dpocon(lower, norm_1, uplo="L")
    condition_number = math.inf if info != 0 or reciprocal == 0 else 1.0 / reciprocal
    return _Factor(lower, condition_number)


def gp_posterior(K_train, K_test_train, K_test_diag, y, noise_variance) -> GPPosterior:
    """GP posterior mean, latent variance, evidence and discrepancy (module docstring equations).

    Shapes: K_train (n, n) symmetric PSD, K_test_train (n_test, n), K_test_diag (n_test,) = k_**,
    y (n,). noise_variance σ² ≥ 0 (Bayesian observation noise; = T for L = ½Σ(f−y)²).
    Limits: σ² → ∞ gives mean → 0 and variance → k_** (the prior); σ² → 0 with K positive
    definite interpolates y at the training points.
    """
    noise_variance = _check_noise_variance(noise_variance)
    K_train = _check_train(K_train)
    n = K_train.shape[0]
    K_test_train = _check_test_train(K_test_train, n)
    K_test_diag = np.asarray(K_test_diag, dtype=np.float64)
    if K_test_diag.shape != (K_test_train.shape[0],):
        raise ValueError(f"K_test_diag must have shape ({K_test_train.shape[0]},) = (n_test,), got "
                         f"{K_test_diag.shape}; use gp_posterior_covariance for a full K_test")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match K_train, got {y.shape}")
    if not np.all(np.isfinite(y)) or not np.all(np.isfinite(K_test_diag)):
        raise ValueError("y and K_test_diag must be finite")

    factor = _factorize(K_train, noise_variance)
    whitened_y = linalg.solve_triangular(factor.lower, y, lower=True)  # L⁻¹ y
    discrepancy = linalg.solve_triangular(factor.lower.T, whitened_y, lower=False)  # (K+σ²I)⁻¹ y
    whitened_test = linalg.solve_triangular(factor.lower, K_test_train.T, lower=True)  # L⁻¹ k_*
    mean = K_test_train @ discrepancy
    variance = K_test_diag - np.einsum("ij,ij->j", whitened_test, whitened_test)
    log_det = 2.0 * np.sum(np.log(np.diag(factor.lower)))
    log_marginal_likelihood = float(-0.5 * whitened_y @ whitened_y - 0.5 * log_det
                                    - 0.5 * n * math.log(2.0 * math.pi))
    return GPPosterior(mean, variance, log_marginal_likelihood, factor.condition_number, discrepancy)


def gp_posterior_covariance(K_train, K_test_train, K_test, noise_variance) -> np.ndarray:
    """Full latent posterior covariance K_** − k_*ᵀ(K + σ²I)⁻¹k_*, shape (n_test, n_test).

    K_test is the full (n_test, n_test) prior Gram of the test points; its diagonal gives the
    `variance` of `gp_posterior`. Returned exactly symmetric; same noise convention and
    failure behaviour as `gp_posterior`.
    """
    noise_variance = _check_noise_variance(noise_variance)
    K_train = _check_train(K_train)
    K_test_train = _check_test_train(K_test_train, K_train.shape[0])
    K_test = np.asarray(K_test, dtype=np.float64)
    n_test = K_test_train.shape[0]
    if K_test.shape != (n_test, n_test):
        raise ValueError(f"K_test must have shape ({n_test}, {n_test}) = (n_test, n_test), got {K_test.shape}")
    factor = _factorize(K_train, noise_variance)
    whitened_test = linalg.solve_triangular(factor.lower, K_test_train.T, lower=True)
    covariance = K_test - whitened_test.T @ whitened_test
    return 0.5 * (covariance + covariance.T)
