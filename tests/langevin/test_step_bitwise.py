"""The faster steps (reused buffers, one noise call for all layers, in-place updates)
give bit for bit the floats and the random stream of the steps they replaced
(`tests/langevin/frozen_steps.py`), so existing runs resume and reproduce unchanged."""
import math

import pytest
import torch

from langevin.activations import get_activation
from langevin.integrators import euler_maruyama
from langevin.mala import mala
from langevin.models import FullyConnectedNetwork
from langevin.noise import NormalDraws, fused_draw_keeps_stream
from langevin.potential import make_potential
from langevin.underdamped import baoab
from tests.langevin import frozen_steps

STEPS = 4


def _problem(width, bias, activation, dtype, chains=8, d=3, n=10):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randn(n, generator=g, dtype=dtype)
    names = ("w", "b1", "a") if bias else ("w", "a")
    variances = {"w": 1.0 / d, "a": 1.0 / width, "b1": 0.5}
    model = FullyConnectedNetwork(d, (width,), activation,
                                  {k: variances[k] for k in names}, bias=bias)
    temperature = 0.05
    decays = {k: temperature / model.prior_variances[k] for k in names}
    sizes = {k: 0.02 / decays[k] for k in names}
    theta = model.sample_prior(chains, g, dtype)
    return model, x, y, decays, sizes, theta


CASES = [  # (width, bias, activation, dtype): width 6 fuses the noise, width 5 does not
    (6, False, "erf", torch.float32),
    (5, True, "tanh", torch.float32),
    (6, True, "erf", torch.float64),
    (6, False, "relu", torch.float32),
]


def _temperature(kind, chains, dtype):
    if kind == "float":
        return 0.05
    return torch.linspace(0.02, 0.2, chains, dtype=torch.float64)


@pytest.mark.parametrize("width,bias,activation,dtype", CASES)
@pytest.mark.parametrize("scheme", ["euler_maruyama", "mala", "baoab"])
@pytest.mark.parametrize("temperature_kind", ["float", "per_chain"])
def test_step_is_bitwise_the_step_it_replaced(width, bias, activation, dtype, scheme,
                                              temperature_kind):
    model, x, y, decays, sizes, theta = _problem(width, bias, activation, dtype)
    temperature = _temperature(temperature_kind, 8, dtype)
    potential = make_potential(model, x, y, decays)
    frozen = frozen_steps.make_potential(get_activation(activation), x, y, decays, bias)
    factory = {"euler_maruyama": euler_maruyama, "mala": mala, "baoab": baoab}[scheme]
    integrator = factory(potential, sizes, temperature)
    state = integrator.init(dict(theta))
    new_gen, old_gen = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    old_theta, old_value = dict(theta), frozen(theta)
    old_momentum = {k: torch.zeros_like(v) for k, v in theta.items()}
    for _ in range(STEPS):
        state, _ = integrator.step(state, new_gen)
        if scheme == "euler_maruyama":
            old_theta, old_value = frozen_steps.euler_maruyama_step(
                frozen, sizes, temperature, old_theta, old_value.gradient, old_gen)
        elif scheme == "mala":
            old_theta, old_value = frozen_steps.mala_step(frozen, sizes, temperature,
                                                          old_theta, old_value, old_gen)
        else:
            old_theta, old_momentum, old_value = frozen_steps.baoab_step(
                frozen, sizes, temperature, 1.0, old_theta, old_momentum,
                old_value.gradient, old_gen)
    for layer in sizes:
        assert bool(torch.isfinite(state.theta[layer]).all())
        assert torch.equal(state.theta[layer], old_theta[layer]), layer
        assert torch.equal(state.gradient[layer], old_value.gradient[layer]), layer
        if scheme == "baoab":
            assert torch.equal(state.momentum[layer], old_momentum[layer]), layer
    assert torch.equal(state.potential, old_value.potential)
    assert torch.equal(state.loss, old_value.loss)
    assert torch.equal(new_gen.get_state(), old_gen.get_state())


@pytest.mark.parametrize("shapes,fused", [
    ([(4, 8, 2), (4, 8)], True),  # 64 and 32 values: multiples of 16
    ([(4, 8, 2), (3, 7)], True),  # the last layer may have a tail (21 values)
    ([(4, 7, 3), (4, 7)], False),  # 84 values: not a multiple of 16
    ([(2, 3), (4, 8)], False),  # 6 values: the serial kernel
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_noise_is_the_stream_of_one_randn_per_layer(shapes, fused, dtype):
    assert fused_draw_keeps_stream(shapes, dtype, torch.device("cpu")) is fused
    like = {f"l{i}": torch.zeros(shape, dtype=dtype) for i, shape in enumerate(shapes)}
    draws = NormalDraws(like)
    g_new, g_old = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(3):  # the buffers are reused
        noise = draws.draw(like, g_new)
        for layer, tensor in like.items():
            expected = torch.randn(tensor.shape, generator=g_old, dtype=dtype)
            assert torch.equal(noise[layer], expected), layer
    assert torch.equal(g_new.get_state(), g_old.get_state())


def test_workspace_gradient_never_aliases_the_reused_buffers():
    model, x, y, decays, sizes, theta = _problem(6, True, "erf", torch.float32)
    first_loss, first = model.loss_and_gradient(theta, x, y)
    kept = {k: v.clone() for k, v in first.items()}
    other = {k: v * 1.5 for k, v in theta.items()}
    model.loss_and_gradient(other, x, y)  # overwrites the workspace
    for layer, value in first.items():
        assert torch.equal(value, kept[layer]), layer
    assert math.isfinite(float(first_loss.sum()))
