"""Proportional-regime kernel renormalization, one hidden layer, activations with a non-zero mean
(ReLU, step, quadratic): two order parameters (Q̄, Q) (Pacelli et al., Nat. Mach. Intell. 2023; `deepbays` FC_1HL_nonodd).

Convention: as theory.proportional_one_layer (f = Σ_c a_c φ(w_c·x), w ~ N(0, σ_w²/d), a ~ N(0, σ_a²/(χN)),
noise σ² = T for U = ½Σ(f−y)² + Σ γ_l/2|θ_l|²). Inputs: the NNGP Gram of second moments
K = (σ_a²/χ) E[φ(h_μ)φ(h_ν)] and the scaled mean vector m = √(σ_a²/χ) E[φ(h_μ)] (so that the
rank-one "mean kernel" is M = m mᵀ in the same units; `nonodd_blocks` builds both). Pacelli's
λ1 = χ/σ_a²: their K/λ1 and M/λ1 are our K and M.

Derivation of the action [DERIVED]. Integrate the readout; each of the N hidden units contributes
E_h exp(−(1/(2N))(ξ·φ(h))²) for the auxiliary field ξ conjugate to the outputs. Treating ξ·φ(h) as
Gaussian with mean ξ·m and variance ξᵀ(K − M)ξ (the Gaussian equivalence of the proportional
theory; exact covariance, exact mean), E exp(−X²/(2N)) = (1 + v/N)^{−1/2} exp(−μ²/(2N(1 + v/N))),
v = ξᵀ(K−M)ξ, μ = ξ·m. Fixing Q = v/N with a Lagrange multiplier Q̄ and integrating ξ:

    S(Q̄, Q) = log(1 + Q) − Q̄ Q + (1/N) [ log det G + yᵀG⁻¹y ],
    G = σ²I + K_R,   K_R = Q̄ (K − M) + M/(1 + Q)   (= (Q̄/λ1)K − (Q̄ − 1/(1+Q)) M/λ1 in deepbays),

−log Z = (N/2) S at its saddle point. Saddle equations (deepbays' residuals, with t̄ = G⁻¹y):

    ∂S/∂Q̄ = −Q + (1/N)[Tr(G⁻¹(K − M)) − t̄ᵀ(K − M)t̄] = 0,
    ∂S/∂Q = 1/(1+Q) − Q̄ − (1/N)(1+Q)⁻² [mᵀG⁻¹m − (m·t̄)²] = 0.

The saddle is a minimum in Q̄ and a maximum in Q (for M = 0, S is concave in Q: the max over Q gives
Q = 1/Q̄ − 1 and S = Q̄ − log Q̄ − 1 + (1/N)[...], the odd-activation action). N → ∞: Q̄ = 1, Q = 0,
K_R = K (the NNGP). Predictions use K_R with the test blocks built the same way.

Numerical method: a root of the two saddle equations (not a minimization of squared residuals) by
MINPACK hybrd in the variables (log Q̄, log(1 + Q)), started at the NNGP point (1, 0); if it fails,
continuation in the width from 10⁶·P down to N, warm-started (theory.continuation). converged ⇔
max(|∂S/∂Q̄|, |∂S/∂Q|) ≤ gradient_tol.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
from scipy import linalg, optimize

from theory import continuation as cont
from theory.kernels import activation_mean, two_layer_diag, two_layer_gram
from theory.proportional_one_layer import RenormalizedPrediction, renormalized_prediction
from theory.validation import check_nonnegative, check_positive

__all__ = ["NonOddBlocks", "NonOddSolution", "nonodd_action", "nonodd_action_gradient", "nonodd_blocks",
           "nonodd_prediction", "solve_nonodd"]


class NonOddSolution(NamedTuple):
    """order_parameters: (Q̄, Q); action: S; gradient: (∂S/∂Q̄, ∂S/∂Q); converged/residual
    (max |gradient|)/iterations (function evaluations)/message."""

    order_parameters: np.ndarray
    action: float
    gradient: np.ndarray
    converged: bool
    residual: float
    iterations: int
    message: str


class NonOddBlocks(NamedTuple):
    """gram K (P, P), mean m (P,), test_train K(X_test, X) (m, P), test_diag (m,), mean_test (m,)."""

    gram: np.ndarray
    mean: np.ndarray
    test_train: np.ndarray
    test_diag: np.ndarray
    mean_test: np.ndarray


def nonodd_blocks(X, X_test, *, activation: str, sigma_w2: float, sigma_a2: float) -> NonOddBlocks:
    """Second-moment Grams and scaled means for a two-layer network (σ_a² here is the physical σ̃_a²/χ)."""
    X = np.asarray(X, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    sa2 = check_positive(sigma_a2, "sigma_a2")
    sw2 = check_positive(sigma_w2, "sigma_w2")
    c = sw2 * np.einsum("ij,ij->i", X, X) / X.shape[1]
    c0 = sw2 * np.einsum("ij,ij->i", X_test, X_test) / X.shape[1]
    return NonOddBlocks(two_layer_gram(X, None, activation, sa2, sigma_w2=sw2),
                        math.sqrt(sa2) * activation_mean(activation, c),
                        two_layer_gram(X_test, X, activation, sa2, sigma_w2=sw2),
                        two_layer_diag(X_test, activation, sa2, sigma_w2=sw2),
                        math.sqrt(sa2) * activation_mean(activation, c0))


class _Problem(NamedTuple):
    K: np.ndarray
    m: np.ndarray
    y: np.ndarray
    width: float
    noise: float


def _problem(gram, mean, y, width, noise_variance) -> _Problem:
    K = np.asarray(gram, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or not np.all(np.isfinite(K)):
        raise ValueError(f"gram must be a finite square (P, P) matrix, got shape {K.shape}")
    P = K.shape[0]
    m = np.asarray(mean, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if m.shape != (P,) or not np.all(np.isfinite(m)):
        raise ValueError(f"mean must be a finite array of shape ({P},), got shape {m.shape}")
    if y.shape != (P,) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({P},), got shape {y.shape}")
    return _Problem(0.5 * (K + K.T), m, y, check_positive(width, "width"),
                    check_nonnegative(noise_variance, "noise_variance"))


def _pieces(q_bar, q, prob: _Problem):
    M = np.outer(prob.m, prob.m)
    G = prob.noise * np.eye(len(prob.y)) + q_bar * (prob.K - M) + M / (1.0 + q)
    factor = linalg.cho_factor(G, lower=True)
    tbar = linalg.cho_solve(factor, prob.y)
    return factor, tbar, M


def _action(q_bar, q, prob):
    factor, tbar, _ = _pieces(q_bar, q, prob)
    log_det = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    return math.log1p(q) - q_bar * q + (log_det + float(prob.y @ tbar)) / prob.width


def _gradient(q_bar, q, prob):
    factor, tbar, M = _pieces(q_bar, q, prob)
    inverse = linalg.cho_solve(factor, np.eye(len(prob.y)))
    C = prob.K - M
    g_bar = -q + (float(np.sum(inverse * C)) - float(tbar @ C @ tbar)) / prob.width
    Gm = inverse @ prob.m
    g_q = 1.0 / (1.0 + q) - q_bar - (float(prob.m @ Gm) - float(prob.m @ tbar) ** 2) / (prob.width * (1.0 + q) ** 2)
    return np.array([g_bar, g_q])


def nonodd_action(order_parameters, gram, mean, y, *, width, noise_variance) -> float:
    """S(Q̄, Q) of the module docstring."""
    q_bar, q = (float(v) for v in order_parameters)
    return _action(q_bar, q, _problem(gram, mean, y, width, noise_variance))


def nonodd_action_gradient(order_parameters, gram, mean, y, *, width, noise_variance) -> np.ndarray:
    """(∂S/∂Q̄, ∂S/∂Q), analytic (module docstring)."""
    q_bar, q = (float(v) for v in order_parameters)
    return _gradient(q_bar, q, _problem(gram, mean, y, width, noise_variance))


def _solve_at(prob: _Problem, start, gradient_tol):
    def equations(z):
        try:
            return _gradient(math.exp(z[0]), math.expm1(z[1]), prob)
        except linalg.LinAlgError:
            return np.full(2, 1e6)

    sol = optimize.root(equations, start, method="hybr", options={"xtol": 1e-14})
    q_bar, q = math.exp(sol.x[0]), math.expm1(sol.x[1])
    try:
        g = _gradient(q_bar, q, prob)
        action = _action(q_bar, q, prob)
    except linalg.LinAlgError:
        g, action = np.full(2, math.inf), math.nan
    residual = float(np.max(np.abs(g)))
    converged = residual <= gradient_tol
    return NonOddSolution(np.array([q_bar, q]), action, g, converged, residual, int(sol.nfev),
                          "" if converged else f"{sol.message} (residual {residual:.3g})")


def solve_nonodd(gram, mean, y, *, width, noise_variance, initial=None,
                 gradient_tol: float = 1e-10) -> NonOddSolution:
    """Saddle point (Q̄, Q) of S (module docstring). width = inf returns the NNGP (1, 0).
    initial: a starting (Q̄, Q); default the NNGP point."""
    if float(width) == math.inf:
        return NonOddSolution(np.array([1.0, 0.0]), math.nan, np.zeros(2), True, 0.0, 0, "infinite width: NNGP")
    prob = _problem(gram, mean, y, width, noise_variance)
    q0 = (1.0, 0.0) if initial is None else tuple(float(v) for v in initial)
    if not (q0[0] > 0 and q0[1] > -1):
        raise ValueError(f"initial must satisfy Q̄ > 0 and Q > −1, got {initial!r}")
    start = np.array([math.log(q0[0]), math.log1p(q0[1])])
    first = _solve_at(prob, start, gradient_tol)
    if first.converged:
        return first
    widths = np.geomspace(1e6 * len(prob.y), prob.width, 25)
    path = cont.continuation(
        lambda w, guess: _solve_at(prob._replace(width=w), np.zeros(2) if guess is None else guess, gradient_tol),
        widths, lambda s: np.array([math.log(s.order_parameters[0]), math.log1p(s.order_parameters[1])]))
    last = path.solutions[-1]
    iterations = first.iterations + sum(s.iterations for s in path.solutions)
    return last._replace(iterations=iterations,
                         message=last.message if last.converged else f"continuation in width failed: {last.message}")


def nonodd_prediction(order_parameters, blocks: NonOddBlocks, y, *, noise_variance,
                      y_test=None) -> RenormalizedPrediction:
    """Predictions with K_R = Q̄(K − M) + M/(1+Q) on train, test-train and test-diagonal blocks."""
    q_bar, q = (float(v) for v in order_parameters)
    m, m0 = blocks.mean, blocks.mean_test
    scale = 1.0 / (1.0 + q)
    train = q_bar * (blocks.gram - np.outer(m, m)) + scale * np.outer(m, m)
    cross = q_bar * (blocks.test_train - np.outer(m0, m)) + scale * np.outer(m0, m)
    diag = q_bar * (blocks.test_diag - m0 * m0) + scale * m0 * m0
    return renormalized_prediction(train, cross, diag, y, noise_variance=noise_variance, y_test=y_test)
