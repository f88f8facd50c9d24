"""Eigenlearning: the self-consistent κ of kernel (GP-mean) regression, learnabilities, test/train error.

Cohen, Malka & Ringel 2021; Canatar, Bordelon & Pehlevan 2021; Howard, Maiti, Jefferson & Ringel
2024. A kernel with eigenvalues λ_i (w.r.t. the data measure, eigenfunctions
orthonormal in L²(μ)), multiplicities m_i, n training samples, ridge δ. For the Bayesian network
the ridge is the GP noise variance, δ = σ² (= T for L = ½Σ(f−y)², T/2 for L = Σ(f−y)²; σ̃²/χ in
mean-field variables).

* Equivalent kernel (EK, n → ∞ or large noise): L_i = λ_i/(λ_i + σ²/n); the posterior variance of
  mode i is λ_i (σ²/n)/(λ_i + σ²/n) (§1.2).
* Simon et al. convention (james-simon/eigenlearning): κ_S solves
      Σ_i m_i λ_i/(λ_i + κ_S) + δ/κ_S = n,
  L_i = λ_i/(λ_i + κ_S), E_0 = n/(n − Σ_i m_i L_i²),
  test MSE = E_0 [Σ_i (1 − L_i)² v_i² + ε²]   (ε² = label-noise variance, noisy test label),
  train MSE = (δ/(n κ_S))² × test MSE.
* Canatar–Bordelon–Pehlevan convention: κ_C = n κ_S, γ = Σ_i m_i L_i²/n, 1/(1 − γ) = E_0,
  mode error E_i = E_0 (1 − L_i)² (normalized by the target power), E_g = Σ v_i² E_i + ε² γ/(1−γ)
  (error against the clean target = test MSE − ε²).
* Target convention: v_i² is the total target power in eigenspace i (for m_i = 1 the squared
  coefficient; with m_i > 1 the sum over the degenerate copies, since every copy has the same L_i).
* These errors are those of the posterior *mean* (the KRR predictor). The expected error of a
  posterior *sample* adds the posterior variance (Naveh et al., PRE 2021).

The κ equation is solved by Brent's method on log κ inside a bracket proven to contain the root
(left side decreasing in κ): κ_hi = (Σ m λ + δ)/n, κ_lo = δ/n (δ > 0) or found by decades when
δ = 0, which needs Σ_{λ_i>0} m_i > n.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from theory.validation import check_nonnegative as _check_nonnegative, check_positive as _check_positive

__all__ = [
    "KappaSolution",
    "RGEffectiveRidge",
    "ek_learnability",
    "ek_mode_variance",
    "mode_errors",
    "predicted_test_mse",
    "predicted_train_mse",
    "rg_effective_ridge",
    "solve_kappa",
]

_MAX_BRACKET_DECADES = 400  # search for κ_lo when δ = 0: 1e-400 relative is beyond float64


class KappaSolution(NamedTuple):
    """Solution of the self-consistent κ equation (Canatar, Bordelon & Pehlevan 2021).

    kappa_simon κ_S; kappa_canatar κ_C = n κ_S; learnabilities L_i (shape of eigenvalues);
    gamma = Σ m L²/n; e0 = 1/(1 − γ); converged, residual (relative: (LHS − n)/n at κ_S),
    iterations (Brent iterations). The inputs are kept so that error formulas can use them.
    """

    kappa_simon: float
    kappa_canatar: float
    learnabilities: np.ndarray
    gamma: float
    e0: float
    converged: bool
    residual: float
    iterations: int
    eigenvalues: np.ndarray
    multiplicities: np.ndarray
    n: float
    ridge: float


class RGEffectiveRidge(NamedTuple):
    """RG decimation of the unlearnable tail (Howard, Maiti, Jefferson & Ringel 2024).

    cutoff Λ′ (number of leading entries kept), effective_ridge T(Λ′) = δ + Σ_{k>Λ′} m_k λ_k,
    kappa: κ re-solved on the kept spectrum with that ridge, full: κ of the whole spectrum
    (used for the learnability threshold), relative_kappa_error = κ_S(kept)/κ_S(full) − 1 ≥ 0.
    """

    cutoff: int
    effective_ridge: float
    kappa: KappaSolution
    full: KappaSolution
    relative_kappa_error: float


def _check_spectrum(eigenvalues, multiplicities):
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    if eigenvalues.ndim != 1:
        raise ValueError(f"eigenvalues must be a 1-D array, got shape {eigenvalues.shape}")
    if not np.all(np.isfinite(eigenvalues)) or np.any(eigenvalues < 0):
        raise ValueError("eigenvalues must be finite and non-negative")
    if multiplicities is None:
        multiplicities = np.ones_like(eigenvalues)
    else:
        multiplicities = np.asarray(multiplicities, dtype=np.float64)
        if multiplicities.shape != eigenvalues.shape:
            raise ValueError(f"multiplicities must have the shape of eigenvalues {eigenvalues.shape}, "
                             f"got {multiplicities.shape}")
        if not np.all(np.isfinite(multiplicities)) or np.any(multiplicities <= 0):
            raise ValueError("multiplicities must be finite and positive")
    return eigenvalues, multiplicities


def ek_learnability(eigenvalues, noise_variance, n) -> np.ndarray:
    """Equivalent-kernel learnability L = λ/(λ + σ²/n), elementwise (Cohen, Malka & Ringel 2021).

    noise_variance σ² ≥ 0 is the GP noise (= T for L = ½Σ(f−y)²); n > 0 samples.
    """
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    if not np.all(np.isfinite(eigenvalues)) or np.any(eigenvalues < 0):
        raise ValueError("eigenvalues must be finite and non-negative")
    noise_variance = _check_nonnegative(noise_variance, "noise_variance")
    n = _check_positive(n, "n")
    shift = noise_variance / n
    with np.errstate(invalid="ignore"):
        return np.where(eigenvalues + shift > 0, eigenvalues / (eigenvalues + shift), 1.0)


def ek_mode_variance(eigenvalues, noise_variance, n) -> np.ndarray:
    """Equivalent-kernel posterior variance of mode k: λ (σ²/n)/(λ + σ²/n) (Cohen, Malka & Ringel 2021)."""
    learnability = ek_learnability(eigenvalues, noise_variance, n)
    return (1.0 - learnability) * np.asarray(eigenvalues, dtype=np.float64)


def _kappa_lhs_minus_n(kappa: float, eigenvalues, multiplicities, n: float, ridge: float) -> float:
    """(Σ m λ/(λ+κ) + δ/κ − n)/n, decreasing in κ > 0."""
    return (np.sum(multiplicities * eigenvalues / (eigenvalues + kappa)) + ridge / kappa) / n - 1.0


def solve_kappa(eigenvalues, n, ridge, multiplicities=None) -> KappaSolution:
    """Solve Σ_i m_i λ_i/(λ_i + κ) + δ/κ = n for κ = κ_S > 0 (Canatar, Bordelon & Pehlevan 2021).

    eigenvalues (M,) ≥ 0, multiplicities (M,) > 0 (default 1; need not be integers), n > 0
    samples, ridge δ ≥ 0 (δ = 0 requires Σ_{λ_i>0} m_i > n, i.e. the interpolating regime).
    Bracketed Brent root find on log κ (xtol 1e-14 in log κ), never unbracketed; the result
    reports converged/residual/iterations. Raises ValueError when no positive root exists.
    """
    eigenvalues, multiplicities = _check_spectrum(eigenvalues, multiplicities)
    n = _check_positive(n, "n")
    ridge = _check_nonnegative(ridge, "ridge")
    trace = float(np.sum(multiplicities * eigenvalues))
    if ridge == 0.0:
        modes = float(np.sum(multiplicities[eigenvalues > 0]))
        if modes <= n:
            raise ValueError(f"ridge=0 needs more than n={n!r} modes with positive eigenvalue "
                             f"(counted with multiplicity), got {modes!r}")
    if trace == 0.0:  # only the ridge term: δ/κ = n
        if ridge == 0.0:
            raise ValueError("eigenvalues are all zero and ridge=0: the κ equation has no root")
        kappa, converged, iterations = ridge / n, True, 0
    else:
        # Imported here: scipy.optimize costs ~0.3 s at import and theory must import fast.
        from scipy import optimize

        def objective(log_kappa: float) -> float:
            return _kappa_lhs_minus_n(math.exp(log_kappa), eigenvalues, multiplicities, n, ridge)

        log_hi = math.log((trace + ridge) / n)  # LHS < (Σ m λ + δ)/κ = n there
        if ridge > 0:
            log_lo = math.log(ridge / n)  # δ/κ = n there, so LHS ≥ n
        else:
            log_lo = log_hi
            for _ in range(_MAX_BRACKET_DECADES):
                if objective(log_lo) > 0:
                    break
                log_lo -= math.log(10.0)
            else:  # pragma: no cover - excluded by the mode-count check above
                raise ValueError("could not bracket κ with ridge=0")
        if log_lo == log_hi:
            kappa, converged, iterations = math.exp(log_lo), True, 0
        else:
            log_kappa, info = optimize.brentq(objective, log_lo, log_hi, xtol=1e-14,
                                              rtol=8.9e-16, maxiter=500, full_output=True,
                                              disp=False)
            kappa, converged, iterations = math.exp(log_kappa), bool(info.converged), int(info.iterations)
    residual = _kappa_lhs_minus_n(kappa, eigenvalues, multiplicities, n, ridge)
    learnabilities = eigenvalues / (eigenvalues + kappa)
    gamma = float(np.sum(multiplicities * learnabilities**2)) / n
    return KappaSolution(kappa_simon=kappa, kappa_canatar=n * kappa, learnabilities=learnabilities,
                         gamma=gamma, e0=1.0 / (1.0 - gamma), converged=converged,
                         residual=float(residual), iterations=iterations, eigenvalues=eigenvalues,
                         multiplicities=multiplicities, n=n, ridge=ridge)


def mode_errors(result: KappaSolution) -> np.ndarray:
    """Per-mode test error per unit target power: E_i = E_0 (1 − L_i)² (Canatar's E_i), shape (M,)."""
    return result.e0 * (1.0 - result.learnabilities) ** 2


def _target_power(result: KappaSolution, target_coefficients) -> np.ndarray:
    target = np.asarray(target_coefficients, dtype=np.float64)
    if target.shape != result.eigenvalues.shape:
        raise ValueError(f"target_coefficients must have the shape of the eigenvalues "
                         f"{result.eigenvalues.shape}, got {target.shape}")
    if not np.all(np.isfinite(target)):
        raise ValueError("target_coefficients must be finite")
    return target * target


def predicted_test_mse(result: KappaSolution, target_coefficients, noise_variance_labels=0.0,
                       include_label_noise: bool = True) -> float:
    """Predicted test MSE of the posterior mean (KRR predictor), Canatar, Bordelon & Pehlevan 2021.

    E_0 [Σ_i (1 − L_i)² v_i² + ε²] with ε² = noise_variance_labels (the variance of the noise in
    the labels, which may differ from the ridge). include_label_noise=True is the error against
    a noisy test label (Simon et al.); False subtracts ε², giving the error against the clean
    target (Canatar's E_g = Σ v² E_i + ε² γ/(1−γ)). v_i: see the module docstring.
    """
    power = _target_power(result, target_coefficients)
    label_noise = _check_nonnegative(noise_variance_labels, "noise_variance_labels")
    noisy = result.e0 * (float(np.sum((1.0 - result.learnabilities) ** 2 * power)) + label_noise)
    return noisy if include_label_noise else noisy - label_noise


def predicted_train_mse(result: KappaSolution, target_coefficients, noise_variance_labels=0.0) -> float:
    """Predicted train MSE: (δ/(n κ_S))² × E_0 [Σ (1 − L_i)² v_i² + ε²] (Simon et al.; noisy labels)."""
    factor = (result.ridge / (result.n * result.kappa_simon)) ** 2
    return factor * predicted_test_mse(result, target_coefficients, noise_variance_labels, True)


def rg_effective_ridge(eigenvalues, n, ridge, learnability_threshold,
                       multiplicities=None) -> RGEffectiveRidge:
    """RG decimation (Howard, Maiti, Jefferson & Ringel 2024): keep the learnable modes, fold the rest into the ridge.

    Modes with self-consistent learnability L_k ≥ learnability_threshold (L from the κ of the
    full spectrum; eigenvalues must be non-increasing so the kept modes are a prefix) are kept:
    cutoff Λ′. The tail becomes extra noise T(Λ′) = δ + Σ_{k>Λ′} m_k λ_k, and κ is re-solved on
    the kept spectrum with ridge T(Λ′). Because λ/κ ≥ λ/(λ+κ), κ(kept) ≥ κ(full), and the
    relative error falls monotonically as the threshold moves into the tail (R3).
    """
    eigenvalues, multiplicities = _check_spectrum(eigenvalues, multiplicities)
    threshold = float(learnability_threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"learnability_threshold must lie in (0, 1), got {learnability_threshold!r}")
    if np.any(np.diff(eigenvalues) > 0):
        raise ValueError("eigenvalues must be sorted in non-increasing order for the RG cutoff")
    full = solve_kappa(eigenvalues, n, ridge, multiplicities)
    cutoff = int(np.count_nonzero(full.learnabilities >= threshold))
    tail = float(np.sum(multiplicities[cutoff:] * eigenvalues[cutoff:]))
    effective_ridge = float(ridge) + tail
    kept = solve_kappa(eigenvalues[:cutoff], n, effective_ridge, multiplicities[:cutoff])
    return RGEffectiveRidge(cutoff=cutoff, effective_ridge=effective_ridge, kappa=kept, full=full,
                            relative_kappa_error=kept.kappa_simon / full.kappa_simon - 1.0)
