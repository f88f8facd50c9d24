"""Tests of theory.gaussian_process: exact formulas, limits, R9 (GP vs equivalent kernel), errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from theory import gaussian_process as gp
from theory import kernels
from theory.learning_curves import ek_learnability, ek_mode_variance


def _erf_problem(n=12, n_test=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(n_test, d))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
    K = kernels.two_layer_gram(X, None, "erf", 1.0, sigma_w2=1.0)
    K_test_train = kernels.two_layer_gram(X_test, X, "erf", 1.0, sigma_w2=1.0)
    K_test = kernels.two_layer_gram(X_test, None, "erf", 1.0, sigma_w2=1.0)
    return K, K_test_train, K_test, y


def test_posterior_matches_dense_formulas():
    K, K_test_train, K_test, y = _erf_problem()
    noise_variance = 0.05
    post = gp.gp_posterior(K, K_test_train, np.diag(K_test), y, noise_variance)
    A = K + noise_variance * np.eye(len(y))
    np.testing.assert_allclose(post.discrepancy, np.linalg.solve(A, y), rtol=1e-10)
    np.testing.assert_allclose(post.mean, K_test_train @ np.linalg.solve(A, y), rtol=1e-10)
    variance = np.diag(K_test) - np.einsum("ij,ji->i", K_test_train, np.linalg.solve(A, K_test_train.T))
    np.testing.assert_allclose(post.variance, variance, rtol=1e-9)
    expected_lml = stats.multivariate_normal(mean=np.zeros(len(y)), cov=A).logpdf(y)
    assert abs(post.log_marginal_likelihood - expected_lml) < 1e-9 * abs(expected_lml)
    true_condition = np.linalg.cond(A, 1)
    assert true_condition / 3 <= post.condition_number <= true_condition * (1 + 1e-8)


def test_train_set_identity_and_full_covariance():
    K, K_test_train, K_test, y = _erf_problem(seed=1)
    noise_variance = 0.2
    at_train = gp.gp_posterior(K, K, np.diag(K), y, noise_variance)
    np.testing.assert_allclose(y - at_train.mean, noise_variance * at_train.discrepancy, rtol=1e-10, atol=1e-13)
    covariance = gp.gp_posterior_covariance(K, K_test_train, K_test, noise_variance)
    post = gp.gp_posterior(K, K_test_train, np.diag(K_test), y, noise_variance)
    assert np.array_equal(covariance, covariance.T)
    np.testing.assert_allclose(np.diag(covariance), post.variance, rtol=1e-12)
    assert np.linalg.eigvalsh(covariance).min() >= -1e-10 * np.abs(covariance).max()


def test_infinite_noise_returns_the_prior():
    K, K_test_train, K_test, y = _erf_problem(seed=2)
    post = gp.gp_posterior(K, K_test_train, np.diag(K_test), y, 1e14)
    assert np.abs(post.mean).max() < 1e-12
    np.testing.assert_allclose(post.variance, np.diag(K_test), rtol=1e-12)


def test_zero_noise_interpolates_training_labels():
    K, _, _, y = _erf_problem(seed=3)
    post = gp.gp_posterior(K, K, np.diag(K), y, 0.0)
    # backward-stable solve: error ≲ cond · eps · |y| (with a factor 100 for the constants)
    tolerance = 100 * post.condition_number * np.finfo(float).eps * np.abs(y).max()
    assert tolerance < 1e-4  # the test is meaningful for this well-separated design
    np.testing.assert_allclose(post.mean, y, atol=tolerance)
    assert np.abs(post.variance).max() < tolerance * np.abs(K).max()


def _cosine_problem(eigenvalues, x_train):
    """Finite-rank kernel on the circle (data measure uniform on [0, 2π)).

    Orthonormal eigenfunctions φ_0 = 1, φ_{2j−1} = √2 cos(jx), φ_{2j} = √2 sin(jx) (j = 1..J)
    with eigenvalues (λ_0, λ_1, λ_1, λ_2, λ_2, ...): K(x, y) = λ_0 + Σ_j 2λ_j cos(j(x − y)).
    Returns the feature map and the Gram function.
    """
    J = len(eigenvalues) - 1
    spectrum = np.concatenate([[eigenvalues[0]], np.repeat(eigenvalues[1:], 2)])

    def features(x):
        j = np.arange(1, J + 1)
        cos, sin = math.sqrt(2) * np.cos(np.outer(x, j)), math.sqrt(2) * np.sin(np.outer(x, j))
        return np.column_stack([np.ones_like(x)] + [c for pair in zip(cos.T, sin.T) for c in pair])

    def gram(x1, x2):
        return (features(x1) * spectrum) @ features(x2).T

    return features, gram, spectrum


def _project_on_first_cosine(values_on_grid, grid):
    # ⟨g, φ_1⟩_μ, exact for trigonometric polynomials of degree < len(grid) - 1
    return np.mean(values_on_grid * math.sqrt(2) * np.cos(grid), axis=-1)


def test_r9_grid_design_is_exactly_the_equivalent_kernel():
    """On an equispaced grid the Gram is diagonal in Fourier modes: EK is exact."""
    eigenvalues = np.array([1.0, 0.5, 0.2, 0.05, 0.01])
    n, noise_variance = 64, 0.3
    x = 2 * math.pi * np.arange(n) / n
    grid = 2 * math.pi * np.arange(32) / 32
    features, gram, _ = _cosine_problem(eigenvalues, x)
    y = math.sqrt(2) * np.cos(x)  # the single eigenfunction φ_1, eigenvalue λ_1
    post = gp.gp_posterior(gram(x, x), gram(grid, x), np.diag(gram(grid, grid)), y, noise_variance)
    covariance = gp.gp_posterior_covariance(gram(x, x), gram(grid, x), gram(grid, grid), noise_variance)
    phi1 = math.sqrt(2) * np.cos(grid)
    projected_variance = phi1 @ covariance @ phi1 / len(grid) ** 2
    lam = eigenvalues[1]
    assert abs(_project_on_first_cosine(post.mean, grid) - ek_learnability(lam, noise_variance, n)) < 1e-12
    assert abs(projected_variance - ek_mode_variance(lam, noise_variance, n)) < 1e-12


def test_r9_random_design_approaches_the_equivalent_kernel():
    """R9 at large n on i.i.d. data, with a tolerance derived from the data-fluctuation expansion.

    With features Φ (n, M), G = ΦᵀΦ/n = I + E and A = I + (σ²/n)Λ⁻¹ (A⁻¹ = diag L, the EK
    learnabilities), the posterior-mean coefficients of the target φ_1 are c = (A+E)⁻¹(I+E)e_1, so
    exactly  c_1 = 1 − (1−L_1)[(I+B)⁻¹]_11 with B = A⁻¹E, i.e.
        c_1 − L_1 = (1−L_1) L_1 E_11 + r,   |r| ≤ (1−L_1)‖E‖²/(1−‖E‖).
    E_11 = mean(φ_1²) − 1 has standard deviation √(Var φ_1²/n) = √(1/(2n)) (φ_1² = 1 + cos 2x).
    Likewise the posterior variance of c_1 is (σ²/n)L_1 (1 − L_1E_11 + r'), |r'| ≤ ‖E‖²/(1−‖E‖),
    and (σ²/n)L_1 is the EK variance. Tolerance: 4 × the first-order standard deviation plus the
    remainder bound evaluated on the drawn data.
    """
    rng = np.random.default_rng(12)
    n, noise_variance = 2000, 0.5
    eigenvalues = np.array([0.3, noise_variance / n, 0.2 * noise_variance / n, 1e-5])  # L_1 = 1/2
    x = rng.uniform(0, 2 * math.pi, size=n)
    grid = 2 * math.pi * np.arange(16) / 16
    features, gram, spectrum = _cosine_problem(eigenvalues, x)
    Phi = features(x)
    E_norm = np.linalg.norm(Phi.T @ Phi / n - np.eye(Phi.shape[1]), 2)
    assert E_norm < 0.5
    remainder = E_norm**2 / (1 - E_norm)
    y = math.sqrt(2) * np.cos(x)
    K = gram(x, x)
    post = gp.gp_posterior(K, gram(grid, x), np.diag(gram(grid, grid)), y, noise_variance)
    covariance = gp.gp_posterior_covariance(K, gram(grid, x), gram(grid, grid), noise_variance)
    phi1 = math.sqrt(2) * np.cos(grid)
    L1 = ek_learnability(eigenvalues[1], noise_variance, n)
    first_order_std = math.sqrt(0.5 / n)
    learned = _project_on_first_cosine(post.mean, grid)
    assert abs(learned - L1) < 4 * L1 * (1 - L1) * first_order_std + (1 - L1) * remainder
    variance = phi1 @ covariance @ phi1 / len(grid) ** 2
    ek_variance = ek_mode_variance(eigenvalues[1], noise_variance, n)
    assert abs(variance / ek_variance - 1) < 4 * L1 * first_order_std + remainder
    # the tolerance is meaningful: it is far smaller than the learnability itself
    assert 4 * L1 * (1 - L1) * first_order_std + (1 - L1) * remainder < 0.05


def test_errors_name_the_argument():
    K, K_test_train, K_test, y = _erf_problem(seed=4)
    k_diag = np.diag(K_test)
    with pytest.raises(ValueError, match="noise_variance"):
        gp.gp_posterior(K, K_test_train, k_diag, y, -1.0)
    with pytest.raises(ValueError, match="noise_variance"):
        gp.gp_posterior(K - 2 * np.eye(len(y)) * np.abs(K).max(), K_test_train, k_diag, y, 0.0)
    with pytest.raises(ValueError, match="K_test_train"):
        gp.gp_posterior(K, K_test_train[:, :-1], k_diag, y, 0.1)
    with pytest.raises(ValueError, match="y"):
        gp.gp_posterior(K, K_test_train, k_diag, y[:-1], 0.1)
    with pytest.raises(ValueError, match="K_test_diag"):
        gp.gp_posterior(K, K_test_train, K_test, y, 0.1)
    with pytest.raises(ValueError, match="K_train"):
        gp.gp_posterior(K + np.triu(np.ones_like(K), 1), K_test_train, k_diag, y, 0.1)
    with pytest.raises(ValueError, match="K_test"):
        gp.gp_posterior_covariance(K, K_test_train, k_diag, 0.1)
