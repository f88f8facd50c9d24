"""Fully connected networks: the analytic one-hidden-layer backward equals the generic
batched-autograd pass; the per-layer observables equal their definitions and, at the
prior, the first layer's empirical kernel has the NNGP kernel as its mean."""
import math

import numpy as np
import pytest
import torch

from langevin import observables as obs
from langevin.activations import ACTIVATIONS
from langevin.integrators import LangevinState
from langevin.models import FullyConnectedNetwork, TwoLayerNetwork
from langevin.models.fc import fc_layer_names
from theory.kernels import two_layer_gram

C, D, N_POINTS = 4, 5, 6


def _variances(names, value=0.3):
    return {name: value for name in names}


def _network(widths, activation, bias, gradient="auto"):
    variances = _variances(fc_layer_names(len(widths), bias))
    return FullyConnectedNetwork(D, widths, activation, variances, bias, gradient)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_fused_two_layer_path_equals_generic_autograd(activation, bias):
    fast = _network((7,), activation, bias)
    generic = _network((7,), activation, bias, gradient="autograd")
    generator = torch.Generator().manual_seed(3)
    theta = fast.sample_prior(C, generator, torch.float64)
    x = torch.randn(N_POINTS, D, generator=generator, dtype=torch.float64)
    y = torch.randn(N_POINTS, generator=generator, dtype=torch.float64)
    loss_fast, grad_fast = fast.loss_and_gradient(theta, x, y)
    loss_generic, grad_generic = generic.loss_and_gradient(theta, x, y)
    torch.testing.assert_close(loss_fast, loss_generic, rtol=1e-13, atol=1e-13)
    assert set(grad_fast) == set(grad_generic) == set(fast.layer_names)
    for layer in fast.layer_names:
        torch.testing.assert_close(grad_fast[layer], grad_generic[layer], rtol=1e-11, atol=1e-13)


def test_two_layer_network_is_fc_with_one_hidden_layer_and_old_layer_names():
    model = TwoLayerNetwork(D, 9, "erf", {"w": 0.2, "a": 0.1})
    assert model.layer_names == ("w", "a") and model.widths == (9,)
    deep = _network((4, 3, 2), "tanh", True)
    assert deep.layer_names == ("w", "b1", "w2", "b2", "w3", "b3", "a")
    assert deep.parameter_shapes() == {"w": (4, D), "b1": (4,), "w2": (3, 4), "b2": (3,),
                                       "w3": (2, 3), "b3": (2,), "a": (2,)}
    assert deep.fan_ins() == {"w": D, "b1": 1, "w2": 4, "b2": 1, "w3": 3, "b3": 1, "a": 2}


def test_generic_gradient_works_under_no_grad_and_leaves_theta_alone():
    model = _network((4, 3), "erf", False)
    generator = torch.Generator().manual_seed(0)
    theta = model.sample_prior(C, generator, torch.float64)
    before = {k: v.clone() for k, v in theta.items()}
    x = torch.randn(N_POINTS, D, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        loss, grad = model.loss_and_gradient(theta, x, torch.zeros(N_POINTS, dtype=torch.float64))
    assert not loss.requires_grad and all(not g.requires_grad for g in grad.values())
    assert all(torch.equal(before[k], theta[k]) and not theta[k].requires_grad for k in theta)


@pytest.mark.parametrize("bad, message", [
    (dict(widths=()), "width"), (dict(widths=(3, 0)), "width"), (dict(widths=(2.5,)), "width"),
    (dict(activation="sigmoid"), "activation"), (dict(gradient="fast"), "gradient"),
])
def test_fc_validation(bad, message):
    args = dict(input_dim=D, widths=(3,), activation="erf",
                prior_variances={"w": 1.0, "a": 1.0}) | bad
    gradient = args.pop("gradient", "auto")
    with pytest.raises(ValueError, match=message):
        FullyConnectedNetwork(**args, gradient=gradient)


def _state(theta):
    zero = torch.zeros(next(iter(theta.values())).shape[0], dtype=torch.float64)
    return LangevinState(theta=theta, potential=zero, loss=zero,
                         gradient={k: torch.zeros_like(v) for k, v in theta.items()})


def test_preactivation_statistics_and_kernels_equal_their_definitions():
    model = _network((6, 5), "tanh", True)
    generator = torch.Generator().manual_seed(1)
    theta = model.sample_prior(C, generator, torch.float64)
    x = torch.randn(3, D, generator=generator, dtype=torch.float64)
    state = _state(theta)
    stats = obs.preactivation_statistics(model.preactivations, x).fn(state)
    kernels = obs.empirical_kernels(model.preactivations, torch.tanh, x).fn(state)["empirical_kernel"]
    assert stats["preactivation_mean"].shape == (C, 2, 3) and kernels.shape == (C, 2, 3, 3)
    hidden = model.preactivations(theta, x)
    for layer, h in enumerate(hidden):
        for chain in range(C):
            values = h[chain].numpy()  # (probe, neuron)
            mean = values.mean(axis=1)
            centered = values - mean[:, None]
            variance = (centered ** 2).mean(axis=1)
            np.testing.assert_allclose(stats["preactivation_mean"][chain, layer], mean, rtol=1e-12)
            np.testing.assert_allclose(stats["preactivation_variance"][chain, layer], variance,
                                       rtol=1e-12)
            np.testing.assert_allclose(stats["preactivation_kurtosis"][chain, layer],
                                       (centered ** 4).mean(axis=1) / variance ** 2, rtol=1e-12)
            features = np.tanh(values)
            np.testing.assert_allclose(kernels[chain, layer], features @ features.T / h.shape[-1],
                                       rtol=1e-12)


def test_first_layer_empirical_kernel_at_the_prior_has_the_nngp_mean():
    # Under the prior the neurons of layer 1 are iid, so E[(1/N) Σ_i φ(h_i(x)) φ(h_i(x'))]
    # = E[φ(w·x) φ(w·x')] exactly: the two-layer NNGP Gram with σ_a² = 1.
    sigma_w2, width, chains = 1.5, 16, 2000
    model = FullyConnectedNetwork(D, (width, 3), "erf",
                                  {"w": sigma_w2 / D, "w2": 1 / width, "a": 1 / 3})
    generator = torch.Generator().manual_seed(4)
    theta = model.sample_prior(chains, generator, torch.float64)
    x = torch.randn(3, D, generator=generator, dtype=torch.float64)
    kernels = obs.empirical_kernels(model.preactivations, torch.erf, x).fn(_state(theta))
    first = kernels["empirical_kernel"][:, 0].numpy()  # (chains, 3, 3), independent chains
    mean = first.mean(axis=0)
    standard_error = first.std(axis=0, ddof=1) / math.sqrt(chains)
    expected = two_layer_gram(x.numpy(), None, "erf", sigma_a2=1.0, sigma_w2=sigma_w2)
    assert np.all(np.abs(mean - expected) < 4 * standard_error)
