"""Staircase sample complexity (Ringel et al. 2025, arXiv:2502.18553, "Example: staircase learning"): how the number of
samples P needed to learn 90 % of the cubic part of y = w*·x + ε(w*·x)³ grows with d, for the
NNGP (GP limit) and for the mean-field network whose kernel adapts to w*.

Target. z* = w*·x, z*³ = He_3(z*) + 3He_1(z*), so y = (1 + 3ε) He_1 + ε He_3: the cubic
component is the He_3 part and "learning 90 % of it" means L_3 = f̄·He_3 / y·He_3 ≥ 0.9 (the
learnability of Canatar, Bordelon & Pehlevan 2021; Ringel et al. 2025).

GP (the NNGP recursion of Lee et al., ICLR 2018; Rubin, Seroussi & Ringel 2024, App. A; Canatar,
Bordelon & Pehlevan 2021; `theory.single_index_spectrum`): the two-layer erf NNGP on N(0, I_d) has
degree-k eigenvalues λ_k (exact in d, harmonic quotient) with multiplicity N(d, k) ~ d^k/k!; the
self-consistent κ_S (Simon convention) solves Σ_k N(d,k) λ_k/(λ_k + κ_S) + δ/κ_S = P with ridge
δ = σ² + (trace not in degrees ≤ K) (the RG tail, Howard, Maiti, Jefferson & Ringel 2024), and L_3 = λ_3/(λ_3 + κ_S).
Why P ~ d³ [DERIVED]: L_3 ≥ 0.9 needs κ_S ≤ λ_3/9, and then the N(d, 3) cubic modes alone
contribute 0.9 N(d, 3) to the left side, so P* ≥ 0.9 N(d, 3) ≈ 0.15 d³; conversely with
λ_3 ∝ d⁻³ and the lower modes saturated (≈ 1 + d learned modes), P* = O(d³). The ratio
P*/d³ therefore tends to a constant and the local exponent d log P*/d log d → 3 from either side.

Kernel adaptation (`theory.single_index_gfl`, Gaussian closure in the symmetric reduction; the
grokking/Landau per-neuron theory with ε > 0 has A4 > 0, a continuous transition, so the
Gaussian closure is the relevant branch): mean-field scaling χ = N with fixed numerators σ̃_a², σ̃²
and a width N = width_per_dim · d; the smallest P with L_3 ≥ 0.9 is found by continuation in P
from the GP side (small P) and bisection on the bracketing pair. The network first learns He_1,
which makes Σ spike along w* (b = O(1)); once b = O(1), λ_3 = σ_a² E[v_3²] is no longer
suppressed by d⁻³ and P* grows only like a low power of d.

Exponent. `fit_exponent` fits log P* = log A + α log d by least squares and returns α with its
standard error from the residuals (P* here is deterministic: the "uncertainty" measures how far
the points are from one power law, i.e. the pre-asymptotic curvature, not noise), plus the local
exponents between consecutive d.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
from scipy import optimize

from theory.network_prior import NetworkPrior
from theory.single_index_gfl import scan_single_index_gfl_in_samples, solve_single_index_gfl
from theory.single_index_spectrum import predicted_learnabilities, single_index_spectrum
from theory.validation import check_positive as _positive

__all__ = [
    "AdaptiveThreshold",
    "ExponentFit",
    "cubic_target_coefficients",
    "fit_exponent",
    "gfl_cubic_learnability",
    "gfl_cubic_learnability_path",
    "gfl_threshold",
    "gp_cubic_learnability",
    "gp_threshold",
]

LEARNED_FRACTION = 0.9
GP_MAX_DEGREE = 5


class AdaptiveThreshold(NamedTuple):
    """samples: the smallest P with L_3 = fraction; solution: the Gaussian-closure solution there
    (warm-started from the continuation branch)."""

    samples: float
    solution: object


class ExponentFit(NamedTuple):
    """log P* = intercept + exponent · log d; exponent_se: standard error (nan for 2 points);
    local_exponents: Δlog P*/Δlog d between consecutive d."""

    exponent: float
    exponent_se: float
    intercept: float
    local_exponents: np.ndarray


def cubic_target_coefficients(epsilon: float) -> tuple[float, float]:
    """(y_1, y_3) of y = z + ε z³ on unnormalized He_1, He_3: (1 + 3ε, ε)."""
    eps = float(epsilon)
    if not math.isfinite(eps) or eps == 0:
        raise ValueError(f"epsilon must be finite and non-zero, got {epsilon!r}")
    return 1.0 + 3.0 * eps, eps


def gp_cubic_learnability(num_samples, input_dim, *, epsilon, noise_variance, sigma_w2=1.0, sigma_a2=1.0,
                          max_degree: int = GP_MAX_DEGREE) -> float:
    """L_3 of the erf NNGP (self-consistent κ, exact-in-d spectrum) at P = `num_samples`."""
    spectrum = single_index_spectrum("erf", max_degree, int(input_dim), sigma_w2, sigma_a2)
    y1, y3 = cubic_target_coefficients(epsilon)
    target = np.zeros(max_degree + 1)
    target[1], target[3] = y1, y3 * math.sqrt(6.0)
    result = predicted_learnabilities(target, spectrum.eigenvalues, spectrum.multiplicities,
                                      float(num_samples), _positive(noise_variance, "noise_variance"),
                                      tail_trace=spectrum.tail_trace)
    return float(result.self_consistent[3])


def gp_threshold(input_dim, *, epsilon, noise_variance, sigma_w2=1.0, sigma_a2=1.0,
                 fraction: float = LEARNED_FRACTION, max_degree: int = GP_MAX_DEGREE) -> float:
    """Smallest P (real-valued) with GP L_3(P) = `fraction` (L_3 increases with P; Brent in log P)."""
    f = lambda log_p: gp_cubic_learnability(math.exp(log_p), input_dim, epsilon=epsilon,
                                            noise_variance=noise_variance, sigma_w2=sigma_w2, sigma_a2=sigma_a2,
                                            max_degree=max_degree) - fraction
    lo, hi = math.log(1.0), math.log(1e3 * float(input_dim) ** 3 + 1e3)
    if f(hi) < 0:
        raise ValueError(f"GP L_3 stays below {fraction} up to P = {math.exp(hi):.3g} (d = {input_dim})")
    return math.exp(optimize.brentq(f, lo, hi, xtol=1e-10, rtol=1e-12))


def _gfl_problem(input_dim, epsilon, noise_variance, readout_variance, width_per_dim, input_variance):
    """(the mean-field erf prior with N = χ = width_per_dim·d, the solver's target keyword)."""
    d = int(input_dim)
    width = _positive(width_per_dim, "width_per_dim") * d
    prior = NetworkPrior(activation="erf", input_dim=d, widths=(width,), weight_variances=(input_variance,),
                         readout_variance_tilde=readout_variance, noise_variance_tilde=noise_variance, chi=width)
    return prior, dict(target_coefficients=cubic_target_coefficients(epsilon))


def gfl_cubic_learnability(num_samples, input_dim, *, epsilon, noise_variance, readout_variance,
                           width_per_dim, input_variance=1.0, initial_guess=None):
    """The Gaussian-closure solution (single-index reduction, erf, mean-field χ = N = width_per_dim·d).

    Beyond the GP side pass `initial_guess` (a, b, τ_1, τ_3) from a nearby solution: from the GP start
    the root finder can land on a spurious branch at large P (use `gfl_threshold`, which continues in P).
    """
    prior, kw = _gfl_problem(input_dim, epsilon, noise_variance, readout_variance, width_per_dim, input_variance)
    return solve_single_index_gfl(prior, num_samples=num_samples, initial_guess=initial_guess, **kw)


def gfl_cubic_learnability_path(samples, input_dim, *, epsilon, noise_variance, readout_variance,
                                width_per_dim, input_variance=1.0, start_per_dim: float = 0.25,
                                steps: int = 24) -> np.ndarray:
    """Adaptive-kernel L_3 at each P of `samples` (any order), continued in P from the GP side:
    geomspace(start_per_dim·d, min P) (`steps` points), then the sorted P values; nan where the
    continuation failed."""
    prior, kw = _gfl_problem(input_dim, epsilon, noise_variance, readout_variance, width_per_dim, input_variance)
    targets = np.asarray(samples, dtype=np.float64)
    if targets.ndim != 1 or not targets.size or not np.all(np.isfinite(targets) & (targets > 0)):
        raise ValueError(f"samples must be a non-empty sequence of positive numbers, got {samples!r}")
    order = np.argsort(targets)
    lead = np.geomspace(min(start_per_dim * prior.input_dim, targets[order[0]]), targets[order[0]], int(steps))[:-1]
    path = scan_single_index_gfl_in_samples(prior, np.concatenate([lead, targets[order]]), **kw)
    learn = np.array([s.learnabilities[1] if s.converged else np.nan for s in path.solutions])[lead.size:]
    out = np.empty_like(targets)
    out[order] = learn
    return out


def gfl_threshold(input_dim, *, epsilon, noise_variance, readout_variance, width_per_dim, input_variance=1.0,
                  fraction: float = LEARNED_FRACTION, samples_per_dim=(0.25, 256.0),
                  steps: int = 40) -> "AdaptiveThreshold":
    """Smallest P with the adaptive-kernel L_3(P) ≥ `fraction`: continuation in P over
    geomspace(samples_per_dim)·d from the GP side, then bisection (warm-started) on the bracket."""
    prior, kw = _gfl_problem(input_dim, epsilon, noise_variance, readout_variance, width_per_dim, input_variance)
    d = prior.input_dim
    values = np.geomspace(samples_per_dim[0] * d, samples_per_dim[1] * d, int(steps))
    path = scan_single_index_gfl_in_samples(prior, values, **kw)
    learn = np.array([s.learnabilities[1] if s.converged else np.nan for s in path.solutions])
    above = np.flatnonzero(learn >= fraction)
    if not above.size:
        raise ValueError(f"adaptive L_3 stays below {fraction} up to P = {values[-1]:.3g} (d = {d})")
    i = int(above[0])
    if i == 0:
        raise ValueError(f"adaptive L_3 ≥ {fraction} already at P = {values[0]:.3g}; lower samples_per_dim")
    if not np.all(np.isfinite(learn[: i + 1])):
        raise ValueError(f"the continuation in P failed before the threshold (d = {d})")
    guess = path.solutions[i - 1]
    start = [guess.sigma_perp, guess.sigma_parallel, *guess.discrepancy]
    g = lambda log_p: solve_single_index_gfl(prior, num_samples=math.exp(log_p), initial_guess=start,
                                             **kw).learnabilities[1] - fraction
    samples = math.exp(optimize.brentq(g, math.log(values[i - 1]), math.log(values[i]), xtol=1e-9))
    solution = solve_single_index_gfl(prior, num_samples=samples, initial_guess=start, **kw)
    if not solution.converged:
        raise ValueError(f"the adaptive-kernel solution at the threshold did not converge: {solution.message}")
    return AdaptiveThreshold(samples, solution)


def fit_exponent(dims: Sequence[float], thresholds: Sequence[float]) -> ExponentFit:
    """Least-squares power law P* = A d^α (module docstring)."""
    x = np.log(np.asarray(dims, dtype=np.float64))
    y = np.log(np.asarray(thresholds, dtype=np.float64))
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("dims and thresholds must be two finite positive sequences of one length ≥ 2")
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    se = math.nan
    if x.size > 2:
        residual = y - A @ coef
        sigma2 = float(residual @ residual) / (x.size - 2)
        se = math.sqrt(sigma2 * np.linalg.inv(A.T @ A)[1, 1])
    return ExponentFit(float(coef[1]), se, float(coef[0]), np.diff(y) / np.diff(x))
