"""Staircase sample complexity (theory.staircase): the P needed to learn 90 % of the cubic part of
y = z + εz³ grows like d³ for the NNGP and far slower for the adapting mean-field network."""
import numpy as np
import pytest

from theory import staircase as st
from theory.single_index_spectrum import harmonic_multiplicity

GP = dict(epsilon=-0.1, noise_variance=1.0)
GFL = dict(epsilon=-0.1, noise_variance=1.0, readout_variance=1.0, width_per_dim=8.0)


def test_cubic_target_coefficients():
    assert st.cubic_target_coefficients(-0.1) == pytest.approx((0.7, -0.1), rel=1e-15)   # z³ = He_3 + 3He_1
    with pytest.raises(ValueError, match="epsilon"):
        st.cubic_target_coefficients(0.0)


def test_gp_threshold_exponent_tends_to_three():
    dims = [8, 16, 32, 64, 128, 256, 512]
    thresholds = [st.gp_threshold(d, **GP) for d in dims]
    for d, p in zip(dims, thresholds):
        assert st.gp_cubic_learnability(p, d, **GP) == pytest.approx(0.9, abs=1e-9)
        # Derived lower bound (module docstring): the N(d, 3) cubic modes at L_3 ≥ 0.9 alone need P ≥ 0.9 N(d, 3).
        assert p >= 0.9 * harmonic_multiplicity(d, 3)
    fit = st.fit_exponent(dims, thresholds)
    local = fit.local_exponents
    assert np.all(np.diff(local) > 0)                 # approaching 3 from below, monotonically
    assert 2.95 < local[-1] < 3.0
    assert 3 - local[-1] < 0.5 * (3 - local[-3])       # the gap to 3 keeps shrinking (≈ like 1/d)
    assert fit.exponent + 4 * fit.exponent_se > local[-1] > fit.exponent


def test_adaptive_threshold_is_far_below_the_gp_and_grows_slower_than_d():
    dims = [8, 16, 32]
    results = [st.gfl_threshold(d, **GFL, steps=20) for d in dims]
    adaptive = [r.samples for r in results]
    for d, p, sol in zip(dims, adaptive, (r.solution for r in results)):
        assert sol.converged and sol.learnabilities[1] == pytest.approx(0.9, abs=1e-7)
        assert sol.sigma_parallel * d > 5                     # the kernel has adapted to w* (b ≫ σ_w²/d)
        assert p < 0.1 * st.gp_threshold(d, **GP)
    fit = st.fit_exponent(dims, adaptive)
    assert 0.3 < fit.exponent < 1.0                       # measured 0.57 (0.56 up to d = 128)
