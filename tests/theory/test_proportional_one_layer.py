"""One-hidden-layer proportional-regime kernel renormalization (theory.proportional_one_layer,
Pacelli et al., Nat. Mach. Intell. 2023): sanity identity, infinite-width limit and its 1/N rate, the T → 0 closed form,
the readout-norm estimator (envelope identity), predictions."""
import math

import numpy as np
import pytest

from theory import proportional_one_layer as p1
from theory.gaussian_process import gp_posterior
from theory.kernels import two_layer_diag, two_layer_gram


def _erf_problem(P=40, d=6, m=15, seed=0, sigma_a2=1.0, sigma_w2=1.0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(P, d)), rng.normal(size=(m, d))
    y = np.tanh(X[:, 0] + 0.5 * X[:, 1])
    y_test = np.tanh(X_test[:, 0] + 0.5 * X_test[:, 1])
    K = two_layer_gram(X, None, "erf", sigma_a2, sigma_w2=sigma_w2)
    K0X = two_layer_gram(X_test, X, "erf", sigma_a2, sigma_w2=sigma_w2)
    K00 = two_layer_diag(X_test, "erf", sigma_a2, sigma_w2=sigma_w2)
    return K, K0X, K00, y, y_test


def _prior_like_labels(K, noise_variance, seed):
    """Labels with ỹ_i² = σ² + k_i exactly in the eigenbasis of K (random signs)."""
    k, U = np.linalg.eigh(K)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=len(k))
    return U @ (signs * np.sqrt(noise_variance + np.maximum(k, 0.0)))


@pytest.mark.parametrize("width", [10, 40, 160])           # α = 4, 1, 0.25
@pytest.mark.parametrize("noise_variance", [1e-3, 0.3])
def test_order_parameter_is_one_for_prior_distributed_labels(width, noise_variance):
    K, *_ = _erf_problem()
    y = _prior_like_labels(K, noise_variance, seed=width)
    sol = p1.solve_one_layer(K, y, width=width, noise_variance=noise_variance)
    assert sol.converged, sol.message
    assert sol.order_parameter == pytest.approx(1.0, abs=1e-9)


def test_infinite_width_is_nngp_and_the_approach_is_first_order_in_one_over_width():
    K, K0X, K00, y, _ = _erf_problem()
    noise = 0.05
    assert p1.solve_one_layer(K, y, width=math.inf, noise_variance=noise).order_parameter == 1.0
    first = p1.first_order_order_parameter(K, y, width=1.0, noise_variance=noise) - 1.0
    assert abs(first) > 1.0   # a non-trivial coefficient for these labels
    deviations = []
    for width in (1e3, 1e4, 1e5):
        sol = p1.solve_one_layer(K, y, width=width, noise_variance=noise)
        assert sol.converged, sol.message
        deviations.append(sol.order_parameter - 1.0)
        # Q̄ − 1 = c/N + O(1/N²): the O(1/N²) remainder, relative to c/N, is itself O(c/N).
        assert abs(width * (sol.order_parameter - 1.0) - first) < 10 * first ** 2 / width
    ratios = np.array(deviations[:-1]) / np.array(deviations[1:])
    assert np.allclose(ratios, 10.0, rtol=0.05)
    pred = p1.renormalized_prediction(K, K0X, K00, y, noise_variance=noise)
    gp = gp_posterior(K, K0X, K00, y, noise)
    assert np.allclose(pred.mean_test, gp.mean) and np.allclose(pred.variance_test, gp.variance)


@pytest.mark.parametrize("width", [20, 40, 80])
def test_zero_temperature_closed_form_equals_the_minimizer_at_small_noise(width):
    K, _, _, y, _ = _erf_problem(P=40, d=60)   # d > P: K well conditioned
    closed = p1.one_layer_zero_temperature(K, y, width=width)
    sol = p1.solve_one_layer(K, y, width=width, noise_variance=1e-9)
    assert sol.converged, sol.message
    # Finite σ² shifts Q̄ by O(σ² Tr K⁻¹ /N); bounded here by 1e-9·Tr K⁻¹.
    allowance = 1e-9 * np.trace(np.linalg.inv(K)) + 1e-9
    assert abs(sol.order_parameter - closed) < allowance
    # closed form solves Q̄² + (α − 1)Q̄ − α r = 0
    alpha, r = 40 / width, y @ np.linalg.solve(K, y) / 40
    assert closed ** 2 + (alpha - 1) * closed - alpha * r == pytest.approx(0.0, abs=1e-12)
    # r = 1 (prior-like labels at T → 0) gives Q̄ = 1 for every α
    y_prior = _prior_like_labels(K, 0.0, seed=1)
    assert p1.one_layer_zero_temperature(K, y_prior, width=width) == pytest.approx(1.0, abs=1e-12)


def test_action_gradient_matches_finite_differences_and_vanishes_at_the_minimum():
    K, _, _, y, _ = _erf_problem()
    kwargs = dict(width=25.0, noise_variance=0.02)
    for q in (0.3, 1.0, 2.7):
        h = 1e-5 * q
        numeric = (p1.one_layer_action(q + h, K, y, **kwargs) - p1.one_layer_action(q - h, K, y, **kwargs)) / (2 * h)
        assert p1.one_layer_action_gradient(q, K, y, **kwargs) == pytest.approx(numeric, rel=1e-7, abs=1e-8)
    sol = p1.solve_one_layer(K, y, **kwargs)
    assert sol.converged and sol.residual < 1e-10
    grid = np.exp(np.linspace(-5, 5, 401))
    assert sol.action <= min(p1.one_layer_action(q, K, y, **kwargs) for q in grid) + 1e-12


def test_readout_norm_estimator_is_the_envelope_derivative_of_the_free_energy():
    # log Z(σ_a²) = −(N/2) min_Q̄ S(Q̄; σ_a² K̂); the derivation of the estimator uses
    # σ_a² ∂ log Z/∂σ_a² = N(Q̄ − 1)/2, i.e. σ_a² dS*/dσ_a² = 1 − Q̄.
    K, _, _, y, _ = _erf_problem()
    width, noise = 30.0, 0.05
    s_star = lambda s: p1.solve_one_layer(s * K, y, width=width, noise_variance=noise).action
    h = 1e-4
    derivative = (s_star(1 + h) - s_star(1 - h)) / (2 * h)
    q = p1.solve_one_layer(K, y, width=width, noise_variance=noise).order_parameter
    assert derivative == pytest.approx(1.0 - q, rel=1e-6, abs=1e-9)
    # E|a|² = Q̄ σ̃_a²/χ ⇒ the estimator returns Q̄
    assert p1.order_parameter_from_readout_norm(q * 0.7 / 5.0, 0.7, chi=5.0) == pytest.approx(q)


def test_predictions_use_the_renormalized_kernel():
    K, K0X, K00, y, y_test = _erf_problem()
    noise, width = 0.01, 20.0
    q = p1.solve_one_layer(K, y, width=width, noise_variance=noise).order_parameter
    pred = p1.renormalized_prediction(q * K, q * K0X, q * K00, y, noise_variance=noise, y_test=y_test)
    A = q * K + noise * np.eye(len(y))
    mean = q * K0X @ np.linalg.solve(A, y)
    var = q * K00 - q * q * np.einsum("ij,ji->i", K0X, np.linalg.solve(A, K0X.T))
    assert np.allclose(pred.mean_test, mean, atol=1e-10) and np.allclose(pred.variance_test, var, atol=1e-10)
    assert pred.test_error == pytest.approx(np.mean((y_test - mean) ** 2 + var), rel=1e-10)
    f_train = y - noise * np.linalg.solve(A, y)
    var_train = noise * np.diag(q * K @ np.linalg.inv(A))
    assert pred.train_error == pytest.approx(np.mean((y - f_train) ** 2 + var_train), rel=1e-8)


def test_bad_input_is_rejected_with_the_argument_name():
    K, *_ , y, _ = _erf_problem()
    with pytest.raises(ValueError, match="width"):
        p1.solve_one_layer(K, y, width=-1, noise_variance=0.1)
    with pytest.raises(ValueError, match="noise_variance"):
        p1.solve_one_layer(K, y, width=10, noise_variance=-0.1)
    with pytest.raises(ValueError, match="y must"):
        p1.solve_one_layer(K, y[:-1], width=10, noise_variance=0.1)
