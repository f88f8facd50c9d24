"""Kernel adaptation for a two-layer erf or ReLU network on a finite data set: the Gaussian (GFL / VGA)
closure of the mean-field per-neuron action with a general weight covariance Σ (Seroussi, Naveh & Ringel, Nat. Commun. 2023;
Seroussi, Naveh, Ringel, Nat. Commun. 2023; AdaptiveGPs `getSigma`).

Network f(x) = Σ_{c=1}^N a_c erf(w_c·x); prior w ~ N(0, σ_w²/d · I_d), readout a ~ N(0, σ̃_a²/(χN)),
noise variance σ² = σ̃²/χ (χ = 1 standard scaling, χ = N mean-field scaling); the physical
σ_a² = σ̃_a²/χ. Data X (n×d), labels y (n,). The noise σ² is the variance of the Gaussian likelihood
(Langevin with loss ½Σ(f−y)² at temperature T gives σ² = T; with Σ(f−y)² it is T/2, docs/conventions.md).

Per-neuron mean-field action (Seroussi, Naveh & Ringel, Nat. Commun. 2023, first-order expansion of K_W around its mean Q):

    S[w] = d|w|²/(2σ_w²) − (σ_a²/2N) [ (t̄ᵀφ_w)² − φ_wᵀ (Q + σ²I)⁻¹ φ_w ],   φ_w = erf(Xw) ∈ Rⁿ,
    Q = σ_a² K_Σ,  K_Σ = ⟨φ_w φ_wᵀ⟩,  t̄ = (Q + σ²I)⁻¹ y.

In MF variables the first bracket term carries an extra χ relative to the second (the "log-det"
term), which the grokking paper and Ringel et al. 2025 drop (`logdet_term=False`); it is kept by default.

VGA closure: p(w) = N(0, Σ); stationarity of ⟨S⟩_Σ − ½ log det Σ at fixed (t̄, Q) gives

    Σ⁻¹ = (d/σ_w²) I − ∇_Σ f(Σ),   f(Σ) = (σ_a²/N) [ t̄ᵀ K_Σ t̄ − Tr((Q+σ²I)⁻¹ K_Σ) ],

solved jointly with t̄ = (σ_a² K_Σ + σ² I)⁻¹ y (t̄ is explicit given Σ, so Σ is the only unknown).
∇_Σ of the Gram is analytic: erf (`theory.erf_covariance_gradient`), relu (arc-cosine,
`theory.relu_covariance_gradient`); `COVARIANCE_KERNELS` is the registry (activation name →
Gram, its Σ-gradient and φ), selected by the prior's `activation`. Everything
above holds for any φ with φ_w = φ(Xw) and K_Σ = ⟨φ_w φ_wᵀ⟩; a non-odd φ (relu) has ⟨φ⟩ ≠ 0, which
K_Σ contains (no separate mean term is needed: the readout has zero mean).

Numerics. Unknowns: the lower-triangular L with Σ = (σ_w²/d) L Lᵀ (Σ stays PSD for any L);
equations: the upper triangle of (σ_w²/d)(Σ⁻¹ − (d/σ_w²) I + ∇_Σ f) = 0 (dimensionless, O(1)).
`scipy.optimize.root` with 'hybr' (MINPACK, finite-difference Jacobian; good for d(d+1)/2 ≲ 200)
or 'krylov' (Newton–Krylov, for larger d). Start: the GP solution L = I (Σ = σ_w²/d I) or a given Σ;
`scan_adaptive_kernel` anneals along a path of priors (the width or the noise, from large N / large
noise, the GP side, to the target), warm-starting every solve (the practice of the `zringel/AdaptiveGPs` code of Seroussi, Naveh & Ringel 2023). As N → ∞ at fixed σ_a² (standard scaling) ∇_Σ f → 0 and
the solution is the NNGP: Σ = σ_w²/d I, f̄ = GP posterior mean.

Inputs: the network is one `theory.network_prior.NetworkPrior` (fc, one hidden layer of width N,
no biases, input_dim = d of X; σ_w² its one weight variance, σ_a² = σ̃_a²/χ and σ² = σ̃²/χ its
properties); the data (X, y) are separate arguments.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
from scipy import linalg, optimize, special

from theory import continuation as cont
from theory.erf_covariance_gradient import erf_gram, erf_gram_gradient
from theory.kernels import two_layer_gram
from theory.network_prior import NetworkPrior, check_two_layer
from theory.relu_covariance_gradient import relu_gram, relu_gram_gradient

__all__ = [
    "COVARIANCE_KERNELS",
    "AdaptiveKernelSolution",
    "CovarianceKernel",
    "per_neuron_action",
    "projection_ratio",
    "scan_adaptive_kernel",
    "solve_adaptive_kernel",
]


class AdaptiveKernelSolution(NamedTuple):
    """VGA solution on a finite data set.

    covariance: Σ (d, d); discrepancy: t̄ (n,); kernel_train: Q = σ_a² K_Σ (n, n); mean_train:
    f̄(X) = y − σ² t̄ (n,); mean_test: f̄(X_test) = σ_a² K_Σ(X_test, X) t̄ (m,) or None;
    learnabilities: R_k = f̄(X)·h_k / y·h_k for the columns h_k of `probes` (k,), or None;
    readout_variance/noise_variance: the physical σ_a² = σ̃_a²/χ and σ² = σ̃²/χ used;
    converged/residual (max-norm of the dimensionless equations)/iterations (function
    evaluations)/message.
    """

    covariance: np.ndarray
    discrepancy: np.ndarray
    kernel_train: np.ndarray
    mean_train: np.ndarray
    mean_test: Optional[np.ndarray]
    learnabilities: Optional[np.ndarray]
    readout_variance: float
    noise_variance: float
    converged: bool
    residual: float
    iterations: int
    message: str


class CovarianceKernel(NamedTuple):
    """One activation's entry: gram(X, Σ) → state with `.gram` (n, n); gradient(state, C) →
    ∇_Σ Σ C_μν K_μν (d, d); activation: the pointwise φ (for the per-neuron action)."""

    gram: Callable
    gradient: Callable
    activation: Callable


COVARIANCE_KERNELS: dict[str, CovarianceKernel] = {
    "erf": CovarianceKernel(erf_gram, erf_gram_gradient, special.erf),
    "relu": CovarianceKernel(relu_gram, relu_gram_gradient, lambda z: np.maximum(z, 0.0)),
}


def _prior_on(prior: NetworkPrior, X) -> NetworkPrior:
    """The prior checked for this theory and for the inputs X (n, d)."""
    check_two_layer(prior, COVARIANCE_KERNELS)
    if prior.input_dim != X.shape[1]:
        raise ValueError(f"NetworkPrior.input_dim must equal the inputs' dimension {X.shape[1]}, "
                         f"got {prior.input_dim!r}")
    return prior


def _data(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array, got shape {X.shape}")
    if y.shape != (X.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({X.shape[0]},), got shape {y.shape}")
    return X, y


def _discrepancy(gram, y, sa2, s2):
    """t̄ = (σ_a² K + σ² I)⁻¹ y and the Cholesky factor of σ_a² K + σ² I."""
    factor = linalg.cho_factor(sa2 * gram + s2 * np.eye(len(y)), lower=True)
    return linalg.cho_solve(factor, y), factor


def _tril_to_matrix(theta: np.ndarray, d: int) -> np.ndarray:
    L = np.zeros((d, d))
    L[np.tril_indices(d)] = theta
    return L


def solve_adaptive_kernel(X, y, prior: NetworkPrior, *, logdet_term: bool = True, X_test=None,
                          probes=None, initial_covariance=None, method: str = "hybr", tol: float = 1e-10,
                          residual_tol: float = 1e-8) -> AdaptiveKernelSolution:
    """Solve the VGA equations for Σ (and t̄) on the data X (n, d), y (n,) (module docstring).

    `prior`: the network (activation a key of COVARIANCE_KERNELS, "erf" or "relu"; σ_a², σ² its
    χ-scaled properties). `initial_covariance` defaults to the GP value σ_w²/d I. `method`: 'hybr'
    or 'krylov'. `probes` (n, k): functions on the training inputs (e.g. He_p(X w*)) whose
    learnability ratios R_p = f̄(X)·h_p / y·h_p (Ringel et al. 2025) are reported.
    converged requires the root finder's success flag and a residual ≤ `residual_tol`.
    """
    X, y = _data(X, y)
    prior = _prior_on(prior, X)
    activation = prior.activation
    kernel = COVARIANCE_KERNELS[activation]
    n, d = X.shape
    N = prior.width
    sa2 = prior.readout_variance
    s2 = prior.noise_variance
    sw2 = prior.input_variance
    if method not in ("hybr", "krylov"):
        raise ValueError(f"method must be 'hybr' or 'krylov', got {method!r}")
    scale = sw2 / d
    if initial_covariance is None:
        L0 = np.eye(d)
    else:
        S0 = np.asarray(initial_covariance, dtype=np.float64)
        if S0.shape != (d, d) or not np.all(np.isfinite(S0)):
            raise ValueError(f"initial_covariance must be a finite ({d}, {d}) array, got shape {S0.shape}")
        try:
            L0 = np.linalg.cholesky(0.5 * (S0 + S0.T) / scale)
        except np.linalg.LinAlgError as error:
            raise ValueError("initial_covariance must be positive definite") from error
    upper = np.triu_indices(d)

    def pieces(theta):
        L = _tril_to_matrix(theta, d)
        Sigma = scale * (L @ L.T)
        state = kernel.gram(X, Sigma)
        tbar, factor = _discrepancy(state.gram, y, sa2, s2)
        weights = np.outer(tbar, tbar)
        if logdet_term:
            weights -= linalg.cho_solve(factor, np.eye(n))
        G = (sa2 / N) * kernel.gradient(state, weights)
        return L, Sigma, state, tbar, G

    def equations(theta):
        L, _, _, _, G = pieces(theta)
        try:
            inverse = linalg.cho_solve(linalg.cho_factor(L @ L.T, lower=True), np.eye(d))
        except linalg.LinAlgError:
            return np.full(len(theta), 1e6)
        return (inverse - np.eye(d) + scale * G)[upper]

    theta0 = L0[np.tril_indices(d)]
    if method == "hybr":
        sol = optimize.root(equations, theta0, method="hybr", options={"xtol": tol})
        iterations = int(sol.nfev)
    else:
        sol = optimize.root(equations, theta0, method="krylov", options={"fatol": tol * 1e-2})
        iterations = int(getattr(sol, "nit", 0))
    L, Sigma, state, tbar, _ = pieces(sol.x)
    residual = float(np.max(np.abs(equations(sol.x))))
    converged = bool(sol.success) and residual <= residual_tol
    mean_train = y - s2 * tbar
    learnabilities = None
    if probes is not None:
        H = np.asarray(probes, dtype=np.float64)
        H = H[:, None] if H.ndim == 1 else H
        if H.ndim != 2 or H.shape[0] != n:
            raise ValueError(f"probes must have shape ({n},) or ({n}, k), got {np.shape(probes)}")
        learnabilities = np.array([projection_ratio(mean_train, y, h) for h in H.T])
    mean_test = None
    if X_test is not None:
        cross = two_layer_gram(np.asarray(X_test, dtype=np.float64), X, activation, sa2, Sigma=Sigma)
        mean_test = cross @ tbar
    return AdaptiveKernelSolution(Sigma, tbar, sa2 * state.gram, mean_train, mean_test, learnabilities, sa2, s2,
                                  converged, residual, iterations,
                                  "" if converged else f"{sol.message} (residual {residual:.3g})")


def scan_adaptive_kernel(X, y, prior_at: Callable[[float], NetworkPrior], values: Sequence[float],
                         **options) -> cont.ContinuationResult:
    """Continuation of `solve_adaptive_kernel` along the priors `prior_at(v)`, v in `values`.

    Walk `values` from the GP side (largest width / largest noise first), warm-starting Σ every
    step; the first solve starts from the GP Σ = σ_w²/d I (the width annealing of the `zringel/AdaptiveGPs`
    code of Seroussi, Naveh & Ringel 2023). A standard-scaling width path is `lambda N: dataclasses.replace(prior, widths=(N,))`,
    a mean-field one (fixed numerators) `lambda N: dataclasses.replace(prior, widths=(N,), chi=N)`,
    a noise path `lambda v: dataclasses.replace(prior, noise_variance_tilde=v)`. `options` are the
    other keyword arguments of `solve_adaptive_kernel` (initial_covariance omitted).
    """
    d = np.asarray(X).shape[1]

    def solve_at(value, guess):
        start = None if guess is None else guess.reshape(d, d)
        return solve_adaptive_kernel(X, y, prior_at(value), initial_covariance=start, **options)

    return cont.continuation(solve_at, values, lambda s: s.covariance.ravel())


def per_neuron_action(weights, X, y, covariance, prior: NetworkPrior, *,
                      logdet_term: bool = True) -> np.ndarray:
    """S[w] of the module docstring for a batch of weights (m, d) → (m,), with Q = σ_a² K_Σ.

    −log p(w) up to a constant under the mean-field decoupled posterior at covariance Σ; compare
    with the ensemble of sampled first-layer weights.
    """
    X, y = _data(X, y)
    prior = _prior_on(prior, X)
    kernel = COVARIANCE_KERNELS[prior.activation]
    W = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"weights must have shape (m, {X.shape[1]}), got {W.shape}")
    N, sa2, s2, sw2 = prior.width, prior.readout_variance, prior.noise_variance, prior.input_variance
    tbar, factor = _discrepancy(kernel.gram(X, covariance).gram, y, sa2, s2)
    phi = kernel.activation(W @ X.T)  # (m, n)
    interaction = (phi @ tbar) ** 2
    if logdet_term:
        interaction -= np.einsum("mi,im->m", phi, linalg.cho_solve(factor, phi.T))
    return X.shape[1] * np.sum(W * W, axis=1) / (2.0 * sw2) - sa2 / (2.0 * N) * interaction


def projection_ratio(prediction, target, probe) -> float:
    """R = (f·h)/(y·h): the learnability of the component h of the target (Ringel et al. 2025)."""
    f, yv, h = (np.asarray(a, dtype=np.float64).ravel() for a in (prediction, target, probe))
    if not (f.shape == yv.shape == h.shape):
        raise ValueError(f"prediction, target and probe must have one shape, got {f.shape}, {yv.shape}, {h.shape}")
    denominator = float(yv @ h)
    if denominator == 0.0:
        raise ValueError("target has no component along probe (y·h = 0)")
    return float(f @ h) / denominator
