"""Local kernel renormalization of a shallow convolutional network in the proportional regime, and
the locally connected network (LCN) without weight sharing (Aiudi et al., arXiv 2307.11807).

Aiudi, Pacelli, Baglioni, Vezzani, Burioni, Rotondo, arXiv 2307.11807 (`deepbays` CONV_1HL).

Network: one convolutional hidden layer with N_c channels, M non-overlapping patches x^{(p)} of each
input (stride = mask), dense readout: f(x) = Σ_{c=1}^{N_c} Σ_{p=1}^M a_{cp} φ(w_c·x^{(p)}). Convention:
U = ½Σ(f − y)² + Σ γ_l/2|θ_l|² at temperature T; w_c ~ N(0, σ_w²/s · I_s) (s = patch size, the fan-in),
a_{cp} ~ N(0, σ_a²/(χ N_c M)) (fan-in N_c M); noise σ² = T. Inputs are the patch-block kernels

    K_pq(μ, ν) = (σ_a²/χ) E_w[φ(w·x_μ^{(p)}) φ(w·x_ν^{(q)})],  arrays of shape (M, M, P, P) (train),
    (M, M, m, P) (test–train: K_pq(x*_i, x_ν)) and (M, M, m) (test diagonal: K_pq(x*_i, x*_i)),

without the readout's 1/M (Pacelli's K_ij/λ1 with λ1 = χ/σ_a², C_ij = x^{(i)}·x^{(j)}/(m²λ0),
σ_w² = 1/λ0). The activation must be odd (erf, linear, tanh): the mean-kernel term of a non-odd φ
(theory.proportional_nonodd) is not included here.

Renormalized kernel and action (per channel), Q an M×M symmetric positive-definite matrix:

    K_R = (1/M) Σ_pq Q_pq K_pq,   A = σ²I + K_R,
    S(Q) = Tr Q − log det Q + (1/N_c)[yᵀA⁻¹y + log det A],   −log Z = (N_c/2) min S + const.

Origin of the off-diagonal Q_pq [DERIVED]: integrating the readout, channel c contributes
E_w exp(−(1/(2N_cM)) Σ_p X_p²) with X_p = ξ·φ(h_cp) for the output auxiliary field ξ. The filter w_c is
shared by all patches, so Cov(X_p, X_q) = ξᵀK_pqξ ≠ 0 for p ≠ q; the Gaussian equivalence gives
det(I + C/(N_cM))^{−1/2} with C_pq = ξᵀK_pqξ, and the conjugate of C/(N_cM) is the matrix Q.
Infinite width: Q = I, K_R = (1/M)Σ_p K_pp (the CNN-GP without pooling: off-diagonal blocks drop out).

LCN [DERIVED]: without weight sharing, unit (c, p) has its own filter w_{cp}; X_p and X_q are built from
independent weights, so Cov(X_p, X_q) = 0 exactly for p ≠ q (for any φ). C is diagonal, its conjugate
Q = diag(Q_1..Q_M), and

    K_R^LCN = (1/M) Σ_p Q_p K_pp,   S_LCN = Σ_p (Q_p − log Q_p) + (1/N_c)[yᵀA⁻¹y + log det A]:

the CNN action restricted to diagonal Q, depending on the diagonal blocks K_pp only. Each patch's kernel is
rescaled by its own scalar; patches are never mixed, so (as for the FC net, one global scalar) the LCN
cannot build the cross-patch kernel terms through which the CNN's local renormalization learns features.

Gradient (symmetric-matrix convention dS = Tr(G dQ)): G = I − Q⁻¹ + D,
D_pq = (1/(N_cM))[Tr(A⁻¹K_pq) − t̄ᵀK_pq t̄], t̄ = A⁻¹y (for the LCN: the diagonal of G).
Minimizer: BFGS in the Cholesky factor of Q (log-diagonal, so Q stays positive definite) with this
analytic gradient, from Q = I; converged ⇔ max |G_pq| ≤ gradient_tol; otherwise up to `restarts`
restarts from the best point perturbed by N(0, restart_noise²) noise (seeded), as the authors do.
Estimator [DERIVED, as for one FC layer with a readout prior covariance Λ across patches, ∂/∂Λ at
Λ = I]: Q_pq = (χ M/σ_a²) E_posterior[Σ_c a_cp a_cq] (`order_parameters_from_readout`).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
from scipy import linalg, optimize

from theory.proportional_one_layer import RenormalizedPrediction, renormalized_prediction
from theory.validation import check_nonnegative, check_positive

__all__ = ["CNNSolution", "cnn_action", "cnn_action_gradient", "cnn_prediction", "order_parameters_from_readout",
           "solve_cnn", "solve_lcn"]


class CNNSolution(NamedTuple):
    """order_parameters: Q (M, M) (diagonal for the LCN); action: S; gradient: G (M, M) (LCN: its
    diagonal, off-diagonal zero); converged/residual (max |G|)/iterations (BFGS iterations, all
    restarts)/restarts (used)/message."""

    order_parameters: np.ndarray
    action: float
    gradient: np.ndarray
    converged: bool
    residual: float
    iterations: int
    restarts: int
    message: str


class _Problem(NamedTuple):
    blocks: np.ndarray
    y: np.ndarray
    channels: float
    noise: float


def _problem(train_blocks, y, channels, noise_variance) -> _Problem:
    B = np.asarray(train_blocks, dtype=np.float64)
    if B.ndim != 4 or B.shape[0] != B.shape[1] or B.shape[2] != B.shape[3] or not np.all(np.isfinite(B)):
        raise ValueError(f"train_blocks must be a finite (M, M, P, P) array, got shape {B.shape}")
    scale = max(np.abs(B).max(), 1e-300)
    if np.abs(B - B.transpose(1, 0, 3, 2)).max() > 1e-10 * scale:
        raise ValueError("train_blocks must satisfy K_pq(μ,ν) = K_qp(ν,μ)")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (B.shape[2],) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({B.shape[2]},), got shape {y.shape}")
    return _Problem(B, y, check_positive(channels, "channels"), check_nonnegative(noise_variance, "noise_variance"))


def _kernel(Q, blocks):
    return np.einsum("pq,pqij->ij", Q, blocks) / Q.shape[0]


def _evaluate(Q, prob: _Problem, gradient: bool):
    """(S, G or None); S = inf where Q or A is not positive definite."""
    M = Q.shape[0]
    try:
        factor_q = linalg.cho_factor(Q, lower=True)
        K = _kernel(Q, prob.blocks)
        A = 0.5 * (K + K.T) + prob.noise * np.eye(len(prob.y))
        factor = linalg.cho_factor(A, lower=True)
    except linalg.LinAlgError:
        return math.inf, None
    tbar = linalg.cho_solve(factor, prob.y)
    log_det_q = 2.0 * float(np.sum(np.log(np.diag(factor_q[0]))))
    log_det_a = 2.0 * float(np.sum(np.log(np.diag(factor[0]))))
    S = float(np.trace(Q)) - log_det_q + (float(prob.y @ tbar) + log_det_a) / prob.channels
    if not gradient:
        return S, None
    inverse = linalg.cho_solve(factor, np.eye(len(prob.y)))
    D = (np.einsum("ji,pqij->pq", inverse, prob.blocks)
         - np.einsum("i,pqij,j->pq", tbar, prob.blocks, tbar)) / (prob.channels * M)
    G = np.eye(M) - linalg.cho_solve(factor_q, np.eye(M)) + 0.5 * (D + D.T)
    return S, G


def _check_q(order_parameters, M):
    Q = np.asarray(order_parameters, dtype=np.float64)
    if Q.shape != (M, M) or not np.all(np.isfinite(Q)) or np.abs(Q - Q.T).max() > 1e-12 * max(np.abs(Q).max(), 1):
        raise ValueError(f"order_parameters must be a finite symmetric ({M}, {M}) matrix, got shape {Q.shape}")
    return 0.5 * (Q + Q.T)


def cnn_action(order_parameters, train_blocks, y, *, channels, noise_variance) -> float:
    """S(Q) of the module docstring (inf if Q is not positive definite)."""
    prob = _problem(train_blocks, y, channels, noise_variance)
    return _evaluate(_check_q(order_parameters, prob.blocks.shape[0]), prob, False)[0]


def cnn_action_gradient(order_parameters, train_blocks, y, *, channels, noise_variance) -> np.ndarray:
    """G = I − Q⁻¹ + D (module docstring), shape (M, M)."""
    prob = _problem(train_blocks, y, channels, noise_variance)
    return _evaluate(_check_q(order_parameters, prob.blocks.shape[0]), prob, True)[1]


def _cholesky_parametrization(M, diagonal_only):
    if diagonal_only:
        to_q = lambda theta: np.diag(np.exp(2.0 * theta))
        size = M
    else:
        rows, cols = np.tril_indices(M)
        on_diagonal = rows == cols
        size = rows.size

        def to_q(theta):
            L = np.zeros((M, M))
            L[rows, cols] = np.where(on_diagonal, np.exp(theta), theta)
            return L @ L.T
    return to_q, size


def _minimize(prob: _Problem, diagonal_only: bool, gradient_tol, restarts, restart_noise, seed):
    M = prob.blocks.shape[0]
    to_q, size = _cholesky_parametrization(M, diagonal_only)
    rows, cols = np.tril_indices(M)

    def fun(theta):
        Q = to_q(theta)
        S, G = _evaluate(Q, prob, True)
        if G is None:
            return math.inf, np.zeros(size)
        if diagonal_only:   # Q_p = exp(2θ_p): dS/dθ_p = 2 Q_p G_pp
            return S, 2.0 * np.diag(Q) * np.diag(G)
        L = np.linalg.cholesky(Q)
        dL = 2.0 * (G @ L)   # dS = Tr(G dQ), dQ = dL Lᵀ + L dLᵀ ⇒ ∂S/∂L = 2 G L
        grad = dL[rows, cols]
        grad = np.where(rows == cols, grad * L[rows, cols], grad)
        return S, grad

    def criterion(Q):
        G = _evaluate(Q, prob, True)[1]
        if diagonal_only:
            G = np.diag(np.diag(G))
        return G, float(np.max(np.abs(G)))

    rng = np.random.default_rng(seed)
    theta = np.zeros(size)
    best, iterations, used = None, 0, 0
    for attempt in range(restarts + 1):
        result = optimize.minimize(fun, theta, jac=True, method="BFGS",
                                   options={"gtol": 1e-3 * gradient_tol, "maxiter": 2000})
        iterations += int(result.nit)
        Q = to_q(result.x)
        G, residual = criterion(Q)
        if best is None or result.fun < best[1]:
            best = (Q, float(result.fun), G, residual, result.x)
        if residual <= gradient_tol:
            break
        used += 1
        if attempt < restarts:
            theta = best[4] + restart_noise * rng.standard_normal(size)
    Q, S, G, residual, _ = best
    converged = residual <= gradient_tol
    return CNNSolution(Q, S, G, converged, residual, iterations, min(used, restarts),
                       "" if converged else f"max |dS/dQ| = {residual:.3g} after {restarts} restarts")


def solve_cnn(train_blocks, y, *, channels, noise_variance, gradient_tol: float = 1e-9, restarts: int = 5,
              restart_noise: float = 0.01, seed: int = 0) -> CNNSolution:
    """Minimize S(Q) over symmetric positive-definite Q (module docstring). channels = inf: Q = I."""
    prob = _problem(train_blocks, y, 1.0 if float(channels) == math.inf else channels, noise_variance)
    M = prob.blocks.shape[0]
    if float(channels) == math.inf:
        return CNNSolution(np.eye(M), math.nan, np.zeros((M, M)), True, 0.0, 0, 0, "infinite channels: GP")
    return _minimize(prob, False, gradient_tol, restarts, restart_noise, seed)


def solve_lcn(train_blocks, y, *, channels, noise_variance, gradient_tol: float = 1e-9, restarts: int = 5,
              restart_noise: float = 0.01, seed: int = 0) -> CNNSolution:
    """LCN (no weight sharing): minimize S over diagonal Q; only the diagonal blocks K_pp are used
    (the off-diagonal ones of `train_blocks` are ignored, module docstring)."""
    B = np.asarray(train_blocks, dtype=np.float64)
    if B.ndim == 4 and B.shape[0] == B.shape[1]:
        diagonal = np.zeros_like(B)
        idx = np.arange(B.shape[0])
        diagonal[idx, idx] = B[idx, idx]
        B = diagonal
    prob = _problem(B, y, 1.0 if float(channels) == math.inf else channels, noise_variance)
    M = prob.blocks.shape[0]
    if float(channels) == math.inf:
        return CNNSolution(np.eye(M), math.nan, np.zeros((M, M)), True, 0.0, 0, 0, "infinite channels: GP")
    return _minimize(prob, True, gradient_tol, restarts, restart_noise, seed)


def cnn_prediction(order_parameters, train_blocks, test_train_blocks, test_diag_blocks, y, *, noise_variance,
                   y_test=None) -> RenormalizedPrediction:
    """Predictions with K_R = (1/M)Σ_pq Q_pq K_pq on all blocks (a diagonal Q gives the LCN)."""
    B = np.asarray(train_blocks, dtype=np.float64)
    M = B.shape[0]
    Q = _check_q(order_parameters, M)
    T = np.asarray(test_train_blocks, dtype=np.float64)
    D = np.asarray(test_diag_blocks, dtype=np.float64)
    if T.ndim != 4 or T.shape[:2] != (M, M) or T.shape[3] != B.shape[2]:
        raise ValueError(f"test_train_blocks must have shape ({M}, {M}, m, {B.shape[2]}), got {T.shape}")
    if D.shape != (M, M, T.shape[2]):
        raise ValueError(f"test_diag_blocks must have shape ({M}, {M}, {T.shape[2]}), got {D.shape}")
    K = _kernel(Q, B)
    return renormalized_prediction(0.5 * (K + K.T), _kernel(Q, T), np.einsum("pq,pqi->i", Q, D) / M, y,
                                   noise_variance=noise_variance, y_test=y_test)


def order_parameters_from_readout(readout_second_moment, readout_variance, chi: float = 1.0) -> np.ndarray:
    """Q = (χM/σ̃_a²) E[Σ_c a_c a_cᵀ] from the sampled posterior mean of Σ_c a_cp a_cq, shape (M, M)."""
    R = np.asarray(readout_second_moment, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"readout_second_moment must be (M, M), got shape {R.shape}")
    return R * R.shape[0] * check_positive(chi, "chi") / check_positive(readout_variance, "readout_variance")
