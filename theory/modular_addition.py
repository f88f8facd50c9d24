"""Modular-addition teacher with a quadratic two-layer student (Rubin, Seroussi, Ringel, ICLR 2024,
§3.2 and App. B).

Model: inputs x_nm ∈ R^{2P} two-hot (1 at n and at P+m), P prime, all P² pairs; targets
y_p(x_nm) = δ_{p,(n+m) mod P} − 1/P; student f_p(x) = Σ_{i=1}^N a_{pi} (w_i·x)², prior
w ~ N(0, I_{2P}), readout a ~ N(0, σ_a²/N), noise variance σ² (U = ½Σ(f − y)² + priors at T = σ²).
By symmetry the discrepancy is one scalar: σ² t̄ = a·y (a = −1: nothing learned; f̄ = (1 + a) y).

Mode normalization (the one used throughout, also by `experiments.setup.modular_addition_data`): with
w = (u, v) ∈ R^P × R^P, u_k = (1/P) Σ_n u_n e^{−2πikn/P}, X_k = |u_k|², Y_k = |v_k|² (real
weights: X_{−k} = X_k); Parseval Σ_n u_n² = P Σ_k X_k; prior E X_k = 1/P.

Kernel eigenvalue on the target [DERIVED]. With w·x_nm = u_n + v_m and χ_k(n, m) = e^{2πik(n+m)/P}
(k ≠ 0; the y_p span exactly these P − 1 functions),
    Σ_{n,m} χ_k^* (w·x_nm)² = 2 Û_k V̂_k = 2P² u_k v_k      (the u_n², v_m² parts sum to 0 for k ≠ 0),
so for the kernel K(x, x') = (σ_a²/N) Σ_i (w_i·x)²(w_i·x')² of any finite network
    χ_k^* K χ_k / |χ_k|² = 4P² σ_a² (1/N) Σ_i X_ik Y_ik,    |χ_k|² = P².
The posterior-averaged kernel is diagonal in the Fourier basis of Z_P² (translation symmetry) and
the same for every k ≠ 0 (the automorphisms n → cn), so the target is one eigenspace with
    λ = 4P² σ_a² ⟨X Y⟩,        a = −σ²/(λ + σ²)
(the posterior mean f̄ = λ/(λ + σ²) y of the mean-field kernel). At the prior ⟨XY⟩ = 1/P², so
λ = 4σ_a²: the NNGP eigenvalue (`experiments.setup.modular_addition_data.gp_discrepancy`). The paper's
λ = σ_a²⟨|w|²|v|²⟩ misses the factor 4P² in this normalization (in the unitary one, |ũ_k|² = P X_k,
it reads λ = 4σ_a²⟨|ũ_k|²|ṽ_k|²⟩); it is not used here.

Per-mode action [DERIVED, in the same normalization]. Integrating a neuron's readout against the
discrepancy gives its weight action ½|w|² + Γ(w) − (σ_a²/(2N)) Σ_p (Σ_μ t̄_μp (w·x_μ)²)² with
t̄ = (a/σ²) y; Σ_p (Σ_μ y_p(x_μ)(w·x_μ)²)² = 4P³ Σ_{k≠0} X_k Y_k, and with the paper's decay
Γ = Σ_k (Pγ/6)(X_k³ + Y_k³) the action is Σ_k S_k with
    S_k(X, Y) = P [ ½(X + Y) − A X Y + (γ/6)(X³ + Y³) ],   A = u a²,   u = 2σ_a² P²/(N σ⁴):
the paper's action and coupling, exactly. Saddles on X = Y = W: ½ − A W + (γ/2) W² = 0 ⇒
W_± = (A ± √(A² − γ))/γ (W_+ the well, W_− the barrier; none if A² < γ). The paper's App. B.4
derivative line has typos (8 for 2, P for P², ε for γ); W_± above is consistent with the action.

Mixture (paper Eq. 41–42, plus the zero basin's fluctuations): the mode sits in the basin at 0 or
at the W_+ saddle with relative weight 4 e^{−S_k(W_+, W_+)}, p_w = 4e^{−S}/(1 + 4e^{−S}) (well
weight), and
    ⟨X Y⟩ = (1 − p_w)/P² + p_w W_+²,    λ = 4P² σ_a² ⟨X Y⟩.
The zero-basin term (1 − p_w)/P² is the one the paper drops (σ_a²/P² in its normalization); it is
what gives λ = 4σ_a², the NNGP, on the GFL side. It is the Gaussian moment of e^{−2S_k} (the pair
k, −k: density ∝ e^{−P(X+Y)}); the quartic and sextic terms change it by a relative 6A/P − 12γ/P²
[DERIVED, first order in A and γ], dropped. Doubt, not acted on: for real weights the modes k and −k are
one complex variable with action 2S_k, so the relative weight of the two saddles would carry e^{−2S_k}
and a Gaussian width ratio rather than 4e^{−S_k}; this changes only the O(1/P) rounding of the
phase boundaries, not the P → ∞ closed forms below; the paper's form is the default. The same
average without saddle points, ⟨XY⟩ = ∫∫XY e^{−2S_k} dXdY/∫∫e^{−2S_k} dXdY (flat measure in X, Y),
is `exact_mode_moment` (quadrature, small P·W_+ only; `solve_modular_addition(mode_average="exact")`).

Uniqueness [DERIVED]: F(a) = a + σ²/(λ(a) + σ²) is strictly increasing on [−1, 0] when λ grows
with |a|, which holds when W_+² ≥ 1/P² (always when γ ≤ P², since W_+ ≥ 1/√γ); F(−1) < 0 < F(0) = 1,
so Brent's method on [−1, 0] finds the root. At finite P the mixture weight is discontinuous where
the well appears (A² = γ, S_k(W_+) = P/(3√γ), p_w jumps from 0 to 4e^{−S}/(1 + 4e^{−S})): when the
sign change of F sits on that jump there is no self-consistent a, and the solver says so
(converged False). Negligible at the paper's size (P/(3√γ) ≈ 1.3·10⁴), not at P = 13, γ = 3 (2.5).

Closed forms for P → ∞ [DERIVED]: the well is level with 0 (S_k(W_+) = 0 and ∂S_k = 0) at
A_c = 2√(γ/3), W_c = W_+(A_c) = 2/A_c = √(3/γ). Let σ²_* = √(2σ_a²P²/(N A_c)) (the σ² at which
u(σ²) = A_c; the paper's σ²_I). GFL: p_w = 0, λ = 4σ_a², a = a_GP = −σ²/(4σ_a² + σ²), while
u a_GP² < A_c, i.e. σ² > σ²_I = σ²_* − 4σ_a². GMFL-I: the degeneracy pins A = A_c, so
a = −σ²/σ²_*, λ = σ²_* − σ², p_w = (σ²_* − σ² − 4σ_a²)/(4σ_a²(P²W_c² − 1)). GMFL-II starts where
p_w = 1: σ²_II = σ²_* − 4P²σ_a²W_c², and exists only when that is > 0.

Against the paper (R5, Fig. 3: N=1000, P=401, σ_a²=0.002/N, γ=1e-4): σ²_I = 0.2360 (σ²_* = 0.23603,
minus 4σ_a² = 8·10⁻⁶), unchanged by the normalization (the onset and the GMFL-I law a = −σ²/σ²_*
do not involve λ's prefactor). σ²_II is not: the paper's 0.175 (0.1760 here with its λ = σ_a²W_c²,
σ²_* − σ_a²W_c²) becomes σ²_* − 4P²σ_a²W_c² = 0.236 − 3.86·10⁴ < 0 — with λ normalized as the
kernel's eigenvalue a well mode contributes 4P²σ_a²W_c² ≈ 3.9·10⁴ ≫ σ², so a fraction p_w ≤ 6·10⁻⁶
of the modes carries all of GMFL-I, which extends to σ² → 0 (GMFL-II is not reached); at the
paper's σ² = 0.176 the GMFL-I law still gives a = −0.746 (paper ≈ −0.7). Under the paper's
scaling (N → β²N, P → √βP, σ_a² → σ_a²/β, σ² → σ²/β) u, σ²_* and σ²_I go as 1/β, but the well's
eigenvalue 4P²σ_a²W_c² is invariant, so σ²_II is not covariant (the paper's σ_a²W_c² would be).
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
    "exact_mode_moment",
    "mixture_moment",
    "modular_effective_interaction",
    "mode_action",
    "phase_boundaries",
    "solve_modular_addition",
    "target_eigenvalue",
    "zero_basin_moment",
]


def modular_effective_interaction(modulus, width, readout_variance, noise_variance) -> float:
    """u = 2σ_a² P²/(N σ⁴) (paper §3.2; invariant under N→β²N, P→√β P, σ_a²→σ_a²/β, σ²→σ²/β)."""
    P = _positive(modulus, "modulus")
    s2 = _positive(noise_variance, "noise_variance")
    return 2.0 * _positive(readout_variance, "readout_variance") * P * P / (_positive(width, "width") * s2 * s2)


def target_eigenvalue(mode_product, modulus, readout_variance):
    """λ = 4P² σ_a² ⟨X Y⟩: the kernel eigenvalue on the target from the per-mode order parameter
    ⟨|u_k|²|v_k|²⟩ in the normalization u_k = (1/P) Σ_n u_n e^{−2πikn/P} (module docstring)."""
    P = _positive(modulus, "modulus")
    return 4.0 * P * P * _positive(readout_variance, "readout_variance") * np.asarray(mode_product, dtype=np.float64)


def zero_basin_moment(modulus) -> float:
    """⟨X Y⟩ = 1/P² of a mode fluctuating around 0 (Gaussian order; module docstring)."""
    P = _positive(modulus, "modulus")
    return 1.0 / (P * P)


def mode_action(w_squared, v_squared, coupling, weight_decay, modulus) -> np.ndarray:
    """S_k(X, Y) = P[½(X+Y) − A X Y + (γ/6)(X³+Y³)], X = |u_k|², Y = |v_k|², A = `coupling`."""
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
    """(⟨XY⟩, p_w, S_k(W_+)) of the two-basin mixture ⟨XY⟩ = (1 − p_w)/P² + p_w W_+² (paper Eq.
    41–42 plus the zero basin; p_w = 0 and S = inf without a saddle; module docstring)."""
    zero = zero_basin_moment(modulus)
    saddles = diagonal_saddles(coupling, weight_decay)
    if saddles is None:
        return zero, 0.0, math.inf
    w_plus = saddles[1]
    action = float(mode_action(w_plus, w_plus, coupling, weight_decay, modulus))
    weight = float(special.expit(math.log(4.0) - action))  # 4e^{−S}/(1 + 4e^{−S}), overflow-safe
    return (1.0 - weight) * zero + weight * w_plus * w_plus, weight, action


def exact_mode_moment(coupling, weight_decay, modulus, max_points: int = 3001) -> float:
    """⟨XY⟩ = ∫∫ XY e^{−2S_k(X,Y)} dX dY / ∫∫ e^{−2S_k} dX dY over [0, ∞)²: the per-mode average
    without the saddle-point mixture (the pair k, −k of real weights is one complex variable, flat in
    X = |u_k|², with action 2S_k; module docstring). 2D Simpson rule on [0, L]², L where the
    separable lower bound 2s(X) + 2s(Y), s(X) = P[½X − (A/2)X² + (γ/6)X³] (XY ≤ (X² + Y²)/2), is
    90 above its minimum; step min(1/(20P), the well's width 1/√(2PγW_+)/10). Continuous in A, so
    the self-consistency has a root also where the mixture weight jumps; feasible for small P·W_+
    only: more than `max_points` grid points per axis raise ValueError."""
    A = _nonnegative(coupling, "coupling")
    gamma = _positive(weight_decay, "weight_decay")
    P = _positive(modulus, "modulus")
    top = 4.0 * max(1.0 / P, (A + math.sqrt(A * A + gamma)) / gamma)
    grid = np.linspace(0.0, top, 40001)
    envelope = 2.0 * P * (0.5 * grid - 0.5 * A * grid ** 2 + gamma / 6.0 * grid ** 3)
    beyond = (envelope - envelope.min() > 90.0) & (grid > grid[np.argmin(envelope)])
    length = float(grid[np.argmax(beyond)]) if beyond.any() else top
    step = 1.0 / (20.0 * P)
    saddles = diagonal_saddles(A, gamma)
    if saddles is not None:
        step = min(step, 0.1 / math.sqrt(2.0 * P * gamma * saddles[1]))
    n = 2 * int(math.ceil(length / step / 2.0)) + 1
    if n > max_points:
        raise ValueError(f"exact_mode_moment needs {n} grid points per axis (> max_points = {max_points}) "
                         f"at modulus {P:g}, coupling {A:g}, weight_decay {gamma:g}; use the mixture")
    x = np.linspace(0.0, length, n)
    simpson = np.ones(n)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    X, Y = np.meshgrid(x, x, indexing="ij")
    action = 2.0 * mode_action(X, Y, A, gamma, P)
    weights = np.exp(action.min() - action) * simpson[:, None] * simpson[None, :]
    return float(np.sum(weights * X * Y) / np.sum(weights))


class PhaseBoundaries(NamedTuple):
    """P → ∞ closed forms (module docstring): A_c = 2√(γ/3), W_c = 2/A_c, σ²_I = σ²_* − 4σ_a²,
    σ²_II = σ²_* − 4P²σ_a²W_c² (≤ 0: GMFL-II is not reached), σ²_* = √(2σ_a²P²/(N A_c)) (the
    GMFL-I law a = −σ²/σ²_*; the paper's σ²_I)."""

    critical_coupling: float
    critical_well: float
    noise_variance_gmfl1: float
    noise_variance_gmfl2: float
    noise_variance_pinned: float


def phase_boundaries(modulus, width, readout_variance, weight_decay) -> PhaseBoundaries:
    """σ²_I = σ²_* − 4σ_a², σ²_II = σ²_* − 4P²σ_a²W_c², σ²_* = √(2σ_a²P²/(N A_c)) [DERIVED]."""
    P, N = _positive(modulus, "modulus"), _positive(width, "width")
    sa2, gamma = _positive(readout_variance, "readout_variance"), _positive(weight_decay, "weight_decay")
    A_c = 2.0 * math.sqrt(gamma / 3.0)
    W_c = 2.0 / A_c
    pinned = math.sqrt(2.0 * sa2 * P * P / (N * A_c))
    return PhaseBoundaries(A_c, W_c, pinned - 4.0 * sa2, pinned - 4.0 * P * P * sa2 * W_c * W_c, pinned)


def closed_form_discrepancy(noise_variance, modulus, width, readout_variance, weight_decay) -> float:
    """P → ∞ discrepancy a(σ²): a_GP = −σ²/(4σ_a² + σ²) in GFL, −σ²/σ²_* in GMFL-I; in GMFL-II
    (p_w = 1) the root of a = −σ²/(4P²σ_a² W_+(u a²)² + σ²) in [−1, −σ²/σ²_*] (W_+ exists there
    since u a² ≥ A_c)."""
    s2 = _positive(noise_variance, "noise_variance")
    bounds = phase_boundaries(modulus, width, readout_variance, weight_decay)
    sa2 = float(readout_variance)
    if s2 >= bounds.noise_variance_gmfl1:
        return -s2 / (4.0 * sa2 + s2)
    if s2 >= bounds.noise_variance_gmfl2:
        return -s2 / bounds.noise_variance_pinned
    u = modular_effective_interaction(modulus, width, readout_variance, s2)
    scale = 4.0 * float(modulus) ** 2 * sa2

    def f(a):
        w_plus = diagonal_saddles(u * a * a, weight_decay)[1]
        return a + s2 / (scale * w_plus * w_plus + s2)

    return float(optimize.brentq(f, -1.0, -s2 / bounds.noise_variance_pinned, xtol=1e-15))


class ModularAdditionSolution(NamedTuple):
    """Finite-P self-consistent discrepancy (module docstring).

    a: σ²t̄ = a y; target_learnability: 1 + a (f̄ = (1+a) y); u; coupling: A = u a²;
    well: W_+ (nan without a saddle); well_weight: p_w; well_action: S_k(W_+);
    eigenvalue: λ = 4P²σ_a²⟨XY⟩; phase: 'GFL' (the well carries < threshold of ⟨XY⟩) | 'GMFL-I' |
    'GMFL-II' (p_w > 1 − threshold); converged (|F(a)| ≤ 1e-8: F is steep in GMFL-I)/residual
    (|F(a)|)/iterations (Brent)/message;
    mode_product: ⟨XY⟩ (modes u_k = (1/P) Σ_n u_n e^{−2πikn/P}).
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
    mode_product: float


MODE_AVERAGES = ("mixture", "exact")


def solve_modular_addition(noise_variance, modulus, width, readout_variance, weight_decay,
                           phase_threshold: float = 0.01, xtol: float = 1e-14,
                           mode_average: str = "mixture") -> ModularAdditionSolution:
    """Solve a = −σ²/(λ(a) + σ²), λ(a) = 4P²σ_a²⟨XY⟩(u a²), on [−1, 0] by Brent's method (module
    docstring). mode_average "mixture": ⟨XY⟩ of `mixture_moment` (the paper's saddle weights plus
    the zero basin); "exact": `exact_mode_moment` (small P only; well_weight, well_action and phase
    then still describe the mixture at the solved A)."""
    if mode_average not in MODE_AVERAGES:
        raise ValueError(f"mode_average must be one of {MODE_AVERAGES}, got {mode_average!r}")
    s2 = _positive(noise_variance, "noise_variance")
    P = _positive(modulus, "modulus")
    sa2 = _positive(readout_variance, "readout_variance")
    gamma = _positive(weight_decay, "weight_decay")
    threshold = float(phase_threshold)
    if not 0.0 < threshold < 0.5:
        raise ValueError(f"phase_threshold must lie in (0, 0.5), got {phase_threshold!r}")
    u = modular_effective_interaction(P, width, sa2, s2)

    def moment_at(a):
        if mode_average == "exact":
            return exact_mode_moment(u * a * a, gamma, P)
        return mixture_moment(u * a * a, gamma, P)[0]

    def F(a):
        return a + s2 / (float(target_eigenvalue(moment_at(a), P, sa2)) + s2)

    a, info = optimize.brentq(F, -1.0, 0.0, xtol=xtol, rtol=4 * np.finfo(float).eps,
                              full_output=True, disp=False)  # F(−1) < 0 since λ ≥ 4σ_a²(1 − p_w) > 0
    iterations, ok, flag = int(info.iterations), bool(info.converged), str(info.flag)
    A = u * a * a
    mixture, weight, action = mixture_moment(A, gamma, P)
    moment = moment_at(a)
    saddles = diagonal_saddles(A, gamma)
    well_share = weight * saddles[1] ** 2 / mixture if saddles else 0.0
    phase = "GFL" if well_share < threshold else ("GMFL-II" if weight > 1.0 - threshold else "GMFL-I")
    residual = abs(F(a))
    converged = ok and residual <= 1e-8
    if converged:
        message = ""
    elif mode_average == "mixture" and abs(A - math.sqrt(gamma)) <= 1e-6 * math.sqrt(gamma):
        message = (f"no self-consistent root: λ(a) jumps at A² = γ (a = {a:.6g}), where the well appears "
                   f"with finite action P/(3√γ) = {P / (3 * math.sqrt(gamma)):.3g}; residual {residual:.3g}")
    else:
        message = f"brentq: {flag}, residual {residual:.3g}"
    return ModularAdditionSolution(float(a), 1.0 + float(a), u, A, saddles[1] if saddles else math.nan,
                                   weight, action, float(target_eigenvalue(moment, P, sa2)), phase, converged,
                                   float(residual), iterations, message, moment)
