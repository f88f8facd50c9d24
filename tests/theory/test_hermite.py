"""Tests of theory.hermite: polynomials, quadrature, coefficients, Stein projections (R1b)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from theory import hermite


def test_hermite_he_matches_numpy_and_explicit_forms():
    z = np.linspace(-3, 3, 13)
    for k in range(12):
        coefficients = np.zeros(k + 1)
        coefficients[k] = 1.0
        np.testing.assert_allclose(hermite.hermite_he(k, z), np.polynomial.hermite_e.hermeval(z, coefficients),
                                   rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(hermite.hermite_he(3, z), z**3 - 3 * z, atol=1e-12)
    np.testing.assert_allclose(hermite.normalized_hermite(2, z), (z**2 - 1) / math.sqrt(2), atol=1e-14)
    assert hermite.hermite_he(0, np.zeros((2, 3))).shape == (2, 3)


def test_normalized_hermite_are_orthonormal_under_gauss_hermite():
    rule = hermite.gauss_hermite_normal(60)
    assert abs(rule.weights.sum() - 1) < 1e-14
    table = hermite.normalized_hermite_table(40, rule.nodes)
    gram = (table * rule.weights) @ table.T
    np.testing.assert_allclose(gram, np.eye(41), atol=1e-11)


def test_high_degree_normalized_recurrence_is_stable():
    # Ĥe_k stays O(1) in the bulk where He_k ~ √(k!) would overflow-prone; orthonormality at k=150
    rule = hermite.gauss_hermite_normal(200)
    top = hermite.normalized_hermite(150, rule.nodes)
    assert abs(np.sum(rule.weights * top * top) - 1) < 1e-9


def test_gauss_hermite_rule_moments():
    rule = hermite.gauss_hermite_normal(10)
    for power in range(0, 19):
        expected = 0.0 if power % 2 else float(math.prod(range(power - 1, 0, -2)))
        assert abs(np.sum(rule.weights * rule.nodes**power) - expected) < 1e-10 * max(1.0, expected)


def test_hermite_coefficients_of_polynomial_and_abs():
    coefficients = hermite.hermite_coefficients(lambda z: z**3 + 2.0, 5)
    np.testing.assert_allclose(coefficients.unnormalized, [2.0, 3.0, 0.0, 1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(coefficients.normalized,
                               coefficients.unnormalized * np.sqrt([1, 1, 2, 6, 24, 120]), atol=1e-12)
    # R1b: the He_2 coefficient of |z| − √(2/π) is 1/√(2π); the kink needs breakpoints=(0,)
    kinked = hermite.hermite_coefficients(lambda z: np.abs(z) - math.sqrt(2 / math.pi), 4, breakpoints=(0.0,))
    assert abs(kinked.unnormalized[2] - 1 / math.sqrt(2 * math.pi)) < 1e-12
    assert abs(kinked.unnormalized[0]) < 1e-12


@pytest.mark.parametrize("activation", ["erf", "relu", "step", "linear", "quadratic", "tanh"])
def test_gaussian_derivative_mean_against_piecewise_quadrature(activation):
    # m_k(s) = E[φ(√s z) He_k(z)] / s^{k/2} = √(k!) c_k(φ(√s ·)) / s^{k/2}
    phi = hermite.ACTIVATION_FUNCTIONS[activation]
    for s in (0.3, 1.0, 2.5):
        coefficients = hermite.hermite_coefficients(lambda z: phi(math.sqrt(s) * z), 6, order=200,
                                                    breakpoints=(0.0,))
        for k in range(7):
            expected = math.sqrt(math.factorial(k)) * coefficients.normalized[k] / s ** (k / 2)
            assert abs(hermite.gaussian_derivative_mean(activation, k, s) - expected) < 1e-10


def test_erf_and_relu_projection_closed_forms():
    q, s = 0.8, 1.03
    assert abs(hermite.single_index_projection("erf", 1, q, s) - 2 * q / math.sqrt(math.pi * (1 + 2 * s))) < 1e-15
    assert abs(hermite.single_index_projection("erf", 3, q, s)
               + 4 * q**3 / (math.sqrt(math.pi) * (1 + 2 * s) ** 1.5)) < 1e-15
    assert abs(hermite.single_index_projection("erf", 3, q, s, normalized=True)
               + 4 * q**3 / (math.sqrt(6 * math.pi) * (1 + 2 * s) ** 1.5)) < 1e-15
    assert abs(hermite.single_index_projection("relu", 1, q, s) - q / 2) < 1e-15
    assert abs(hermite.single_index_projection("relu", 2, q, s) - q**2 / (math.sqrt(2 * math.pi * s))) < 1e-15
    assert hermite.single_index_projection("erf", 2, q, s) == 0.0


def test_r1b_projections_monte_carlo():
    """d = 5, w = (0.8, 0.3, −0.2, 0.1, 0.5), w* = e_1; formulas within 4 MCSE."""
    w = np.array([0.8, 0.3, -0.2, 0.1, 0.5])
    q, s = w[0], float(w @ w)
    expected = {("erf", 1): 0.516041, ("erf", 3): -0.215860, ("relu", 1): 0.4, ("relu", 2): 0.251577}
    rng = np.random.default_rng(11)
    x = rng.normal(size=(400_000, 5))
    h, z = x @ w, x[:, 0]
    for (activation, k), value in expected.items():
        formula = hermite.single_index_projection(activation, k, q, s)
        assert abs(formula - value) < 1e-6  # the tabulated numbers (6 digits)
        samples = hermite.hermite_he(k, z) * hermite.ACTIVATION_FUNCTIONS[activation](h)
        mcse = samples.std(ddof=1) / math.sqrt(samples.size)
        assert abs(samples.mean() - formula) < 4 * mcse, (activation, k, samples.mean(), formula, mcse)


def test_projections_broadcast():
    q = np.linspace(-0.5, 0.5, 5)[:, None]
    s = np.array([1.0, 2.0])[None, :]
    assert hermite.single_index_projection("tanh", 3, q, s).shape == (5, 2)


def test_input_validation_names_the_argument():
    with pytest.raises(ValueError, match="degree"):
        hermite.hermite_he(-1, 0.0)
    with pytest.raises(ValueError, match="order"):
        hermite.gauss_hermite_normal(0)
    with pytest.raises(ValueError, match="variance"):
        hermite.gaussian_derivative_mean("erf", 1, -1.0)
    with pytest.raises(ValueError, match="activation"):
        hermite.gaussian_derivative_mean("softplus", 1, 1.0)
    with pytest.raises(ValueError, match="overlap"):
        hermite.single_index_projection("erf", 1, 2.0, 1.0)
