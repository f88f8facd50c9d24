"""Proportional-regime kernel renormalization, one hidden layer, odd activation (Pacelli et al., Nat. Mach. Intell. 2023).

Pacelli, Ariosto, Pastore, Ginelli, Gherardi, Rotondo, Nat. Mach. Intell. 5, 1497 (2023),
arXiv 2209.04882 (authors' package `deepbays`, class FC_1HL). Width N and training-set size P grow
together, α = P/N fixed; the posterior of the outputs is a GP whose kernel is the NNGP kernel
rescaled by one scalar order parameter Q̄ ("global kernel renormalization").

Convention (the project's): network f(x) = Σ_{c=1}^N a_c φ(w_c·x), potential
U = ½ Σ_μ (f(x_μ) − y_μ)² + Σ_l (γ_l/2)|θ_l|², temperature T; prior variances T/γ_l:
w_c ~ N(0, σ_w²/d · I_d), a_c ~ N(0, σ_a²/(χN)); observation noise σ² = T (T/2 for a plain sum of
squares). The NNGP Gram passed to every function of this module is

    K(x, x') = (σ_a²/χ) E_w[φ(w·x) φ(w·x')]   (e.g. theory.kernels.two_layer_gram(..., sigma_a2=σ_a²/χ)),

and `noise_variance` is σ² (= T for U above). Mapping to Pacelli's λ's (O(1) weights with explicit
1/√fan_in factors, h = W⁰x/√N0, f = vᵀφ(h)/√N1, prior precisions λ0, λ1, loss ½SSE at temperature T):
σ_w² = 1/λ0 (their C = XXᵀ/(N0λ0) is our σ_w² XXᵀ/d), σ_a²/χ = 1/λ1, their T is our σ², N1 = N, so their
NNGP Gram K/λ1 is our K. (Their `l1` is a fan-in–normalized precision; mean-field scaling χ = N is
λ1 = N/σ̃_a² here.)

Effective action per unit width (to be minimized over Q̄ > 0), K = U diag(k_i) Uᵀ, ỹ = Uᵀy:

    S(Q̄) = Q̄ − log Q̄ + (1/N) Σ_i [ log(σ² + Q̄ k_i) + ỹ_i²/(σ² + Q̄ k_i) ]
         = Q̄ − log Q̄ + (1/N) [ log det(σ²I + Q̄K) + yᵀ(σ²I + Q̄K)⁻¹y ],

−log Z = (N/2) min S + const. Predictions: GP regression with the renormalized kernel K_R = Q̄ K
(test kernels from the same NNGP with the same Q̄). N → ∞: the 1/N term vanishes, Q̄ = 1 (the NNGP).

Minimizer: d S/d log Q̄ = Q̄ − 1 + (Q̄/N) Σ_i k_i/(σ² + Q̄k_i) − (Q̄/N) Σ_i ỹ_i² k_i/(σ² + Q̄k_i)² is −1 at
Q̄ → 0 and +∞ at Q̄ → ∞, so a stationary point always exists. Every sign change on a log grid of Q̄ in
[1e-8, 1e8] is refined with Brent's method and the stationary point of lowest S is returned;
converged ⇔ |dS/d log Q̄| ≤ gradient_tol.

T → 0 closed form [DERIVED]: S'(Q̄) = 0 with σ² = 0 gives Q̄² + (α − 1)Q̄ − α r = 0,
Q̄ = [(1 − α) + √((1 − α)² + 4αr)]/2, r = yᵀK⁻¹y/P (K positive definite).

Sanity identity [DERIVED]: if ỹ_i² = σ² + k_i (labels distributed as the NNGP prior plus noise), every
term of the 1/N sum cancels at Q̄ = 1, so Q̄ = 1 for every α. To first order in 1/N,
Q̄ = 1 + (1/N)[t̄ᵀK t̄ − Tr((K + σ²I)⁻¹K)], t̄ = (K + σ²I)⁻¹y.

Estimator of Q̄ from samples [DERIVED]: K depends on σ_a² only through Q̄σ_a², so by the envelope
theorem σ_a² ∂_{σ_a²} log Z = −(N/2) Q̄ ∂_Q̄ [S − (Q̄ − log Q̄)] = N(Q̄ − 1)/2; with the Gaussian readout
prior, σ_a² ∂_{σ_a²} log Z = (χN/(2σ_a²)) E|a|² − N/2. Hence E_posterior|a|² = Q̄ σ_a²/χ, i.e.
Q̄ = E|a|² / E_prior|a|² (`order_parameter_from_readout_norm`).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
from scipy import optimize

from theory.gaussian_process import gp_posterior
from theory.validation import check_nonnegative, check_positive

__all__ = [
    "OneLayerSolution",
    "RenormalizedPrediction",
    "first_order_order_parameter",
    "one_layer_action",
    "one_layer_action_gradient",
    "one_layer_zero_temperature",
    "order_parameter_from_readout_norm",
    "renormalized_prediction",
    "solve_one_layer",
]

# Log-grid of Q̄ on which sign changes of dS/dlog Q̄ are searched (before Brent refinement).
_LOG_Q_RANGE = (math.log(1e-8), math.log(1e8))
_GRID_POINTS = 321


class OneLayerSolution(NamedTuple):
    """Minimizer of S(Q̄). order_parameter: Q̄; action: S(Q̄); gradient: dS/dlog Q̄ there;
    converged/residual (= |gradient|)/iterations (Brent iterations summed over brackets)/message."""

    order_parameter: float
    action: float
    gradient: float
    converged: bool
    residual: float
    iterations: int
    message: str


class RenormalizedPrediction(NamedTuple):
    """GP regression with a renormalized kernel K_R (Pacelli et al., Nat. Mach. Intell. 2023).

    mean_test (m,), variance_test (m,) (latent f), mean_train (P,), variance_train (P,);
    test_error = mean[(y_test − f̄)² + var] (None without y_test; add σ² for a noisy test label);
    train_error = mean[(y − f̄_train)² + var_train] (posterior-averaged training MSE).
    """

    mean_test: np.ndarray
    variance_test: np.ndarray
    mean_train: np.ndarray
    variance_train: np.ndarray
    test_error: Optional[float]
    train_error: float


class _Spectrum(NamedTuple):
    eigenvalues: np.ndarray   # k_i ≥ 0, (P,)
    projections2: np.ndarray  # ỹ_i², (P,)


def _gram_and_labels(gram, y):
    K = np.asarray(gram, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] == 0 or not np.all(np.isfinite(K)):
        raise ValueError(f"gram must be a finite square (P, P) matrix, got shape {K.shape}")
    if np.abs(K - K.T).max() > 1e-10 * max(np.abs(K).max(), 1e-300):
        raise ValueError("gram must be symmetric")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (K.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({K.shape[0]},), got shape {y.shape}")
    return 0.5 * (K + K.T), y


def _spectrum(gram, y) -> _Spectrum:
    K, y = _gram_and_labels(gram, y)
    k, U = np.linalg.eigh(K)
    if k.min() < -1e-9 * max(k.max(), 1e-300):
        raise ValueError(f"gram must be positive semi-definite, smallest eigenvalue {k.min()!r}")
    return _Spectrum(np.maximum(k, 0.0), (U.T @ y) ** 2)


def _check_noise(noise_variance, spectrum: _Spectrum) -> float:
    s2 = check_nonnegative(noise_variance, "noise_variance")
    if s2 == 0.0 and spectrum.eigenvalues.min() <= 0.0:
        raise ValueError("noise_variance = 0 needs a positive definite gram (it is singular)")
    return s2


def _action(q, spec: _Spectrum, width, s2):
    A = s2 + q * spec.eigenvalues
    return q - math.log(q) + float(np.sum(np.log(A) + spec.projections2 / A)) / width


def _log_gradient(log_q, spec: _Spectrum, width, s2):
    """dS/dlog Q̄ (module docstring)."""
    q = math.exp(log_q)
    k, y2 = spec.eigenvalues, spec.projections2
    A = s2 + q * k
    return q - 1.0 + q * float(np.sum(k / A - y2 * k / (A * A))) / width


def one_layer_action(order_parameter, gram, y, *, width, noise_variance) -> float:
    """S(Q̄) of the module docstring (per unit width). gram: NNGP Gram K (P, P); y (P,)."""
    spec = _spectrum(gram, y)
    return _action(check_positive(order_parameter, "order_parameter"), spec,
                   check_positive(width, "width"), _check_noise(noise_variance, spec))


def one_layer_action_gradient(order_parameter, gram, y, *, width, noise_variance) -> float:
    """dS/dQ̄ = 1 − 1/Q̄ + (1/N)[Tr((σ²+Q̄K)⁻¹K) − yᵀ(σ²+Q̄K)⁻¹K(σ²+Q̄K)⁻¹y]."""
    spec = _spectrum(gram, y)
    q = check_positive(order_parameter, "order_parameter")
    return _log_gradient(math.log(q), spec, check_positive(width, "width"),
                         _check_noise(noise_variance, spec)) / q


def solve_one_layer(gram, y, *, width, noise_variance, gradient_tol: float = 1e-10) -> OneLayerSolution:
    """Global minimizer of S(Q̄) over Q̄ ∈ [1e-8, 1e8] (method in the module docstring).

    gram: NNGP Gram K = (σ_a²/χ)E[φφ] on the training inputs (P, P); y (P,); width N; noise_variance
    σ² ≥ 0 (0 needs K positive definite). width = inf returns the NNGP, Q̄ = 1.
    """
    spec = _spectrum(gram, y)
    s2 = _check_noise(noise_variance, spec)
    width = float(width)
    if width == math.inf:
        return OneLayerSolution(1.0, 1.0, 0.0, True, 0.0, 0, "infinite width: NNGP")
    width = check_positive(width, "width")
    grid = np.linspace(*_LOG_Q_RANGE, _GRID_POINTS)
    values = np.array([_log_gradient(t, spec, width, s2) for t in grid])
    candidates, iterations = [], 0
    for i in np.nonzero(np.sign(values[:-1]) != np.sign(values[1:]))[0]:
        if values[i] == 0.0:
            candidates.append(grid[i])
            continue
        root, info = optimize.brentq(_log_gradient, grid[i], grid[i + 1], args=(spec, width, s2),
                                     xtol=1e-15, rtol=4 * np.finfo(float).eps, full_output=True)
        iterations += info.iterations
        if values[i] < 0 < values[i + 1]:  # a minimum (dS/dlogQ̄ increasing through zero)
            candidates.append(root)
    if not candidates:
        return OneLayerSolution(math.nan, math.nan, math.nan, False, math.inf, iterations,
                                "no minimum of S in Q̄ ∈ [1e-8, 1e8]")
    best = min(candidates, key=lambda t: _action(math.exp(t), spec, width, s2))
    q = math.exp(best)
    gradient = _log_gradient(best, spec, width, s2)
    converged = abs(gradient) <= gradient_tol
    return OneLayerSolution(q, _action(q, spec, width, s2), gradient, converged, abs(gradient),
                            iterations, "" if converged else f"|dS/dlogQ| = {abs(gradient):.3g}")


def one_layer_zero_temperature(gram, y, *, width) -> float:
    """T → 0 closed form Q̄ = [(1 − α) + √((1 − α)² + 4αr)]/2, α = P/N, r = yᵀK⁻¹y/P."""
    K, y = _gram_and_labels(gram, y)
    width = check_positive(width, "width")
    try:
        r = float(y @ np.linalg.solve(K, y)) / len(y)
    except np.linalg.LinAlgError as error:
        raise ValueError("the T → 0 closed form needs a positive definite gram") from error
    alpha = len(y) / width
    return 0.5 * ((1.0 - alpha) + math.sqrt((1.0 - alpha) ** 2 + 4.0 * alpha * r))


def first_order_order_parameter(gram, y, *, width, noise_variance) -> float:
    """Q̄ to first order in 1/N: 1 + (1/N)[t̄ᵀK t̄ − Tr((K+σ²I)⁻¹K)], t̄ = (K+σ²I)⁻¹y."""
    spec = _spectrum(gram, y)
    s2 = _check_noise(noise_variance, spec)
    k, y2 = spec.eigenvalues, spec.projections2
    A = s2 + k
    return 1.0 + float(np.sum(y2 * k / A ** 2 - k / A)) / check_positive(width, "width")


def order_parameter_from_readout_norm(mean_squared_norm, readout_variance, chi: float = 1.0) -> float:
    """Q̄ = E_posterior|a|² / E_prior|a|² = χ E|a|² / σ̃_a² (module docstring derivation).

    mean_squared_norm: the sampled posterior mean of |a|² = Σ_c a_c² (all N readout weights);
    readout_variance: σ̃_a² (readout prior a_c ~ N(0, σ̃_a²/(χN))). In the training view,
    E_prior|a|² = N T/γ_a.
    """
    return check_nonnegative(mean_squared_norm, "mean_squared_norm") * check_positive(chi, "chi") \
        / check_positive(readout_variance, "readout_variance")


def renormalized_prediction(kernel_train, kernel_test_train, kernel_test_diag, y, *,
                            noise_variance, y_test=None) -> RenormalizedPrediction:
    """GP regression with renormalized kernel blocks (already multiplied by the order parameter).

    kernel_train K_R (P, P), kernel_test_train K_R(X_test, X) (m, P), kernel_test_diag (m,);
    f̄ = K_R(x*, X)(K_R + σ²I)⁻¹y, var = K_R(x*,x*) − K_R(x*,X)(K_R+σ²I)⁻¹K_R(X,x*)
    (theory.gaussian_process.gp_posterior).
    """
    test = gp_posterior(kernel_train, kernel_test_train, kernel_test_diag, y, noise_variance)
    K = np.asarray(kernel_train, dtype=np.float64)
    train = gp_posterior(K, K, np.diag(K).copy(), y, noise_variance)
    y = np.asarray(y, dtype=np.float64)
    train_error = float(np.mean((y - train.mean) ** 2 + train.variance))
    test_error = None
    if y_test is not None:
        y_test = np.asarray(y_test, dtype=np.float64)
        if y_test.shape != test.mean.shape:
            raise ValueError(f"y_test must have shape {test.mean.shape}, got {y_test.shape}")
        test_error = float(np.mean((y_test - test.mean) ** 2 + test.variance))
    return RenormalizedPrediction(test.mean, test.variance, train.mean, train.variance,
                                  test_error, train_error)
