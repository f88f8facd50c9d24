"""The finite-data population projections of `experiments.compare.staircase_finite_data` against independent
computations: a Monte Carlo over x with the exact erf kernel, a one-dimensional quadrature where Σ is rank one, and
the P → ∞ limit of the finite-data GP."""
import math

import numpy as np
import pytest
from scipy.special import erf

from experiments.compare import staircase_finite_data as sfd
from theory import staircase
from theory.hermite import gauss_hermite_normal, hermite_he
from theory.kernels import two_layer_gram


def _problem(d=3, n=5, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal(d)
    teacher /= np.linalg.norm(teacher)
    z = X @ teacher
    alpha = hermite_he(1, z) + hermite_he(3, z) + 0.3 * rng.standard_normal(n)  # a He_1 + He_3-like f̄
    return X, alpha, teacher, rng


def test_projection_equals_a_monte_carlo_over_x_with_the_exact_kernel():
    """E_x[f̄ He_k(z*)] for a general anisotropic Σ: the Monte Carlo over w (the observable's Stein formula) against a
    Monte Carlo over x of f̄(x) = σ_a² K_Σ(x, X) α with the closed-form arcsine kernel; the two estimates are
    independent, so |difference| < 4 √(se_w² + se_x²)."""
    X, alpha, teacher, rng = _problem()
    A = rng.standard_normal((3, 3))
    covariance = 0.3 * A @ A.T / 3 + 0.05 * np.eye(3) + 0.8 * np.outer(teacher, teacher)
    readout_variance = 0.7
    got = sfd.population_hermite_projections(covariance, X, alpha, readout_variance, teacher,
                                             draws_per_batch=20000, num_batches=8, seed=1)
    batches = []
    for _ in range(10):
        x = rng.standard_normal((20000, 3))
        f = two_layer_gram(x, X, "erf", readout_variance, Sigma=covariance) @ alpha
        z = x @ teacher
        batches.append([np.mean(f * hermite_he(1, z)), np.mean(f * hermite_he(3, z))])
    batches = np.array(batches)
    expected, se_x = batches.mean(axis=0), batches.std(axis=0, ddof=1) / math.sqrt(len(batches))
    tolerance = 4 * np.hypot(got["se"], se_x)
    assert np.all(np.abs(got["mean"]) > 10 * tolerance)  # the check resolves the projections
    np.testing.assert_array_less(np.abs(got["mean"] - expected), tolerance)


def test_projection_for_a_rank_one_covariance_equals_a_one_dimensional_quadrature():
    """Σ = b w*w*ᵀ (no variance ⊥ w*): w = s w*, s ~ N(0, b), q = s, |w|² = s², so
    E_x[f̄ He_3] = σ_a² Σ_μ α_μ E_s[erf(s z_μ) s³ (−4)/(√π (1 + 2s²)^{3/2})] (z_μ = w*·x_μ), a one-dimensional
    Gauss–Hermite quadrature (order 200: the integrand is smooth, the rule converged to 1e-12); the Monte Carlo over
    w must match within 4 se."""
    X, alpha, teacher, _ = _problem(d=4, n=6, seed=7)
    b, readout_variance = 0.6, 1.3
    rule = gauss_hermite_normal(200)
    s = math.sqrt(b) * rule.nodes
    g = 1.0 + 2.0 * s ** 2
    z = X @ teacher
    features = erf(np.outer(s, z)) @ alpha                                        # Σ_μ α_μ erf(s z_μ)
    he1 = readout_variance * rule.weights @ (features * s * 2.0 / (math.sqrt(math.pi) * np.sqrt(g)))
    he3 = readout_variance * rule.weights @ (features * s ** 3 * (-4.0) / (math.sqrt(math.pi) * g ** 1.5))
    got = sfd.population_hermite_projections(b * np.outer(teacher, teacher), X, alpha, readout_variance, teacher,
                                             draws_per_batch=20000, num_batches=8, seed=2)
    assert np.all(np.abs([he1, he3]) > 10 * 4 * got["se"])
    np.testing.assert_array_less(np.abs(got["mean"] - [he1, he3]), 4 * got["se"])


def test_bad_inputs_are_refused():
    X, alpha, teacher, _ = _problem()
    with pytest.raises(ValueError, match="unit norm"):
        sfd.population_hermite_projections(np.eye(3), X, alpha, 1.0, 2 * teacher)
    with pytest.raises(ValueError, match="positive semi-definite"):
        sfd.population_hermite_projections(-np.eye(3), X, alpha, 1.0, teacher)
    with pytest.raises(ValueError, match="num_batches"):
        sfd.population_hermite_projections(np.eye(3), X, alpha, 1.0, teacher, num_batches=1)


def _gp_l3(P, seed, d, epsilon, ridge_per_sample, draws):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, d))
    teacher = np.eye(d)[0]
    z = X @ teacher
    covariance = np.eye(d) / d
    alpha = sfd.gp_dual_coefficients(X, z + epsilon * z ** 3, covariance, 1.0, ridge_per_sample * P)
    out = sfd.population_learnabilities(covariance, X, alpha, 1.0, teacher, epsilon, draws_per_batch=draws,
                                        num_batches=8, seed=seed)
    return out["L3"], out["L3_se"]


def test_finite_data_gp_converges_as_P_grows_at_a_ridge_proportional_to_P():
    """Kernel ridge regression with ridge σ² = κ₀P converges as P → ∞ to the population operator
    T(T + κ₀)⁻¹ y (law of large numbers), so the finite-data GP's population L_3 has a P-independent limit, which
    is the population GP. At d = 3, κ₀ = λ_3 (the harmonic eigenvalue, L_3 ≈ 1/2): the mean over 10 training sets
    at P = 200 against the mean over 3 at P = 800, within 4 standard errors of the difference (each from its own
    spread over training sets, which contains the Monte Carlo over w) plus the self-consistent theory's own
    finite-P shift between the two P (`theory.staircase.gp_cubic_learnability` at σ² = κ₀P: κ_S − κ₀ = O(1/P), the
    size of the O(1/P) bias of a finite training set).

    Not asserted: agreement with `theory.staircase`'s value itself. Its spectrum is leading-order in 1/d
    (`theory.single_index_spectrum`: He_3(z*) has norm² fraction 3/(d + 2) outside the degree-3 harmonic sector);
    here the finite-data limit is ≈ 0.60 where the theory says 0.50 (measured at P = 100-1600, 4 training sets)."""
    from theory.single_index_spectrum import single_index_spectrum

    d, epsilon = 3, -0.1
    kappa = single_index_spectrum("erf", 5, d, 1.0, 1.0).eigenvalues[3]
    small = np.array([_gp_l3(200, seed, d, epsilon, kappa, 2000)[0] for seed in range(10)])
    large = np.array([_gp_l3(800, 50 + seed, d, epsilon, kappa, 2000)[0] for seed in range(3)])
    se = math.hypot(small.std(ddof=1) / math.sqrt(small.size), large.std(ddof=1) / math.sqrt(large.size))
    theory_shift = abs(staircase.gp_cubic_learnability(200, d, epsilon=epsilon, noise_variance=kappa * 200)
                       - staircase.gp_cubic_learnability(800, d, epsilon=epsilon, noise_variance=kappa * 800))
    tolerance = 4 * se + theory_shift
    assert tolerance < 0.12  # resolves the limit to ±0.12 (the spread over training sets dominates)
    assert abs(small.mean() - large.mean()) < tolerance
