"""Tests of theory.single_index_spectrum: exact cases, large-d limit, Monte Carlo matrix elements."""
from __future__ import annotations

import math

import numpy as np
import pytest

from theory import kernels
from theory import single_index_spectrum as sis
from theory.hermite import normalized_hermite
from theory.learning_curves import ek_learnability, solve_kappa


def test_erf_linear_mode_large_d_form():
    for sigma_w2, sigma_a2, d in [(1.0, 1.0, 10), (0.5, 8 / 700, 150), (2.0, 3.0, 64)]:
        expected = 4 * sigma_a2 * sigma_w2 / (math.pi * d * (1 + 2 * sigma_w2))
        assert sis.large_d_eigenvalue("erf", 1, d, sigma_w2, sigma_a2) == pytest.approx(expected, rel=1e-14)


def test_exact_in_d_approaches_large_d_at_rate_one_over_d():
    # λ_k(d)/λ_k^{large d} − 1 = O(1/d): d × (ratio − 1) settles to a constant
    for activation, k in [("erf", 1), ("erf", 3), ("relu", 2), ("tanh", 1)]:
        scaled = []
        for d in (1000, 4000, 16000):
            ratio = sis.harmonic_eigenvalue(activation, k, d, 1.0, 1.0) / sis.large_d_eigenvalue(activation, k, d, 1.0, 1.0)
            scaled.append(d * (ratio - 1))
        assert abs(scaled[2] - scaled[1]) < 0.01 * abs(scaled[1]) + 1e-6
        assert abs(scaled[1]) < 100


def test_polynomial_activations_are_exact():
    d, sigma_w2, sigma_a2 = 7, 2.0, 1.5
    assert sis.harmonic_eigenvalue("linear", 1, d, sigma_w2, sigma_a2) == pytest.approx(sigma_a2 * sigma_w2 / d, rel=1e-13)
    # quadratic: exact degree-2 harmonic eigenvalue 4σ_a²σ_w⁴/d², Hermite quotient 6σ_a²σ_w⁴/d²
    assert sis.harmonic_eigenvalue("quadratic", 2, d, sigma_w2, sigma_a2) == pytest.approx(
        4 * sigma_a2 * sigma_w2**2 / d**2, rel=1e-13)
    assert sis.hermite_rayleigh_quotient("quadratic", 2, d, sigma_w2, sigma_a2) == pytest.approx(
        6 * sigma_a2 * sigma_w2**2 / d**2, rel=1e-13)
    spectrum = sis.single_index_spectrum("linear", 3, d, sigma_w2, sigma_a2)
    assert spectrum.trace == pytest.approx(sigma_a2 * sigma_w2, rel=1e-13)
    assert abs(spectrum.tail_trace) < 1e-13  # the d linear modes carry the whole trace


def test_odd_activation_has_no_even_modes():
    spectrum = sis.single_index_spectrum("erf", 4, 10, 1.0, 1.0)
    assert np.all(spectrum.eigenvalues[::2] == 0.0)
    assert np.all(spectrum.eigenvalues[1::2] > 0.0)


@pytest.mark.parametrize("activation", ["erf", "relu", "tanh", "step"])
def test_spectrum_bookkeeping(activation):
    d = 12
    spectrum = sis.single_index_spectrum(activation, 4, d, 0.8, 1.3)
    assert spectrum.tail_trace >= -1e-12 * spectrum.trace
    np.testing.assert_allclose(spectrum.multiplicities, [1, d, d * (d + 1) / 2 - 1,
                                                         math.comb(d + 2, 3) - d, math.comb(d + 3, 4) - math.comb(d + 1, 2)])
    ratios = np.array([1, 1, 1.5, 2.5, 35 / 8])  # (2k−1)!!/k!
    np.testing.assert_allclose(spectrum.hermite_rayleigh_quotients, ratios * spectrum.eigenvalues, rtol=1e-14)


def test_harmonic_multiplicity_small_cases():
    assert [sis.harmonic_multiplicity(3, k) for k in range(5)] == [1, 3, 5, 7, 9]
    assert [sis.harmonic_multiplicity(2, k) for k in range(4)] == [1, 2, 2, 2]
    assert sis.harmonic_multiplicity(1, 2) == 0.0


def test_trace_against_monte_carlo():
    rng = np.random.default_rng(21)
    d, sigma_w2, sigma_a2 = 5, 1.2, 0.7
    x = rng.normal(size=(400_000, d))
    samples = kernels.two_layer_diag(x, "erf", sigma_a2, sigma_w2=sigma_w2)
    mcse = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(samples.mean() - sis.kernel_trace("erf", d, sigma_w2, sigma_a2)) < 4 * mcse


def _pair_kernel(activation, x, y, sigma_w2, sigma_a2):
    d = x.shape[1]
    cxx = sigma_w2 * np.einsum("ij,ij->i", x, x) / d
    cyy = sigma_w2 * np.einsum("ij,ij->i", y, y) / d
    cxy = sigma_w2 * np.einsum("ij,ij->i", x, y) / d
    return sigma_a2 * kernels.activation_kernel(activation, cxx, cxy, cyy)


def _zonal_harmonic(k, x):
    """Z_k(x) for w* = e_1 (harmonic, degree k) and E[Z_k²] under N(0, I_d), k = 1, 2, 3."""
    d = x.shape[1]
    z, perp = x[:, 0], np.einsum("ij,ij->i", x[:, 1:], x[:, 1:])
    if k == 1:
        return z, 1.0
    if k == 2:
        return z**2 - perp / (d - 1), 2 + 2 / (d - 1)
    return z**3 - 3 * z * perp / (d - 1), -3 + 9 * (d + 1) / (d - 1)


@pytest.mark.parametrize("activation, k, d, pairs", [
    ("erf", 1, 4, 400_000), ("erf", 3, 2, 1_000_000), ("relu", 1, 4, 400_000), ("relu", 2, 4, 400_000),
    ("relu", 3, 2, 400_000), ("step", 1, 3, 400_000), ("tanh", 1, 4, 20_000),  # tanh: quadrature kernel, slower
])
def test_matrix_elements_against_monte_carlo(activation, k, d, pairs):
    """⟨Ĥe_k(w*·x), K Ĥe_k(w*·x)⟩ and ⟨Z_k, K Z_k⟩/⟨Z_k, Z_k⟩ over independent pairs (x, y).

    K(x, y) is the closed-form NNGP kernel (the w-average done exactly), so each pair gives an
    unbiased sample f(x) K(x, y) f(y); tolerance 4 × the Monte Carlo standard error. k = 3 uses
    d = 2, where λ_3 ∝ d^{-3} is large enough to be resolved by the sample.
    """
    rng = np.random.default_rng(100 + 10 * k + len(activation))
    sigma_w2, sigma_a2 = 1.3, 2.0
    x, y = rng.normal(size=(pairs, d)), rng.normal(size=(pairs, d))
    K = _pair_kernel(activation, x, y, sigma_w2, sigma_a2)

    samples = normalized_hermite(k, x[:, 0]) * K * normalized_hermite(k, y[:, 0])
    mcse = samples.std(ddof=1) / math.sqrt(pairs)
    quotient = sis.hermite_rayleigh_quotient(activation, k, d, sigma_w2, sigma_a2)
    assert abs(samples.mean() - quotient) < 4 * mcse, (samples.mean(), quotient, mcse)
    assert quotient == 0.0 or quotient > 6 * mcse  # the check resolves the value

    zx, norm = _zonal_harmonic(k, x)
    zy, _ = _zonal_harmonic(k, y)
    samples = zx * K * zy / norm
    mcse = samples.std(ddof=1) / math.sqrt(pairs)
    eigenvalue = sis.harmonic_eigenvalue(activation, k, d, sigma_w2, sigma_a2)
    assert abs(samples.mean() - eigenvalue) < 4 * mcse, (samples.mean(), eigenvalue, mcse)


def test_predicted_learnabilities():
    d, n, noise_variance = 20, 400, 0.05
    spectrum = sis.single_index_spectrum("erf", 5, d, 1.0, 1.0)
    target = np.array([0.0, 1.0, 0.0, 0.3, 0.0, 0.0])  # Ĥe_1 + 0.3 Ĥe_3
    result = sis.predicted_learnabilities(target, spectrum.eigenvalues, spectrum.multiplicities, n,
                                          noise_variance, tail_trace=spectrum.tail_trace)
    np.testing.assert_allclose(result.ek, ek_learnability(spectrum.eigenvalues, noise_variance, n))
    direct = solve_kappa(spectrum.eigenvalues, n, noise_variance + spectrum.tail_trace, spectrum.multiplicities)
    assert result.kappa.converged and result.kappa.kappa_simon == direct.kappa_simon
    np.testing.assert_allclose(result.self_consistent, direct.learnabilities)
    # the self-consistent κ ≥ σ²/n: finite-n learnabilities never exceed the EK ones
    assert np.all(result.self_consistent <= result.ek + 1e-15)
    assert result.self_consistent[1] > result.self_consistent[3]  # linear part learned first
    assert result.test_mse == pytest.approx(
        result.kappa.e0 * np.sum((1 - result.self_consistent) ** 2 * target**2), rel=1e-12)
    assert result.ek_test_mse == pytest.approx(np.sum((1 - result.ek) ** 2 * target**2), rel=1e-12)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="input_dim"):
        sis.harmonic_eigenvalue("erf", 1, 0, 1.0, 1.0)
    with pytest.raises(ValueError, match="degree"):
        sis.harmonic_eigenvalue("erf", -1, 5, 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma_w2"):
        sis.large_d_eigenvalue("erf", 1, 5, -1.0, 1.0)
    with pytest.raises(ValueError, match="activation"):
        sis.harmonic_eigenvalue("softplus", 1, 5, 1.0, 1.0)
    with pytest.raises(ValueError, match="target_hermite_coefficients"):
        sis.predicted_learnabilities([1.0], [0.1, 0.2], [1, 2], 10, 0.1)
    with pytest.raises(ValueError, match="tail_trace"):
        sis.predicted_learnabilities([1.0, 0.0], [0.1, 0.2], [1, 2], 10, 0.1, tail_trace=-1.0)
    with pytest.raises(ValueError, match="noise_variance"):
        sis.predicted_learnabilities([1.0, 0.0], [0.1, 0.2], [1, 2], 10, -0.1)
