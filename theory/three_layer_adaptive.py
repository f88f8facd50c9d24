"""Adaptive-kernel equations of state of a three-layer erf network (`AdaptiveGPs` notebook; Seroussi, Naveh,
Ringel, Nat. Commun. 14, 908 (2023); the authors' notebook `zringel/AdaptiveGPs`
Solver_3Layer_ErfFCN_Jax-Final_Version.ipynb).

Network f(x) = Σ_{c=1}^{C2} a_c erf(h_c(x)), h_c(x) = Σ_{c'=1}^{C1} W_{cc'} erf(w_{c'}·x). Convention:
U = ½Σ(f − y)² + Σ γ_l/2|θ_l|² at temperature T (prior variance T/γ_l, noise σ² = T; the notebook uses
Σ(f−y)² at T = 2σ², the same posterior): w ~ N(0, σ_0²/d · I_d), W ~ N(0, σ_1²/C1), a ~ N(0, σ_a²/C2)
(mean-field users pass σ_a² = σ̃_a²/χ; the notebook has σ_0² = σ_1² = 2, σ_a² = 2/256, σ² = 10⁻³).
Unknowns: Σ (d×d), the covariance of the first-layer weights, and K1 (n×n), the posterior kernel of the
second-layer pre-activations h on the training inputs.

    Q1(Σ) = σ_1² (2/π) arcsin(2x_μᵀΣx_ν/√((1+2x_μᵀΣx_μ)(1+2x_νᵀΣx_ν)))    (prior kernel of h given Σ)
    Qf(K1) = σ_a² (2/π) arcsin(2K1_μν/√((1+2K1_μμ)(1+2K1_νν)))              (output kernel)
    t̄ = (Qf + σ²I)⁻¹ y
    K1⁻¹ = Q1⁻¹ − (1/C2) ∇_{K1} Tr[(t̄t̄ᵀ + s (Qf + σ²I)⁻¹) Qf(K1)]            (t̄, Qf inside (·) held fixed)
    Σ⁻¹ = (d/σ_0²) I − (C2/C1) ∇_Σ Tr[(Q1⁻¹K1Q1⁻¹ − Q1⁻¹) Q1(Σ)]              (Q1, K1 inside (·) held fixed)

Gradients are in the symmetric-matrix convention df = Tr(G dK) (= jax.grad over all entries for these
symmetric functions); both are analytic (theory.erf_covariance_gradient; for K1 the same formula with
X = I, evaluated elementwise in O(n²)). The notebook has C1 = C2 = C, so its Σ equation carries no
width factor.

The sign s of the log-det term [DERIVED]: s = −1 (`logdet_sign=-1`, the default); the notebook codes
s = +1. Derivation (the two-layer action of Seroussi, Naveh & Ringel, Nat. Commun. 2023, applied to the last layer): integrating the readout,
−log p(h) ⊃ ½ yᵀ(K_h + σ²I)⁻¹y + ½ log det(K_h + σ²I), K_h = (σ_a²/C2)Σ_c erf(h_c)erf(h_c)ᵀ. Expanding
K_h = Qf + δK to first order gives the per-unit action
  S[h] = ½ hᵀQ1⁻¹h − (σ_a²/(2C2)) [(t̄ᵀerf(h))² − erf(h)ᵀ(Qf + σ²I)⁻¹ erf(h)],
and the Gaussian (VGA) closure h ~ N(0, K1), stationarity of ⟨S⟩ − ½ log det K1, gives the K1
equation with weight t̄t̄ᵀ − (Qf + σ²I)⁻¹: the data term widens the kernel along the target, the
log-det (Occam) term shrinks it. In the auxiliary-field language this is ⟨t tᵀ⟩ = t̄t̄ᵀ − (Qf+σ²I)⁻¹
for the imaginary field t; "+" drops the i². Checks: (i) with y = 0 the exact posterior is
∝ p(θ) det(K_h + σ²I)^{−1/2}, which favours smaller kernels, so K1 should shrink below Q1 — true for s = −1,
false for s = +1 (tested); (ii) the proportional-regime action (theory.proportional_one_layer), exact in
its limit, expands to first order in 1/N as Q̄ = 1 + (1/N)[t̄ᵀK t̄ − Tr((K+σ²I)⁻¹K)]: the same relative
minus sign between the data and log-det terms. The Σ equation is derived the same way one layer
down (C2 units h with prior GP(0, K_W), K_W = (σ_1²/C1)Σ_{c'} erf(Xw_{c'})erf(Xw_{c'})ᵀ, expanded
around Q1), which also fixes its factor C2/C1. Both signs reduce to the GP at infinite width.

Numerical method (as the notebook): unknowns are the upper triangles of Σ and K1, residual
F = [Σ − Σ_new, K1 − K1_new] (upper triangles), `scipy.optimize.newton_krylov` (max-norm f_tol);
continuation in width from the GP solution Σ = σ_0²/d I, K1 = Q1(Σ) (`scan_three_layer`, warm-started;
the notebook's schedule is 10⁵, 3·10⁴, 2·10⁴, ..., 100, 95, 90 with C1 = C2 = C). Cost: one residual
evaluation is ≈ 5.7n³ flops (three n×n inversions from one Cholesky factor each, n³ apiece, and the
product Q1⁻¹K1Q1⁻¹ as PPᵀ with P = Q1⁻¹·chol(K1), ≈ 2.3n³) plus O(n²d) elementwise work; Newton–Krylov
needs tens of evaluations per width. The notebook's printed numbers belong to n = 2048 (its emergent-scale
cell, run before the solver, leaves n_train = 2048; the notebook's text says 512), where one evaluation takes
≈ 3.4 s on one CPU core (float64 OpenBLAS, one thread; it was ≈ 5 s with solves against the identity
and two dense products). Measured there (logdet_sign=+1): GP → C = 30000 took 3 Newton steps, 82
evaluations (≈ 290 s) to the notebook's criterion |F|∞ ≤ 6.06·10⁻⁶ and 2 more steps (≈ 220 s) to 10⁻⁸;
the notebook's path to C = 1000 (16 widths, 2–8 Newton steps each) took 2 h 6 min on one core of a shared
machine and reproduces its printed α and RMSE to ≤ 2.3·10⁻⁴ relative at every width (docs/results.md); to
C = 100 (47 widths, up to 40 steps each below C = 150) it is many hours.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
from scipy import linalg, optimize
from scipy.linalg import blas, lapack

from theory import continuation as cont
from theory.erf_covariance_gradient import erf_gram, erf_gram_gradient
from theory.kernels import _CORRELATION_SLACK, activation_kernel
from theory.validation import check_positive

__all__ = ["ThreeLayerSolution", "erf_kernel_gradient", "scan_three_layer", "solve_three_layer",
           "three_layer_gp", "train_discrepancy_alignment", "relative_train_rmse"]


class ThreeLayerSolution(NamedTuple):
    """covariance Σ (d, d); hidden_kernel K1 (n, n); output_kernel Qf(K1) (n, n); discrepancy
    t̄ = (Qf + σ²I)⁻¹y (n,); widths (C1, C2); logdet_sign; converged/residual (max-norm of F)/
    iterations (Newton iterations)/message."""

    covariance: np.ndarray
    hidden_kernel: np.ndarray
    output_kernel: np.ndarray
    discrepancy: np.ndarray
    widths: tuple
    logdet_sign: int
    converged: bool
    residual: float
    iterations: int
    message: str


class _Params(NamedTuple):
    X: np.ndarray
    y: np.ndarray
    s0: float
    s1: float
    sa: float
    noise: float
    C1: float
    C2: float
    sign: int


def erf_kernel_gradient(K1, weights) -> np.ndarray:
    """∇_{K1} Σ_μν W_μν κ_erf(K1)_μν, κ_erf(K)_μν = (2/π) arcsin(2K_μν/√((1+2K_μμ)(1+2K_νν))).

    Symmetric convention (df = Tr(G dK1) for symmetric dK1); erf_gram_gradient with X = I, done
    elementwise: G = E∘2/√(ppᵀ) − 2 diag(Σ_ν E_μν ρ_μν/p_μ), E = (2/π)W/√(1−ρ²), p = 1 + 2 diag K1.
    """
    K1 = np.asarray(K1, dtype=np.float64)
    W = np.asarray(weights, dtype=np.float64)
    W = 0.5 * (W + W.T)
    p = 1.0 + 2.0 * np.diag(K1)
    root = np.sqrt(np.outer(p, p))
    rho = np.clip(2.0 * K1 / root, -1.0, 1.0)
    E = (2.0 / math.pi) * W / np.sqrt(1.0 - rho * rho)
    G = E * (2.0 / root)
    G[np.diag_indices_from(G)] -= 2.0 * (E * rho).sum(axis=1) / p
    return 0.5 * (G + G.T)


def _output_kernel(K1, sa):
    d = np.diag(K1)
    Qf = sa * activation_kernel("erf", d[:, None], K1, d[None, :])
    return 0.5 * (Qf + Qf.T)


class _ErfOfHidden(NamedTuple):
    """κ_erf(K1) pieces shared by Qf and ∇_{K1}: p = 1 + 2 diag K1 (n,), two_over_root = 2/√(ppᵀ) and
    ρ = clip(2K1/√(ppᵀ)) (n, n)."""
    norms: np.ndarray
    two_over_root: np.ndarray
    correlation: np.ndarray


def _erf_of_hidden(K1) -> _ErfOfHidden:
    """The intermediates of Qf(K1) and erf_kernel_gradient(K1, ·) for an exactly symmetric K1, computed once
    with the same arithmetic (so the same values) and the same validity checks as activation_kernel."""
    d = np.diagonal(K1)
    if not np.all(np.isfinite(K1)):
        raise ValueError("K1 must be finite")
    if np.any(d < 0):
        raise ValueError(f"K1 must have a non-negative diagonal, min is {d.min()!r}")
    bound = np.outer(d, d)
    bound *= 1.0 + _CORRELATION_SLACK
    bound += 1e-300
    if np.any(K1 * K1 > bound):
        raise ValueError("K1 must satisfy K1_μν² ≤ K1_μμ K1_νν (a valid covariance); violated by more than rounding")
    p = 1.0 + 2.0 * d
    root = np.outer(p, p)
    np.sqrt(root, out=root)
    rho = 2.0 * K1
    rho /= root
    np.clip(rho, -1.0, 1.0, out=rho)
    np.divide(2.0, root, out=root)
    return _ErfOfHidden(p, root, rho)


def _output_kernel_from(parts: _ErfOfHidden, sa):
    """Qf = σ_a² (2/π) arcsin ρ (the value of _output_kernel)."""
    Qf = np.arcsin(parts.correlation)
    Qf *= 2.0 / math.pi
    Qf *= sa
    return Qf


def _erf_kernel_gradient_from(parts: _ErfOfHidden, W):
    """erf_kernel_gradient for exactly symmetric K1 and W (the same value, without the symmetrizations, which
    are exact no-ops then)."""
    rho = parts.correlation
    E = rho * rho
    np.subtract(1.0, E, out=E)
    np.sqrt(E, out=E)
    np.divide((2.0 / math.pi) * W, E, out=E)
    diagonal = 2.0 * (E * rho).sum(axis=1) / parts.norms
    E *= parts.two_over_root
    E[np.diag_indices_from(E)] -= diagonal
    return E


def _inverse_spd(A):
    """A⁻¹ for a symmetric positive-definite A, from one Cholesky factor (LAPACK potrf + potri, ≈ n³ flops,
    half of solving against the identity); exactly symmetric. LinAlgError if A is not positive definite,
    ValueError if it is not finite."""
    A = np.asarray(A, dtype=np.float64)
    if not np.all(np.isfinite(A)):
        raise ValueError("matrix to invert has non-finite entries")
    factor, info = lapack.dpotrf(A, lower=1, clean=1)             # clean=1: strict upper triangle zeroed
    if info > 0:
        raise linalg.LinAlgError(f"{info}-th leading minor of the matrix is not positive definite")
    lower, info = lapack.dpotri(factor, lower=1, overwrite_c=1)   # writes the lower triangle only
    if info != 0:
        raise linalg.LinAlgError(f"potri failed (info {info})")
    inverse = lower + lower.T
    inverse[np.diag_indices_from(inverse)] *= 0.5
    return inverse


def _sandwich(inverse, K1):
    """inverse·K1·inverse for symmetric matrices: with the Cholesky factor K1 = MMᵀ it is PPᵀ, P = inverse·M
    (trmm + syrk, ≈ 2.3n³ flops instead of two products' 4n³); two products when K1 is not positive definite
    (a trial point of the root finder)."""
    factor, info = lapack.dpotrf(K1, lower=1, clean=1)
    if info != 0:
        return inverse @ K1 @ inverse
    P = blas.dtrmm(1.0, factor, inverse, side=1, lower=1)         # inverse @ M
    product = blas.dsyrk(1.0, P, lower=1)                         # lower triangle of P Pᵀ, upper zero
    full = product + product.T
    full[np.diag_indices_from(full)] *= 0.5
    return full


def _updates(Sigma, K1, prm: _Params):
    """(Σ_new, K1_new, Qf, t̄) from the right-hand sides of the equations of state."""
    n, d = prm.X.shape
    state = erf_gram(prm.X, Sigma)
    Q1 = prm.s1 * state.gram
    Q1_inv = _inverse_spd(Q1)
    parts = _erf_of_hidden(K1)
    Qf = _output_kernel_from(parts, prm.sa)
    A_inv = _inverse_spd(Qf + prm.noise * np.eye(n))
    tbar = A_inv @ prm.y
    weights = np.outer(tbar, tbar) + prm.sign * A_inv
    K1_new = _inverse_spd(Q1_inv - (prm.sa / prm.C2) * _erf_kernel_gradient_from(parts, weights))
    W2 = _sandwich(Q1_inv, K1) - Q1_inv
    # Weight C2/C1 of the Σ shift; it vanishes with the first-layer coupling 1/C1 (C1 = C2 = ∞: the GP).
    ratio = 0.0 if math.isinf(prm.C1) else prm.C2 / prm.C1
    shift = ratio * prm.s1 * erf_gram_gradient(state, W2) if ratio else np.zeros((d, d))
    Sigma_new = _inverse_spd((d / prm.s0) * np.eye(d) - shift)
    return 0.5 * (Sigma_new + Sigma_new.T), 0.5 * (K1_new + K1_new.T), Qf, tbar


def _params(X, y, input_variance, hidden_variance, readout_variance, noise_variance, widths, logdet_sign):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array, got shape {X.shape}")
    if y.shape != (X.shape[0],) or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be a finite array of shape ({X.shape[0]},), got shape {y.shape}")
    if logdet_sign not in (-1, 1):
        raise ValueError(f"logdet_sign must be -1 (derived) or +1 (the notebook's), got {logdet_sign!r}")
    C1, C2 = (widths, widths) if np.ndim(widths) == 0 else tuple(widths)
    C1, C2 = float(C1), float(C2)
    for name, value in (("widths[0]", C1), ("widths[1]", C2)):
        if not value > 0:   # inf allowed: the GP limit
            raise ValueError(f"{name} must be a positive number (inf: GP), got {value!r}")
    if math.isinf(C1) != math.isinf(C2):
        raise ValueError(f"widths must be both finite or both infinite, got {widths!r}")
    return _Params(X, y, check_positive(input_variance, "input_variance"),
                   check_positive(hidden_variance, "hidden_variance"),
                   check_positive(readout_variance, "readout_variance"),
                   check_positive(noise_variance, "noise_variance"),
                   C1, C2, int(logdet_sign))


def three_layer_gp(X, y, *, input_variance, hidden_variance, readout_variance, noise_variance):
    """The infinite-width (GP) solution: Σ = σ_0²/d I, K1 = Q1(Σ), Qf(K1), t̄ — as a ThreeLayerSolution."""
    prm = _params(X, y, input_variance, hidden_variance, readout_variance, noise_variance, math.inf, -1)
    n, d = prm.X.shape
    Sigma = (prm.s0 / d) * np.eye(d)
    K1 = prm.s1 * erf_gram(prm.X, Sigma).gram
    Qf = _output_kernel(K1, prm.sa)
    tbar = linalg.solve(Qf + prm.noise * np.eye(n), prm.y, assume_a="pos")
    return ThreeLayerSolution(Sigma, K1, Qf, tbar, (math.inf, math.inf), -1, True, 0.0, 0, "GP limit")


@functools.lru_cache(maxsize=8)
def _upper(m):
    """np.triu_indices(m), computed once per size (it is rebuilt at every residual evaluation otherwise)."""
    return np.triu_indices(m)


def _pack(Sigma, K1):
    return np.concatenate([Sigma[_upper(Sigma.shape[0])], K1[_upper(K1.shape[0])]])


def _unpack(z, d, n):
    def sym(v, m):
        S = np.zeros((m, m))
        S[_upper(m)] = v
        S.T[_upper(m)] = v          # the lower triangle (the diagonal is written twice with the same value)
        return S
    k = d * (d + 1) // 2
    return sym(z[:k], d), sym(z[k:], n)


def solve_three_layer(X, y, *, widths, input_variance, hidden_variance, readout_variance, noise_variance,
                      logdet_sign: int = -1, initial: Optional[ThreeLayerSolution] = None,
                      f_tol: float = 1e-8, max_iterations: int = 100) -> ThreeLayerSolution:
    """Solve the equations of state at widths (C1, C2) (a scalar means C1 = C2) by Newton–Krylov,
    started from `initial` (default: the GP solution). converged ⇔ max-norm residual ≤ f_tol."""
    prm = _params(X, y, input_variance, hidden_variance, readout_variance, noise_variance, widths, logdet_sign)
    n, d = prm.X.shape
    if initial is None:
        initial = three_layer_gp(X, y, input_variance=input_variance, hidden_variance=hidden_variance,
                                 readout_variance=readout_variance, noise_variance=noise_variance)
    counter = [0]

    def residual(z):
        Sigma, K1 = _unpack(z, d, n)
        try:
            Sigma_new, K1_new, _, _ = _updates(Sigma, K1, prm)
        except (linalg.LinAlgError, ValueError):
            return np.full(z.size, 1e3)
        return _pack(Sigma - Sigma_new, K1 - K1_new)

    def callback(x, f):
        counter[0] += 1

    z0 = _pack(initial.covariance, initial.hidden_kernel)
    message = ""
    try:
        z = optimize.newton_krylov(residual, z0, f_tol=f_tol, maxiter=max_iterations, callback=callback)
    except (optimize.NoConvergence, ValueError, linalg.LinAlgError) as error:
        z = error.args[0] if isinstance(error, optimize.NoConvergence) and error.args else z0
        message = f"newton_krylov: {type(error).__name__}"
    Sigma, K1 = _unpack(np.asarray(z, dtype=np.float64), d, n)
    F = residual(z)
    res = float(np.max(np.abs(F)))
    converged = res <= f_tol and not message
    Qf = _output_kernel(K1, prm.sa)
    tbar = linalg.solve(Qf + prm.noise * np.eye(n), prm.y, assume_a="pos")
    return ThreeLayerSolution(Sigma, K1, Qf, tbar, (prm.C1, prm.C2), prm.sign, converged, res, counter[0],
                              message or ("" if converged else f"residual {res:.3g} > f_tol"))


def scan_three_layer(X, y, widths: Sequence[float], *, predictor: str = "previous",
                     **params) -> cont.ContinuationResult:
    """Continuation in width (C1 = C2 = C, largest first), warm-started from the GP solution.
    `predictor`: "previous" (start each width from the last solution, as the notebook does) or
    "secant" (extrapolate the last two solutions linearly in 1/C, `theory.continuation`). Measured on the
    notebook's data cut to n = 256, its 49 widths 30000 … 90, sign +1, its criterion: 2884 residual
    evaluations with "previous", 1856 (0.64×) with "secant", the same path (α at C = 90: 8.61286 and
    8.61285, within the criterion).
    `params`: the keyword arguments of `solve_three_layer` other than widths and initial."""
    d, n = np.asarray(X).shape[1], np.asarray(X).shape[0]
    gp = three_layer_gp(X, y, **{k: params[k] for k in ("input_variance", "hidden_variance",
                                                         "readout_variance", "noise_variance")})

    def solve_at(C, guess):
        start = gp if guess is None else gp._replace(covariance=_unpack(guess, d, n)[0],
                                                    hidden_kernel=_unpack(guess, d, n)[1])
        return solve_three_layer(X, y, widths=C, initial=start, **params)

    return cont.continuation(solve_at, widths, lambda s: _pack(s.covariance, s.hidden_kernel),
                             predictor=predictor, coordinate=lambda C: 1.0 / C)


def train_discrepancy_alignment(solution: ThreeLayerSolution, y) -> float:
    """t̄·y / y·y (the notebook's "alpha train")."""
    y = np.asarray(y, dtype=np.float64).ravel()
    return float(solution.discrepancy @ y) / float(y @ y)


def relative_train_rmse(solution: ThreeLayerSolution, y, noise_variance) -> float:
    """√((σ⁴⟨t̄²⟩ + Tr(Qf − Qf(Qf+σ²I)⁻¹Qf)/n) / Var y): the posterior-averaged train RMSE over the
    label standard deviation (the notebook's "RMSE/y_std"; σ²t̄ = y − f̄ on the training set)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    s2 = check_positive(noise_variance, "noise_variance")
    Qf = solution.output_kernel
    n = len(y)
    fluctuation = np.trace(Qf - Qf @ linalg.solve(Qf + s2 * np.eye(n), Qf, assume_a="pos")) / n
    return math.sqrt((s2 ** 2 * np.mean(solution.discrepancy ** 2) + fluctuation) / np.var(y))
