"""Step-size bias by step halving (experiments.reporting.bias) and its place in the report.

Exact check: for ULA on U = ½kθ² the stationary variance is v(η) = T/(k(1 − ηk/2))
(docs/conventions.md), so the step-halving estimator 2(m(η) − m(η/2)) of the bias of
E[θ²] has the exact expectation 2(v(η) − v(η/2)). Its standard error comes from the
independent chains (per-chain estimates, sd/√C); the test allows 4 of them.
"""
import json

import numpy as np
import pytest
import torch

from experiments.cli import main
from experiments.reporting import bias
from experiments.setup import config as cfg
from experiments.setup.data import single_index_data
from langevin.schemes import INTEGRATORS
from langevin.observables import Observable
from langevin.potential import gaussian_potential

SQUARE = {"square": Observable(lambda s: {"x2": s.theta["x"][:, 0] ** 2}, {"x2": ()})}


def _gaussian_arms(name, eta, num_chains=1000, num_steps=400):
    temperature, k = 0.5, 1.0
    potential = gaussian_potential({"x": k})
    generator = torch.Generator().manual_seed(8)
    # Start at the exact stationary law of the η chain (ULA), as after a long run.
    variance = temperature / (k * (1 - eta * k / 2))
    theta = {"x": variance**0.5 * torch.randn(num_chains, 1, generator=generator,
                                               dtype=torch.float64)}
    state = INTEGRATORS[name](potential, {"x": eta}, temperature).init(theta)
    arms = bias.step_halving(lambda step: INTEGRATORS[name](potential, {"x": step}, temperature),
                             eta, state, generator, torch.Generator().manual_seed(9),
                             num_steps, SQUARE)
    return arms, temperature, k


def test_step_halving_estimate_has_the_exact_expectation_for_ula():
    eta = 0.5
    (full, half), temperature, k = _gaussian_arms("euler_maruyama", eta)
    assert half is not None and full.acceptance is None
    stationary = lambda step: temperature / (k * (1 - step * k / 2))  # noqa: E731
    expected = 2 * (stationary(eta) - stationary(eta / 2))
    result = bias.richardson_bias(full.values["x2"], half.values["x2"])
    per_chain = 2 * (bias.discard_transient(full.values["x2"]).mean(1)
                     - bias.discard_transient(half.values["x2"]).mean(1))
    standard_error = per_chain.std(ddof=1) / np.sqrt(len(per_chain))
    assert result["bias"] == pytest.approx(per_chain.mean(), rel=1e-12)
    assert abs(result["bias"] - expected) < 4 * standard_error
    # The reported (ESS-based, arms added in quadrature) MCSE is of the right size.
    assert 0.5 < result["bias_mcse"] / standard_error < 3
    assert result["bias"] > 4 * result["bias_mcse"]  # a 33 % bias is resolved


def test_metropolis_adjusted_scheme_reports_acceptance_and_no_half_step_arm():
    (full, half), _, _ = _gaussian_arms("mala", 0.5, num_chains=50, num_steps=100)
    assert half is None
    assert full.acceptance.shape == (50, 100)
    assert 0.5 < full.acceptance.mean() <= 1.0


def _config(**sets):
    config, _ = cfg.resolve([{"model": {"width": 4}, "data": {"d": 3, "n_train": 10}}],
                            [f"{k}={v}" for k, v in sets.items()])
    return config


def test_auto_mode_skips_expensive_checks_and_off_does_nothing(tmp_path):
    data = single_index_data(d=3, n_train=10, n_test=4, coefficients=[0, 1], seed=0)
    off = bias.step_size_bias_summary(tmp_path, _config(**{"diagnostics.bias_check": "'off'"}),
                                      data, None)
    assert off["status"] == "off" and off["warnings"] == []
    expensive = _config(**{"sampler.num_chains": 10**6})
    skipped = bias.step_size_bias_summary(tmp_path, expensive, data, None)
    assert skipped["status"].startswith("skipped: cost") and skipped["warnings"] == []
    assert bias.automatic_steps(_config(**{"sampler.num_steps": 100_000})) == 1000
    assert bias.automatic_steps(_config(**{"sampler.num_steps": 1000})) == 50
    assert bias.automatic_steps(_config(**{"diagnostics.bias_check_steps": 123})) == 123


SHORT = ["--set", "sampler.progress=false", "--set", "sampler.num_steps=1000",
         "--set", "sampler.burn_in=200"]


def _summary(tmp_path, *settings):
    run_dir = tmp_path / "run"
    assert main(["run", "smoke", *SHORT, *settings, "--out", str(run_dir)]) == 0
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("integrator", ["euler_maruyama", "baoab"])
def test_report_states_the_step_size_bias(tmp_path, integrator):
    summary = _summary(tmp_path, "--set", f"sampler.integrator={integrator}")
    section = summary["step_size_bias"]
    assert section["status"] == "done"
    assert set(section["observables"]) == {"train_loss", "squared_norm_w", "squared_norm_a",
                                           "virial_temperature_w", "virial_temperature_a"}
    for entry in section["observables"].values():
        assert entry["bias_mcse"] > 0 and entry["run_mcse"] > 0
    assert "equilibration" in summary and "virial_windows" in summary["equilibration"]


def test_report_gives_the_acceptance_rate_for_mala(tmp_path):
    summary = _summary(tmp_path, "--set", "sampler.integrator=mala")
    section = summary["step_size_bias"]
    assert "observables" not in section
    assert 0.0 < section["acceptance"]["mean"] <= 1.0
    assert section["acceptance"]["mcse"] > 0


def test_a_large_step_size_warns_about_its_bias(tmp_path):
    # step_size 0.05 puts the virial temperature of the readout ~100 % above T (ULA).
    summary = _summary(tmp_path, "--set", "sampler.step_size=0.05",
                       "--set", "diagnostics.bias_check_steps=1000")
    warnings = [w for w in summary["warnings"] if "estimated step-size bias" in w]
    assert any(w.startswith("virial_temperature_a") for w in warnings), summary["warnings"]


def test_integrator_choices_and_friction_are_validated():
    assert set(cfg.INTEGRATOR_NAMES) == set(INTEGRATORS)
    with pytest.raises(cfg.ConfigError, match="sampler.friction"):
        cfg.resolve([{}], ["sampler.friction=-1"])
    with pytest.raises(cfg.ConfigError, match="sampler.friction.*baoab"):
        cfg.resolve([{}], ["sampler.integrator='mala'", "sampler.friction=2.0"])
    baoab, _ = cfg.resolve([{}], ["sampler.integrator='baoab'"])
    other = {**baoab, "sampler": {**baoab["sampler"], "friction": 2.0}}
    assert cfg.config_hash(baoab) != cfg.config_hash(other)
    ula, _ = cfg.resolve([{}])
    ula_other = {**ula, "sampler": {**ula["sampler"], "friction": 2.0},
                 "diagnostics": {"bias_check": "off", "bias_check_steps": 7}}
    assert cfg.config_hash(ula) == cfg.config_hash(ula_other)  # keys ULA never reads


def test_build_passes_the_friction_to_baoab():
    from experiments.setup.build import build_run
    from langevin.potential import make_potential

    data = single_index_data(d=3, n_train=10, n_test=4, coefficients=[0, 1], seed=0)
    config = _config(**{"sampler.integrator": "'baoab'", "sampler.friction": 3.0})
    setup = build_run(config, data)
    assert setup.integrator.name == "baoab"
    x, y = (torch.as_tensor(a, dtype=setup.dtype) for a in (data.x_train, data.y_train))
    potential = make_potential(setup.model, x, y, setup.physics.weight_decays)
    momenta = {}
    for label, integrator in [
        ("built", setup.integrator),
        ("friction 3", INTEGRATORS["baoab"](potential, setup.integrator.step_sizes,
                                            setup.integrator.temperature, friction=3.0)),
        ("friction 1", INTEGRATORS["baoab"](potential, setup.integrator.step_sizes,
                                            setup.integrator.temperature, friction=1.0)),
    ]:
        state, _ = integrator.step(integrator.init(setup.initial_theta),
                                   torch.Generator().manual_seed(0))
        momenta[label] = state.momentum["w"]
    assert torch.equal(momenta["built"], momenta["friction 3"])
    assert not torch.equal(momenta["built"], momenta["friction 1"])


@pytest.mark.parametrize("name", ["euler_maruyama", "baoab", "mala"])
def test_continuation_records_the_states_of_the_integrator_steps(name):
    """continue_chains goes through langevin.run.run_chains: its draws are exactly the
    states reached by stepping the integrator from the same state and generator state,
    every `every`-th step, and the starting state is left as it was."""
    potential = gaussian_potential({"x": 1.0})
    integrator = INTEGRATORS[name](potential, {"x": 0.3}, 0.5)
    state = integrator.init({"x": torch.randn(5, 2, generator=torch.Generator().manual_seed(3),
                                              dtype=torch.float64)})
    start = state.theta["x"].clone()
    generator = torch.Generator().manual_seed(4)
    by_hand_generator = torch.Generator().manual_seed(4)
    arm = bias.continue_chains(integrator, state, generator, 12, SQUARE, every=3)
    expected, acceptance, current = [], [], state
    for step in range(1, 13):
        current, info = integrator.step(current, by_hand_generator)
        acceptance.append(info.get(bias.ACCEPTANCE_KEY))
        if step % 3 == 0:
            expected.append(current.theta["x"][:, 0] ** 2)
    assert np.array_equal(arm.values["x2"], torch.stack(expected, dim=1).numpy())
    assert torch.equal(state.theta["x"], start)
    assert torch.equal(generator.get_state(), by_hand_generator.get_state())
    if name == "mala":
        assert np.array_equal(arm.acceptance, torch.stack(acceptance, dim=1).numpy())
    else:
        assert arm.acceptance is None
