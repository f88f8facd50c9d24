"""Modular-addition teacher with a quadratic two-layer student (Rubin, Seroussi, Ringel, ICLR 2024,
§3.2 and App. B; theory.md §4.2).

Model: inputs x_nm ∈ R^{2P} two-hot (1 at n and at P+m), P prime, all P² pairs; targets
y_p(x_nm) = δ_{p,(n+m) mod P} − 1/P; student f_p(x) = Σ_{i=1}^N a_{pi} (w_i·x)², prior
w ~ N(0, I_{2P}), readout a ~ N(0, σ_a²/N), noise variance σ². By symmetry the discrepancy is one
scalar: σ² t̄ = a·y (a = −1: nothing learned; f̄ = (1 + a) y).

Per Fourier mode k ≠ 0 (X = |w_k|², Y = |v_k|²), with the non-linear weight decay
Γ = Σ_k (Pγ/6)((w_k w_{−k})³ + (v_k v_{−k})³):

    S_k(X, Y) = P [ ½(X + Y) − A X Y + (γ/6)(X³ + Y³) ],   A = u a²,   u = 2σ_a² P²/(N σ⁴).

Saddles on X = Y = W: ½ − A W + (γ/2) W² = 0 ⇒ W_± = (A ± √(A² − γ))/γ (W_+ the well, W_− the
barrier; none if A² < γ). The paper's App. B.4 derivative line has typos (8 for 2, P for P², ε for
γ); W_± above is consistent with the action (theory.md §4.2).

Mixture (paper Eq. 41–42): the mode sits at 0 or at the W_+ saddle with relative weight
4 e^{−S_k(W_+, W_+)}, so with p_w = 4e^{−S}/(1 + 4e^{−S}) (well weight)
    ⟨|w|²|v|²⟩ = W_+² p_w,   λ = σ_a² ⟨|w|²|v|²⟩,   a = −σ²/(λ(a) + σ²).
(Fluctuations around 0 add O(σ_a²/P²)-order terms to λ, dropped as in the paper.) Doubt, not
acted on: for real weights w_{−k} = conj(w_k), so the modes k and −k are one complex variable whose
action is 2S_k, and the relative weight of the two saddles would carry e^{−2S_k} and a Gaussian
width ratio rather than 4e^{−S_k}. This changes only the O(1/P) rounding of the phase boundaries,
not the P → ∞ closed forms below; the paper's form is implemented. Second doubt, from the
sampled network (docs/results.md, P = 13): with modes normalized as here (prior |w_k|² ~ 1/P), the
target eigenvalue of the kernel σ_a²⟨(w·x)²(w·x')²⟩ on the P² pairs is 4P²σ_a²⟨|w_k|²|v_k|²⟩
[DERIVED; 4σ_a², the NNGP value, at the prior], not σ_a²⟨|w_k|²|v_k|²⟩; the sampled order
parameter follows the former (within the finite-N factor 0.65–0.81) while the sampled a is close to
this module's a at σ² = 0.03–0.04. The GMFL-I law a = −σ²/σ²_I does not depend on this factor.

Uniqueness [DERIVED]: F(a) = a + σ²/(λ(a) + σ²) is strictly increasing on [−1, 0] (λ grows with
|a|), F(−1) ≤ 0 < F(0) = 1, so the finite-P solution is unique and Brent's method on [−1, 0] finds it.

Closed forms for P → ∞ [DERIVED, re-derived here]: the well is level with 0 (S_k(W_+) = 0 and
∂S_k = 0) at A_c = 2√(γ/3), W_c = W_+(A_c) = 2/A_c = √(3/γ). GFL (a = −1, A = u) holds while
u < A_c, so GMFL-I begins at σ²_I = √(2σ_a² P²/(N A_c)); in GMFL-I the degeneracy pins A = A_c,
a = −σ²/σ²_I, λ = σ²_I − σ², p_w = (σ²_I − σ²)/(σ_a² W_c²); GMFL-II starts where p_w = 1:
σ²_II = σ²_I − σ_a² W_c². Fig. 3 parameters (N=1000, P=401, σ_a²=0.002/N, γ=1e-4): σ²_I = 0.2360,
σ²_II = 0.1760, a(σ²_II) = −0.746, versus the paper's ≈0.227, ≈0.175, ≈−0.7 (theory.md §9 item 2).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numpy as np
from scipy import optimize, special
from theory.validation import check_nonnegative as _nonnegative, check_positive as _positive

__all__ = [
    "ModularAdditionSolution",
    "PhaseBoundaries",
    "closed_form_discrepancy",
    "diagonal_saddles",
    "mixture_moment",
    "modular_effective_interaction",
    "mode_action",
    "phase_boundaries",
    "solve_modular_addition",
]


def modular_effective_interaction(modulus, width, readout_variance, noise_variance) -> float:
    """u = 2σ_a² P²/(N σ⁴) (paper §3.2; invariant under N→β²N, P→√β P, σ_a²→σ_a²/β, σ²→σ²/β)."""
    P = _positive(modulus, "modulus")
    s2 = _positive(noise_variance, "noise_variance")
    return 2.0 * _positive(readout_variance, "readout_variance") * P * P / (_positive(width, "width") * s2 * s2)


def mode_action(w_squared, v_squared, coupling, weight_decay, modulus) -> np.ndarray:
    """S_k(X, Y) = P[½(X+Y) − A X Y + (γ/6)(X³+Y³)], X = |w_k|², Y = |v_k|², A = `coupling`."""
    X = np.asarray(w_squared, dtype=np.float64)
    Y = np.asarray(v_squared, dtype=np.float64)
    A = _nonnegative(coupling, "coupling")
    gamma = _positive(weight_decay, "weight_decay")
    P = _positive(modulus, "modulus")
    return P * (0.5 * (X + Y) - A * X * Y + gamma / 6.0 * (X ** 3 + Y ** 3))


def diagonal_saddles(coupling, weight_decay) -> Optional[tuple[float, float]]:
    """(W_−, W_+) = ((A ∓ √(A² − γ))/γ) on X = Y, or None when A² < γ (no non-zero saddle)."""
    A = _nonnegative(coupling, "coupling")
    gamma = _positive(weight_decay, "weight_decay")
    disc = A * A - gamma
    if disc < 0:
        return None
    root = math.sqrt(disc)
    # W_− = γ/(γ W_+) form avoids cancellation: W_− W_+ = 1/γ.
    w_plus = (A + root) / gamma
    return 1.0 / (gamma * w_plus), w_plus


def mixture_moment(coupling, weight_decay, modulus) -> tuple[float, float, float]:
    """(⟨|w|²|v|²⟩, p_w, S_k(W_+)) of the two-saddle mixture (paper Eq. 41–42; p_w = 0 if no saddle)."""
    saddles = diagonal_saddles(coupling, weight_decay)
    if saddles is None:
        return 0.0, 0.0, math.inf
    w_plus = saddles[1]
    action = float(mode_action(w_plus, w_plus, coupling, weight_decay, modulus))
    weight = float(special.expit(math.log(4.0) - action))  # 4e^{−S}/(1 + 4e^{−S}), overflow-safe
    return w_plus * w_plus * weight, weight, action


class PhaseBoundaries(NamedTuple):
    """P → ∞ closed forms: A_c = 2√(γ/3), W_c = 2/A_c, σ²_I, σ²_II (module docstring)."""

    critical_coupling: float
    critical_well: float
    noise_variance_gmfl1: float
    noise_variance_gmfl2: float


def phase_boundaries(modulus, width, readout_variance, weight_decay) -> PhaseBoundaries:
    """σ²_I = √(2σ_a²P²/(N A_c)), σ²_II = σ²_I − σ_a² W_c² [DERIVED]; R5: 0.2360 and 0.1760."""
    P, N = _positive(modulus, "modulus"), _positive(width, "width")
    sa2, gamma = _positive(readout_variance, "readout_variance"), _positive(weight_decay, "weight_decay")
    A_c = 2.0 * math.sqrt(gamma / 3.0)
    W_c = 2.0 / A_c
    s2_I = math.sqrt(2.0 * sa2 * P * P / (N * A_c))
    return PhaseBoundaries(A_c, W_c, s2_I, s2_I - sa2 * W_c * W_c)


def closed_form_discrepancy(noise_variance, modulus, width, readout_variance, weight_decay) -> float:
    """P → ∞ discrepancy a(σ²): −1 in GFL, −σ²/σ²_I in GMFL-I; in GMFL-II (p_w = 1) the root of
    a = −σ²/(σ_a² W_+(u a²)² + σ²) in [−1, −σ²/σ²_I] (W_+ exists there since u a² ≥ A_c)."""
    s2 = _positive(noise_variance, "noise_variance")
    bounds = phase_boundaries(modulus, width, readout_variance, weight_decay)
    if s2 >= bounds.noise_variance_gmfl1:
        return -1.0
    if s2 >= bounds.noise_variance_gmfl2:
        return -s2 / bounds.noise_variance_gmfl1
    u = modular_effective_interaction(modulus, width, readout_variance, s2)
    sa2 = float(readout_variance)

    def f(a):
        w_plus = diagonal_saddles(u * a * a, weight_decay)[1]
        return a + s2 / (sa2 * w_plus * w_plus + s2)

    return float(optimize.brentq(f, -1.0, -s2 / bounds.noise_variance_gmfl1, xtol=1e-15))


class ModularAdditionSolution(NamedTuple):
    """Finite-P self-consistent discrepancy (module docstring).

    a: σ²t̄ = a y; target_learnability: 1 + a (f̄ = (1+a) y); u; coupling: A = u a²;
    well: W_+ (nan without a saddle); well_weight: p_w; well_action: S_k(W_+); eigenvalue: λ;
    phase: 'GFL' (p_w < threshold) | 'GMFL-I' | 'GMFL-II' (p_w > 1 − threshold);
    converged/residual (|F(a)|)/iterations (Brent)/message.
    """

    a: float
    target_learnability: float
    u: float
    coupling: float
    well: float
    well_weight: float
    well_action: float
    eigenvalue: float
    phase: str
    converged: bool
    residual: float
    iterations: int
    message: str


def solve_modular_addition(noise_variance, modulus, width, readout_variance, weight_decay,
                           phase_threshold: float = 0.01, xtol: float = 1e-14) -> ModularAdditionSolution:
    """Solve a = −σ²/(λ(a) + σ²) on [−1, 0] by Brent's method (unique root, module docstring)."""
    s2 = _positive(noise_variance, "noise_variance")
    P = _positive(modulus, "modulus")
    sa2 = _positive(readout_variance, "readout_variance")
    gamma = _positive(weight_decay, "weight_decay")
    threshold = float(phase_threshold)
    if not 0.0 < threshold < 0.5:
        raise ValueError(f"phase_threshold must lie in (0, 0.5), got {phase_threshold!r}")
    u = modular_effective_interaction(P, width, sa2, s2)

    def F(a):
        return a + s2 / (sa2 * mixture_moment(u * a * a, gamma, P)[0] + s2)

    if F(-1.0) >= 0.0:  # λ(−1) = 0: nothing is learned
        a, iterations, ok, flag = -1.0, 0, True, ""
    else:
        a, info = optimize.brentq(F, -1.0, 0.0, xtol=xtol, rtol=4 * np.finfo(float).eps,
                                  full_output=True, disp=False)
        iterations, ok, flag = int(info.iterations), bool(info.converged), str(info.flag)
    A = u * a * a
    moment, weight, action = mixture_moment(A, gamma, P)
    saddles = diagonal_saddles(A, gamma)
    phase = "GFL" if weight < threshold else ("GMFL-II" if weight > 1.0 - threshold else "GMFL-I")
    residual = abs(F(a))
    converged = ok and residual <= 1e-10
    return ModularAdditionSolution(float(a), 1.0 + float(a), u, A, saddles[1] if saddles else math.nan,
                                   weight, action, sa2 * moment, phase, converged, float(residual),
                                   iterations, "" if converged else f"brentq: {flag}, residual {residual:.3g}")
