"""Spectrum of the two-layer NNGP kernel on Gaussian data, by Hermite/harmonic degree of a single index.

Setting (the NNGP recursion of Lee et al., ICLR 2018; Rubin, Seroussi & Ringel 2024, App. A):
x ~ N(0, I_d) (d = `input_dim`), kernel
K(x, y) = σ_a² E_w[φ(w·x) φ(w·y)], w ~ N(0, σ_w²/d · I_d) (standard scaling; mean-field users pass
σ_a² = σ̃_a²/χ), teacher direction w* with |w*| = 1, z* = w*·x. Notation: m_k(s) = E[φ^{(k)}(h)],
h ~ N(0, s) (`theory.hermite.gaussian_derivative_mean`), χ²_ν a chi-square variable with ν degrees
of freedom, (2k−1)!! = 1·3·…·(2k−1).

Derivation [DERIVED]. Multivariate Stein: for a harmonic homogeneous polynomial Z of degree k
(ΔZ = 0, so its Wick-ordered form is itself), E_y[φ(w·y) Z(y)] = m_k(|w|²) Z(w). Hence for the zonal
harmonic Z_k(x) = |x|^k G_k(z*/|x|) (G_k a Gegenbauer polynomial) the Rayleigh quotient is
    ⟨Z_k, K Z_k⟩/⟨Z_k, Z_k⟩ = σ_a² E_w[m_k(|w|²)² Z_k(w)²]/E_x[Z_k(x)²].
With w = (σ_w²/d)^{1/2} g, |g|² = ρ ~ χ²_d independent of the angle, the Gegenbauer factor cancels
and ρ^k χ²_d tilts to χ²_{d+2k}:
    λ_k = σ_a² (σ_w²/d)^k E_{ρ~χ²_{d+2k}}[ m_k(σ_w² ρ/d)² ]                          (harmonic)
For the Hermite function itself, Stein in one direction gives E_y[φ(w·y) Ĥe_k(z*_y)] = q^k m_k(s)/√(k!)
(q = w·w*, s = |w|²), so with q² = (σ_w²/d) g₁², s = q² + (σ_w²/d) χ²_{d−1} and g₁^{2k} tilting χ²_1 to
(2k−1)!! × χ²_{2k+1}:
    ⟨Ĥe_k(z*), K Ĥe_k(z*)⟩ = σ_a² E_w[q^{2k} m_k(s)²]/k! = ((2k−1)!!/k!) λ_k        (exact in d)
Large d (ρ/d → 1):  λ_k ≈ σ_a² σ_w^{2k} m_k(σ_w²)²/d^k; erf, k = 1: 4σ_a²σ_w²/(π d (1+2σ_w²))
(Rubin, Seroussi & Ringel 2024, App. A). Relative corrections are O(1/d).

Which number is "the eigenvalue" (limits, stated honestly):
* Ĥe_k(w*·x) is not an exact eigenfunction of K on N(0, I_d) for k ≥ 2: it has a component of norm²
  O(1/d) on functions of lower harmonic degree (radial factors, e.g. (|x|²−d)/√(2d) inside Ĥe_2)
  whose eigenvalues are larger by a factor O(d), so they shift ⟨Ĥe_k, K Ĥe_k⟩ at *leading* order by
  the factor (2k−1)!!/k! (3/2 for k = 2). Those components are learned earlier (at n ~ d^{k−1}).
* λ_k (the harmonic quotient) is what governs learning the degree-k part of a single-index target at
  n ~ d^k: it is a lower bound on the top eigenvalue of the degree-k harmonic sector, equal to it up to
  relative O(1/d) (its radial profile |x|^k is exact for polynomial φ; e.g. linear φ: λ_1 = σ_a²σ_w²/d,
  quadratic φ: λ_2 = 4σ_a²σ_w⁴/d², both exact eigenvalues).
* The degree-k harmonics have multiplicity N(d, k) = C(d+k−1, k) − C(d+k−3, k−2) ~ d^k/k!.
  For the κ equation we use the spectrum {λ_k with multiplicity N(d, k), k ≤ K} and fold the rest of
  the trace, Tr K − Σ_k N(d,k) λ_k ≥ 0 (radial excitations and degrees > K), into the ridge, as in
  the RG decimation of Howard, Maiti, Jefferson & Ringel 2024. This is a leading-order-in-1/d description; it ignores the
  O(1/d) splitting inside each sector.
Odd φ: m_k = 0 for even k, so even-degree eigenvalues vanish exactly (K maps even functions to 0).
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import linalg, special

from theory.hermite import gaussian_derivative_mean
from theory.kernels import Activation, activation_kernel, gauss_hermite_kernel
from theory.learning_curves import KappaSolution, ek_learnability, predicted_test_mse, solve_kappa
from theory.validation import check_positive as _check_positive

__all__ = [
    "SingleIndexLearnability",
    "SingleIndexSpectrum",
    "harmonic_eigenvalue",
    "harmonic_multiplicity",
    "hermite_rayleigh_quotient",
    "kernel_trace",
    "large_d_eigenvalue",
    "predicted_learnabilities",
    "single_index_spectrum",
]


CHI_SQUARE_QUADRATURE_ORDER = 96


class SingleIndexSpectrum(NamedTuple):
    """Degrees 0..K of the two-layer NNGP kernel on N(0, I_d) (module docstring for definitions).

    degrees (K+1,); eigenvalues λ_k (harmonic quotient, exact in d); eigenvalues_large_d
    σ_a²σ_w^{2k}m_k(σ_w²)²/d^k; hermite_rayleigh_quotients ⟨Ĥe_k, K Ĥe_k⟩ = (2k−1)!!/k! λ_k;
    multiplicities N(d, k); trace E_x K(x, x); tail_trace = trace − Σ_k N(d,k) λ_k (≥ 0).
    """

    degrees: np.ndarray
    eigenvalues: np.ndarray
    eigenvalues_large_d: np.ndarray
    hermite_rayleigh_quotients: np.ndarray
    multiplicities: np.ndarray
    trace: float
    tail_trace: float


class SingleIndexLearnability(NamedTuple):
    """Predicted learning of y = Σ_k c_k Ĥe_k(w*·x) (posterior mean; Cohen, Malka & Ringel 2021; Canatar, Bordelon & Pehlevan 2021).

    ek: λ_k/(λ_k + σ²/n); self_consistent: λ_k/(λ_k + κ_S); kappa: the κ solution (ridge
    σ² + tail_trace); test_mse: E_0 Σ (1 − L_k)² c_k² + the label-noise term against the clean
    target; ek_test_mse: Σ (1 − L_k^EK)² c_k² (n → ∞ form, no E_0).
    """

    ek: np.ndarray
    self_consistent: np.ndarray
    kappa: KappaSolution
    test_mse: float
    ek_test_mse: float


def _check_degree(degree, name: str = "degree") -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {degree!r}")
    return int(degree)


def _check_dimension(input_dim) -> int:
    if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) or input_dim < 1:
        raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
    return int(input_dim)


@functools.lru_cache(maxsize=64)
def _chi_square_rule(dof: int, order: int):
    """Gauss rule for E[g(ρ)], ρ ~ χ²_dof: generalized Gauss–Laguerre (α = dof/2 − 1) in u = ρ/2.

    Golub–Welsch on the Laguerre Jacobi matrix (diagonal 2i+α+1, off-diagonal √(i(i+α))), so the
    weights are normalized probabilities with no Γ(dof/2) overflow at large dof.
    """
    alpha = 0.5 * dof - 1.0
    i = np.arange(order, dtype=np.float64)
    diagonal = 2.0 * i + alpha + 1.0
    off_diagonal = np.sqrt(i[1:] * (i[1:] + alpha))
    nodes, vectors = linalg.eigh_tridiagonal(diagonal, off_diagonal)
    weights = vectors[0] ** 2
    return 2.0 * nodes, weights / weights.sum()


def harmonic_multiplicity(input_dim: int, degree: int) -> float:
    """N(d, k) = C(d+k−1, k) − C(d+k−3, k−2): dimension of degree-k harmonic polynomials in d variables."""
    d, k = _check_dimension(input_dim), _check_degree(degree)
    if k == 0:
        return 1.0
    if d == 1:
        return 1.0 if k == 1 else 0.0
    lower = math.comb(d + k - 3, k - 2) if k >= 2 else 0
    return float(math.comb(d + k - 1, k) - lower)


def _power_law_exponent(activation: Activation, k: int):
    """β with m_k(s) = m_k(1) s^β for relu and step (theory.hermite closed forms), else None."""
    if activation == "relu":
        return 0.5 if k == 0 else -0.5 * (k - 1)
    if activation == "step":
        return -0.5 * k
    return None


def harmonic_eigenvalue(activation: Activation, degree: int, input_dim: int, sigma_w2: float,
                        sigma_a2: float, order: int = CHI_SQUARE_QUADRATURE_ORDER) -> float:
    """λ_k = σ_a² (σ_w²/d)^k E_{ρ~χ²_{d+2k}}[m_k(σ_w²ρ/d)²]  [DERIVED] (module docstring).

    Exact-in-d Rayleigh quotient of the degree-k zonal harmonic; the eigenvalue of the degree-k
    harmonic sector to leading order in 1/d. relu and step have m_k(s) = m_k(1) s^β, so the
    expectation is the exact chi-square moment E[ρ^{2β}] = 2^{2β} Γ(ν/2 + 2β)/Γ(ν/2), ν = d + 2k;
    other activations use generalized Gauss–Laguerre quadrature with `order` nodes (smooth
    integrand: erf converges geometrically).
    """
    k, d = _check_degree(degree), _check_dimension(input_dim)
    sigma_w2, sigma_a2 = _check_positive(sigma_w2, "sigma_w2"), _check_positive(sigma_a2, "sigma_a2")
    dof = d + 2 * k
    exponent = _power_law_exponent(activation, k)
    if exponent is not None:
        mean_at_one = float(gaussian_derivative_mean(activation, k, 1.0))
        if mean_at_one == 0.0:
            return 0.0
        power = 2.0 * exponent  # E[s^{2β}], s = σ_w² ρ/d
        log_moment = power * math.log(2.0) + special.gammaln(0.5 * dof + power) - special.gammaln(0.5 * dof)
        expectation = mean_at_one**2 * (sigma_w2 / d) ** power * math.exp(log_moment)
    else:
        rho, weights = _chi_square_rule(dof, int(order))
        means = gaussian_derivative_mean(activation, k, sigma_w2 * rho / d)
        expectation = float(np.sum(weights * means**2))
    return float(sigma_a2 * (sigma_w2 / d) ** k * expectation)


def hermite_rayleigh_quotient(activation: Activation, degree: int, input_dim: int, sigma_w2: float,
                              sigma_a2: float, order: int = CHI_SQUARE_QUADRATURE_ORDER) -> float:
    """⟨Ĥe_k(w*·x), K Ĥe_k(w*·x)⟩ under x ~ N(0, I_d) = ((2k−1)!!/k!) λ_k, exact in d [DERIVED]."""
    k = _check_degree(degree)
    double_factorial = math.prod(range(2 * k - 1, 0, -2))
    return double_factorial / math.factorial(k) * harmonic_eigenvalue(
        activation, k, input_dim, sigma_w2, sigma_a2, order)


def large_d_eigenvalue(activation: Activation, degree: int, input_dim: int, sigma_w2: float,
                       sigma_a2: float) -> float:
    """Leading large-d form λ_k ≈ σ_a² σ_w^{2k} m_k(σ_w²)²/d^k [DERIVED]; relative error O(1/d).

    erf, k = 1: 4σ_a²σ_w²/(π d (1+2σ_w²)) (Rubin, Seroussi & Ringel 2024, App. A); erf, k = 3: 16σ_a²σ_w⁶/(π d³ (1+2σ_w²)³).
    """
    k, d = _check_degree(degree), _check_dimension(input_dim)
    sigma_w2, sigma_a2 = _check_positive(sigma_w2, "sigma_w2"), _check_positive(sigma_a2, "sigma_a2")
    mean = float(gaussian_derivative_mean(activation, k, sigma_w2))
    return sigma_a2 * (sigma_w2 / d) ** k * mean * mean


def kernel_trace(activation: Activation, input_dim: int, sigma_w2: float, sigma_a2: float,
                 order: int = CHI_SQUARE_QUADRATURE_ORDER) -> float:
    """Tr K = E_x K(x, x) = σ_a² E_{ρ~χ²_d}[E φ(u)², u ~ N(0, σ_w²ρ/d)] (sum of all eigenvalues)."""
    d = _check_dimension(input_dim)
    sigma_w2, sigma_a2 = _check_positive(sigma_w2, "sigma_w2"), _check_positive(sigma_a2, "sigma_a2")
    rho, weights = _chi_square_rule(d, int(order))
    s = sigma_w2 * rho / d
    if isinstance(activation, str):
        second_moment = activation_kernel(activation, s, s, s)
    else:
        second_moment = gauss_hermite_kernel(activation, s, s, s)
    return float(sigma_a2 * np.sum(weights * second_moment))


def single_index_spectrum(activation: Activation, max_degree: int, input_dim: int, sigma_w2: float,
                          sigma_a2: float) -> SingleIndexSpectrum:
    """Eigenvalues of degrees 0..max_degree, their multiplicities and the remaining trace (see class)."""
    K = _check_degree(max_degree, "max_degree")
    degrees = np.arange(K + 1)
    eigenvalues = np.array([harmonic_eigenvalue(activation, k, input_dim, sigma_w2, sigma_a2) for k in degrees])
    large_d = np.array([large_d_eigenvalue(activation, k, input_dim, sigma_w2, sigma_a2) for k in degrees])
    ratios = np.array([math.prod(range(2 * k - 1, 0, -2)) / math.factorial(k) for k in degrees])
    multiplicities = np.array([harmonic_multiplicity(input_dim, k) for k in degrees])
    trace = kernel_trace(activation, input_dim, sigma_w2, sigma_a2)
    tail = trace - float(np.sum(multiplicities * eigenvalues))
    if -1e-12 * trace <= tail < 0.0:  # round-off: the listed degrees hold the whole trace (linear φ)
        tail = 0.0
    return SingleIndexSpectrum(degrees, eigenvalues, large_d, ratios * eigenvalues, multiplicities,
                               trace, tail)


def predicted_learnabilities(target_hermite_coefficients, eigenvalues, multiplicities, n,
                             noise_variance, tail_trace: float = 0.0,
                             noise_variance_labels: float = 0.0) -> SingleIndexLearnability:
    """Learnabilities of y = Σ_k c_k Ĥe_k(w*·x) + label noise by EK and by the self-consistent κ.

    target_hermite_coefficients c_k (normalized Hermite, degrees 0..K), eigenvalues λ_k and
    multiplicities N(d, k) (e.g. from `single_index_spectrum`), n samples, noise_variance σ² (the
    GP noise = ridge; = T for L = ½Σ(f−y)²). The κ equation uses ridge σ² + tail_trace (the
    unlisted spectrum treated as noise, Howard, Maiti, Jefferson & Ringel 2024); pass tail_trace=spectrum.tail_trace.
    Each c_k² is the power of the target's degree-k part: at leading order in 1/d it lies in the
    degree-k harmonic sector (module docstring). Errors are those of the posterior mean.
    """
    target = np.asarray(target_hermite_coefficients, dtype=np.float64)
    eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
    if target.shape != eigenvalues.shape or target.ndim != 1:
        raise ValueError(f"target_hermite_coefficients must be 1-D with the shape of eigenvalues "
                         f"{eigenvalues.shape}, got {target.shape}")
    tail_trace = float(tail_trace)
    if not math.isfinite(tail_trace) or tail_trace < 0:
        raise ValueError(f"tail_trace must be finite and non-negative, got {tail_trace!r}")
    ek = ek_learnability(eigenvalues, noise_variance, n)
    kappa = solve_kappa(eigenvalues, n, float(noise_variance) + tail_trace, multiplicities)
    test_mse = predicted_test_mse(kappa, target, noise_variance_labels, include_label_noise=False)
    ek_test_mse = float(np.sum((1.0 - ek) ** 2 * target**2))
    return SingleIndexLearnability(ek, kappa.learnabilities, kappa, test_mse, ek_test_mse)
