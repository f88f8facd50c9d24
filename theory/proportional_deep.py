"""Proportional-regime kernel renormalization for deep fully connected networks (Pacelli et al., Nat. Mach. Intell. 2023), and
the back-propagating kernel renormalization (BKR) of deep linear networks.

Pacelli et al., Nat. Mach. Intell. 2023 (`deepbays` FC_deep_nested / FC_deep_vanilla); Li &
Sompolinsky, Phys. Rev. X 11, 031059 (2021) for the linear case.

Convention (the project's): L hidden layers of widths N_1..N_L; the layer-l weights (fan-in F_l:
F_0 = d, F_l = N_l) have prior variance σ_l²/F_l, l = 0..L (l = L is the readout, mean-field users
pass σ_L² = σ̃_a²/χ); U = ½Σ(f − y)² + Σ_l (γ_l/2)|θ_l|² at temperature T, prior variance T/γ_l,
observation noise σ² = T (`noise_variance`). `weight_variances` = (σ_0², ..., σ_L²) exactly as in
theory.kernels.deep_fc_gram (no biases here). Pacelli's λ's: σ_0² = 1/λ0, σ_l² = 1/λ_l (their `priors`),
their T is our σ². One order parameter Q_l per hidden layer l = 1..L; it multiplies σ_l², the prior
variance of the weights that read hidden layer l.

Renormalized kernels:
* nested:  K_R⁰ = σ_0² XXᵀ/d,  K_R^l = Q_l σ_l² κ_φ(K_R^{l−1}) (l = 1..L), where κ_φ is the activation
  kernel of theory.kernels applied to (diag, cross, diag);
* vanilla: the NNGP recursion without Q, times Π_l Q_l.
Action per unit first-layer width (equal widths: deepbays' `effectiveAction`; L = 1: the
one-hidden-layer action of theory.proportional_one_layer), A = σ²I + K_R^L:

    S({Q_l}) = Σ_l (N_l/N_1)(Q_l − log Q_l) + (1/N_1)[yᵀA⁻¹y + log det A].

−log Z = (N_1/2) min S + const. For φ = identity both forms give K_R^L = (Π_l Q_l) K_lin with the linear
NNGP Gram K_lin = (Π_l σ_l²) XXᵀ/d (Li–Sompolinsky). Minimizer: BFGS in log Q_l with a
Richardson-extrapolated central-difference gradient (error O(h⁴)); converged ⇔ max_l |∂S/∂log Q_l| ≤
gradient_tol. If BFGS from the NNGP point Q = 1 fails, it restarts from the best symmetric point
(all Q_l equal, bounded scalar search).

Deep linear BKR, finite T [DERIVED from S]: with U = Π_l u_l (u_l ≡ Q_l), K_lin = Σ_i k_i v_i v_iᵀ,
ỹ_i = v_i·y, h(U) = Σ_i U k_i/(σ² + U k_i) − Σ_i U k_i ỹ_i²/(σ² + U k_i)², stationarity reads

    u_l = 1 − h(U)/N_l,   U = Π_l (1 − h(U)/N_l),

one scalar equation for log U (Brent on a bracketed sign change, lowest S kept). T → 0 (K_lin positive
definite): h(U) = P(1 − r_0/U), r_0 = yᵀK_lin⁻¹y/P, so u_l = 1 − α_l + α_l r_0/Π u (α_l = P/N_l); equal
widths: u = 1 − α + α r_0 u^{−L}. The function of U whose root this is, Σ_l log(1 − α_l + α_l r_0/U) −
log U, decreases monotonically on its domain, so the root is unique.
The mean predictor at T → 0 is the ridgeless linear GP predictor; the variance is scaled by Π u_l.
Estimator [DERIVED]: S depends on σ_l² only through the product Q_l σ_l², so by the envelope theorem
σ_l² ∂ log Z/∂σ_l² = −(N_1/2) σ_l² ∂S*/∂σ_l² = N_l(Q_l − 1)/2; with the Gaussian prior of the n_l
weights W_l that read layer l (variance σ_l²/N_l each) it equals (N_l/(2σ_l²)) E|W_l|² − n_l/2. Hence

    E_posterior|W_l|² − E_prior|W_l|² = σ_l² (Q_l − 1),   E_prior|W_l|² = σ_l² n_l/N_l,

for every layer (`order_parameters_from_weight_norms`). For the readout (n_L = N_L) this is
Q_L = E|a|²/E_prior|a|²; for an inner layer (n_l = N_l N_{l+1}) the relative change of the norm is only
(Q_l − 1)/N_{l+1}.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
from scipy import linalg, optimize

from theory.kernels import KERNEL_ACTIVATIONS, activation_kernel
from theory.proportional_one_layer import RenormalizedPrediction, renormalized_prediction
from theory.validation import check_nonnegative, check_positive

__all__ = [
    "DeepSolution",
    "bkr_zero_temperature",
    "deep_action",
    "deep_prediction",
    "deep_renormalized_gram",
    "order_parameters_from_weight_norms",
    "solve_bkr",
    "solve_deep",
]

FORMS = ("nested", "vanilla")
_FD_STEP = 1e-3


class DeepSolution(NamedTuple):
    """order_parameters: Q_l (L,); action: S; gradient: ∂S/∂log Q_l (L,); converged/residual
    (max |gradient|)/iterations/message."""

    order_parameters: np.ndarray
    action: float
    gradient: np.ndarray
    converged: bool
    residual: float
    iterations: int
    message: str


class _Problem(NamedTuple):
    X: np.ndarray
    y: np.ndarray
    activation: str
    variances: np.ndarray
    widths: np.ndarray
    noise: float
    form: str


def _check_inputs(X, y=None):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (P, d) array, got shape {X.shape}")
    if y is None:
        return X
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({X.shape[0]},), got shape {y.shape}")
    return X, y


def _problem(X, y, activation, weight_variances, widths, noise_variance, form) -> _Problem:
    X, y = _check_inputs(X, y)
    if activation not in KERNEL_ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(KERNEL_ACTIVATIONS)}, got {activation!r}")
    variances = np.asarray(weight_variances, dtype=np.float64)
    if variances.ndim != 1 or variances.size < 2 or np.any(~np.isfinite(variances)) or np.any(variances <= 0):
        raise ValueError(f"weight_variances must be (σ_0², ..., σ_L²), positive, L ≥ 1; got {weight_variances!r}")
    widths = np.asarray(widths, dtype=np.float64).ravel()
    if widths.size != variances.size - 1 or np.any(~(widths > 0)):
        raise ValueError(f"widths must be {variances.size - 1} positive numbers (one per hidden layer), "
                         f"got {widths!r}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    return _Problem(X, y, activation, variances, widths, check_nonnegative(noise_variance, "noise_variance"), form)


def _recursion(X1, X2, order_parameters, activation, variances, form):
    """K_R on (X1, X2): (cross (n1, n2), diag1 (n1,), diag2 (n2,)); X2 None means X2 = X1."""
    symmetric = X2 is None
    X2 = X1 if symmetric else X2
    d = X1.shape[1]
    diag1 = variances[0] * np.einsum("ij,ij->i", X1, X1) / d
    diag2 = diag1 if symmetric else variances[0] * np.einsum("ij,ij->i", X2, X2) / d
    cross = variances[0] * (X1 @ X2.T) / d
    Q = np.asarray(order_parameters, dtype=np.float64)
    for layer in range(1, variances.size):
        scale = variances[layer] * (Q[layer - 1] if form == "nested" else 1.0)
        if symmetric:
            cross = 0.5 * (cross + cross.T)
            np.fill_diagonal(cross, diag1)
        cross = scale * activation_kernel(activation, diag1[:, None], cross, diag2[None, :])
        new1 = scale * activation_kernel(activation, diag1, diag1, diag1)
        diag2 = new1 if symmetric else scale * activation_kernel(activation, diag2, diag2, diag2)
        diag1 = new1
    if form == "vanilla":
        product = float(np.prod(Q))
        cross, diag1, diag2 = product * cross, product * diag1, product * diag2
    if symmetric:
        cross = 0.5 * (cross + cross.T)
        np.fill_diagonal(cross, diag1)
    return cross, diag1, diag2


def deep_renormalized_gram(X1, X2, order_parameters, *, activation, weight_variances,
                           form: str = "nested") -> np.ndarray:
    """K_R^L(X1, X2) of the module docstring, shape (n1, n2); X2 = None means X2 = X1.
    order_parameters = ones gives theory.kernels.deep_fc_gram (no bias)."""
    X1 = _check_inputs(X1)
    X2 = None if X2 is None else _check_inputs(X2)
    variances = np.asarray(weight_variances, dtype=np.float64)
    Q = np.asarray(order_parameters, dtype=np.float64).ravel()
    if Q.size != variances.size - 1 or np.any(~(Q > 0)):
        raise ValueError(f"order_parameters must be {variances.size - 1} positive numbers, got {order_parameters!r}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    return _recursion(X1, X2, Q, activation, variances, form)[0]


def _action(log_q, prob: _Problem) -> float:
    Q = np.exp(log_q)
    K, _, _ = _recursion(prob.X, None, Q, prob.activation, prob.variances, prob.form)
    A = K + prob.noise * np.eye(len(prob.y))
    try:
        factor = linalg.cho_factor(A, lower=True)
    except linalg.LinAlgError:
        return math.inf
    data = float(prob.y @ linalg.cho_solve(factor, prob.y))
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    n1 = prob.widths[0]
    return float(np.sum(prob.widths / n1 * (Q - log_q))) + (data + log_det) / n1


def _gradient(log_q, prob: _Problem) -> np.ndarray:
    """∂S/∂log Q_l by Richardson-extrapolated central differences (error O(h⁴))."""
    g = np.empty(log_q.size)
    for l in range(log_q.size):
        e = np.zeros(log_q.size)
        e[l] = _FD_STEP
        d1 = (_action(log_q + e, prob) - _action(log_q - e, prob)) / (2 * _FD_STEP)
        d2 = (_action(log_q + e / 2, prob) - _action(log_q - e / 2, prob)) / _FD_STEP
        g[l] = (4.0 * d2 - d1) / 3.0
    return g


def deep_action(order_parameters, X, y, *, activation, weight_variances, widths, noise_variance,
                form: str = "nested") -> float:
    """S({Q_l}) of the module docstring. X (P, d), y (P,), widths (N_1..N_L)."""
    prob = _problem(X, y, activation, weight_variances, widths, noise_variance, form)
    Q = np.asarray(order_parameters, dtype=np.float64).ravel()
    if Q.size != prob.widths.size or np.any(~(Q > 0)):
        raise ValueError(f"order_parameters must be {prob.widths.size} positive numbers, got {order_parameters!r}")
    return _action(np.log(Q), prob)


def solve_deep(X, y, *, activation, weight_variances, widths, noise_variance, form: str = "nested",
               initial=None, gradient_tol: float = 1e-8) -> DeepSolution:
    """Minimize S({Q_l}) (module docstring). widths: N_1..N_L (all inf gives the NNGP, Q = 1)."""
    prob = _problem(X, y, activation, weight_variances, widths, noise_variance, form)
    L = prob.widths.size
    if np.all(np.isinf(prob.widths)):
        return DeepSolution(np.ones(L), math.nan, np.zeros(L), True, 0.0, 0, "infinite width: NNGP")
    if np.any(np.isinf(prob.widths)):
        raise ValueError(f"widths must be all finite or all infinite, got {widths!r}")
    if initial is not None:
        initial = np.asarray(initial, dtype=np.float64).ravel()
        if initial.size != L or np.any(~(initial > 0)) or np.any(~np.isfinite(initial)):
            raise ValueError(f"initial must be {L} finite positive order parameters, got {initial!r}")
    start = np.zeros(L) if initial is None else np.log(initial)
    iterations, best = 0, None
    starts = [start]
    for attempt in range(2):
        result = optimize.minimize(_action, starts[attempt], args=(prob,), jac=_gradient, method="BFGS",
                                   options={"gtol": gradient_tol, "maxiter": 500})
        iterations += int(result.nit)
        g = _gradient(result.x, prob)
        if best is None or result.fun < best[1]:
            best = (result.x, float(result.fun), g)
        if np.max(np.abs(g)) <= gradient_tol:
            break
        if attempt == 0:  # restart from the best symmetric point (all Q_l equal)
            line = optimize.minimize_scalar(lambda t: _action(np.full(L, t), prob), bounds=(-10.0, 10.0),
                                            method="bounded", options={"xatol": 1e-10})
            starts.append(np.full(L, line.x))
    log_q, action, g = best
    residual = float(np.max(np.abs(g)))
    converged = residual <= gradient_tol
    return DeepSolution(np.exp(log_q), action, g, converged, residual, iterations,
                        "" if converged else f"max |dS/dlogQ| = {residual:.3g}")


def deep_prediction(X, X_test, y, order_parameters, *, activation, weight_variances, noise_variance,
                    form: str = "nested", y_test=None) -> RenormalizedPrediction:
    """Test mean/variance, predicted test error and train error with the renormalized kernel K_R^L."""
    X, y = _check_inputs(X, y)
    X_test = _check_inputs(X_test)
    variances = np.asarray(weight_variances, dtype=np.float64)
    Q = np.asarray(order_parameters, dtype=np.float64).ravel()
    K = deep_renormalized_gram(X, None, Q, activation=activation, weight_variances=variances, form=form)
    K0X, K00, _ = _recursion(X_test, X, Q, activation, variances, form)
    return renormalized_prediction(K, K0X, K00, y, noise_variance=noise_variance, y_test=y_test)


def order_parameters_from_weight_norms(mean_squared_norms, weight_variances, widths, num_weights) -> np.ndarray:
    """Q_l = 1 + (E|W_l|² − σ_l² n_l/N_l)/σ_l² (module docstring), l = 1..L.

    mean_squared_norms: sampled posterior means of |W_l|² for the weights reading hidden layer l;
    weight_variances: (σ_1², ..., σ_L²) (the readout last; mean-field: σ̃_a²/χ); widths: (N_1..N_L);
    num_weights: (n_1..n_L), n_l = N_l N_{l+1} (n_L = N_L for a single output).
    """
    norms, variances, widths, counts = (np.asarray(v, dtype=np.float64).ravel()
                                        for v in (mean_squared_norms, weight_variances, widths, num_weights))
    if not (norms.size == variances.size == widths.size == counts.size) or np.any(~(variances > 0)) \
            or np.any(~(widths > 0)) or np.any(~(counts > 0)) or np.any(norms < 0):
        raise ValueError("mean_squared_norms, weight_variances, widths and num_weights must be equally long, "
                         f"non-negative/positive; got {mean_squared_norms!r}, {weight_variances!r}, {widths!r}, "
                         f"{num_weights!r}")
    return 1.0 + (norms - variances * counts / widths) / variances


# --- deep linear networks: back-propagating kernel renormalization ----------------------------------

def _linear_spectrum(X, y, weight_variances):
    X, y = _check_inputs(X, y)
    variances = np.asarray(weight_variances, dtype=np.float64)
    if variances.ndim != 1 or variances.size < 2 or np.any(~(variances > 0)):
        raise ValueError(f"weight_variances must be (σ_0², ..., σ_L²), positive, L ≥ 1; got {weight_variances!r}")
    K = float(np.prod(variances)) * (X @ X.T) / X.shape[1]
    k, V = np.linalg.eigh(0.5 * (K + K.T))
    return np.maximum(k, 0.0), (V.T @ y) ** 2, K, y


def solve_bkr(X, y, *, weight_variances, widths, noise_variance, gradient_tol: float = 1e-10) -> DeepSolution:
    """Deep linear network at finite T: u_l = 1 − h(U)/N_l, U = Π u_l (module docstring).

    Returns the u_l as order_parameters; gradient/residual: the stationarity residuals
    N_l(u_l − 1) + h(U) divided by N_1 (= ∂S/∂log Q_l of the action per unit first-layer width).
    """
    k, y2, _, _ = _linear_spectrum(X, y, weight_variances)
    widths = np.asarray(widths, dtype=np.float64).ravel()
    if widths.size != np.asarray(weight_variances).size - 1 or np.any(~(widths > 0)) or np.any(np.isinf(widths)):
        raise ValueError(f"widths must be {np.asarray(weight_variances).size - 1} finite positive numbers, got {widths!r}")
    s2 = check_nonnegative(noise_variance, "noise_variance")
    if s2 == 0 and k.min() <= 0:
        raise ValueError("noise_variance = 0 needs XXᵀ positive definite (P ≤ d)")

    def h(U):
        A = s2 + U * k
        return float(np.sum(U * k / A - U * k * y2 / (A * A)))

    def F(log_u):
        factors = 1.0 - h(math.exp(log_u)) / widths
        return math.nan if np.any(factors <= 0) else float(np.sum(np.log(factors))) - log_u

    def action(U):
        u = 1.0 - h(U) / widths
        A = s2 + U * k
        return float(np.sum(widths / widths[0] * (u - np.log(u)))) + float(np.sum(np.log(A) + y2 / A)) / widths[0]

    grid = np.linspace(math.log(1e-8), math.log(1e8), 641)
    values = np.array([F(t) for t in grid])
    roots, iterations = [], 0
    for i in range(grid.size - 1):
        a, b = values[i], values[i + 1]
        if np.isfinite(a) and np.isfinite(b) and a * b <= 0 and a != b:
            root, info = optimize.brentq(F, grid[i], grid[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps,
                                         full_output=True)
            iterations += info.iterations
            roots.append(math.exp(root))
    if not roots:
        return DeepSolution(np.full(widths.size, math.nan), math.nan, np.full(widths.size, math.nan), False,
                            math.inf, iterations, "no root of the BKR equation for U in [1e-8, 1e8]")
    U = min(roots, key=action)
    u = 1.0 - h(U) / widths
    gradient = (widths * (u - 1.0) + h(float(np.prod(u)))) / widths[0]
    residual = float(np.max(np.abs(gradient)))
    converged = residual <= gradient_tol
    return DeepSolution(u, action(U), gradient, converged, residual, iterations,
                        "" if converged else f"stationarity residual {residual:.3g}")


def bkr_zero_temperature(r0: float, alphas: Sequence[float]) -> np.ndarray:
    """T → 0 BKR: u_l = 1 − α_l + α_l r_0/U, U = Π u_l (unique root, module docstring).

    r0 = yᵀK_lin⁻¹y/P; alphas = (P/N_1, ..., P/N_L). Equal widths: u = 1 − α + α r_0 u^{−L}.
    """
    r0 = check_positive(r0, "r0")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(~(alphas > 0)) or np.any(~np.isfinite(alphas)):
        raise ValueError(f"alphas must be finite positive numbers, got {alphas!r}")
    upper = math.inf
    for a in alphas:
        if a > 1:
            upper = min(upper, a * r0 / (a - 1.0))

    def F(log_u):
        U = math.exp(log_u)
        return float(np.sum(np.log(1.0 - alphas + alphas * r0 / U))) - log_u

    hi = math.log(upper) - 1e-12 if math.isfinite(upper) else math.log(1e12)
    lo = min(hi - 1.0, math.log(1e-12))
    log_u = optimize.brentq(F, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return 1.0 - alphas + alphas * r0 / math.exp(log_u)
