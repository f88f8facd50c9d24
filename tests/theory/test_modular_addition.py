"""Modular-addition teacher (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.2 and App. B)."""
import math

import numpy as np
import pytest

from theory import modular_addition as ma

# R5 / paper Fig. 3: N=1000, P=401, σ_a²=0.002/N, γ=1e-4.
R5 = dict(modulus=401, width=1000, readout_variance=0.002 / 1000, weight_decay=1e-4)


def test_r5_phase_boundaries_closed_form():
    b = ma.phase_boundaries(**R5)
    P, sa2 = R5["modulus"], R5["readout_variance"]
    paper_gmfl2 = b.noise_variance_pinned - sa2 * b.critical_well ** 2   # with the paper's λ = σ_a²⟨XY⟩
    print(f"\nR5 closed form: sigma2_I = {b.noise_variance_gmfl1:.4f} (paper ~0.227, "
          f"{100 * (b.noise_variance_gmfl1 / 0.227 - 1):+.1f}%), sigma2_II = {b.noise_variance_gmfl2:.4g} "
          f"(paper ~0.175; {paper_gmfl2:.4f} with the paper's eigenvalue normalization), "
          f"a at sigma2 = 0.176: {ma.closed_form_discrepancy(0.176, **R5):.4f} (paper ~-0.7)")
    assert b.critical_coupling == pytest.approx(2 * math.sqrt(1e-4 / 3), rel=1e-14)
    assert b.critical_well == pytest.approx(math.sqrt(3 / 1e-4), rel=1e-14)
    # Onset: u(σ²) a_GP(σ²)² = A_c, with a_GP = −σ²/(4σ_a² + σ²) the GFL-side discrepancy.
    s2 = b.noise_variance_gmfl1
    a_gp = -s2 / (4 * sa2 + s2)
    assert ma.modular_effective_interaction(P, R5["width"], sa2, s2) * a_gp ** 2 == pytest.approx(
        b.critical_coupling, rel=1e-12)
    assert b.noise_variance_gmfl1 == pytest.approx(0.227, rel=0.05)       # the paper's onset holds
    assert b.noise_variance_gmfl1 == pytest.approx(b.noise_variance_pinned, abs=1e-5)
    # The paper's σ²_II ≈ 0.175 is σ²_* − σ_a²W_c², its eigenvalue normalization; with the kernel's
    # λ = 4P²σ_a²⟨XY⟩ a mode in the well carries 4P²σ_a²W_c² ≈ 3.9·10⁴ ≫ σ², so GMFL-II is absent.
    assert paper_gmfl2 == pytest.approx(0.175, rel=0.02)
    assert b.noise_variance_gmfl2 < 0
    assert ma.closed_form_discrepancy(0.176, **R5) == pytest.approx(-0.7, abs=0.06)
    assert ma.closed_form_discrepancy(b.noise_variance_gmfl1 * 1.0001, **R5) == pytest.approx(
        -s2 * 1.0001 / (4 * sa2 + s2 * 1.0001), rel=1e-14)


def test_degeneracy_at_the_critical_coupling():
    gamma, P = 1e-4, 401
    A_c = 2 * math.sqrt(gamma / 3)
    w_minus, w_plus = ma.diagonal_saddles(A_c, gamma)
    assert w_plus == pytest.approx(2 / A_c, rel=1e-12)
    assert abs(ma.mode_action(w_plus, w_plus, A_c, gamma, P)) < 1e-9 * P * w_plus
    assert ma.diagonal_saddles(0.99 * math.sqrt(gamma), gamma) is None


@pytest.mark.parametrize("A", [0.0105, 0.011547, 0.02])
def test_saddles_are_stationary_in_both_directions(A):
    gamma, P = 1e-4, 401
    for W in ma.diagonal_saddles(A, gamma):
        h = 1e-6 * W
        dX = (ma.mode_action(W + h, W, A, gamma, P) - ma.mode_action(W - h, W, A, gamma, P)) / (2 * h)
        dY = (ma.mode_action(W, W + h, A, gamma, P) - ma.mode_action(W, W - h, A, gamma, P)) / (2 * h)
        scale = P * W * A * W  # size of the individual terms of ∂S
        assert abs(dX) < 1e-7 * scale and abs(dY) < 1e-7 * scale


def test_numerical_discrepancy_matches_closed_form_and_phases():
    b = ma.phase_boundaries(**R5)
    sigma2 = np.concatenate((np.linspace(0.30, 0.237, 4), np.linspace(0.234, 0.01, 12)))
    phases, values = [], []
    for s2 in sigma2:
        sol = ma.solve_modular_addition(s2, **R5)
        assert sol.converged, sol.message
        closed = ma.closed_form_discrepancy(s2, **R5)
        phases.append(sol.phase)
        values.append(sol.a)
        assert sol.a == pytest.approx(closed, abs=2e-4)   # finite-P corrections are O(1/P)
        assert sol.target_learnability == pytest.approx(1 + sol.a)
        assert sol.eigenvalue == pytest.approx(4 * 401 ** 2 * R5["readout_variance"] * sol.mode_product, rel=1e-14)
        if s2 < b.noise_variance_gmfl1:
            assert sol.a == pytest.approx(-s2 / b.noise_variance_pinned, abs=2e-4)
            assert sol.coupling == pytest.approx(b.critical_coupling, rel=1e-3)  # A pinned at A_c
            assert sol.well_weight < 1e-5     # p_w ≤ σ²_*/(4σ_a²(P²W_c² − 1)) ≈ 6·10⁻⁶
    assert phases == ["GFL"] * 4 + ["GMFL-I"] * 12
    assert np.all(np.diff(values) >= 0)   # a rises from a_GP as σ² falls (more is learned)


def test_self_consistency_function_is_monotone():
    # F(a) = a + σ²/(λ(a) + σ²) increases on [−1, 0] ⇒ unique root (module docstring).
    u = ma.modular_effective_interaction(401, 1000, 2e-6, 0.2)
    a = np.linspace(-1, 0, 2001)
    F = [x + 0.2 / (ma.target_eigenvalue(ma.mixture_moment(u * x * x, 1e-4, 401)[0], 401, 2e-6) + 0.2) for x in a]
    assert np.all(np.diff(F) > 0)


def test_scaling_invariance():
    # N → β²N, P → √β P, σ_a² → σ_a²/β, σ² → σ²/β leaves u invariant and maps σ²_I,II → σ²_I,II/β.
    beta = 4.0
    u0 = ma.modular_effective_interaction(401, 1000, 2e-6, 0.2)
    u1 = ma.modular_effective_interaction(401 * 2, 1000 * 16, 2e-6 / 4, 0.2 / 4)
    assert u1 == pytest.approx(u0, rel=1e-14)
    b0 = ma.phase_boundaries(401, 1000, 2e-6, 1e-4)
    b1 = ma.phase_boundaries(802, 16000, 2e-6 / beta, 1e-4)
    assert b1.noise_variance_gmfl1 == pytest.approx(b0.noise_variance_gmfl1 / beta, rel=1e-13)
    assert b1.noise_variance_pinned == pytest.approx(b0.noise_variance_pinned / beta, rel=1e-13)
    # Not σ²_II: the well's eigenvalue 4P²σ_a²W_c² is invariant (P²σ_a² is), not ∝ 1/β.
    assert b1.noise_variance_pinned - b1.noise_variance_gmfl2 == pytest.approx(
        b0.noise_variance_pinned - b0.noise_variance_gmfl2, rel=1e-12)


def test_mixture_weight_is_overflow_safe():
    moment, weight, action = ma.mixture_moment(0.05, 1e-4, 401)   # deep well: S ≪ 0
    w_plus = ma.diagonal_saddles(0.05, 1e-4)[1]
    assert action < -1e5 and weight == 1.0 and moment == pytest.approx(w_plus ** 2)
    assert ma.mixture_moment(0.005, 1e-4, 401) == (1 / 401 ** 2, 0.0, math.inf)   # the zero basin only


def test_validation():
    with pytest.raises(ValueError, match="noise_variance"):
        ma.solve_modular_addition(-0.1, **R5)
    with pytest.raises(ValueError, match="weight_decay"):
        ma.diagonal_saddles(0.01, 0.0)
    with pytest.raises(ValueError, match="phase_threshold"):
        ma.solve_modular_addition(0.2, phase_threshold=0.6, **R5)
