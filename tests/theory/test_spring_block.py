"""Spring-block model: its exact limits (no friction: linear at any noise; no noise: the
quasi-static friction profile), and the change of shape with noise and friction
(concave → linear → convex as the noise grows at a fixed training time)."""
import numpy as np
import pytest

from theory.spring_block import (
    SpringBlockParameters, elongation_slope, large_noise_elongations, profile_shape,
    quasi_static_elongations, simulate)

CHAIN = SpringBlockParameters(num_layers=8, load=1.5, stiffness=1.0, damping=1.0)


def test_no_friction_noiseless_chain_relaxes_to_equal_elongations():
    result = simulate(CHAIN, time_step=0.1, ramp_time=0.0, training_time=900.0,
                      average_time=0.1)
    assert result.converged, result.residual
    np.testing.assert_allclose(result.elongations, CHAIN.load / CHAIN.stiffness, rtol=1e-9)
    assert profile_shape(result.elongations, tolerance=1e-9) == "linear"


def test_no_friction_noisy_mean_follows_the_noiseless_recursion_exactly():
    """μ = 0: the step is linear in (x, v) plus zero-mean noise, so the ensemble mean of every
    window average equals the noiseless chain's, at every time; after the transient both
    equal F/k (the linear, equiseparated profile), whatever σ."""
    timing = dict(time_step=0.1, ramp_time=5.0, training_time=40.0, average_time=10.0)
    noiseless = simulate(CHAIN, **timing)
    noisy = simulate(CHAIN._replace(noise=0.7), num_realizations=400, seed=3, **timing)
    z = np.abs(noisy.elongations - noiseless.elongations) / noisy.standard_error
    assert np.all(z < 4), z
    # the test has power: the transient is not yet over, so the noiseless profile is not flat
    assert np.ptp(noiseless.elongations) > 10 * noisy.standard_error.max()
    late = simulate(CHAIN._replace(noise=0.7), time_step=0.1, ramp_time=5.0,
                    training_time=400.0, average_time=300.0, num_realizations=200, seed=4)
    z = np.abs(late.elongations - CHAIN.load / CHAIN.stiffness) / late.standard_error
    assert np.all(z < 4), z


@pytest.mark.parametrize("friction", [0.05, 0.1, 0.15])
def test_noiseless_slow_pull_gives_the_quasi_static_friction_profile(friction):
    """k d_ℓ = max(0, F − (L + 1 − ℓ)μ₊): the simulated chain, pulled from rest, ends there up
    to the lag of the ramp, which is O(ramp rate): halving the rate halves the error (or the
    error is at round-off, when every block creeps back onto its threshold after the ramp)."""
    params = CHAIN._replace(friction_forward=friction, friction_backward=2 * friction)
    expected = quasi_static_elongations(params)
    errors = []
    for ramp_time in (100.0, 200.0):
        result = simulate(params, time_step=0.1, ramp_time=ramp_time,
                          training_time=ramp_time + 600.0, average_time=0.1)
        assert result.converged, result.residual
        errors.append(np.abs(result.elongations - expected).max())
    assert errors[1] < 1e-3
    assert 0.4 < errors[1] / errors[0] < 0.6 or errors[1] < 1e-8, errors
    assert profile_shape(expected, tolerance=1e-3) == "concave"


def test_quasi_static_profile_closed_form_and_lazy_shallow_layers():
    params = CHAIN._replace(friction_forward=0.25)
    # k d_ℓ = 1.5 − (9 − ℓ)·0.25: ℓ = 1…8 → −0.5, −0.25, 0, 0.25, …, 1.25, cut at 0
    np.testing.assert_allclose(quasi_static_elongations(params),
                               [0, 0, 0, 0.25, 0.5, 0.75, 1.0, 1.25])
    # more friction (more nonlinearity): a more concave profile
    slopes = [elongation_slope(quasi_static_elongations(CHAIN._replace(friction_forward=m)))
              for m in (0.0, 0.05, 0.1, 0.15)]
    assert slopes[0] == 0 and np.all(np.diff(slopes) > 0)
    np.testing.assert_allclose(large_noise_elongations(
        CHAIN._replace(friction_forward=0.1, friction_backward=0.3)),
        1.5 + (9 - np.arange(1, 9)) * 0.1)


def test_noise_turns_the_profile_from_concave_to_linear_to_convex_at_fixed_training_time():
    """μ₋ = 3μ₊: at a fixed training time the slope of d_ℓ falls monotonically with σ, from the
    concave noiseless profile through linear to the convex noise-dominated one (limits 2-4 of
    theory/spring_block.py). Each step is resolved beyond 4 combined standard errors."""
    params = CHAIN._replace(friction_forward=0.1, friction_backward=0.3)
    slopes, errors = [], []
    for noise in (0.0, 0.1, 0.2, 0.4, 1.6):
        result = simulate(params._replace(noise=noise), time_step=0.1, ramp_time=50.0,
                          training_time=100.0, average_time=25.0, num_realizations=200,
                          seed=5)
        per_realization = np.array([elongation_slope(d) for d in result.per_realization])
        slopes.append(elongation_slope(result.elongations))
        errors.append(per_realization.std(ddof=1) / np.sqrt(len(per_realization)))
    slopes, errors = np.array(slopes), np.array(errors)
    steps = -np.diff(slopes) / np.hypot(errors[1:], errors[:-1] + 1e-300)
    assert np.all(steps > 4), (slopes, errors)
    assert slopes[0] > 0 and slopes[-1] < -4 * errors[-1], slopes
    assert profile_shape(np.ones(8), tolerance=1e-12) == "linear"


def test_symmetric_friction_in_the_noise_dominated_state_is_linear_asymmetric_is_convex():
    """Limit 3 at long times: the mean friction per block is (μ₊ − μ₋)/2, giving a linear
    profile for μ₊ = μ₋ (slope within 4 standard errors of 0) and a convex one for μ₋ > μ₊."""
    for backward, shape in ((0.1, "linear"), (0.3, "convex")):
        params = CHAIN._replace(friction_forward=0.1, friction_backward=backward, noise=1.6)
        result = simulate(params, time_step=0.1, ramp_time=50.0, training_time=300.0,
                          average_time=200.0, num_realizations=100, seed=6)
        assert result.converged, result.residual
        per_realization = np.array([elongation_slope(d) for d in result.per_realization])
        error = per_realization.std(ddof=1) / np.sqrt(len(per_realization))
        assert profile_shape(result.elongations, tolerance=4 * error) == shape
        np.testing.assert_allclose(result.mean_friction, (0.1 - backward) / 2, atol=0.01)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="num_layers"):
        quasi_static_elongations(CHAIN._replace(num_layers=0))
    with pytest.raises(ValueError, match="friction_backward"):
        large_noise_elongations(CHAIN._replace(friction_backward=-1.0))
    with pytest.raises(ValueError, match="time_step"):
        simulate(CHAIN, time_step=1.5, ramp_time=0.0, training_time=10.0, average_time=1.0)
    with pytest.raises(ValueError, match="ramp_time"):
        simulate(CHAIN, time_step=0.1, ramp_time=20.0, training_time=10.0, average_time=1.0)
