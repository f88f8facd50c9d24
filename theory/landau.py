"""Landau "φ⁶" theory of the cubic teacher (Rubin, Seroussi, Ringel, ICLR 2024, Sec. 3.1).

Model: x ~ N(0, I_d), teacher y = He_1(z*) + ε He_3(z*), z* = w*·x, |w*| = 1; student
f(x) = Σ_{i=1}^N a_i erf(w_i·x) with prior w ~ N(0, σ_w²/d · I), readout a ~ N(0, σ̃_a²/(χN)),
noise variance σ² = σ̃²/χ (χ = 1 standard scaling, χ = N mean-field scaling; the grokking paper's
"σ_a²" is the physical numerator σ̃_a²/χ, e.g. R4: σ_a² = 8/N ⇔ χ = N, σ̃_a² = 8).
The discrepancy is σ² t̄(x) = b He_1(z*) + c He_3(z*) (unnormalized Hermites, paper's b, c).

Order parameter q = w·w*. Per-neuron action (paper Eq. 13 / App. Eq. 8, with the factor d that the
main-text Eq. 7 drops; docs/conventions.md), |w⊥|² replaced by its prior mean σ_w²:

    S[q] = d · Ŝ(q),   Ŝ(q) = q²/(2σ_w²) − (2u/π) · h(q) · (b − 2c h(q))²,   h = q²/g,
    g(q) = 1 + 2(σ_w² + q²),   u = n² σ_a² / (σ⁴ d N)   (effective interaction).

Second invariant [DERIVED]: the GP learnability scale r = n σ_a²/(σ² d); the self-consistency
below carries κ = n σ_a²/σ² = r·d ("kernel strength"). In χ language u = χ n² σ̃_a²/(σ̃⁴ d N) and
κ = n σ̃_a²/σ̃² (χ-free).

Landau expansion [checked symbolically, Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1], g0 = 1 + 2σ_w²:
    Ŝ = A2 q² + A4 q⁴ + A6 q⁶ + O(q⁸),
    A2 = 1/(2σ_w²) − 2u b²/(π g0),  A4 = 4u b (b + 2c)/(π g0²),  A6 = −8u (b² + 4bc + c²)/(π g0³).

Stationary points [DERIVED]: Ŝ'(q) = q·B(h), B = 1/σ_w² − (4u/(π g0)) (1−2h)² (b−2ch)(b−6ch), using
g = g0/(1−2h). q = 0 is stationary for every parameter value; the others are the roots in
h ∈ (0, 1/2) of the quartic (1−2h)²(b−2ch)(b−6ch) = π g0/(4u σ_w²), q = √(h g0/(1−2h)).

Degeneracy (first-order transition, paper Claim IV) [DERIVED]: Ŝ(q)/q² = 1/(2σ_w²) −
(2u/(π g0)) p(h), p(h) = (1−2h)(b−2ch)². A q ≠ 0 minimum is level with q = 0 exactly when
D = (4u σ_w²/(π g0)) max_{h∈[0,1/2]} p(h) − 1 vanishes (D > 0: some q ≠ 0 lies below q = 0).

Scaling limit (d → ∞ at fixed u, r; paper's α, β → ∞): in the GFL phase p(q) is Gaussian with
variance 1/(2 d A2), so κ Q̃_11 → 2r/(π g0 A2) while κ Q̃_13, κ Q̃_33 → 0. Hence c = ε and b solves
b = 1/(1 + 2r/(π g0 A2(b))), i.e. the cubic −2u b³ + 2u b² + (K + 2r) b − K = 0, K = π g0/(2σ_w²)
[DERIVED]; the GFL branch is its smallest positive root (A2 > 0), continuously connected to the GP
value b = 1/(1 + 4 r σ_w²/(π g0)) at u = 0. `find_landau_transition` locates D = 0 on this branch;
the finite-d self-consistent solution (exact quadrature over q) is `theory.cubic_teacher`.

Inputs: the network is one `theory.network_prior.NetworkPrior` (erf, fc, one hidden layer of
width N, no biases; σ_w², d from the record, σ_a² = σ̃_a²/χ and σ² = σ̃²/χ its properties); the
number of samples n and ε are separate arguments. The transition is located along a path of
priors (value → NetworkPrior, e.g. `lambda v: dataclasses.replace(prior, noise_variance_tilde=v)`),
in n (`find_landau_transition_in_samples`) or in u itself (`find_landau_transition_in_interaction`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import optimize
from typing import Callable

from theory.network_prior import NetworkPrior, check_two_layer
from theory.validation import check_finite as _finite, check_nonnegative as _nonnegative, check_positive as _positive

__all__ = [
    "GFLBranch",
    "LandauCoefficients",
    "LandauTransition",
    "StationaryPoints",
    "degeneracy_function",
    "effective_interaction",
    "find_landau_transition",
    "find_landau_transition_in_interaction",
    "find_landau_transition_in_samples",
    "gfl_branch_scaling_limit",
    "kernel_strength",
    "landau_action",
    "landau_action_derivative",
    "landau_coefficients",
    "stationary_points",
]

def effective_interaction(prior: NetworkPrior, num_samples) -> float:
    """u = n² σ_a²/(σ⁴ d N) with σ_a² = σ̃_a²/χ, σ² = σ̃²/χ of `prior` (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1; at
    N=700, n=3000, d=150, σ_w²=0.5, σ_a²=8/N: u(σ²=0.18) = 30.23)."""
    check_two_layer(prior)
    n = _positive(num_samples, "num_samples")
    s2 = prior.noise_variance
    return n * n * prior.readout_variance / (s2 * s2 * prior.input_dim * prior.width)


def kernel_strength(prior: NetworkPrior, num_samples) -> float:
    """κ = n σ_a²/σ² (χ-free: n σ̃_a²/σ̃²), the factor in [b, √6 c] = (I + κ⟨M⟩)⁻¹[1, √6 ε]."""
    check_two_layer(prior)
    return _positive(num_samples, "num_samples") * prior.readout_variance_tilde / prior.noise_variance_tilde


def landau_action(q, u, b, c, input_variance, input_dim) -> np.ndarray:
    """S[q] = d·Ŝ(q) of the module docstring, elementwise in q (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1, paper Eq. 13)."""
    u, b, c = _nonnegative(u, "u"), _finite(b, "b"), _finite(c, "c")
    sw2 = _positive(input_variance, "input_variance")
    d = _positive(input_dim, "input_dim")
    q = np.asarray(q, dtype=np.float64)
    h = q * q / (1.0 + 2.0 * (sw2 + q * q))
    return d * (q * q / (2.0 * sw2) - (2.0 * u / math.pi) * h * (b - 2.0 * c * h) ** 2)


def landau_action_derivative(q, u, b, c, input_variance, input_dim) -> np.ndarray:
    """dS/dq = d·q·B(h), B = 1/σ_w² − (4u/(π g0))(1−2h)²(b−2ch)(b−6ch) [DERIVED], elementwise."""
    u, b, c = _nonnegative(u, "u"), _finite(b, "b"), _finite(c, "c")
    sw2 = _positive(input_variance, "input_variance")
    d = _positive(input_dim, "input_dim")
    q = np.asarray(q, dtype=np.float64)
    g0 = 1.0 + 2.0 * sw2
    h = q * q / (g0 + 2.0 * q * q)
    bracket = (1.0 - 2.0 * h) ** 2 * (b - 2.0 * c * h) * (b - 6.0 * c * h)
    return d * q * (1.0 / sw2 - 4.0 * u / (math.pi * g0) * bracket)


class LandauCoefficients(NamedTuple):
    """Ŝ = S/d = a2 q² + a4 q⁴ + a6 q⁶ + O(q⁸) (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1)."""

    a2: float
    a4: float
    a6: float


def landau_coefficients(u, b, c, input_variance) -> LandauCoefficients:
    """A2 = 1/(2σ_w²) − 2ub²/(πg0), A4 = 4ub(b+2c)/(πg0²), A6 = −8u(b²+4bc+c²)/(πg0³), g0 = 1+2σ_w²."""
    u, b, c = _nonnegative(u, "u"), _finite(b, "b"), _finite(c, "c")
    sw2 = _positive(input_variance, "input_variance")
    g0 = 1.0 + 2.0 * sw2
    return LandauCoefficients(1.0 / (2.0 * sw2) - 2.0 * u * b * b / (math.pi * g0),
                              4.0 * u * b * (b + 2.0 * c) / (math.pi * g0 ** 2),
                              -8.0 * u * (b * b + 4.0 * b * c + c * c) / (math.pi * g0 ** 3))


class StationaryPoints(NamedTuple):
    """Stationary points of S on q ≥ 0 (S is even), ascending; q = 0 always first.

    positions: q values; is_minimum: True for local minima (q = 0 is a minimum iff A2 > 0);
    reduced_actions: Ŝ = S/d at each point (Ŝ(0) = 0).
    """

    positions: np.ndarray
    is_minimum: np.ndarray
    reduced_actions: np.ndarray


def stationary_points(u, b, c, input_variance) -> StationaryPoints:
    """All stationary points of Ŝ on q ≥ 0, from the quartic in h of the module docstring [DERIVED]."""
    u, b, c = _nonnegative(u, "u"), _finite(b, "b"), _finite(c, "c")
    sw2 = _positive(input_variance, "input_variance")
    g0 = 1.0 + 2.0 * sw2
    coeffs = landau_coefficients(u, b, c, sw2)
    positions, minimum = [0.0], [coeffs.a2 > 0]
    if u > 0:
        bracket = (np.polynomial.Polynomial([1.0, -2.0]) ** 2 * np.polynomial.Polynomial([b, -2.0 * c])
                   * np.polynomial.Polynomial([b, -6.0 * c]))
        equation = bracket - math.pi * g0 / (4.0 * u * sw2)
        slope = bracket.deriv()
        for root in equation.roots():
            if abs(root.imag) > 1e-12 * max(1.0, abs(root.real)):
                continue
            h = float(root.real)
            if not 0.0 < h < 0.5:
                continue
            positions.append(math.sqrt(h * g0 / (1.0 - 2.0 * h)))
            # B(h) = 1/σ_w² − (4u/(π g0))·bracket(h) crosses zero upwards at a minimum.
            minimum.append(bool(slope(h) < 0))
    order = np.argsort(positions)
    positions = np.asarray(positions)[order]
    h = positions ** 2 / (g0 + 2.0 * positions ** 2)
    reduced = positions ** 2 / (2.0 * sw2) - (2.0 * u / math.pi) * h * (b - 2.0 * c * h) ** 2
    return StationaryPoints(positions, np.asarray(minimum)[order], reduced)


def degeneracy_function(u, b, c, input_variance) -> tuple[float, float]:
    """(D, q_max): D = (4uσ_w²/(πg0)) max_{h∈[0,1/2]} (1−2h)(b−2ch)² − 1 and the q of the maximizer.

    D < 0: q = 0 is the strict global minimum of S; D = 0: a q ≠ 0 minimum is degenerate with q = 0
    (first-order point); D > 0: some q ≠ 0 lies below q = 0. Continuous in all arguments [DERIVED].
    """
    u, b, c = _nonnegative(u, "u"), _finite(b, "b"), _finite(c, "c")
    sw2 = _positive(input_variance, "input_variance")
    g0 = 1.0 + 2.0 * sw2
    # p'(h) = −2(b − 2ch)(b + 2c − 6ch): candidates h = b/(2c), (b+2c)/(6c) and the interval ends.
    candidates = [0.0, 0.5]
    if c != 0.0:
        candidates += [h for h in (b / (2.0 * c), (b + 2.0 * c) / (6.0 * c)) if 0.0 < h < 0.5]
    values = [(1.0 - 2.0 * h) * (b - 2.0 * c * h) ** 2 for h in candidates]
    best = int(np.argmax(values))
    h = candidates[best]
    q = math.sqrt(h * g0 / (1.0 - 2.0 * h)) if h < 0.5 else math.inf
    return 4.0 * u * sw2 / (math.pi * g0) * values[best] - 1.0, q


class GFLBranch(NamedTuple):
    """Scaling-limit (d → ∞) GFL solution: c = ε, b the smallest positive root of the b-cubic.

    residual: |b(1 + 2r/(π g0 A2)) − 1|; converged: a root with A2 > 0 was found.
    """

    b: float
    c: float
    coefficients: LandauCoefficients
    converged: bool
    residual: float
    iterations: int


def gfl_branch_scaling_limit(u, gp_scale, input_variance, epsilon) -> GFLBranch:
    """GFL discrepancy in the scaling limit: b = 1/(1 + 2r/(π g0 A2(b))), c = ε (module docstring).

    `gp_scale` is r = n σ_a²/(σ² d). Solved as the cubic −2u b³ + 2u b² + (K+2r) b − K = 0,
    K = π g0/(2σ_w²), whose smallest root in (0, √(K/(2u))) always exists (sign change) [DERIVED].
    """
    u = _nonnegative(u, "u")
    r = _nonnegative(gp_scale, "gp_scale")
    sw2 = _positive(input_variance, "input_variance")
    eps = _finite(epsilon, "epsilon")
    g0 = 1.0 + 2.0 * sw2
    K = math.pi * g0 / (2.0 * sw2)
    if u == 0.0:
        b = K / (K + 2.0 * r)
    else:
        upper = math.sqrt(K / (2.0 * u))
        cubic = np.polynomial.Polynomial([-K, K + 2.0 * r, 2.0 * u, -2.0 * u])
        roots = sorted(z.real for z in cubic.roots()
                       if abs(z.imag) <= 1e-9 * max(1.0, abs(z.real)) and 0.0 < z.real <= upper)
        b = roots[0] if roots else upper  # cubic(0) = −K < 0 ≤ cubic(upper) = 2r·upper
        # Polish on a tight bracket (companion-matrix roots carry ~1e-15 relative error).
        lo, hi = b * (1.0 - 1e-9), min(upper, b * (1.0 + 1e-9))
        if cubic(lo) < 0.0 < cubic(hi):
            b = optimize.brentq(cubic, lo, hi, xtol=1e-16, rtol=4 * np.finfo(float).eps)
    coefficients = landau_coefficients(u, b, eps, sw2)
    converged = coefficients.a2 > 0
    residual = abs(b * (1.0 + 2.0 * r / (math.pi * g0 * coefficients.a2)) - 1.0) if converged else math.inf
    return GFLBranch(float(b), eps, coefficients, bool(converged), float(residual), 1)


class LandauTransition(NamedTuple):
    """First-order point D = 0 on the scaling-limit GFL branch, along one path.

    value: the critical value of the path's parameter; u, gp_scale (r), kernel_strength (κ):
    the couplings there; b, c: GFL discrepancy; well_position: q* of the degenerate minimum;
    coefficients: (A2, A4, A6) there; converged/residual (|D|)/iterations/message as usual.
    """

    value: float
    u: float
    gp_scale: float
    kernel_strength: float
    b: float
    c: float
    well_position: float
    coefficients: LandauCoefficients
    converged: bool
    residual: float
    iterations: int
    message: str


def _locate(couplings_at: Callable[[float], tuple[float, float]], prior: NetworkPrior, lower, upper,
            epsilon, xtol: float) -> LandauTransition:
    """Brent's method on D(value) with (u, κ) = couplings_at(value); σ_w², d from `prior`."""
    check_two_layer(prior, ("erf",))
    lower, upper = _positive(lower, "lower"), _positive(upper, "upper")
    sw2 = prior.input_variance
    eps = _finite(epsilon, "epsilon")
    d = prior.input_dim

    def evaluate(value: float):
        u, kappa = couplings_at(value)
        branch = gfl_branch_scaling_limit(u, kappa / d, sw2, eps)
        D, q = degeneracy_function(u, branch.b, branch.c, sw2)
        return D, q, u, kappa, branch

    D_lo, D_hi = evaluate(lower)[0], evaluate(upper)[0]
    if D_lo * D_hi > 0:
        raise ValueError(f"the degeneracy function must change sign on [lower, upper]; got D={D_lo!r} "
                         f"at lower={lower!r} and D={D_hi!r} at upper={upper!r}")
    value, info = optimize.brentq(lambda v: evaluate(v)[0], lower, upper, xtol=xtol,
                                  rtol=8 * np.finfo(float).eps, full_output=True, disp=False)
    D, q, u, kappa, branch = evaluate(value)
    converged = bool(info.converged) and branch.converged
    return LandauTransition(float(value), u, kappa / d, kappa, branch.b, branch.c, q,
                            branch.coefficients, converged, abs(D), int(info.iterations),
                            "" if converged else f"brentq: {info.flag}")


def find_landau_transition(prior_at: Callable[[float], NetworkPrior], lower: float, upper: float, *,
                           num_samples, epsilon, xtol: float = 1e-13) -> LandauTransition:
    """Locate D = 0 on the scaling-limit GFL branch (paper Claim IV: u_c) by Brent's method along
    the priors `prior_at(v)`, v in [lower, upper] (e.g. the noise: `lambda v:
    dataclasses.replace(prior, noise_variance_tilde=v)`; the width: `widths=(v,)`).

    R4 (N=700, n=3000, d=150, σ_w²=0.5, σ_a²=8/N, ε=−0.3) gives σ²_c ≈ 0.1787, u_c ≈ 30.67 versus
    the paper's σ² ≈ 0.18, u_c ≈ 30.2 (a gap of ~1.5 % in u, unexplained; the paper's App. B.4 has typos).
    """
    def couplings_at(value):
        prior = prior_at(value)
        return effective_interaction(prior, num_samples), kernel_strength(prior, num_samples)

    return _locate(couplings_at, prior_at(_positive(lower, "lower")), lower, upper, epsilon, xtol)


def find_landau_transition_in_samples(prior: NetworkPrior, lower: float, upper: float, *, epsilon,
                                      xtol: float = 1e-13) -> LandauTransition:
    """`find_landau_transition` in the number of samples n ∈ [lower, upper] at a fixed prior."""
    return _locate(lambda n: (effective_interaction(prior, n), kernel_strength(prior, n)),
                   prior, lower, upper, epsilon, xtol)


def find_landau_transition_in_interaction(prior: NetworkPrior, lower: float, upper: float, *,
                                          num_samples, epsilon, xtol: float = 1e-13) -> LandauTransition:
    """`find_landau_transition` in u ∈ [lower, upper] itself, at the fixed κ = n σ̃_a²/σ̃² of
    (prior, n) (equivalent to varying the width N; the prior's width is not used)."""
    kappa = kernel_strength(prior, num_samples)
    return _locate(lambda u: (u, kappa), prior, lower, upper, epsilon, xtol)
