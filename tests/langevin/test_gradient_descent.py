"""T = 0 gradient descent (langevin.gradient_descent): the adaptive step rule traced
exactly on per-chain quadratics, the zero-loss stop on a separable problem (frozen
chains, the run ends early with the stopping step recorded), determinism, and a bitwise
resume of an interrupted run (run_chains' stop flag, as in the integrator suite)."""
import numpy as np
import pytest
import torch

from langevin.gradient_descent import gradient_descent, gradient_descent_observables
from langevin.models import LinearModel
from langevin.observables import train_loss
from langevin.output_model import OutputModel
from langevin.potential import PotentialValue, make_potential
from langevin.run import RunPlan, run_chains
from langevin.store import SampleStore


def _chain_quadratics(curvatures):
    """U_c = ½ k_c θ_c² with one curvature per chain (L = U)."""
    k = torch.tensor(curvatures, dtype=torch.float64)

    def potential(theta):
        x = theta["x"]
        value = 0.5 * k * (x * x).sum(-1)
        return PotentialValue(value, value, {"x": k.unsqueeze(-1) * x})

    return potential


def test_adaptive_step_rule_traced_exactly():
    """θ' = (1 − s k η) θ on U = ½kθ²: uphill iff |1 − s k η| > 1. Chain 0 (kη = 3):
    s = 1 gives factor −2, rejected, s → 0.5; then factor −0.5, accepted, s → 0.55.
    Chain 1 (kη = 0.3): factor 0.7 accepted twice, s → 1.1 then 1.21."""
    integrator = gradient_descent(_chain_quadratics([3.0, 0.3]), {"x": 1.0}, growth=1.1,
                                  shrink=0.5)
    theta0 = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    state = integrator.init({"x": theta0})
    generator = torch.Generator().manual_seed(0)
    state, info = integrator.step(state, generator)
    assert info["accepted"].tolist() == [False, True]
    torch.testing.assert_close(state.theta["x"][:, 0], torch.tensor([1.0, 0.7], dtype=torch.float64))
    torch.testing.assert_close(state.step_multiplier, torch.tensor([0.5, 1.1], dtype=torch.float64))
    state, info = integrator.step(state, generator)
    assert info["accepted"].tolist() == [True, True]
    torch.testing.assert_close(state.theta["x"][:, 0],
                               torch.tensor([-0.5, 0.7 * (1 - 1.1 * 0.3)], dtype=torch.float64))
    torch.testing.assert_close(state.step_multiplier,
                               torch.tensor([0.55, 1.21], dtype=torch.float64))
    assert state.iterations.tolist() == [2, 2] and not bool(state.stopped.any())


def _separable_problem(num_chains=5, dtype=torch.float64):
    """Labels y = sign(x·u) with every |x·u| ≥ 0.5: a linear model fits all margins."""
    generator = torch.Generator().manual_seed(11)
    u = torch.tensor([0.6, 0.8], dtype=dtype)
    x = torch.randn(40, 2, generator=generator, dtype=dtype)
    x = x + 0.5 * torch.sign(x @ u).unsqueeze(-1) * u  # push every point off the boundary
    y = torch.sign(x @ u)
    model = OutputModel(LinearModel(input_dim=2, prior_variance=0.01), "hinge")
    potential = make_potential(model, x, y, {"theta": 0.0})  # L alone
    theta0 = model.sample_prior(num_chains, generator, dtype)
    return model, potential, x, y, theta0


def test_hinge_descent_stops_at_zero_loss_and_freezes_the_chain():
    model, potential, x, y, theta0 = _separable_problem()
    integrator = gradient_descent(potential, {"theta": 0.05})
    state = integrator.init(theta0)
    generator = torch.Generator()
    for _ in range(2000):
        state, _ = integrator.step(state, generator)
        if integrator.finished(state):
            break
    assert integrator.finished(state), state.loss
    assert bool(state.reached.all())
    assert torch.equal(state.loss, torch.zeros_like(state.loss))
    margins = y * model.predict(state.theta, x)
    assert bool((margins >= 1).all())  # N_Δ = 0: the jamming criterion
    assert torch.equal(state.stop_step, state.iterations)  # frozen since the stop
    frozen, _ = integrator.step(state, generator)
    assert torch.equal(frozen.theta["theta"], state.theta["theta"])
    assert torch.equal(frozen.iterations, state.iterations)


def _run(directory, integrator, theta0, plan, stop_after=None):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] >= stop_after

    observables = {"train_loss": train_loss(), "gradient_descent": gradient_descent_observables()}
    return run_chains(integrator=integrator, initial_theta=theta0,
                      generator=torch.Generator().manual_seed(0), observables=observables,
                      plan=plan, store=SampleStore(directory / "samples.zarr", 5),
                      checkpoint_dir=directory / "checkpoint", config_hash="gd",
                      stop_requested=stop)


def test_run_ends_when_every_chain_stopped_and_resumes_bitwise(tmp_path):
    _, potential, _, _, theta0 = _separable_problem()
    integrator = gradient_descent(potential, {"theta": 3e-4})  # stops after 55..71 steps
    plan = RunPlan(burn_in=0, num_steps=5000, thin=7, checkpoint_every=10)
    whole = _run(tmp_path / "whole", integrator, theta0, plan)
    again = _run(tmp_path / "again", integrator, theta0, plan)
    assert whole.status == "completed" and whole.step < plan.total_steps
    assert len(set(whole.state.stop_step.tolist())) > 1  # chains stop at different steps
    assert whole.step == int(whole.state.stop_step.max())  # the last chain's stop ends it
    first = _run(tmp_path / "split", integrator, theta0, plan, stop_after=whole.step // 2 + 3)
    assert first.status == "interrupted" and first.step < whole.step
    resumed = _run(tmp_path / "split", integrator, theta0, plan)
    assert resumed.step == whole.step
    finished_again = _run(tmp_path / "split", integrator, theta0, plan)  # nothing left to do
    assert finished_again.step == whole.step
    stored = [SampleStore(tmp_path / d / "samples.zarr", 5).open().load()
              for d in ("whole", "again", "split")]
    steps = stored[0]["step"].values
    assert steps[-1] == whole.step and np.all(steps[:-1] % 7 == 0)  # the stop step is recorded
    np.testing.assert_array_equal(stored[0]["gd_stopped"].values[:, -1], 1.0)
    np.testing.assert_array_equal(stored[0]["gd_stop_step"].values[:, -1],
                                  whole.state.stop_step.numpy().astype(np.float64))
    for other in stored[1:]:  # deterministic, and bitwise equal after the resume
        assert other.sizes == stored[0].sizes
        for name in stored[0].data_vars:
            np.testing.assert_array_equal(stored[0][name].values, other[name].values,
                                          err_msg=name)


@pytest.mark.parametrize("options, message", [
    ({"growth": 0.9}, "growth"), ({"shrink": 1.0}, "shrink"), ({"loss_tolerance": -1.0},
                                                               "loss_tolerance"),
    ({"max_multiplier": 0.5}, "max_multiplier"), ({"min_multiplier": 0.0}, "min_multiplier")])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        gradient_descent(_chain_quadratics([1.0]), {"x": 0.1}, **options)
