"""Gaussian feature learning (VGA) for a single-index target: the symmetric reduction
Σ = a P_⊥ + b w* w*ᵀ of the adaptive-kernel equations (Ringel et al. 2025, arXiv:2502.18553, "Exploiting
symmetries"; equations [DERIVED] here).

Setting: x ~ N(0, I_d) (continuum / equivalent-kernel limit, Σ_μ → n∫dμ_x), |w*| = 1, z* = w*·x,
target y = y_1 He_1(z*) + y_3 He_3(z*) (unnormalized Hermites; the cubic teacher is (1, ε)).
Two-layer erf network with prior w ~ N(0, σ_w²/d I), readout a ~ N(0, σ̃_a²/(χN)), noise
σ² = σ̃²/χ (χ = 1 standard, χ = N mean-field scaling); physical σ_a² = σ̃_a²/χ.

Unknowns: a (variance of w ⊥ w*), b (variance of q = w·w*) and the discrepancy
σ² t̄ = τ̂_1 Ĥe_1 + τ̂_3 Ĥe_3 (normalized basis; reported as unnormalized τ_1 = τ̂_1, τ_3 = τ̂_3/√6).
With v_k(w) = E_x[Ĥe_k(z*) erf(w·x)] = (q^k/√k!) m_k(|w|²) (Stein; v_1 = 2q/√(πg),
v_3 = −4q³/(√(6π) g^{3/2}), g = 1 + 2|w|²), the VGA free energy per neuron (log-det term of
Seroussi, Naveh & Ringel (Nat. Commun. 2023) drop, exact for χ → ∞ and irrelevant for N → ∞ at fixed σ_a²) is

    F(a, b) = (d/(2σ_w²))((d−1)a + b) − ½((d−1) log a + log b) − (κ_2/2) J(a, b),
    J = E[(τ̂·v)²],  κ_2 = σ_a² n²/(N σ⁴) = u d,

where E is over w ~ N(0, Σ): q ~ N(0, b) and |w_⊥|² = a·χ²_{d−1} (perpendicular='exact', Gauss–
Laguerre) or |w_⊥|² = (d−1)a (perpendicular='concentrated', the approximation of Ringel et al. 2025).
Stationarity [DERIVED], using ∂_b E_q[f] = E[q f'(q)]/(2b), q ∂_q v_k = k v_k (1 − 2q²/g),
∂_{|w⊥|²} v_k = −k v_k/g:

    1/a = d/σ_w² + (2κ_2/(d−1)) E[ t (τ̂·v)(τ̂·k v/g) ],      t = |w_⊥|²/a,
    1/b = d/σ_w² − (κ_2/b) E[ (τ̂·v)(τ̂·k v (1 − 2q²/g)) ],
    (I + κ E[v vᵀ]) τ̂ = [y_1, √6 y_3],   κ = n σ_a²/σ²   (EK: t̄ = (Q + σ²/n)⁻¹ y).

For the linear target with g frozen at 1 + 2 TrΣ these are the equations of Ringel et al. 2025; keeping q² in
g (as the Landau theory does) changes them at O(b/g). The general finite-data solver
(`theory.adaptive_kernel`, logdet_term=False) reduces to these in the limit n → ∞ with the
discrepancy confined to span(He_1, He_3) (a Galerkin truncation, exact as d → ∞, paper App. A.2).

Predictions: f̄ = y − σ² t̄, so the learnabilities are L_k = 1 − τ_k/y_k (= f̄·He_k / y·He_k).
GP limit (N → ∞ at fixed σ_a²): a = b = σ_w²/d and τ̂ = (I + κ E_prior[v vᵀ])⁻¹ y.

Numerics: unknowns (log(a d/σ_w²), log(b d/σ_w²), τ̂_1, τ̂_3) (a, b > 0 by construction), equations
(σ_w²/d)× the 1/a, 1/b equations and the discrepancy equation;
`scipy.optimize.root(method='hybr')`; continuation from the GP side via `scan_single_index_gfl`
(a path of priors, value → `NetworkPrior`) or `scan_single_index_gfl_in_samples` (a path of n).

Inputs: the network is one `theory.network_prior.NetworkPrior` (fc, one hidden layer of width
N, no biases; σ_w² = its one weight variance, d = its input_dim, σ_a² and σ² its χ-scaled
properties); the data side (n, the target coefficients) are separate arguments.
`free_energy` is Ψ = ½|τ̂|² − τ̂·ŷ − (N σ²/n) [KL(N(0,Σ)‖prior) − (κ_2/2) J], whose stationary
points are the solutions (its τ̂-gradient is the discrepancy equation). Several solutions can
coexist near a first-order point; since Ψ is a min over τ̂ of a max over Σ-branches, the dominant
one is the solution whose own Σ is the better variational state at its τ̂ — compare branches, do
not simply take the smallest Ψ.

Other activations (`SINGLE_INDEX_ACTIVATIONS`, a registry: name → Hermite degrees kept and the
averages). The derivation above holds for any φ with v_k = q^k m_k(s)/√k! (m_k = E[φ^{(k)}],
`theory.hermite.gaussian_derivative_mean`) once k v/g is replaced by −∂_s v and k v(1 − 2q²/g) by
q ∂_q v [DERIVED]: ∂_s m_k = m_{k+2}/2 (heat equation of the Gaussian smoothing), so

    −∂_s v_k = −q^k m_{k+2}(s)/(2√k!),   q ∂_q v_k = k v_k + 2 q² ∂_s v_k

(for erf, m_{k+2} = −2k m_k/g and these are the two expressions above). "relu" keeps the degrees
(0, 1, 2, 4, 6): a non-odd φ couples the constant Ĥe_0 (E[relu] = √(s/2π)) to the even degrees,
and the ReLU teacher y = z* + ε(|z*| − √(2/π)) (`relu_abs_hermite_coefficients`) has
He_2, He_4, He_6, … content; the target power beyond degree 6 (ε² × 0.0105, out of
Var = ε²(1 − 2/π)) is left out of the Galerkin truncation (it is a fixed unlearned residual at
this order). `target_coefficients` are then (y_0, y_1, y_2, y_4, y_6) on unnormalized He_k.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
from scipy import optimize, special

from theory import continuation as cont
from theory.hermite import gauss_hermite_normal, gaussian_derivative_mean, single_index_projection
from theory.network_prior import NetworkPrior, check_two_layer
from theory.validation import check_positive as _positive

__all__ = [
    "SINGLE_INDEX_ACTIVATIONS",
    "SingleIndexActivation",
    "SingleIndexGFLSolution",
    "relu_abs_hermite_coefficients",
    "scan_single_index_gfl",
    "scan_single_index_gfl_in_samples",
    "solve_single_index_gfl",
]

_SQRT6 = math.sqrt(6.0)
_DEGREES = np.array([1.0, 3.0])


class SingleIndexGFLSolution(NamedTuple):
    """Solution of the symmetric reduction (module docstring).

    sigma_perp: a; sigma_parallel: b (Σ = a P_⊥ + b w*w*ᵀ); discrepancy: (τ_1, τ_3), σ²t̄ = τ_1 He_1
    + τ_3 He_3; mean_coefficients: f̄ = (y_1 − τ_1) He_1 + (y_3 − τ_3) He_3; learnabilities:
    (L_1, L_3), nan where y_k = 0; scaled_kernel: κ E[v vᵀ] = (n/σ²) Q̃ in the normalized basis;
    u: n²σ_a²/(σ⁴ d N); kernel_strength: κ = nσ_a²/σ²; free_energy: Ψ; converged/residual
    (max-norm of the equations)/iterations (function evaluations)/message.
    """

    sigma_perp: float
    sigma_parallel: float
    discrepancy: np.ndarray
    mean_coefficients: np.ndarray
    learnabilities: np.ndarray
    scaled_kernel: np.ndarray
    u: float
    kernel_strength: float
    free_energy: float
    converged: bool
    residual: float
    iterations: int
    message: str
    degrees: tuple = (1, 3)


def relu_abs_hermite_coefficients(epsilon: float, degrees: Sequence[int] = (0, 1, 2, 4, 6)) -> np.ndarray:
    """Unnormalized Hermite coefficients of y(z) = z + ε(|z| − √(2/π)) on the given degrees [DERIVED].

    |z| is even, E|z| = √(2/π) (removed by the shift, so y_0 = 0), y_1 = 1, and for even k ≥ 2
    Stein's lemma (|z|'' = 2δ(z), E[δ^{(j)}(z)] = He_j(0)/√(2π)) gives E[|z| He_k] = 2He_{k−2}(0)/√(2π):

        y_k = ε · 2 He_{k−2}(0)/(√(2π) k!) = ε · 2(−1)^{k/2−1}(k−3)!!/(√(2π) k!),

    i.e. y_2 = ε/√(2π) (Rubin, Seroussi & Ringel 2024, App. A), y_4 = −ε/(12√(2π)), y_6 = ε/(120√(2π)); odd k ≥ 3 vanish.
    """
    eps = float(epsilon)
    if not math.isfinite(eps):
        raise ValueError(f"epsilon must be finite, got {epsilon!r}")
    out = []
    for k in degrees:
        k = int(k)
        if k == 1:
            out.append(1.0)
        elif k == 0 or k % 2:
            out.append(0.0)
        else:
            he_at_zero = (-1.0) ** (k // 2 - 1) * math.prod(range(k - 3, 0, -2))  # He_{k−2}(0)
            out.append(eps * 2.0 * he_at_zero / (math.sqrt(2.0 * math.pi) * math.factorial(k)))
    return np.array(out)


def _perpendicular_rule(dim: int, perpendicular: str, order: int):
    """Nodes/weights of t = |w_⊥|²/a: χ²_{d−1} (generalized Gauss–Laguerre) or t = d − 1."""
    k = dim - 1
    if perpendicular == "concentrated":
        return np.array([float(k)]), np.array([1.0])
    if perpendicular != "exact":
        raise ValueError(f"perpendicular must be 'exact' or 'concentrated', got {perpendicular!r}")
    alpha = 0.5 * k - 1.0
    x, w = special.roots_genlaguerre(order, alpha)
    return 2.0 * x, w / math.exp(special.gammaln(alpha + 1.0))


class _Averages(NamedTuple):
    moment: np.ndarray      # E[v vᵀ], (2, 2)
    perp_force: float       # E[t (τ̂·v)(τ̂·k v/g)]
    parallel_force: float   # E[(τ̂·v)(τ̂·k v (1 − 2q²/g))]
    interaction: float      # J = E[(τ̂·v)²]


def _averages(a, b, tau, perp_nodes, perp_weights, rule) -> _Averages:
    q = math.sqrt(b) * rule.nodes[:, None]                 # (m, 1)
    t = perp_nodes[None, :]                                # (1, l)
    s = a * t + q * q                                      # |w|², (m, l)
    g = 1.0 + 2.0 * s
    weights = rule.weights[:, None] * perp_weights[None, :]
    v = np.stack([np.broadcast_to(single_index_projection("erf", k, q, s, normalized=True), s.shape)
                  for k in (1, 3)])                        # (2, m, l)
    tv = np.tensordot(tau, v, axes=1)
    kv = np.tensordot(tau * _DEGREES, v, axes=1)
    moment = np.einsum("iml,jml,ml->ij", v, v, weights)
    return _Averages(moment, float(np.sum(weights * t * tv * kv / g)),
                     float(np.sum(weights * tv * kv * (1.0 - 2.0 * q * q / g))), float(tau @ moment @ tau))


def _generic_averages(activation: str, degrees: tuple, a, b, tau, perp_nodes, perp_weights, rule) -> _Averages:
    """The averages of `_averages` for any φ (module docstring: −∂_s v and q ∂_q v by m_{k+2})."""
    q = math.sqrt(b) * rule.nodes[:, None]
    t = perp_nodes[None, :]
    s = a * t + q * q
    weights = rule.weights[:, None] * perp_weights[None, :]
    norms = [math.sqrt(math.factorial(k)) for k in degrees]
    v = np.stack([np.broadcast_to(q ** k * gaussian_derivative_mean(activation, k, s) / c, s.shape)
                  for k, c in zip(degrees, norms)])
    ds = np.stack([np.broadcast_to(q ** k * gaussian_derivative_mean(activation, k + 2, s) / (2.0 * c), s.shape)
                   for k, c in zip(degrees, norms)])                      # ∂_s v_k
    tv = np.tensordot(tau, v, axes=1)
    minus_ds = -np.tensordot(tau, ds, axes=1)
    q_dq = np.tensordot(tau * np.asarray(degrees, dtype=np.float64), v, axes=1) - 2.0 * q * q * minus_ds
    moment = np.einsum("iml,jml,ml->ij", v, v, weights)
    return _Averages(moment, float(np.sum(weights * t * tv * minus_ds)), float(np.sum(weights * tv * q_dq)),
                     float(tau @ moment @ tau))


class SingleIndexActivation(NamedTuple):
    """Registry entry: the Hermite degrees of the discrepancy and averages(a, b, τ̂, perp_nodes,
    perp_weights, rule) → _Averages."""

    degrees: tuple
    averages: Callable


def _generic_entry(activation: str, degrees: tuple) -> SingleIndexActivation:
    return SingleIndexActivation(degrees, lambda *args: _generic_averages(activation, degrees, *args))


SINGLE_INDEX_ACTIVATIONS: dict[str, SingleIndexActivation] = {
    "erf": SingleIndexActivation((1, 3), _averages),
    "relu": _generic_entry("relu", (0, 1, 2, 4, 6)),
}


def solve_single_index_gfl(prior: NetworkPrior, *, num_samples, target_coefficients=None,
                           perpendicular: str = "exact", initial_guess: Optional[Sequence[float]] = None,
                           quadrature_order: int = 48, tol: float = 1e-12) -> SingleIndexGFLSolution:
    """Solve the (a, b, τ) equations of the module docstring for the network `prior` and n samples.

    `prior.activation`: a key of SINGLE_INDEX_ACTIVATIONS; σ_a² = σ̃_a²/χ and σ² = σ̃²/χ come from
    the prior. `target_coefficients` = (y_1, y_3) on unnormalized He_1, He_3 (relu: (y_0, y_1,
    y_2, y_4, y_6), default the linear teacher y = He_1). `initial_guess` = (a, b, τ on the
    degrees) (unnormalized τ), default the GP solution. Requires prior.input_dim ≥ 2.
    """
    check_two_layer(prior, SINGLE_INDEX_ACTIVATIONS)
    activation = prior.activation
    entry = SINGLE_INDEX_ACTIVATIONS[activation]
    num_modes = len(entry.degrees)
    if target_coefficients is None:  # the linear teacher y = He_1
        target_coefficients = tuple(1.0 if k == 1 else 0.0 for k in entry.degrees)
    n = _positive(num_samples, "num_samples")
    N = prior.width
    sa2 = prior.readout_variance
    s2 = prior.noise_variance
    sw2 = prior.input_variance
    if prior.input_dim < 2:
        raise ValueError(f"NetworkPrior.input_dim must be an integer ≥ 2 here, got {prior.input_dim!r}")
    d = prior.input_dim
    y = np.asarray(target_coefficients, dtype=np.float64)
    if y.shape != (num_modes,) or not np.all(np.isfinite(y)):
        raise ValueError(f"target_coefficients must be {num_modes} finite numbers on the degrees "
                         f"{entry.degrees}, got {target_coefficients!r}")
    normalization = np.array([1.0, _SQRT6]) if activation == "erf" else np.sqrt(
        [float(math.factorial(k)) for k in entry.degrees])
    y_hat = y * normalization
    kappa = n * sa2 / s2
    kappa2 = sa2 * n * n / (N * s2 * s2)
    scale = sw2 / d
    rule = gauss_hermite_normal(int(quadrature_order))
    perp_nodes, perp_weights = _perpendicular_rule(d, perpendicular, int(quadrature_order))

    averages = entry.averages

    def unpack(x):
        return scale * math.exp(x[0]), scale * math.exp(x[1]), np.asarray(x[2:2 + num_modes])

    def equations(x):
        a, b, tau = unpack(x)
        avg = averages(a, b, tau, perp_nodes, perp_weights, rule)
        # (σ_w²/d)·(1/a, 1/b equations): O(1) and steep as a, b → 0 (no spurious flat root there).
        return np.array([scale / a - 1.0 - 2.0 * scale * kappa2 / (d - 1) * avg.perp_force,
                         scale / b - 1.0 + scale * kappa2 * avg.parallel_force / b,
                         *(tau + kappa * avg.moment @ tau - y_hat)])

    if initial_guess is None:
        prior = averages(scale, scale, np.zeros(num_modes), perp_nodes, perp_weights, rule).moment
        x0 = np.concatenate(([0.0, 0.0], np.linalg.solve(np.eye(num_modes) + kappa * prior, y_hat)))
    else:
        guess = np.asarray(initial_guess, dtype=np.float64)
        if (guess.shape != (2 + num_modes,) or not np.all(np.isfinite(guess)) or guess[0] <= 0
                or guess[1] <= 0):
            raise ValueError(f"initial_guess must be (a > 0, b > 0, τ on the degrees {entry.degrees}), "
                             f"got {initial_guess!r}")
        if activation == "erf":
            x0 = np.array([math.log(guess[0] / scale), math.log(guess[1] / scale), guess[2], _SQRT6 * guess[3]])
        else:
            x0 = np.concatenate(([math.log(guess[0] / scale), math.log(guess[1] / scale)],
                                 guess[2:] * normalization))
    with np.errstate(over="ignore", invalid="ignore"):
        sol = optimize.root(equations, x0, method="hybr", options={"xtol": tol})
        residual_vector = equations(sol.x)
    residual = float(np.max(np.abs(residual_vector))) if np.all(np.isfinite(residual_vector)) else math.inf
    a, b, tau_hat = unpack(sol.x)
    avg = averages(a, b, tau_hat, perp_nodes, perp_weights, rule)
    tau = tau_hat / normalization
    with np.errstate(divide="ignore", invalid="ignore"):
        learn = np.where(y != 0, 1.0 - tau / np.where(y != 0, y, 1.0), np.nan)
    alpha, beta = a / scale, b / scale
    kl = 0.5 * ((d - 1) * (alpha - 1.0 - math.log(alpha)) + (beta - 1.0 - math.log(beta)))
    free_energy = 0.5 * tau_hat @ tau_hat - tau_hat @ y_hat - (kappa / kappa2) * (kl - 0.5 * kappa2 * avg.interaction)
    converged = bool(sol.success) and residual <= 1e-9
    return SingleIndexGFLSolution(a, b, tau, y - tau, learn, kappa * avg.moment,
                                  kappa2 / d, kappa, float(free_energy), converged, residual, int(sol.nfev),
                                  "" if converged else f"{sol.message} (residual {residual:.3g})",
                                  tuple(entry.degrees))


def _guess(solution: SingleIndexGFLSolution) -> np.ndarray:
    return np.array([solution.sigma_perp, solution.sigma_parallel, *solution.discrepancy])


def scan_single_index_gfl(prior_at: Callable[[float], NetworkPrior], values: Sequence[float], *,
                          num_samples, **options) -> cont.ContinuationResult:
    """Continuation of `solve_single_index_gfl` along the priors `prior_at(v)`, v in `values`.

    E.g. a noise path `lambda v: dataclasses.replace(prior, noise_variance_tilde=v)`, a mean-field
    width path `lambda N: dataclasses.replace(prior, widths=(N,), chi=N)`. Put the GP side first
    (large width, large noise). `options`: the other keyword arguments of the solver (target
    coefficients, perpendicular, quadrature order, tol); every solve is warm-started.
    """
    def solve_at(value, guess):
        return solve_single_index_gfl(prior_at(value), num_samples=num_samples, initial_guess=guess, **options)

    return cont.continuation(solve_at, values, _guess)


def scan_single_index_gfl_in_samples(prior: NetworkPrior, values: Sequence[float],
                                     **options) -> cont.ContinuationResult:
    """Continuation of `solve_single_index_gfl` in the number of samples n (few samples first)."""
    def solve_at(value, guess):
        return solve_single_index_gfl(prior, num_samples=value, initial_guess=guess, **options)

    return cont.continuation(solve_at, values, _guess)
