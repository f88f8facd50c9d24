"""Exact posterior of a one-hidden-layer LINEAR network at finite width: a one-dimensional
integral over the readout norm (the finite-N reference of the Q̄ theory, Pacelli et al., Nat. Mach. Intell. 2023).

Convention (the project's, standard scaling χ = 1): f(x) = Σ_{c=1}^N a_c (w_c·x), no bias,
w_c ~ N(0, σ_w²/d · I_d), a_c ~ N(0, σ_a²/N), likelihood noise σ² (= T for U = ½ SSE + Σ γ/2 |θ|²).
NNGP Gram K = σ_a² σ_w² X Xᵀ/d (theory.kernels.two_layer_gram(..., "linear", sigma_a2=σ_a²)).

Derivation [DERIVED]: given a, v = Σ_c a_c w_c ~ N(0, (σ_w²/d)|a|² I_d), so f = v·x is a GP with
kernel s K, s = |a|²/σ_a²; under the prior s ~ χ²_N/N, density ∝ s^{N/2−1} e^{−Ns/2}. Hence the
posterior of s is exactly

    p(s | y) ∝ s^{N/2−1} e^{−Ns/2} N(y; 0, σ²I + sK) = exp(−(N/2) S(s)) / s,

with S the one-layer action of theory.proportional_one_layer (Pacelli et al. 2023, §5.2). In
t = log s the weight is exp(−(N/2) S(e^t)). The saddle point of S is the theory's Q̄ (leading
order at fixed α = P/N); this integral is exact at every N, so exact − saddle is the finite-size
correction. Exact moments (f* on test points, m(s), v(s) the GP posterior mean/variance with
kernel sK):

    E[f*] = E_s[m(s)],   Var[f*] = E_s[v(s)] + Var_s[m(s)],   E|a|²/σ_a² = E_s[s].

Quadrature: trapezoid rule on a uniform grid in t over ±`half_width` standard deviations of the
Gaussian approximation of the t-weight around the saddle (curvature by finite differences).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np

from theory.proportional_one_layer import solve_one_layer
from theory.validation import check_positive

__all__ = ["ExactLinearPosterior", "exact_linear_one_layer"]


class ExactLinearPosterior(NamedTuple):
    """order_parameter: E_s[s] = E|a|²/E_prior|a|²; saddle: the Q̄ minimizer of S;
    mean_test, variance_test (m,); test_error = mean[(y_test − E f*)² + Var f*] (None without
    y_test); grid_points and the t-range covered (in saddle standard deviations)."""

    order_parameter: float
    saddle: float
    mean_test: np.ndarray
    variance_test: np.ndarray
    test_error: Optional[float]
    grid_points: int
    half_width: float


def exact_linear_one_layer(gram, kernel_test_train, kernel_test_diag, y, *, width, noise_variance,
                           y_test=None, grid_points: int = 4001,
                           half_width: float = 12.0) -> ExactLinearPosterior:
    """Exact finite-width test moments of the one-hidden-layer linear network (module docstring).

    gram K (P, P), kernel_test_train (m, P), kernel_test_diag (m,): NNGP blocks of the linear
    network; y (P,); width N; noise_variance σ² > 0.
    """
    width = check_positive(width, "width")
    s2 = check_positive(noise_variance, "noise_variance")
    K = np.asarray(gram, dtype=np.float64)
    k, U = np.linalg.eigh(0.5 * (K + K.T))
    k = np.maximum(k, 0.0)
    y = np.asarray(y, dtype=np.float64)
    y2 = (U.T @ y) ** 2
    Kst = np.asarray(kernel_test_train, dtype=np.float64) @ U  # (m, P) in the eigenbasis
    ystar = Kst * (U.T @ y)  # (m, P)
    kss = np.asarray(kernel_test_diag, dtype=np.float64)
    saddle = solve_one_layer(K, y, width=width, noise_variance=s2)
    if not saddle.converged:
        raise ValueError(f"the saddle point of S did not converge: {saddle.message}")

    def log_weight(t):
        s = np.exp(t)[:, None]
        A = s2 + s * k[None, :]
        action = s[:, 0] - t + np.sum(np.log(A) + y2[None, :] / A, axis=1) / width
        return -0.5 * width * action

    t0, h = math.log(saddle.order_parameter), 1e-3
    curvature = -(log_weight(np.array([t0 + h]))[0] - 2 * log_weight(np.array([t0]))[0]
                  + log_weight(np.array([t0 - h]))[0]) / h ** 2
    sd = 1.0 / math.sqrt(max(curvature, 1e-12))
    t = np.linspace(t0 - half_width * sd, t0 + half_width * sd, grid_points)
    lw = log_weight(t)
    w = np.exp(lw - lw.max())
    w[[0, -1]] *= 0.5
    w /= w.sum()
    s = np.exp(t)
    A = s2 + s[:, None] * k[None, :]  # (G, P)
    means = s[:, None] * ((1.0 / A) @ ystar.T)  # m(s) = s K*ᵀ U (σ² + s k)⁻¹ ỹ
    variances = s[:, None] * kss[None, :] - (s ** 2)[:, None] * ((1.0 / A) @ (Kst ** 2).T)
    mean = w @ means
    variance = w @ variances + w @ (means - mean) ** 2
    test_error = None
    if y_test is not None:
        y_test = np.asarray(y_test, dtype=np.float64)
        test_error = float(np.mean((y_test - mean) ** 2 + variance))
    return ExactLinearPosterior(float(w @ s), saddle.order_parameter, mean, variance, test_error,
                                grid_points, half_width)
