"""Deep FC kernel renormalization (theory.proportional_deep, Pacelli et al., Nat. Mach. Intell. 2023): nested = vanilla = BKR
for linear networks, the R7 cases, one layer = the scalar theory, NNGP limits."""
import math

import numpy as np
import pytest

from theory import proportional_deep as pd
from theory import proportional_one_layer as p1
from theory.kernels import deep_fc_gram, two_layer_gram


def _data(P=30, d=40, m=8, seed=0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(P, d)), rng.normal(size=(m, d))
    w = rng.normal(size=d) / math.sqrt(d)
    return X, X_test, np.tanh(2 * X @ w), np.tanh(2 * X_test @ w)


# Linear deep net at T → 0 (Li & Sompolinsky, PRX 2021), re-derived: u = 1 − α + α r0 u^{−L}; e.g. L = 1: u² − ½u − 1 = 0 ⇒
# u = (½ + √(¼ + 4))/2 = 1.2807764064; the others are the unique positive roots of the same
# monotone equation (checked below by substitution, independent of the solver).
@pytest.mark.parametrize("L, alpha, r0, expected", [(1, 0.5, 2.0, 1.28077641), (2, 0.5, 2.0, 1.19742934),
                                                   (3, 0.5, 2.0, 1.15277658), (2, 2.0, 0.5, 0.75487767),
                                                   (2, 1.0, 1.0, 1.0)])
def test_r7_zero_temperature_bkr(L, alpha, r0, expected):
    u = pd.bkr_zero_temperature(r0, [alpha] * L)
    assert np.allclose(u, expected, atol=5e-9)
    assert u[0] == pytest.approx(1 - alpha + alpha * r0 * u[0] ** (-L), abs=1e-12)
    assert expected == pytest.approx(1 - alpha + alpha * r0 * expected ** (-L), abs=1e-7)
    if L == 1:
        assert u[0] == pytest.approx((0.5 + math.sqrt(4.25)) / 2, abs=1e-12)


@pytest.mark.parametrize("widths", [(20.0, 20.0), (15.0, 45.0, 30.0)])
def test_nested_equals_vanilla_equals_bkr_for_linear_networks(widths):
    X, _, y, _ = _data()
    variances = [1.3] + [0.8] * (len(widths) - 1) + [1.1]
    kwargs = dict(weight_variances=variances, widths=widths, noise_variance=0.05)
    nested = pd.solve_deep(X, y, activation="linear", form="nested", **kwargs)
    vanilla = pd.solve_deep(X, y, activation="linear", form="vanilla", **kwargs)
    bkr = pd.solve_bkr(X, y, **kwargs)
    for sol in (nested, vanilla, bkr):
        assert sol.converged, sol.message
    assert np.allclose(nested.order_parameters, bkr.order_parameters, rtol=1e-6)
    assert np.allclose(vanilla.order_parameters, bkr.order_parameters, rtol=1e-6)
    assert nested.action == pytest.approx(bkr.action, rel=1e-10)
    if len(set(widths)) > 1:   # unequal widths: unequal u_l, with N_l(u_l − 1) the same for every l
        u = bkr.order_parameters
        assert np.ptp(u) > 1e-3
        assert np.ptp(np.asarray(widths) * (u - 1)) < 1e-8 * widths[0]


def test_bkr_finite_temperature_tends_to_the_closed_form():
    X, _, y, _ = _data(P=30, d=40)
    variances, widths = [1.0, 1.0, 1.0], [20.0, 60.0]
    K = np.prod(variances) * X @ X.T / X.shape[1]
    r0 = y @ np.linalg.solve(K, y) / len(y)
    closed = pd.bkr_zero_temperature(r0, [30 / 20, 30 / 60])
    sol = pd.solve_bkr(X, y, weight_variances=variances, widths=widths, noise_variance=1e-10)
    assert sol.converged, sol.message
    # the finite-σ² shift is O(σ² Tr K⁻¹/N)
    assert np.allclose(sol.order_parameters, closed, atol=1e-10 * np.trace(np.linalg.inv(K)) + 1e-9)


def test_one_hidden_layer_nested_is_the_scalar_theory():
    X, _, y, _ = _data()
    K = two_layer_gram(X, None, "erf", 1.1, sigma_w2=1.3)
    scalar = p1.solve_one_layer(K, y, width=25.0, noise_variance=0.02)
    deep = pd.solve_deep(X, y, activation="erf", weight_variances=[1.3, 1.1], widths=[25.0], noise_variance=0.02)
    assert deep.converged and scalar.converged
    assert deep.order_parameters[0] == pytest.approx(scalar.order_parameter, rel=1e-7)
    assert deep.action == pytest.approx(scalar.action, rel=1e-12)


def test_deep_erf_nngp_limits_and_prior_like_labels_for_vanilla():
    X, X_test, y, y_test = _data()
    variances = [1.0, 1.5, 1.2]
    K = deep_fc_gram(X, None, "erf", variances)
    assert np.allclose(pd.deep_renormalized_gram(X, None, [1, 1], activation="erf", weight_variances=variances),
                       K, atol=1e-14)
    deviations = []
    for width in (1e3, 1e4):
        sol = pd.solve_deep(X, y, activation="erf", weight_variances=variances, widths=[width, width],
                            noise_variance=0.05)
        assert sol.converged, sol.message
        deviations.append(np.abs(sol.order_parameters - 1).max())
    assert deviations[0] / deviations[1] == pytest.approx(10.0, rel=0.05)   # Q_l − 1 = O(1/N)
    # vanilla: ∂K_R/∂Q_l = K_R/Q_l, so labels with ỹ_i² = σ² + k_i give Q_l = 1 for every l
    k, U = np.linalg.eigh(K)
    y_prior = U @ np.sqrt(0.05 + np.maximum(k, 0))
    sol = pd.solve_deep(X, y_prior, activation="erf", weight_variances=variances, widths=[12.0, 40.0],
                        noise_variance=0.05, form="vanilla")
    assert sol.converged and np.allclose(sol.order_parameters, 1.0, atol=1e-7)
    # predictions with Q = 1 are the deep NNGP posterior
    pred = pd.deep_prediction(X, X_test, y, [1.0, 1.0], activation="erf", weight_variances=variances,
                              noise_variance=0.05, y_test=y_test)
    K0X = deep_fc_gram(X_test, X, "erf", variances)
    assert np.allclose(pred.mean_test, K0X @ np.linalg.solve(K + 0.05 * np.eye(len(y)), y), atol=1e-10)


def test_weight_norm_estimator_is_the_envelope_derivative_for_every_layer():
    # σ_l² ∂S*/∂σ_l² = −(N_l/N_1)(Q_l − 1) (per unit first-layer width), the identity behind
    # E|W_l|² − E_prior|W_l|² = σ_l²(Q_l − 1).
    X, _, y, _ = _data()
    variances, widths = np.array([1.0, 1.4, 0.9]), np.array([15.0, 45.0])
    kwargs = dict(activation="erf", widths=widths, noise_variance=0.05, gradient_tol=1e-10)
    sol = pd.solve_deep(X, y, weight_variances=variances, **kwargs)
    assert sol.converged, sol.message
    for l in (1, 2):
        h = 1e-4
        up, down = variances.copy(), variances.copy()
        up[l] *= 1 + h
        down[l] *= 1 - h
        derivative = (pd.solve_deep(X, y, weight_variances=up, **kwargs).action
                      - pd.solve_deep(X, y, weight_variances=down, **kwargs).action) / (2 * h)
        expected = -(widths[l - 1] / widths[0]) * (sol.order_parameters[l - 1] - 1)
        assert derivative == pytest.approx(expected, rel=1e-5, abs=1e-9)
    Q = sol.order_parameters
    norms = variances[1:] * (np.array([15 * 45, 45]) / widths) + variances[1:] * (Q - 1)
    assert np.allclose(pd.order_parameters_from_weight_norms(norms, variances[1:], widths, [15 * 45, 45]), Q)


def test_bad_input_names_the_argument():
    X, _, y, _ = _data()
    with pytest.raises(ValueError, match="widths"):
        pd.solve_deep(X, y, activation="erf", weight_variances=[1, 1, 1], widths=[10], noise_variance=0.1)
    with pytest.raises(ValueError, match="form"):
        pd.solve_deep(X, y, activation="erf", weight_variances=[1, 1], widths=[10], noise_variance=0.1,
                      form="other")
    with pytest.raises(ValueError, match="activation"):
        pd.solve_deep(X, y, activation="sigmoid", weight_variances=[1, 1], widths=[10], noise_variance=0.1)
