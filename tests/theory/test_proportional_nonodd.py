"""Non-odd activations, two order parameters (theory.proportional_nonodd, Pacelli et al., Nat. Mach. Intell. 2023, `deepbays`)."""
import math

import numpy as np
import pytest

from theory import proportional_nonodd as pn
from theory import proportional_one_layer as p1
from theory.gaussian_process import gp_posterior


def _relu_problem(P=35, d=8, m=10, seed=0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(P, d)), rng.normal(size=(m, d))
    y = np.abs(X[:, 0]) + 0.3 * X[:, 1]
    y_test = np.abs(X_test[:, 0]) + 0.3 * X_test[:, 1]
    blocks = pn.nonodd_blocks(X, X_test, activation="relu", sigma_w2=1.5, sigma_a2=0.9)
    return blocks, y, y_test


def test_relu_blocks_are_the_closed_forms():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(35, 8))
    blocks, _, _ = _relu_problem()
    c = 1.5 * np.sum(X * X, axis=1) / 8
    # E[relu(h)²] = c/2 and E[relu(h)] = √(c/(2π)), scaled by σ_a² and σ_a = √0.9
    assert np.allclose(np.diag(blocks.gram), 0.9 * c / 2, rtol=1e-12)
    assert np.allclose(blocks.mean, np.sqrt(0.9 * c / (2 * math.pi)), rtol=1e-12)


@pytest.mark.parametrize("width", [15.0, 60.0])
def test_saddle_equations_are_solved_and_the_gradient_matches_finite_differences(width):
    blocks, y, _ = _relu_problem()
    kwargs = dict(width=width, noise_variance=0.05)
    sol = pn.solve_nonodd(blocks.gram, blocks.mean, y, **kwargs)
    assert sol.converged, sol.message
    assert sol.residual < 1e-10
    q_bar, q = sol.order_parameters
    assert q_bar > 0 and q > -1 and abs(q_bar - 1) > 1e-3      # a non-trivial renormalization
    for point in ([q_bar, q], [0.7, 0.2], [1.4, -0.3]):
        g = pn.nonodd_action_gradient(point, blocks.gram, blocks.mean, y, **kwargs)
        for i in range(2):
            h = np.zeros(2)
            h[i] = 1e-5
            S = lambda z: pn.nonodd_action(z, blocks.gram, blocks.mean, y, **kwargs)
            numeric = (S(np.array(point) + h) - S(np.array(point) - h)) / 2e-5
            assert g[i] == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    # a saddle: minimum along Q̄, maximum along Q
    S = lambda a, b: pn.nonodd_action([a, b], blocks.gram, blocks.mean, y, **kwargs)
    e = 1e-3
    assert S(q_bar + e, q) > sol.action and S(q_bar - e, q) > sol.action
    assert S(q_bar, q + e) < sol.action and S(q_bar, q - e) < sol.action


def test_without_the_mean_term_it_is_the_odd_theory():
    blocks, y, _ = _relu_problem()
    zero = np.zeros_like(blocks.mean)
    for width in (10.0, 35.0, 200.0):
        sol = pn.solve_nonodd(blocks.gram, zero, y, width=width, noise_variance=0.05)
        odd = p1.solve_one_layer(blocks.gram, y, width=width, noise_variance=0.05)
        assert sol.converged and odd.converged
        q_bar, q = sol.order_parameters
        assert q_bar == pytest.approx(odd.order_parameter, rel=1e-9)
        assert q == pytest.approx(1 / odd.order_parameter - 1, rel=1e-8, abs=1e-12)
        assert sol.action == pytest.approx(odd.action - 1.0, rel=1e-10)   # max over Q: S_odd − 1


def test_infinite_width_is_the_nngp():
    blocks, y, y_test = _relu_problem()
    sol = pn.solve_nonodd(blocks.gram, blocks.mean, y, width=math.inf, noise_variance=0.05)
    assert np.array_equal(sol.order_parameters, [1.0, 0.0])
    big = [pn.solve_nonodd(blocks.gram, blocks.mean, y, width=w, noise_variance=0.05) for w in (1e4, 1e5)]
    deviations = [np.abs(s.order_parameters - [1, 0]).max() for s in big]
    assert deviations[0] / deviations[1] == pytest.approx(10, rel=0.05)
    pred = pn.nonodd_prediction([1.0, 0.0], blocks, y, noise_variance=0.05, y_test=y_test)
    gp = gp_posterior(blocks.gram, blocks.test_train, blocks.test_diag, y, 0.05)
    assert np.allclose(pred.mean_test, gp.mean, atol=1e-12) and np.allclose(pred.variance_test, gp.variance)


def test_bad_input_names_the_argument():
    blocks, y, _ = _relu_problem()
    with pytest.raises(ValueError, match="mean"):
        pn.solve_nonodd(blocks.gram, blocks.mean[:-1], y, width=10, noise_variance=0.1)
    with pytest.raises(ValueError, match="initial"):
        pn.solve_nonodd(blocks.gram, blocks.mean, y, width=10, noise_variance=0.1, initial=(1.0, -2.0))
