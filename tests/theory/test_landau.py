"""Landau φ⁶ theory of the cubic teacher (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1, at the paper's setting): the action, its
Landau coefficients, stationary points, and the scaling-limit transition."""
import math
from dataclasses import replace

import numpy as np
import pytest

from theory import landau
from theory.network_prior import NetworkPrior

# The paper's setting: N=700, n=3000, d=150, σ_w²=0.5, σ_a²=8/N, ε=−0.3 (physical values, χ = 1).
R4 = NetworkPrior(activation="erf", input_dim=150, widths=(700,), weight_variances=(0.5,),
                  readout_variance_tilde=8 / 700, noise_variance_tilde=0.18)
R4_SAMPLES, R4_EPSILON = 3000, -0.3


def _noise(value):
    return replace(R4, noise_variance_tilde=value)


def _couplings(noise_variance):
    prior = _noise(noise_variance)
    return landau.effective_interaction(prior, R4_SAMPLES), landau.kernel_strength(prior, R4_SAMPLES)


def test_effective_interaction_r4_and_chi_invariance():
    # u(σ² = 0.18) = 3000²·(8/700)/(0.18²·150·700) = 30.2343… (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1).
    u = landau.effective_interaction(R4, 3000)
    assert u == pytest.approx(30.234315948601665, rel=1e-13)
    assert round(u, 2) == 30.23
    # Mean-field numerators: σ̃_a² = 8, σ̃² = χ σ², χ = N give the same physical couplings.
    mean_field = replace(R4, readout_variance_tilde=8.0, noise_variance_tilde=0.18 * 700, chi=700)
    assert landau.effective_interaction(mean_field, 3000) == pytest.approx(u, rel=1e-13)
    assert landau.kernel_strength(mean_field, 3000) == pytest.approx(landau.kernel_strength(R4, 3000), rel=1e-13)


@pytest.mark.parametrize("u,b,c,sw2", [(30.2, 0.29, -0.3, 0.5), (5.0, -0.7, 0.4, 1.3), (80.0, 0.1, 0.05, 0.2)])
def test_landau_coefficients_match_taylor_fit(u, b, c, sw2):
    # Fit Ŝ(q)/q² = A2 + A4 q² + A6 q⁴ + A8 q⁶ + … on a small symmetric grid (Chebyshev nodes
    # in q², degree 7 in q²): the fitted low coefficients must equal the symbolic ones.
    x = 0.02 * (1 + np.cos(np.pi * (np.arange(40) + 0.5) / 40)) / 2 + 1e-6  # q² ∈ (0, 0.02)
    q = np.sqrt(x)
    s_hat = landau.landau_action(q, u, b, c, sw2, input_dim=1.0) / x
    fit = np.polynomial.polynomial.polyfit(x, s_hat, 7)
    coeffs = landau.landau_coefficients(u, b, c, sw2)
    scale = max(abs(coeffs.a2), abs(coeffs.a4), abs(coeffs.a6))
    assert fit[0] == pytest.approx(coeffs.a2, abs=1e-10 * scale)
    assert fit[1] == pytest.approx(coeffs.a4, abs=1e-8 * scale)
    assert fit[2] == pytest.approx(coeffs.a6, abs=1e-5 * scale)


def test_q_zero_is_stationary_for_every_parameter_value():
    rng = np.random.default_rng(0)
    for _ in range(200):
        u, sw2, d = rng.uniform(0, 200), rng.uniform(0.05, 3), rng.uniform(1, 500)
        b, c = rng.normal(scale=2, size=2)
        assert landau.landau_action_derivative(0.0, u, b, c, sw2, d) == 0.0
        h = 1e-4  # S is even in q, so the centred difference at 0 vanishes identically
        assert landau.landau_action(h, u, b, c, sw2, d) == landau.landau_action(-h, u, b, c, sw2, d)
        points = landau.stationary_points(u, b, c, sw2)
        assert points.positions[0] == 0.0 and points.reduced_actions[0] == 0.0


def test_action_derivative_matches_finite_differences():
    q = np.linspace(-2.5, 2.5, 41)
    args = (31.0, 0.28, -0.29, 0.5, 150.0)
    h = 1e-6
    numeric = (landau.landau_action(q + h, *args) - landau.landau_action(q - h, *args)) / (2 * h)
    assert np.allclose(landau.landau_action_derivative(q, *args), numeric, rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("u,b,c", [(30.67, 0.292, -0.3), (60.0, 0.2, -0.27), (40.0, 0.45, -0.3), (10.0, 0.5, -0.3)])
def test_stationary_points_agree_with_a_dense_grid(u, b, c):
    points = landau.stationary_points(u, b, c, 0.5)
    derivative = lambda q: landau.landau_action_derivative(q, u, b, c, 0.5, 1.0)
    assert np.all(np.abs(derivative(points.positions)) < 1e-10)
    grid = np.linspace(1e-4, 4.0, 400001)
    sign_changes = grid[1:][np.diff(np.sign(derivative(grid))) != 0]
    assert np.allclose(np.sort(sign_changes), points.positions[1:], atol=2e-5)
    # Minima: the action is lower than at both neighbours.
    for q, is_min in zip(points.positions[1:], points.is_minimum[1:]):
        s = landau.landau_action(np.array([q - 1e-3, q, q + 1e-3]), u, b, c, 0.5, 1.0)
        assert (s[1] < s[0] and s[1] < s[2]) == is_min


def test_degeneracy_function_marks_level_minima():
    # Choose u so that D = 0 on a (b, c) pair: then the non-zero minimum is level with q = 0.
    b, c, sw2 = 0.29, -0.3, 0.5
    from scipy.optimize import brentq
    u_c = brentq(lambda u: landau.degeneracy_function(u, b, c, sw2)[0], 1.0, 100.0, xtol=1e-14)
    D, q_star = landau.degeneracy_function(u_c, b, c, sw2)
    points = landau.stationary_points(u_c, b, c, sw2)
    well = points.positions[points.is_minimum & (points.positions > 0)]
    assert well.size == 1 and well[0] == pytest.approx(q_star, rel=1e-6)
    assert abs(landau.landau_action(q_star, u_c, b, c, sw2, 1.0)) < 1e-12
    below, above = (landau.degeneracy_function(f * u_c, b, c, sw2)[0] for f in (0.99, 1.01))
    assert below < 0 < above


def test_gfl_branch_reduces_to_gp_learnability_at_zero_interaction():
    r, sw2 = 1.3, 0.5
    g0 = 1 + 2 * sw2
    branch = landau.gfl_branch_scaling_limit(0.0, r, sw2, -0.3)
    # b = σ²/(σ² + n λ_1) with λ_1 = 4σ_a²σ_w²/(π d g0) (Rubin, Seroussi & Ringel 2024, App. A): b = 1/(1 + 4rσ_w²/(π g0)).
    assert branch.b == pytest.approx(1 / (1 + 4 * r * sw2 / (math.pi * g0)), rel=1e-14)
    assert branch.c == -0.3 and branch.converged
    # Small u continues smoothly from the GP value, and the residual of b = 1/(1+2r/(πg0A2)) is tiny.
    small = landau.gfl_branch_scaling_limit(1e-6, r, sw2, -0.3)
    assert small.b == pytest.approx(branch.b, rel=1e-5) and small.residual < 1e-13


def test_r4_transition_in_noise_variance():
    t = landau.find_landau_transition(_noise, 0.12, 0.3, num_samples=R4_SAMPLES, epsilon=R4_EPSILON)
    print(f"\nR4 Landau transition (scaling limit, GFL branch): sigma2_c = {t.value:.5f} "
          f"(paper ~0.18, gap {100 * (t.value / 0.18 - 1):+.2f}%), u_c = {t.u:.3f} (paper ~30.2, gap "
          f"{100 * (t.u / 30.2 - 1):+.2f}%), b = {t.b:.5f}, c = {t.c}, q* = {t.well_position:.4f}, "
          f"A2/A4/A6 = {t.coefficients.a2:.5f}/{t.coefficients.a4:.5f}/{t.coefficients.a6:.5f}, "
          f"|D| = {t.residual:.1e}, iterations = {t.iterations}")
    assert t.converged and t.residual < 1e-12
    assert t.value == pytest.approx(0.18, rel=0.03)   # a re-derivation lands within a few percent of the paper's value
    assert t.u == pytest.approx(30.2, rel=0.03)
    assert t.coefficients.a4 < 0 < t.coefficients.a6 and t.coefficients.a2 > 0
    # The same critical point, found in the other control parameters with the rest fixed.
    critical = _noise(t.value)
    in_samples = landau.find_landau_transition_in_samples(critical, 2000, 4000, epsilon=R4_EPSILON)
    assert in_samples.converged and in_samples.value == pytest.approx(R4_SAMPLES, rel=1e-9)
    in_width = landau.find_landau_transition(lambda N: replace(critical, widths=(N,)), 400, 1000,
                                             num_samples=R4_SAMPLES, epsilon=R4_EPSILON)
    assert in_width.converged and in_width.value == pytest.approx(700, rel=1e-9)
    by_u = landau.find_landau_transition_in_interaction(critical, 20, 40, num_samples=R4_SAMPLES,
                                                        epsilon=R4_EPSILON)
    assert by_u.value == pytest.approx(t.u, rel=1e-9)


def test_r4_landau_coefficients_first_order_at_0_18():
    u, kappa = _couplings(0.18)
    branch = landau.gfl_branch_scaling_limit(u, kappa / R4.input_dim, R4.input_variance, R4_EPSILON)
    a = branch.coefficients
    print(f"\nR4 at sigma2=0.18 (GFL scaling limit): u = {u:.3f}, b = {branch.b:.5f}, c = {branch.c}, "
          f"A2 = {a.a2:.5f}, A4 = {a.a4:.5f}, A6 = {a.a6:.5f}")
    assert a.a4 < 0 < a.a6


def test_validation_errors_name_the_argument():
    with pytest.raises(ValueError, match="noise_variance"):
        landau.effective_interaction(_noise(0.0), 3000)
    with pytest.raises(ValueError, match="NetworkPrior.noise_variance_tilde"):
        _noise(-0.1)
    with pytest.raises(ValueError, match="input_variance"):
        landau.landau_action(0.1, 1.0, 0.2, -0.3, -1.0, 150)
    with pytest.raises(ValueError, match="u must"):
        landau.landau_coefficients(-1.0, 0.2, -0.3, 0.5)
    with pytest.raises(ValueError, match="NetworkPrior.activation"):
        landau.find_landau_transition(lambda v: replace(_noise(v), activation="relu"), 0.1, 0.2,
                                      num_samples=R4_SAMPLES, epsilon=R4_EPSILON)
    with pytest.raises(ValueError, match="change sign"):
        landau.find_landau_transition(_noise, 0.25, 0.3, num_samples=R4_SAMPLES, epsilon=R4_EPSILON)
