"""The "scaling approach" to feature learning of a single-index target: a variational comparison of
feature-learning patterns at the level of scale analysis (Ringel et al. 2025, arXiv:2502.18553,
"Further evidence for complexity change", curve "Scaling"; Rubin, Davidovich, Ringel, *Mitigating
the curse of detail: scaling arguments for feature learning and sample complexity*, arXiv 2512.04165
— its equations were not available here; what follows is derived from Ringel et al. 2025 and the
adaptive-kernel equations of `theory.adaptive_kernel` and `theory.single_index_gfl`, and is stated
as such).

Setting (as `theory.single_index_gfl`): x ~ N(0, I_d), z* = w*·x, |w*| = 1, target
y = Σ_k y_k He_k(z*) on the degrees kept (ŷ_k = √k! y_k on the normalized Ĥe_k); two-layer network
f(x) = Σ_c a_c φ(w_c·x), prior w ~ N(0, σ_w²/d I), readout a ~ N(0, σ̃_a²/(χN)), noise σ² = σ̃²/χ
(χ = 1 standard, χ = N mean field), physical σ_a² = σ̃_a²/χ; noise σ² = T for the loss ½Σ(f−y)².

Derivation [DERIVED]. Integrating the readout out exactly, the posterior weight of the input
weights W is exp(−Σ_c d|w_c|²/(2σ_w²) − ½yᵀ(K_W+σ²I)⁻¹y − ½ log det(K_W+σ²I)) (Seroussi, Naveh & Ringel, Nat. Commun. 2023).
The large-deviation (Bayesian LDT) estimate of the probability of a feature-learning *pattern* —
a family of weight ensembles, here the GFL pattern in which every neuron's w is Gaussian with
covariance Σ(b) = (σ_w²/d) P_⊥ + b w*w*ᵀ — is its entropy cost against the prior plus the data
term of the kernel that pattern produces (Jensen / Gibbs–Bogoliubov bound, tight when the
kernel self-averages over the N neurons):

    F(b) = N · KL(N(0, Σ(b)) ‖ N(0, σ_w²/d I)) + ½ n ŷᵀ(nΛ(b) + σ²I)⁻¹ŷ + ½ log det(I + nΛ(b)/σ²),

    N · KL = (N/2)(β − 1 − log β),   β = b d/σ_w²,
    Λ_jk(b) = σ_a² E_{q~N(0,b)}[v_j(q) v_k(q)],   v_k(q) = q^k m_k(σ_w² + q²)/√k!

(EK / continuum form of the data term, Σ_μ → n∫dμ, kept on the target's Hermite span only; v_k
is the Stein projection E_x[Ĥe_k(z*) φ(w·x)] with |w|² concentrated at its prior value σ_w²
in the perpendicular directions plus q², Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1 and App. A). The pattern realised is the
global minimiser b* of F (a one-dimensional scan, so a first-order jump between the GP-like
b ≈ σ_w²/d and an aligned b = O(1) is caught); the predicted learnabilities are those of the GP
with that kernel, f̂ = nΛ(nΛ + σ²)⁻¹ŷ, L_k = f̂_k/ŷ_k (= f̄·He_k / y·He_k).

How it differs from the adaptive (Gaussian-closure) prediction (`theory.adaptive_kernel`,
`theory.single_index_gfl`): the perpendicular variance is frozen at the prior, |w|² is
concentrated, only the target's modes enter the data term, and the realised Σ is the global
minimum over a one-parameter pattern instead of a stationary point of the full VGA equations.
Its scaling content: with N ∝ d, n ∝ d and σ̃² fixed, N·KL ∝ d while the data term gains
∝ n/σ² · σ_a² ∝ d — both sides scale alike, so b* is O(1) (aligned) at every scale and the
learnability of He_2 stays O(1) at n ∝ d, against the GP's λ_2 ∝ 1/d² (n ∝ d² needed).
b = σ_w²/d (the prior) gives the GP prediction in the same approximation (`gp_pattern=True`).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
from scipy import optimize

from theory.hermite import gauss_hermite_normal, gaussian_derivative_mean
from theory.network_prior import NetworkPrior, check_two_layer
from theory.validation import check_positive as _positive

__all__ = ["ScalingPrediction", "pattern_free_energy", "scaling_prediction"]


class ScalingPrediction(NamedTuple):
    """Result of `scaling_prediction`.

    degrees (k,); sigma_parallel: b* (the variance of q = w·w* in the realised pattern); kernel:
    Λ(b*) (k, k) on the normalized Ĥe basis; learnabilities: L_k = f̂_k/ŷ_k (nan where y_k = 0);
    free_energy: F(b*); gp_free_energy: F(σ_w²/d); converged/residual (|dF/d log b| at b*, relative
    to N)/iterations (free-energy evaluations)/message.
    """

    degrees: tuple
    sigma_parallel: float
    kernel: np.ndarray
    learnabilities: np.ndarray
    free_energy: float
    gp_free_energy: float
    converged: bool
    residual: float
    iterations: int
    message: str


def _kernel(activation, degrees, b, input_variance, readout_variance, rule) -> np.ndarray:
    q = math.sqrt(b) * rule.nodes
    s = input_variance + q * q
    v = np.stack([q ** k * gaussian_derivative_mean(activation, k, s) / math.sqrt(math.factorial(k))
                  for k in degrees])
    return readout_variance * (v * rule.weights) @ v.T


def _parameters(prior: NetworkPrior, num_samples):
    """(n, N, σ_a², σ², σ_w², d) of a two-layer prior (σ_a² = σ̃_a²/χ, σ² = σ̃²/χ from the record)."""
    check_two_layer(prior)
    n = _positive(num_samples, "num_samples")
    return n, prior.width, prior.readout_variance, prior.noise_variance, prior.input_variance, prior.input_dim


def _target(degrees, target_coefficients) -> tuple[tuple, np.ndarray]:
    degrees = tuple(int(k) for k in degrees)
    if not degrees or any(k < 0 for k in degrees) or len(set(degrees)) != len(degrees):
        raise ValueError(f"degrees must be distinct non-negative integers, got {degrees!r}")
    y = np.asarray(target_coefficients, dtype=np.float64)
    if y.shape != (len(degrees),) or not np.all(np.isfinite(y)):
        raise ValueError(f"target_coefficients must be {len(degrees)} finite numbers on the degrees "
                         f"{degrees}, got {target_coefficients!r}")
    return degrees, y * np.sqrt([float(math.factorial(k)) for k in degrees])


def pattern_free_energy(sigma_parallel, prior: NetworkPrior, *, num_samples, target_coefficients, degrees,
                        quadrature_order: int = 64) -> float:
    """F(b) of the module docstring at b = `sigma_parallel` for the network `prior` and n samples."""
    n, N, sa2, s2, sw2, d = _parameters(prior, num_samples)
    degrees, y_hat = _target(degrees, target_coefficients)
    b = _positive(sigma_parallel, "sigma_parallel")
    return _free_energy(b, n, N, sa2, s2, sw2, d, degrees, y_hat, prior.activation,
                        gauss_hermite_normal(quadrature_order))


def _free_energy(b, n, N, sa2, s2, sw2, d, degrees, y_hat, activation, rule) -> float:
    beta = b * d / sw2
    lam = _kernel(activation, degrees, b, sw2, sa2, rule)
    M = n * lam + s2 * np.eye(len(degrees))
    data = 0.5 * n * y_hat @ np.linalg.solve(M, y_hat) + 0.5 * np.linalg.slogdet(M / s2)[1]
    return 0.5 * N * (beta - 1.0 - math.log(beta)) + float(data)


def scaling_prediction(prior: NetworkPrior, *, num_samples, target_coefficients, degrees: Sequence[int],
                       gp_pattern: bool = False, quadrature_order: int = 64,
                       grid: int = 400) -> ScalingPrediction:
    """Global minimiser b* of F(b) (module docstring) and the learnabilities of its kernel.

    `prior`: the two-layer network (`theory.network_prior.NetworkPrior`; its activation is any name
    `theory.hermite.gaussian_derivative_mean` knows, closed forms or quadrature); n = `num_samples`.
    The scan runs over log b from log(10⁻³ σ_w²/d) to log(10 σ_w²)
    on `grid` points, then a bounded Brent refinement around the best point.
    With gp_pattern=True, b = σ_w²/d (the prior, no feature learning).
    """
    n, N, sa2, s2, sw2, d = _parameters(prior, num_samples)
    activation = prior.activation
    degrees, y_hat = _target(degrees, target_coefficients)
    rule = gauss_hermite_normal(int(quadrature_order))
    prior_b = sw2 / d
    energy = lambda log_b: _free_energy(math.exp(log_b), n, N, sa2, s2, sw2, d, degrees, y_hat, activation, rule)
    gp_energy = energy(math.log(prior_b))
    evaluations = 1
    if gp_pattern:
        log_b, converged, residual, message = math.log(prior_b), True, 0.0, ""
    else:
        grid_points = np.linspace(math.log(prior_b) - 3 * math.log(10.0), math.log(10.0 * sw2), int(grid))
        values = np.array([energy(x) for x in grid_points])
        evaluations += len(grid_points)
        best = int(np.argmin(values))
        lo, hi = grid_points[max(best - 1, 0)], grid_points[min(best + 1, len(grid_points) - 1)]
        refined = optimize.minimize_scalar(energy, bounds=(lo, hi), method="bounded",
                                           options={"xatol": 1e-10})
        evaluations += int(refined.nfev)
        log_b = float(refined.x) if refined.fun <= values[best] else float(grid_points[best])
        h = 1e-5
        residual = abs(energy(log_b + h) - energy(log_b - h)) / (2 * h) / N
        evaluations += 2
        at_edge = best in (0, len(grid_points) - 1)
        converged = bool(refined.success) and residual < 1e-6 and not at_edge
        message = "" if converged else (f"minimum at the edge of the scan (b = {math.exp(log_b):.3g})" if at_edge
                                        else f"refinement did not converge (|dF/dlog b|/N = {residual:.3g})")
    b = math.exp(log_b)
    lam = _kernel(activation, degrees, b, sw2, sa2, rule)
    M = n * lam + s2 * np.eye(len(degrees))
    f_hat = n * lam @ np.linalg.solve(M, y_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        learn = np.where(y_hat != 0, f_hat / np.where(y_hat != 0, y_hat, 1.0), np.nan)
    return ScalingPrediction(degrees, b, lam, learn, energy(log_b), gp_energy, converged, float(residual),
                             evaluations, message)
