"""Likelihood registry: losses and gradients against autograd and closed forms, chain
independence, and the logistic-regression posterior sampled by MALA at T = 1 against
quadrature of the exact posterior (within 4 Monte Carlo standard errors)."""
import math

import numpy as np
import pytest
import torch

from tests.langevin.chain_averages import assert_within_4_se, time_averages
from tests.langevin.reference_losses import reference_loss

from langevin.likelihoods import (
    LIKELIHOODS, check_labels, get_likelihood, loss_and_parameter_gradient,
    unsatisfied_constraints, with_likelihood)
from langevin.mala import mala
from langevin.models import LinearModel, TwoLayerNetwork
from langevin.potential import make_potential

NAMES = sorted(LIKELIHOODS)


def _labels(n, generator, binary):
    if binary:
        return torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5,
                           -1.0, 1.0).to(torch.float64)
    return torch.randn(n, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_output_gradient_match_autograd(name):
    generator = torch.Generator().manual_seed(0)
    likelihood = get_likelihood(name)
    f = 2.0 * torch.randn(5, 40, generator=generator, dtype=torch.float64)
    y = _labels(40, generator, likelihood.binary_labels)
    loss, grad = likelihood.loss_and_output_gradient(f, y)
    f_leaf = f.clone().requires_grad_(True)
    reference = reference_loss(name, f_leaf, y)
    (reference_grad,) = torch.autograd.grad(reference.sum(), f_leaf)
    assert loss.shape == (5,) and grad.shape == (5, 40)
    torch.testing.assert_close(loss, reference.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, reference_grad, rtol=1e-12, atol=1e-12)


def test_closed_forms():
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    # logistic at f = 0: log 2 per point, gradient −y/2
    loss, grad = get_likelihood("logistic").loss_and_output_gradient(torch.zeros(1, 4).double(), y)
    torch.testing.assert_close(loss, torch.tensor([4 * math.log(2.0)], dtype=torch.float64))
    torch.testing.assert_close(grad, -y[None] / 2)
    # logistic far out: margins ±1000 give ℓ = 1000 (wrong side, gradient −y) and ℓ = 0
    # (right side, gradient 0) with no overflow.
    f = torch.tensor([[1000.0, 1000.0]], dtype=torch.float64)
    y2 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    loss, grad = get_likelihood("logistic").loss_and_output_gradient(f, y2)
    torch.testing.assert_close(loss, torch.tensor([1000.0], dtype=torch.float64))
    torch.testing.assert_close(grad, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    # hinges on margins y f = 2, 0.5, −1, 1.5: Δ = −1, 0.5, 2, −0.5
    f = torch.tensor([[2.0, -0.5, 1.0, 1.5]], dtype=torch.float64)
    y3 = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    loss, grad = get_likelihood("hinge").loss_and_output_gradient(f, y3)
    torch.testing.assert_close(loss, torch.tensor([2.5], dtype=torch.float64))
    torch.testing.assert_close(grad, torch.tensor([[0.0, 1.0, 1.0, 0.0]], dtype=torch.float64))
    loss, grad = get_likelihood("quadratic_hinge").loss_and_output_gradient(f, y3)
    torch.testing.assert_close(loss, torch.tensor([0.5 * (0.25 + 4.0)], dtype=torch.float64))
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.5, 2.0, 0.0]], dtype=torch.float64))
    assert unsatisfied_constraints(f, y3).tolist() == [2]


def _network():
    return TwoLayerNetwork(input_dim=3, width=7, activation="tanh",
                           prior_variances={"w": 1 / 3, "a": 1 / 7})


@pytest.mark.parametrize("name", NAMES)
def test_parameter_gradient_matches_a_per_chain_autograd_reference(name):
    generator = torch.Generator().manual_seed(1)
    model = _network()
    theta = model.sample_prior(4, generator, dtype=torch.float64)
    x = torch.randn(11, 3, generator=generator, dtype=torch.float64)
    y = _labels(11, generator, get_likelihood(name).binary_labels)
    loss, gradient = loss_and_parameter_gradient(get_likelihood(name), model.predict, theta, x, y)
    for c in range(4):  # the reference: one chain at a time
        leaves = {k: v[c:c + 1].clone().requires_grad_(True) for k, v in theta.items()}
        reference = reference_loss(name, model.predict(leaves, x), y)
        grads = torch.autograd.grad(reference.sum(), list(leaves.values()))
        torch.testing.assert_close(loss[c], reference[0].detach(), rtol=1e-12, atol=1e-12)
        for layer, g in zip(leaves, grads):
            torch.testing.assert_close(gradient[layer][c], g[0], rtol=1e-10, atol=1e-12)
    assert not any(v.requires_grad for v in theta.values())


def test_gaussian_entry_reproduces_the_analytic_two_layer_backward_pass():
    generator = torch.Generator().manual_seed(2)
    model = _network()
    theta = model.sample_prior(3, generator, dtype=torch.float64)
    x = torch.randn(9, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(9, generator=generator, dtype=torch.float64)
    loss, gradient = with_likelihood(model, "gaussian").loss_and_gradient(theta, x, y)
    analytic_loss, analytic_gradient = model.loss_and_gradient(theta, x, y)
    torch.testing.assert_close(loss, analytic_loss, rtol=1e-12, atol=1e-12)
    for layer in model.layer_names:
        torch.testing.assert_close(gradient[layer], analytic_gradient[layer],
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_chains_are_independent(name):
    generator = torch.Generator().manual_seed(3)
    model = _network()
    theta = model.sample_prior(5, generator, dtype=torch.float64)
    x = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    y = _labels(8, generator, get_likelihood(name).binary_labels)
    wrapped = with_likelihood(model, name)
    loss, gradient = wrapped.loss_and_gradient(theta, x, y)
    perturbed = {k: v.clone() for k, v in theta.items()}
    perturbed["w"][0] += 0.3
    perturbed["a"][0] -= 0.2
    loss2, gradient2 = wrapped.loss_and_gradient(perturbed, x, y)
    assert torch.equal(loss[1:], loss2[1:])
    assert loss[0] != loss2[0]
    for layer in model.layer_names:
        assert torch.equal(gradient[layer][1:], gradient2[layer][1:])


def test_bad_names_and_labels_are_rejected():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        get_likelihood("probit")
    with pytest.raises(ValueError, match="likelihood must be one of"):
        with_likelihood(_network(), "probit")
    with pytest.raises(ValueError, match="'logistic' needs labels ±1"):
        check_labels("logistic", torch.tensor([1.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="shape"):
        check_labels("hinge", torch.ones(2, 3))
    check_labels("gaussian", torch.tensor([0.3, -2.0]))
    check_labels("quadratic_hinge", torch.tensor([1.0, -1.0]))


def _logistic_problem():
    """Two-parameter logistic regression f = θ·x, n = 24 points, labels from a noisy teacher."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 2))
    logits = x @ np.array([1.5, -0.8])
    y = np.where(rng.random(24) < 1 / (1 + np.exp(-logits)), 1.0, -1.0)
    return x, y


def _exact_moments(x, y, prior_variance):
    """E[θ], E[θθᵀ] under p(θ) ∝ Π_μ s(y_μ θ·x_μ) N(θ; 0, prior_variance I), by a 2-D
    trapezoid rule on a grid covering ±10 posterior standard deviations (Laplace estimate)."""
    def log_post(t):  # t: (..., 2)
        margins = (t @ x.T) * y
        return -np.logaddexp(0.0, -margins).sum(-1) - 0.5 * (t * t).sum(-1) / prior_variance
    # Laplace width for the grid extent: curvature Σ s(1 − s) x xᵀ + I/σ² at θ = 0 (upper bound)
    curvature = 0.25 * x.T @ x + np.eye(2) / prior_variance
    half_width = 10.0 * np.sqrt(np.diag(np.linalg.inv(curvature))) + 3.0
    axes = [np.linspace(-h, h, 801) for h in half_width]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    logp = log_post(grid)
    weights = np.exp(logp - logp.max())
    def integrate(values):
        return np.trapezoid(np.trapezoid(values, axes[1], axis=1), axes[0], axis=0)
    z = integrate(weights)
    mean = np.array([integrate(weights * grid[..., i]) for i in range(2)]) / z
    second = np.array([[integrate(weights * grid[..., i] * grid[..., j]) for j in range(2)]
                       for i in range(2)]) / z
    return mean, second


def test_mala_samples_the_logistic_regression_posterior_at_unit_temperature():
    x_np, y_np = _logistic_problem()
    prior_variance = 2.0  # γ = T/prior_variance at T = 1
    mean, second = _exact_moments(x_np, y_np, prior_variance)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = with_likelihood(LinearModel(input_dim=2, prior_variance=prior_variance), "logistic")
    potential = make_potential(model, x, y, {"theta": 1.0 / prior_variance})
    integrator = mala(potential, {"theta": 0.15}, temperature=1.0)
    generator = torch.Generator().manual_seed(7)
    theta0 = model.model.sample_prior(256, generator, dtype=torch.float64)

    def moments(state):
        t = state.theta["theta"]
        return torch.stack([t[:, 0], t[:, 1], t[:, 0] ** 2, t[:, 1] ** 2, t[:, 0] * t[:, 1]], 1)

    per_chain = time_averages(integrator, theta0, generator, burn_in=200, num_steps=600,
                              fn=moments)
    truth = np.array([mean[0], mean[1], second[0, 0], second[1, 1], second[0, 1]])
    assert_within_4_se(per_chain, truth)
    # The test has power: the posterior mean is many standard errors away from the prior
    # mean 0, so a sampler of the prior (or of a wrong likelihood sign) fails it.
    standard_error = per_chain.std(0, ddof=1) / np.sqrt(per_chain.shape[0])
    assert np.all(np.abs(truth[:2]) > 10 * standard_error[:2])
