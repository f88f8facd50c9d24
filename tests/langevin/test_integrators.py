"""Euler–Maruyama (ULA) against exact stationary laws.

Tolerances come from the Monte Carlo error: chains are independent, so each chain's
time average is one independent estimate, and the standard error of the mean over C
chains is sd_over_chains/√C. A test passes when |estimate − truth| < 4 standard errors.
"""
import numpy as np
import pytest
import scipy.linalg
import torch

from tests.langevin.chain_averages import (
    assert_within_4_se, linear_regression_data, time_averages)

from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.models import LinearModel
from langevin.potential import gaussian_potential, make_potential


@pytest.mark.parametrize("k, temperature, eta, expected", [
    (1.0, 1.0, 0.1, 1.0526315789),   # T/(k(1 − ηk/2))
    (2.0, 0.5, 0.01, 0.2525252525),  # T/(k(1 − ηk/2))
])
def test_ula_gaussian_stationary_variance_is_the_discrete_chain_law(k, temperature, eta, expected):
    assert expected == pytest.approx(temperature / (k * (1 - eta * k / 2)), rel=1e-9)
    num_chains = 4000
    generator = torch.Generator().manual_seed(7)
    integrator = euler_maruyama(gaussian_potential({"x": k}), {"x": eta}, temperature)
    theta0 = {"x": torch.zeros(num_chains, 1, dtype=torch.float64)}
    relaxation = int(20 / (eta * k))
    second_moment = time_averages(integrator, theta0, generator, relaxation, 10 * relaxation // 4,
                                   lambda s: s.theta["x"][:, 0] ** 2)
    estimate, se = assert_within_4_se(second_moment[:, None], np.array([expected]))
    if k * eta >= 0.1:  # the O(η) bias is resolved: the continuum value T/k is rejected
        assert abs(estimate[0] - temperature / k) > 4 * se[0]


@pytest.mark.parametrize("preconditioner, step_size", [("none", 0.004), ("prior", 0.001)])
def test_bayesian_linear_regression_matches_exact_laws(preconditioner, step_size):
    generator = torch.Generator().manual_seed(3)
    x, y = linear_regression_data(generator)
    noise_variance, prior_variance = 0.5, 2.0
    temperature = noise_variance  # σ² = T for the ½-SSE loss
    decay = temperature / prior_variance  # γ = T / σ_p²
    model = LinearModel(3, prior_variance)
    potential = make_potential(model, x, y, {"theta": decay})
    sizes = per_layer_step_sizes(step_size, {"theta": decay}, preconditioner)
    integrator = euler_maruyama(potential, sizes, temperature)

    X, Y = x.numpy(), y.numpy()
    # Exact Bayesian posterior (Bayesian linear regression).
    post_cov = np.linalg.inv(X.T @ X / noise_variance + np.eye(3) / prior_variance)
    post_mean = post_cov @ X.T @ Y / noise_variance
    # Exact law of the discrete chain θ' = Mθ + ηb + √(2ηT)ξ, M = I − ηA, A = XᵀX + γI:
    # mean A⁻¹b (unbiased), covariance Σ = MΣMᵀ + 2ηT I.
    eta = sizes["theta"]
    A = X.T @ X + decay * np.eye(3)
    M = np.eye(3) - eta * A
    chain_cov = scipy.linalg.solve_discrete_lyapunov(M, 2 * eta * temperature * np.eye(3))
    np.testing.assert_allclose(np.linalg.solve(A, X.T @ Y), post_mean, rtol=1e-12)

    num_chains = 512
    theta0 = model.sample_prior(num_chains, generator, torch.float64)
    relaxation = int(10 / (eta * np.linalg.eigvalsh(A).min()))
    iu = np.triu_indices(3)

    def moments(state):
        t = state.theta["theta"]
        outer = (t[:, :, None] * t[:, None, :])[:, iu[0], iu[1]]
        return torch.cat([t, outer], dim=1)

    per_chain = time_averages(integrator, theta0, generator, relaxation, 2 * relaxation, moments)
    # Second moments about zero: Σ + μμᵀ.
    truth_chain = np.concatenate([post_mean, (chain_cov + np.outer(post_mean, post_mean))[iu]])
    assert_within_4_se(per_chain, truth_chain)
    # The same samples against the exact posterior, allowing exactly the known O(η) bias.
    truth_post = np.concatenate([post_mean, (post_cov + np.outer(post_mean, post_mean))[iu]])
    bias = np.abs(truth_chain - truth_post)
    se = per_chain.std(axis=0, ddof=1) / np.sqrt(num_chains)
    assert np.all(np.abs(per_chain.mean(0) - truth_post) < 4 * se + bias)
    assert np.all(bias < 2 * se), "step size too large for the posterior test to be meaningful"


def test_step_size_validation_names_the_value():
    with pytest.raises(ValueError, match="step_size"):
        per_layer_step_sizes(-0.1, {"w": 1.0})
    with pytest.raises(ValueError, match="temperature"):
        euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, -1.0)
    with pytest.raises(ValueError, match="preconditioner"):
        per_layer_step_sizes(0.1, {"w": 1.0}, "adam")


def test_step_does_not_mutate_its_input_state():
    generator = torch.Generator().manual_seed(0)
    integrator = euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, 1.0)
    state = integrator.init({"x": torch.ones(4, 2)})
    before = state.theta["x"].clone()
    integrator.step(state, generator)
    assert torch.equal(state.theta["x"], before)
