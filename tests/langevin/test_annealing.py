"""Annealed temperature (langevin.annealing): the geometric schedule's values, each step
taken at T(k) through the scheme's own temperature argument (bit-identical to the plain
scheme at that T), and a bitwise resume that continues the schedule."""
import math

import numpy as np
import pytest
import torch

from langevin.annealing import annealed, geometric_schedule
from langevin.observables import train_loss, virial_temperature
from langevin.potential import gaussian_potential
from langevin.run import RunPlan, run_chains
from langevin.schemes import INTEGRATORS
from langevin.store import SampleStore


def test_geometric_schedule_values():
    schedule = geometric_schedule(0.4, 0.025, 4)
    # T(k) = 0.4 · (1/16)^{k/4}: halves every step, then stays at T1
    expected = [0.4, 0.2, 0.1, 0.05, 0.025, 0.025, 0.025]
    for k, value in enumerate(expected):
        assert math.isclose(schedule(k), value, rel_tol=1e-14), k
    assert math.isclose(geometric_schedule(2.0, 8.0, 10)(5), 4.0, rel_tol=1e-14)  # √(T0 T1)


@pytest.mark.parametrize("args", [(0.0, 1.0, 3), (1.0, -1.0, 3), (1.0, 0.5, 0)])
def test_schedule_is_validated(args):
    with pytest.raises(ValueError):
        geometric_schedule(*args)


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_each_step_is_the_scheme_at_the_scheduled_temperature(name):
    potential = gaussian_potential({"x": 2.0})
    schedule = geometric_schedule(1.0, 0.1, 3)
    integrator = annealed(INTEGRATORS[name], potential, {"x": 0.05}, schedule)
    theta = {"x": torch.randn(4, 3, generator=torch.Generator().manual_seed(1))}
    state = integrator.init(theta)
    generator, reference_generator = (torch.Generator().manual_seed(7) for _ in range(2))
    inner_type = INTEGRATORS[name](potential, {"x": 0.05}, 1.0).state_type
    reference = INTEGRATORS[name](potential, {"x": 0.05}, 1.0).init(theta)
    for k in range(5):
        state, _ = integrator.step(state, generator)
        plain = INTEGRATORS[name](potential, {"x": 0.05}, schedule(k))
        reference, _ = plain.step(reference, reference_generator)
        assert int(state.anneal_step) == k + 1
        for field, value in inner_type(*state[:len(inner_type._fields)])._asdict().items():
            if isinstance(value, dict):
                for layer in value:
                    assert torch.equal(value[layer], getattr(reference, field)[layer]), field
            else:
                assert torch.equal(value, getattr(reference, field)), field


def test_interrupted_annealed_run_resumes_bitwise(tmp_path):
    potential = gaussian_potential({"x": 1.0})
    integrator = annealed(INTEGRATORS["euler_maruyama"], potential, {"x": 0.1},
                          geometric_schedule(1.0, 0.05, 40))
    plan = RunPlan(burn_in=10, num_steps=50, thin=5, checkpoint_every=20)
    theta0 = {"x": torch.zeros(3, 2)}

    def run(directory, seed, stop_after=None):
        calls = {"n": 0}

        def stop():
            calls["n"] += 1
            return stop_after is not None and calls["n"] >= stop_after

        return run_chains(
            integrator=integrator, initial_theta=theta0,
            generator=torch.Generator().manual_seed(seed),
            observables={"loss": train_loss(), "virial": virial_temperature(("x",))}, plan=plan,
            store=SampleStore(directory / "samples.zarr", 3),
            checkpoint_dir=directory / "checkpoint", config_hash="anneal", stop_requested=stop)

    whole = run(tmp_path / "whole", 5)
    assert run(tmp_path / "split", 5, stop_after=27).status == "interrupted"
    resumed = run(tmp_path / "split", 99)  # the checkpoint restores generator and schedule
    assert int(resumed.state.anneal_step) == int(whole.state.anneal_step) == plan.total_steps
    stored = [SampleStore(tmp_path / d / "samples.zarr", 3).open().load()
              for d in ("whole", "split")]
    for name in stored[0].data_vars:
        np.testing.assert_array_equal(stored[0][name].values, stored[1][name].values,
                                      err_msg=name)
