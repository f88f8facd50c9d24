"""Batched two-layer networks: forward and gradients against a per-chain reference,
chain independence, and the analytic backward pass against autograd."""
import pytest
import torch

from langevin.activations import ACTIVATIONS
from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.models import TwoLayerNetwork
from langevin.potential import make_potential

NUM_CHAINS, WIDTH, DIM, N = 5, 7, 4, 9


def _problem(activation, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    model = TwoLayerNetwork(DIM, WIDTH, activation, {"w": 0.5, "a": 0.3})
    theta = model.sample_prior(NUM_CHAINS, generator, dtype)
    x = torch.randn(N, DIM, generator=generator, dtype=dtype)
    y = torch.randn(N, generator=generator, dtype=dtype)
    return model, theta, x, y, generator


def _reference_single_chain(activation, w, a, x, y, decays):
    """One network written plainly (loop-free, no batching), differentiated by autograd."""
    w = w.clone().requires_grad_(True)
    a = a.clone().requires_grad_(True)
    f = ACTIVATIONS[activation].value(x @ w.T) @ a
    potential = 0.5 * ((f - y) ** 2).sum() + 0.5 * decays["w"] * (w**2).sum() \
        + 0.5 * decays["a"] * (a**2).sum()
    potential.backward()
    return f.detach(), potential.detach(), w.grad, a.grad


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_batched_forward_and_gradient_equal_per_chain_reference(activation):
    model, theta, x, y, _ = _problem(activation)
    decays = {"w": 0.7, "a": 1.3}
    value = make_potential(model, x, y, decays)(theta)
    predictions = model.predict(theta, x)
    for c in range(NUM_CHAINS):
        f, u, gw, ga = _reference_single_chain(activation, theta["w"][c], theta["a"][c], x, y, decays)
        torch.testing.assert_close(predictions[c], f, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(value.potential[c], u, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(value.gradient["w"][c], gw, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(value.gradient["a"][c], ga, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_analytic_gradient_equals_autograd_of_summed_potential(activation):
    # One backward pass of Σ_c U_c gives every chain's own gradient (chains do not interact).
    model, theta, x, y, _ = _problem(activation)
    decays = {"w": 0.7, "a": 1.3}
    potential = make_potential(model, x, y, decays)
    leaves = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
    f = model.predict(leaves, x)
    total = 0.5 * ((f - y) ** 2).sum() + sum(0.5 * decays[k] * (v**2).sum() for k, v in leaves.items())
    total.backward()
    analytic = potential(theta).gradient
    for layer in theta:
        torch.testing.assert_close(analytic[layer], leaves[layer].grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chain_independence_perturbing_chain_0_leaves_others_bit_identical(dtype):
    model, theta, x, y, _ = _problem("erf", dtype)
    decays = {"w": 0.7, "a": 1.3}
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                per_layer_step_sizes(0.01, decays), 0.05)
    perturbed = {k: v.clone() for k, v in theta.items()}
    perturbed["w"][0] += 0.5
    perturbed["a"][0] -= 0.25
    runs = []
    for start in (theta, perturbed):
        generator = torch.Generator().manual_seed(11)
        state = integrator.init(start)
        for _ in range(50):
            state, _ = integrator.step(state, generator)
        runs.append(state)
    for layer in theta:
        assert torch.equal(runs[0].theta[layer][1:], runs[1].theta[layer][1:])
        assert not torch.equal(runs[0].theta[layer][0], runs[1].theta[layer][0])


def test_prior_samples_have_the_prior_variances():
    model = TwoLayerNetwork(20, 300, "erf", {"w": 0.05, "a": 0.01})
    theta = model.sample_prior(200, torch.Generator().manual_seed(1), torch.float64)
    for layer, variance in model.prior_variances.items():
        values = theta[layer].flatten()
        # Var of the sample variance of m Gaussian draws: 2σ⁴/(m−1).
        se = variance * (2 / (values.numel() - 1)) ** 0.5
        assert abs(values.var().item() - variance) < 4 * se


def test_model_validation():
    with pytest.raises(ValueError, match="activation"):
        TwoLayerNetwork(3, 4, "sigmoid", {"w": 1.0, "a": 1.0})
    with pytest.raises(ValueError, match="prior_variances"):
        TwoLayerNetwork(3, 4, "erf", {"w": 1.0})
    with pytest.raises(ValueError, match="width"):
        TwoLayerNetwork(3, 0, "erf", {"w": 1.0, "a": 1.0})
