"""Tests of theory.kernels: exact values (R1), Monte Carlo finite networks, quadrature, invariants."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from theory import kernels
from theory.hermite import ACTIVATION_FUNCTIONS

# ---------------------------------------------------------------- exact values (Williams 1997; Cho & Saul 2009)


@pytest.mark.parametrize("sigma_w2, expected", [(0.5, 0.333333333333), (1.0, 0.464559054398),
                                                (2.0, 0.590334470602)])
def test_r1_erf_diagonal(sigma_w2, expected):
    d = 7
    x = np.ones((1, d))  # |x|² = d
    K = kernels.two_layer_gram(x, None, "erf", sigma_a2=1.0, sigma_w2=sigma_w2)
    assert abs(K[0, 0] - expected) < 1e-10
    assert abs(kernels.two_layer_diag(x, "erf", 1.0, sigma_w2=sigma_w2)[0] - expected) < 1e-10
    # closed form (2/π) arcsin(2s²/(1+2s²))
    assert abs(K[0, 0] - 2 / math.pi * math.asin(2 * sigma_w2 / (1 + 2 * sigma_w2))) < 1e-14


def test_r1_erf_general_sigma():
    Sigma = np.diag([0.5, 1.0, 2.0])
    x = np.array([[1.0, 0.5, -1.0]])
    y = np.array([[0.2, -1.0, 0.7]])
    K = kernels.two_layer_gram(np.vstack([x, y]), None, "erf", 1.0, Sigma=Sigma)
    assert abs(K[0, 1] - (-0.435105888128)) < 1e-10
    assert abs(K[0, 0] - 0.642175249956) < 1e-10
    assert abs(K[1, 1] - 0.590334470602) < 1e-10
    assert abs(kernels.two_layer_gram(x, y, "erf", 1.0, Sigma=Sigma)[0, 0] - (-0.435105888128)) < 1e-10


def test_r1_relu_values():
    assert abs(kernels.activation_kernel("relu", 1.0, 0.5, 2.0) - 0.364298881694) < 1e-10
    assert abs(kernels.activation_kernel("relu", 1.0, 1.0, 1.0) - 0.5) < 1e-12
    assert abs(kernels.activation_kernel("relu", 1.0, 0.0, 1.0) - 1 / (2 * math.pi)) < 1e-12
    c = np.array([0.3, 1.0, 4.0])
    np.testing.assert_allclose(kernels.activation_kernel("relu", c, c, c), c / 2, rtol=1e-14)


def _unit_pair():
    """Two points in d = 2 with x·x/d = y·y/d = 1 and x·y/d = 0.5."""
    return np.array([[math.sqrt(2.0), 0.0], [math.sqrt(2.0) * 0.5, math.sqrt(2.0) * math.sqrt(0.75)]])


@pytest.mark.parametrize("hidden_layers, kxx, kxy", [
    (1, 0.464559054398, 0.216346895939),
    (2, 0.319909009681, 0.144016594914),
    (3, 0.255171840475, 0.112405070003),
])
def test_r1_deep_erf(hidden_layers, kxx, kxy):
    X = _unit_pair()
    K = kernels.deep_fc_gram(X, None, "erf", [1.0] * (hidden_layers + 1))
    assert abs(K[0, 0] - kxx) < 1e-10 and abs(K[1, 1] - kxx) < 1e-10
    assert abs(K[0, 1] - kxy) < 1e-10
    np.testing.assert_allclose(kernels.deep_fc_diag(X, "erf", [1.0] * (hidden_layers + 1)), kxx,
                               atol=1e-10)


def test_closed_forms_of_simple_activations():
    cxx, cxy, cyy = 1.3, -0.4, 0.7
    assert kernels.activation_kernel("linear", cxx, cxy, cyy) == cxy
    assert abs(kernels.activation_kernel("quadratic", cxx, cxy, cyy) - (cxx * cyy + 2 * cxy**2)) < 1e-15
    rho = cxy / math.sqrt(cxx * cyy)
    assert abs(kernels.activation_kernel("step", cxx, cxy, cyy) - (math.pi - math.acos(rho)) / (2 * math.pi)) < 1e-15
    # Θ(0) = 1/2 convention where a variance vanishes
    assert kernels.activation_kernel("step", 0.0, 0.0, 1.0) == 0.25
    assert kernels.activation_kernel("relu", 0.0, 0.0, 1.0) == 0.0


def test_deep_one_hidden_layer_equals_two_layer_with_bias():
    rng = np.random.default_rng(0)
    X1, X2 = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    for activation in ("erf", "relu", "quadratic", "step"):
        deep = kernels.deep_fc_gram(X1, X2, activation, [1.7, 0.6], bias_variance=0.3)
        shallow = kernels.two_layer_gram(X1, X2, activation, 0.6, sigma_w2=1.7, bias_variance=0.3)
        np.testing.assert_allclose(deep, shallow, rtol=1e-13, atol=1e-15)


def test_deep_linear_is_product_of_variances():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 3))
    variances = [2.0, 0.5, 3.0, 0.7]
    K = kernels.deep_fc_gram(X, None, "linear", variances)
    np.testing.assert_allclose(K, np.prod(variances) * X @ X.T / 3, rtol=1e-13)


# ---------------------------------------------------------------- Monte Carlo finite networks


def _mc_two_layer(X, activation, sigma_a2, Sigma, bias_variance, num_networks, width, seed):
    """Empirical prior covariance E[f(x)f(y)] over finite networks f = Σ_c a_c φ(w_c·x + b_c).

    a_c ~ N(0, σ_a²/width), w_c ~ N(0, Σ), b_c ~ N(0, σ_b²). Returns (mean, standard error) of
    the products f(x_i) f(x_j) over independent networks.
    """
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    chol = np.linalg.cholesky(Sigma)
    w = rng.normal(size=(num_networks, width, d)) @ chol.T
    b = math.sqrt(bias_variance) * rng.normal(size=(num_networks, width, 1))
    a = math.sqrt(sigma_a2 / width) * rng.normal(size=(num_networks, width))
    phi = ACTIVATION_FUNCTIONS[activation]
    features = phi(w @ X.T + b)  # (M, N, n)
    f = np.einsum("mc,mcn->mn", a, features)
    products = f[:, :, None] * f[:, None, :]
    return products.mean(axis=0), products.std(axis=0, ddof=1) / math.sqrt(num_networks)


@pytest.mark.parametrize("activation", list(kernels.KERNEL_ACTIVATIONS))
def test_two_layer_gram_matches_finite_network_monte_carlo(activation):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(4, 3))
    A = rng.normal(size=(3, 3))
    Sigma = 0.4 * A @ A.T / 3 + 0.1 * np.eye(3)  # a full, non-diagonal weight covariance
    sigma_a2, bias_variance = 1.5, 0.2
    mean, stderr = _mc_two_layer(X, activation, sigma_a2, Sigma, bias_variance,
                                 num_networks=40_000, width=4, seed=3)
    K = kernels.two_layer_gram(X, None, activation, sigma_a2, Sigma=Sigma, bias_variance=bias_variance)
    assert np.all(np.abs(mean - K) < 4 * stderr), (np.abs(mean - K) / stderr).max()


def test_isotropic_sigma_w2_equals_explicit_sigma():
    rng = np.random.default_rng(4)
    X1, X2 = rng.normal(size=(5, 6)), rng.normal(size=(3, 6))
    a = kernels.two_layer_gram(X1, X2, "relu", 2.0, sigma_w2=1.3)
    b = kernels.two_layer_gram(X1, X2, "relu", 2.0, Sigma=1.3 / 6 * np.eye(6))
    np.testing.assert_allclose(a, b, rtol=1e-14)


# ---------------------------------------------------------------- quadrature vs closed forms


def test_gauss_hermite_kernel_matches_erf_closed_form():
    c = np.array([0.1, 0.5, 1.0, 2.0])
    rho = np.array([-0.9, 0.0, 0.6, 0.999])
    cxx, cyy = c[:, None], c[::-1][:, None]
    cxy = rho[None, :] * np.sqrt(cxx * cyy)
    closed = kernels.activation_kernel("erf", cxx, cxy, cyy)
    quadrature = kernels.gauss_hermite_kernel(ACTIVATION_FUNCTIONS["erf"], cxx, cxy, cyy)
    np.testing.assert_allclose(quadrature, closed, atol=1e-10)  # geometric convergence, order 64


def test_gauss_hermite_kernel_relu_converges_to_closed_form():
    # The relu kink makes tensor Gauss–Hermite converge only algebraically (about 1/order), so
    # the check is convergence, with the error at order 512 below 1e-3 relative.
    c = np.array([0.5, 1.0, 3.0])
    cxy = 0.3 * c
    closed = kernels.activation_kernel("relu", c, cxy, c)
    errors = [np.abs(kernels.gauss_hermite_kernel(ACTIVATION_FUNCTIONS["relu"], c, cxy, c, order=o)
                     / closed - 1).max() for o in (32, 128, 512)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3


def test_gauss_hermite_kernel_exact_for_quadratic_and_degenerate_covariance():
    c = np.array([0.0, 0.7, 2.0])
    cxy = np.array([0.0, 0.7, -1.0])  # includes ρ = 1 and a zero variance
    cyy = np.array([1.0, 0.7, 0.5])
    np.testing.assert_allclose(kernels.gauss_hermite_kernel(np.square, c, cxy, cyy, order=8),
                               kernels.activation_kernel("quadratic", c, cxy, cyy), rtol=1e-13, atol=1e-14)


def test_tanh_kernel_against_high_order_quadrature():
    c = np.array([0.25, 0.5, 1.0])
    reference = kernels.gauss_hermite_kernel(np.tanh, c, 0.7 * c, c, order=200)
    np.testing.assert_allclose(kernels.activation_kernel("tanh", c, 0.7 * c, c), reference, atol=1e-9)


@pytest.mark.parametrize("activation, expected", [
    ("erf", lambda c: 0.0 * c), ("linear", lambda c: 0.0 * c), ("tanh", lambda c: 0.0 * c),
    ("relu", lambda c: np.sqrt(c / (2 * math.pi))), ("step", lambda c: 0.5 + 0.0 * c),
    ("quadratic", lambda c: c),
])
def test_activation_mean(activation, expected):
    c = np.array([0.3, 1.0, 2.5])
    np.testing.assert_allclose(kernels.activation_mean(activation, c), expected(c), atol=1e-14)


# ---------------------------------------------------------------- invariants


def _min_eig_ok(K):
    eigenvalues = np.linalg.eigvalsh(K)
    return eigenvalues.min() >= -1e-10 * eigenvalues.max()


@pytest.mark.parametrize("activation", list(kernels.KERNEL_ACTIVATIONS))
def test_grams_are_symmetric_and_psd(activation):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 5))
    X[1] = X[0]  # duplicated point: a singular Gram must still come out PSD
    grams = [
        kernels.two_layer_gram(X, None, activation, 1.0, sigma_w2=1.0),
        kernels.two_layer_gram(X, X, activation, 0.5, sigma_w2=2.0, bias_variance=0.1),
        kernels.deep_fc_gram(X, None, activation, [1.0, 1.5, 0.8], bias_variance=0.2),
    ]
    for K in grams:
        assert np.array_equal(K, K.T)
        assert _min_eig_ok(K)
    np.testing.assert_allclose(np.diag(grams[2]),
                               kernels.deep_fc_diag(X, activation, [1.0, 1.5, 0.8], bias_variance=0.2),
                               rtol=1e-12)


def test_gram_blocks_are_consistent():
    rng = np.random.default_rng(6)
    X_train, X_test = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    kernel_fn = functools.partial(kernels.two_layer_gram, activation="erf", sigma_a2=1.0, sigma_w2=1.0)
    diag_fn = functools.partial(kernels.two_layer_diag, activation="erf", sigma_a2=1.0, sigma_w2=1.0)
    blocks = kernels.gram_blocks(X_train, X_test, kernel_fn, diag_fn)
    full = kernel_fn(np.vstack([X_train, X_test]), None)
    np.testing.assert_allclose(blocks.train, full[:7, :7], rtol=1e-13)
    np.testing.assert_allclose(blocks.test_train, full[7:, :7], rtol=1e-13)
    np.testing.assert_allclose(blocks.test_diag, np.diag(full)[7:], rtol=1e-13)
    np.testing.assert_allclose(kernels.gram_blocks(X_train, X_test, kernel_fn).test_diag,
                               blocks.test_diag, rtol=1e-13)


def test_callable_activation_uses_quadrature():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5, 3))
    by_name = kernels.two_layer_gram(X, None, "erf", 1.0, sigma_w2=1.0)
    by_callable = kernels.two_layer_gram(X, None, ACTIVATION_FUNCTIONS["erf"], 1.0, sigma_w2=1.0)
    np.testing.assert_allclose(by_callable, by_name, atol=1e-10)


# ---------------------------------------------------------------- input validation


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="activation"):
        kernels.activation_kernel("softplus", 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="activation"):
        kernels.two_layer_gram(np.ones((2, 2)), None, "softplus", 1.0, sigma_w2=1.0)


def test_bad_covariances_are_named():
    with pytest.raises(ValueError, match="cxx"):
        kernels.activation_kernel("erf", -1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="cxy"):
        kernels.activation_kernel("relu", 1.0, 2.0, 1.0)


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match="X2"):
        kernels.two_layer_gram(np.ones((3, 2)), np.ones((3, 4)), "erf", 1.0, sigma_w2=1.0)
    with pytest.raises(ValueError, match="X1"):
        kernels.two_layer_gram(np.ones(3), None, "erf", 1.0, sigma_w2=1.0)
    with pytest.raises(ValueError, match="Sigma"):
        kernels.two_layer_gram(np.ones((3, 2)), None, "erf", 1.0, Sigma=np.eye(3))


def test_weight_covariance_arguments_are_exclusive():
    with pytest.raises(ValueError, match="sigma_w2"):
        kernels.two_layer_gram(np.ones((3, 2)), None, "erf", 1.0, sigma_w2=1.0, Sigma=np.eye(2))
    with pytest.raises(ValueError, match="sigma_w2"):
        kernels.two_layer_gram(np.ones((3, 2)), None, "erf", 1.0)
    with pytest.raises(ValueError, match="sigma_a2"):
        kernels.two_layer_gram(np.ones((3, 2)), None, "erf", -1.0, sigma_w2=1.0)
    with pytest.raises(ValueError, match="weight_variances"):
        kernels.deep_fc_gram(np.ones((3, 2)), None, "erf", [1.0])


def test_symmetric_relu_kernel_diagonal_against_its_closed_form():
    # E φ(u)² for the soft threshold at 1, u ~ N(0, c): 2[(c + 1) Q(t) − √c ϕ(t)], t = 1/√c
    # (∫_1^∞ (u − 1)² p(u) du per tail); the documented quadrature accuracy is 2e-3 relative
    from scipy import stats
    c = np.array([0.25, 1.0, 4.0])
    t = 1.0 / np.sqrt(c)
    exact = 2.0 * ((c + 1.0) * stats.norm.sf(t) - np.sqrt(c) * stats.norm.pdf(t))
    np.testing.assert_allclose(kernels.activation_kernel("symmetric_relu", c, c, c), exact,
                               rtol=2e-3)
    # odd activation: κ(c, −c_xy, c) = −κ(c, c_xy, c) and E φ(u) = 0
    np.testing.assert_allclose(kernels.activation_kernel("symmetric_relu", c, -0.5 * c, c),
                               -kernels.activation_kernel("symmetric_relu", c, 0.5 * c, c),
                               atol=1e-12)
    np.testing.assert_allclose(kernels.activation_mean("symmetric_relu", c), 0.0, atol=1e-12)
