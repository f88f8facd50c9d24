"""Finite-d self-consistent Landau theory of the cubic teacher (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1, App. A.3).

Conventions and the action S[q] = d·Ŝ(q; u, b, c, σ_w²) are those of `theory.landau` (prior
w ~ N(0, σ_w²/d I), readout a ~ N(0, σ̃_a²/(χN)), noise σ² = σ̃²/χ; χ = 1 standard, χ = N mean
field), given as one `theory.network_prior.NetworkPrior` (erf, one hidden layer, no biases);
the number of samples n and ε are separate arguments. Here the q-averages are taken under the *non-Gaussian* p(q) ∝ exp(−S[q]), integrated by
the panelled quadrature of `theory.order_parameter_quadrature` (no saddle/Gaussian-mixture
expansion), and the discrepancy (b, c) solves, with τ = [b, √6 c], y = [1, √6 ε]:

    (I + κ ⟨M(q)⟩) τ = y,   κ = n σ_a²/σ²,
    M = v vᵀ,  v(q) = [2q/√(πg), −4q³/(√(6π) g^{3/2})],  g = 1 + 2(σ_w² + q²),

i.e. [b, √6 c] = (I + (n/σ²) Q̃)⁻¹ [1, √6 ε] with Q̃ = σ_a²⟨M⟩ (paper App. Eq. 12 without its
missing σ²/n prefactor; the paper's App. A.3 matrix also prints 2q²/(πg) for
Q̃_11 where ⟨v_1²⟩ = 4q²/(πg)). v_k = E_x[Ĥe_k(z*) erf(w·x)] (Stein, `theory.hermite`).

Uniqueness [DERIVED]. The equations are the stationarity conditions of
    Ψ(τ) = ½|τ|² − τ·y + (κ/(u d)) log[Z(τ)/Z(0)],   Z(τ) = ∫dq exp(−d q²/(2σ_w²) + (u d/2)(τ·v)²),
(∇ log Z = u d ⟨M⟩ τ). log Z is convex in τ (log of an integral of exponentials of convex
functions of τ), so Ψ is strictly convex: the finite-d solution is unique at every parameter point
and there is no coexistence of branches — the first-order transition of the d → ∞ theory appears at
finite d as a smooth crossover through the mixed (GMFL-I) region, where the minimizer of Ψ sits
near the kink that develops in log Z. `free_energy` reports Ψ at the solution.

Predictions. f̄ = y − σ² t̄ = (1 − b) He_1 + (ε − c) He_3, so the learnabilities (normalized
projections f̄·He_k / y·He_k under N(0, 1)) are L_1 = 1 − b and L_3 = 1 − c/ε.

Phases (finite d, classified from the wells of p(q)): the q ≈ 0 basin runs from 0 to the first
maximum of S; the q ≈ ±q* wells are the rest. GFL: the wells give less than `threshold` of the
linear-mode kernel ⟨v_1²⟩; GMFL-II: the q ≈ 0 basin holds less than `threshold` of the mass;
GMFL-I otherwise. (In GMFL-I the wells hold only O(1/d) of the mass but an O(1) share of ⟨v_1²⟩.)
The split uses the stationary points of S, so the well share jumps from 0 when the q* well first
appears as a local minimum (its spinodal), although p(q) itself changes smoothly there.

Finite d versus the scaling limit. Near the transition A2 is small, so the 1/d corrections to the
Gaussian q ≈ 0 basin, ~|A4|/(d A2²), are large (≈ 0.2 at R4, d = 150): the exact-quadrature b lies
below the scaling-limit value (0.2797 vs 0.2940 at σ² = 0.18), the interaction u b² is weaker, and
the crossover moves to lower σ² (wells appear at σ² ≈ 0.15; their share of ⟨v_1²⟩ reaches 1/2 at
σ² ≈ 0.121) than the d → ∞ transition σ²_c ≈ 0.1787 of `landau.find_landau_transition`.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
from scipy import optimize

from theory import continuation as cont
from theory import landau
from theory.hermite import single_index_projection
from theory.network_prior import NetworkPrior, check_two_layer
from theory.order_parameter_quadrature import folded_quadrature

__all__ = [
    "CubicTeacherSolution",
    "classify_phase",
    "find_cubic_teacher_crossover",
    "order_parameter_density",
    "scan_cubic_teacher",
    "solve_cubic_teacher",
]

PHASES = ("GFL", "GMFL-I", "GMFL-II")
_SQRT6 = math.sqrt(6.0)


class CubicTeacherSolution(NamedTuple):
    """Self-consistent finite-d solution (module docstring). All scalars are floats.

    b, c: discrepancy coefficients (σ² t̄ = b He_1 + c He_3); u, kernel_strength (κ), input_dim,
    input_variance, epsilon: the couplings used; scaled_kernel: κ⟨M⟩ = (n/σ²) Q̃, shape (2, 2);
    learnability_linear/cubic: 1 − b, 1 − c/ε; stationary_points: of S at (b, c);
    zero_well_mass, well_mass: probability of the q ≈ 0 basin and of the q ≈ ±q* wells;
    well_kernel_fraction: share of ⟨v_1²⟩ from the wells; phase: 'GFL' | 'GMFL-I' | 'GMFL-II';
    free_energy: Ψ at the solution; converged/residual (max-norm of the equations)/iterations
    (function evaluations)/message.
    """

    b: float
    c: float
    u: float
    kernel_strength: float
    input_dim: float
    input_variance: float
    epsilon: float
    scaled_kernel: np.ndarray
    learnability_linear: float
    learnability_cubic: float
    stationary_points: landau.StationaryPoints
    zero_well_mass: float
    well_mass: float
    well_kernel_fraction: float
    phase: str
    free_energy: float
    converged: bool
    residual: float
    iterations: int
    message: str


def classify_phase(well_kernel_fraction: float, zero_well_mass: float, threshold: float = 0.01) -> str:
    """'GFL' if well_kernel_fraction < threshold, 'GMFL-II' if zero_well_mass < threshold, else 'GMFL-I'."""
    threshold = float(threshold)
    if not 0.0 < threshold < 0.5:
        raise ValueError(f"threshold must lie in (0, 0.5), got {threshold!r}")
    if zero_well_mass < threshold:
        return "GMFL-II"
    return "GFL" if well_kernel_fraction < threshold else "GMFL-I"


def _projections(q: np.ndarray, input_variance: float) -> np.ndarray:
    """v(q) = [E Ĥe_1 erf, E Ĥe_3 erf] with |w|² = σ_w² + q², shape (2, m)."""
    s = input_variance + q * q
    return np.stack([single_index_projection("erf", k, q, s, normalized=True) for k in (1, 3)])


def _moments(u, b, c, input_variance, input_dim):
    """Quadrature rule, stationary points and ⟨M⟩ at (b, c)."""
    points = landau.stationary_points(u, b, c, input_variance)
    action = lambda q: landau.landau_action(q, u, b, c, input_variance, input_dim)
    rule = folded_quadrature(action, points.positions)
    v = _projections(rule.nodes, input_variance)
    return rule, points, v, (v * rule.weights) @ v.T


def _well_split(rule, points, v) -> tuple[float, float]:
    """(zero_well_mass, well_kernel_fraction): the q ≈ 0 basin ends at the first maximum of S."""
    if not points.is_minimum[0]:
        return 0.0, 1.0
    barrier = points.positions[1] if points.positions.size > 1 else math.inf
    inside = rule.nodes < barrier
    linear = rule.weights * v[0] ** 2
    total = linear.sum()
    return float(rule.weights[inside].sum()), float(linear[~inside].sum() / total) if total > 0 else 0.0


def solve_cubic_teacher(prior: NetworkPrior, *, num_samples, epsilon,
                        initial_guess: Optional[Sequence[float]] = None,
                        tol: float = 1e-12, phase_threshold: float = 0.01) -> CubicTeacherSolution:
    """Solve (I + κ⟨M⟩)τ = y for (b, c) with exact quadrature over q (module docstring).

    u = n²σ_a²/(σ⁴dN) and κ = nσ_a²/σ² from (prior, n) as in `theory.landau`.
    `initial_guess` = (b, c); default: the scaling-limit GFL branch (`landau.gfl_branch_scaling_limit`).
    Root finder: `scipy.optimize.root(method='hybr')` (MINPACK Powell hybrid, finite-difference
    Jacobian) with xtol = `tol`; converged requires MINPACK success and a residual ≤ 1e-9.
    """
    check_two_layer(prior, ("erf",))
    u = landau.effective_interaction(prior, num_samples)
    kappa = landau.kernel_strength(prior, num_samples)
    sw2 = prior.input_variance
    d = float(prior.input_dim)
    eps = landau._finite(epsilon, "epsilon")
    target = np.array([1.0, _SQRT6 * eps])
    if initial_guess is None:
        branch = landau.gfl_branch_scaling_limit(u, kappa / d, sw2, eps)
        initial_guess = (branch.b, branch.c)
    x0 = np.asarray(initial_guess, dtype=np.float64)
    if x0.shape != (2,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"initial_guess must be two finite numbers (b, c), got {initial_guess!r}")

    def equations(x):
        tau = np.array([x[0], _SQRT6 * x[1]])
        return tau + kappa * (_moments(u, x[0], x[1], sw2, d)[3] @ tau) - target

    sol = optimize.root(equations, x0, method="hybr", options={"xtol": float(tol)})
    b, c = (float(v) for v in sol.x)
    rule, points, v, moment = _moments(u, b, c, sw2, d)
    tau = np.array([b, _SQRT6 * c])
    residual = float(np.max(np.abs(tau + kappa * moment @ tau - target)))
    zero_mass, fraction = _well_split(rule, points, v)
    prior_log_z = 0.5 * math.log(2.0 * math.pi * sw2 / d)
    free_energy = 0.5 * tau @ tau - tau @ target + kappa / (u * d) * (rule.log_normalizer - prior_log_z)
    converged = bool(sol.success) and residual <= 1e-9
    return CubicTeacherSolution(
        b, c, u, kappa, d, sw2, eps, kappa * moment, 1.0 - b, 1.0 - c / eps if eps else math.nan,
        points, zero_mass, 1.0 - zero_mass, fraction, classify_phase(fraction, zero_mass, phase_threshold),
        float(free_energy), converged, residual, int(sol.nfev), "" if converged else str(sol.message))


def order_parameter_density(solution: CubicTeacherSolution, q) -> tuple[np.ndarray, np.ndarray]:
    """Predicted p(q) (normalized on the whole line) and −log p(q) on the grid q, at the solution.

    −log p(q) = S[q] + log ∫ e^{−S}; compare with the histogram of w·w* over neurons and chains.
    """
    q = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ValueError("q must be finite")
    rule = _moments(solution.u, solution.b, solution.c, solution.input_variance, solution.input_dim)[0]
    neg_log = landau.landau_action(q, solution.u, solution.b, solution.c, solution.input_variance,
                                   solution.input_dim) + rule.log_normalizer
    return np.exp(-neg_log), neg_log


def _solver(prior_at: Callable[[float], NetworkPrior], num_samples, epsilon, options: dict):
    def solve_at(value, guess):
        return solve_cubic_teacher(prior_at(value), num_samples=num_samples, epsilon=epsilon,
                                   initial_guess=guess, **options)

    return solve_at


def _guess(solution: CubicTeacherSolution) -> np.ndarray:
    return np.array([solution.b, solution.c])


def scan_cubic_teacher(prior_at: Callable[[float], NetworkPrior], values: Sequence[float], *,
                       num_samples, epsilon, **options) -> cont.ContinuationResult:
    """Continuation of `solve_cubic_teacher` along the priors `prior_at(v)`, v in `values`
    (e.g. `lambda v: dataclasses.replace(prior, noise_variance_tilde=v)`), warm-started.

    `options`: tol, phase_threshold. Put the GFL side first (large noise, large width).
    """
    return cont.continuation(_solver(prior_at, num_samples, epsilon, options), values, _guess)


def find_cubic_teacher_crossover(prior_at: Callable[[float], NetworkPrior], values: Sequence[float], *,
                                 num_samples, epsilon, level: float = 0.5,
                                 indicator: str = "well_kernel_fraction", **options) -> cont.CrossingResult:
    """First value along `values` (GFL side first) where `indicator` of the solution at
    `prior_at(value)` reaches `level`.

    Finite-d counterpart of `landau.find_landau_transition`: there is no sharp transition at finite
    d (the solution is unique and smooth, module docstring), so the crossover is defined by an
    indicator field of CubicTeacherSolution (default: the wells' share of ⟨v_1²⟩ reaching 1/2).
    The scan brackets the crossing; Brent's method refines it with warm-started solves.
    """
    if indicator not in CubicTeacherSolution._fields:
        raise ValueError(f"indicator must be a field of CubicTeacherSolution, got {indicator!r}")
    solve_at = _solver(prior_at, num_samples, epsilon, options)
    path = cont.continuation(solve_at, values, _guess)
    read = lambda s: float(getattr(s, indicator))
    for k in range(len(path.solutions) - 1):
        lo, hi = path.solutions[k], path.solutions[k + 1]
        if lo.converged and hi.converged and (read(lo) - level) * (read(hi) - level) <= 0:
            return cont.locate_crossing(solve_at, read, lo, hi, path.values[k],
                                        path.values[k + 1], _guess, level=level, xtol=1e-10)
    raise ValueError(f"{indicator} does not cross level={level!r} along values "
                     f"(range {min(read(s) for s in path.solutions)!r}..{max(read(s) for s in path.solutions)!r})")
