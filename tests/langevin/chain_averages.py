"""Monte Carlo helpers and the reference problem shared by the integrator tests.

Chains are independent, so each chain's time average is one independent estimate and the
standard error of their mean is sd_over_chains/√C; a test passes within 4 such errors.
"""
import numpy as np
import torch


def time_averages(integrator, theta0, generator, burn_in, num_steps, fn):
    """Per-chain time average of fn(state) over num_steps steps after burn_in steps."""
    state = integrator.init(theta0)
    for _ in range(burn_in):
        state, _ = integrator.step(state, generator)
    total = None
    for _ in range(num_steps):
        state, _ = integrator.step(state, generator)
        value = fn(state)
        total = value if total is None else total + value
    return (total / num_steps).numpy()


def assert_within_4_se(per_chain: np.ndarray, truth: np.ndarray):
    """Assert |mean over chains − truth| < 4 standard errors; return (estimate, error)."""
    estimate = per_chain.mean(axis=0)
    standard_error = per_chain.std(axis=0, ddof=1) / np.sqrt(per_chain.shape[0])
    z = np.abs(estimate - truth) / standard_error
    assert np.all(z < 4), f"estimate {estimate}, truth {truth}, z = {z}"
    return estimate, standard_error


def linear_regression_data(generator):
    """A small Bayesian linear-regression data set (d = 3, n = 10) in float64."""
    d, n = 3, 10
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64) + 0.3 * torch.randn(
        n, generator=generator, dtype=torch.float64)
    return x, y
