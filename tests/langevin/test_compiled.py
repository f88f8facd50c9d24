"""torch.compile of the whole step (langevin.compiled): the compiled chain is the eager
chain to float tolerance, new hyperparameter values reuse the compiled graph, composite
schemes are refused. (The exact-law and resume suites run compiled too:
test_integrator_suite.py with tests/langevin/compile_settings.py.)"""
import pytest
import torch

from langevin.compiled import compile_step, compile_unavailable_reason, faster_step
from langevin.integrators import euler_maruyama
from langevin.models import FullyConnectedNetwork
from langevin.potential import gaussian_potential, make_potential
from langevin.schemes import INTEGRATORS
from langevin.tempering import replica_exchange

pytestmark = pytest.mark.skipif(compile_unavailable_reason() is not None,
                                reason=str(compile_unavailable_reason()))
STEPS = 30


def _network(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 3, generator=g, dtype=dtype)
    y = torch.randn(10, generator=g, dtype=dtype)
    model = FullyConnectedNetwork(3, (6,), "erf", {"w": 1 / 3, "a": 1 / 6})
    decays = {"w": 0.1 * 3, "a": 0.1 * 6}  # γ_l = T / v_l at T = 0.1
    sizes = {layer: 0.01 / decay for layer, decay in decays.items()}
    return make_potential(model, x, y, decays), sizes, model.sample_prior(4, g, dtype)


def _same_chain(eager, compiled, theta):
    states = [eager.init(dict(theta)), compiled.init(dict(theta))]
    generators = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)]
    for _ in range(STEPS):
        states = [integrator.step(state, gen)[0]
                  for integrator, state, gen in zip((eager, compiled), states, generators)]
    assert torch.equal(generators[0].get_state(), generators[1].get_state())
    return states


@pytest.mark.parametrize("name", [
    "euler_maruyama",
    pytest.param("mala", marks=pytest.mark.slow),
    pytest.param("baoab", marks=pytest.mark.slow),
])
def test_compiled_step_gives_the_eager_chain_to_float_tolerance(name):
    # Same draws, different rounding of the fused kernels only: in float64 each step adds
    # a few ulps (2.2e-16 relative) to θ = O(1), and the 30 steps at η_l γ_l = 0.01 do not
    # amplify them, so 1e-12 is a bound with a margin of ~10³ over 30 steps of ulps.
    potential, sizes, theta = _network()
    eager = INTEGRATORS[name](potential, sizes, 0.1)
    eager_state, compiled_state = _same_chain(eager, compile_step(eager), theta)
    for layer in sizes:
        torch.testing.assert_close(compiled_state.theta[layer], eager_state.theta[layer],
                                   rtol=0, atol=1e-12)
    torch.testing.assert_close(compiled_state.potential, eager_state.potential,
                               rtol=1e-12, atol=0)


def test_new_hyperparameter_values_reuse_the_compiled_graph():
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    counter = CompileCounter()
    potential = gaussian_potential({"x": 1.0, "y": 2.0})
    theta = {"x": torch.zeros(6, 2), "y": torch.zeros(6, 3)}
    variants = [({"x": 0.1, "y": 0.2}, 0.5), ({"x": 0.05, "y": 0.3}, 2.0),
                ({"x": torch.full((6,), 0.1), "y": 0.2}, torch.linspace(0.1, 1.0, 6))]
    for sizes, temperature in variants:
        integrator = compile_step(euler_maruyama(potential, sizes, temperature),
                                  backend=counter)
        state = integrator.init(theta)
        generator = torch.Generator().manual_seed(0)
        for _ in range(3):
            state, _ = integrator.step(state, generator)
    assert counter.frame_count == 1


def test_schemes_without_a_split_are_refused():
    base = euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, 1.0)
    tempered = replica_exchange(euler_maruyama, lambda values: gaussian_potential({"x": 1.0}),
                                {"x": 0.1}, [1.0, 2.0], num_replicas=2, swap_every=5,
                                mode="temperature")
    assert compile_step(base, backend="aot_eager").name == "euler_maruyama[compiled]"
    with pytest.raises(ValueError, match="sampler.compile"):
        compile_step(tempered)


def test_faster_step_measures_both_and_leaves_the_state():
    integrator = euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, 1.0)
    state = integrator.init({"x": torch.ones(4, 3)})
    kept = state.theta["x"].clone()
    chosen, rates = faster_step(integrator, compile_step(integrator, backend="aot_eager"),
                                state, steps=5)
    assert rates["chosen"] in ("eager", "compiled")
    assert chosen.name == ("euler_maruyama" if rates["chosen"] == "eager"
                           else "euler_maruyama[compiled]")
    assert rates["eager_steps_per_second"] > 0 and rates["compiled_steps_per_second"] > 0
    assert torch.equal(state.theta["x"], kept)
