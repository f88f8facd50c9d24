"""Hyperparameters held as (C, 1, …) tensors: per-chain step sizes give each chain its own
exact stationary law, the tensors have the state's dtype and device, bad values are named.
(The float path's floats are unchanged: tests/langevin/test_step_bitwise.py.)"""
import numpy as np
import pytest
import torch

from langevin.integrators import euler_maruyama
from langevin.potential import gaussian_potential
from langevin.schemes import INTEGRATORS
from tests.langevin.chain_averages import assert_within_4_se

ETAS = (0.1, 0.5, 1.0)  # ηk: ULA's variance is 1.05, 1.33 and 2 times T/k


def _ula_variance(k, eta, t):
    return t / (k * (1 - eta * k / 2))


def _exact_variance(k, eta, t):
    return t / k


LAW = {"euler_maruyama": _ula_variance, "baoab": _exact_variance, "mala": _exact_variance}


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_per_chain_step_sizes_give_each_chain_its_exact_stationary_variance(name):
    k, temperature, per_group = 1.0, 0.7, 300
    etas = torch.tensor(ETAS, dtype=torch.float64).repeat_interleave(per_group)
    integrator = INTEGRATORS[name](gaussian_potential({"x": k}), {"x": etas}, temperature)
    generator = torch.Generator().manual_seed(41)
    state = integrator.init({"x": torch.zeros(etas.shape[0], 2, dtype=torch.float64)})
    for _ in range(200):  # slowest relaxation: ~1/(ηk) = 10 steps (ULA), BAOAB ~2/(ζh) ≈ 5
        state, _ = integrator.step(state, generator)
    total, steps = 0.0, 1000
    for _ in range(steps):
        state, _ = integrator.step(state, generator)
        total = total + state.theta["x"] ** 2
    per_chain = (total / steps).numpy().reshape(len(ETAS), per_group, 2)
    for group, eta in enumerate(ETAS):
        assert_within_4_se(per_chain[group], np.full(2, LAW[name](k, eta, temperature)))


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_coefficients_are_chain_tensors_of_the_state_dtype(name, dtype):
    integrator = INTEGRATORS[name](gaussian_potential({"x": 1.0, "y": 2.0}),
                                   {"x": 0.1, "y": 0.2}, 0.5)
    theta = {"x": torch.zeros(5, 3, 2, dtype=dtype), "y": torch.zeros(5, 4, dtype=dtype)}
    coefficients = integrator.coefficients(theta)
    layers = coefficients.get("layers", coefficients)
    for layer, values in layers.items():
        for key, value in values.items():
            assert isinstance(value, torch.Tensor), (layer, key)
            assert value.shape[0] == 5 and value.dtype == dtype, (layer, key, value.shape)
            assert value.ndim in (1, theta[layer].ndim), (layer, key)
    assert integrator.coefficients(theta) is coefficients  # built once per (C, dtype, device)


@pytest.mark.parametrize("bad", [torch.tensor([0.1, -0.1]), torch.tensor([0.1, float("nan")]),
                                 torch.ones(2, 2)])
def test_bad_per_chain_step_sizes_are_named(bad):
    with pytest.raises(ValueError, match=r"step_sizes\['x'\]"):
        euler_maruyama(gaussian_potential({"x": 1.0}), {"x": bad}, 0.1)


def test_per_chain_lengths_must_agree():
    with pytest.raises(ValueError, match="same number of chains"):
        euler_maruyama(gaussian_potential({"x": 1.0}), {"x": torch.full((3,), 0.1)},
                       torch.ones(4, dtype=torch.float64))
