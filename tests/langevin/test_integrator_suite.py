"""The common correctness suite of every scheme in `langevin.schemes.INTEGRATORS`.

Every test is parametrized over the registry, so a new scheme joins automatically; the
statistical tests need its exact stationary law on Gaussian targets, declared in
`STATIONARY_COVARIANCE` below (the suite fails, naming the scheme, until it is).

Exact laws on U = ½(θ − μ)ᵀA(θ − μ) with per-coordinate step sizes E = diag(η):
- euler_maruyama (ULA): θ' = θ − EA(θ − μ) + √(2T) E^{1/2} ξ is a linear AR(1) chain,
  stationary N(μ, Σ) with Σ = MΣMᵀ + 2T E, M = I − EA (discrete Lyapunov equation);
  for a scalar mode Σ = T/(k(1 − ηk/2)) (docs/conventions.md).
- baoab: N(μ, T A⁻¹) exactly in θ, for any step sizes in the stable range and any
  friction (derivation in `langevin.underdamped`); the momenta at step boundaries are
  N(0, T(1 − ηk/2)) on a scalar mode.
- mala: N(μ, T A⁻¹) exactly (Metropolis–Hastings), and exp(−U/T) for any U.

Tolerances come from the Monte Carlo error: chains are independent, so each chain's
time average is one independent estimate, and the standard error of their mean over
C chains is sd_over_chains/√C. A test passes when |estimate − truth| < 4 standard
errors. Fixed seeds.
"""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import torch

from tests.langevin.chain_averages import (
    assert_within_4_se, linear_regression_data, time_averages)
from tests.langevin.compile_settings import COMPILE_SETTINGS, scheme_settings, with_compile

from langevin.schemes import INTEGRATORS
from langevin.models import LinearModel, TwoLayerNetwork
from langevin.observables import train_loss, virial_temperature
from langevin.potential import PotentialValue, gaussian_potential, make_potential
from langevin.run import RunPlan, run_chains
from langevin.store import SampleStore

SCHEMES = sorted(INTEGRATORS)


def _ula_covariance(A, etas, temperature):
    E = np.diag(etas)
    M = np.eye(len(etas)) - E @ A
    return scipy.linalg.solve_discrete_lyapunov(M, 2.0 * temperature * E)


def _target_covariance(A, etas, temperature):
    return temperature * np.linalg.inv(A)


# name -> (A, per-coordinate step sizes, T) -> the scheme's exact stationary covariance.
STATIONARY_COVARIANCE = {
    "euler_maruyama": _ula_covariance,
    "baoab": _target_covariance,
    "mala": _target_covariance,
}
# Schemes whose stationary law is exp(−U/T) for any U (Metropolis-adjusted).
EXACT_FOR_ANY_TARGET = {"mala"}


def _stationary_covariance(name):
    if name not in STATIONARY_COVARIANCE:
        pytest.fail(f"integrator {name!r}: declare its exact stationary law on Gaussian "
                    "targets in STATIONARY_COVARIANCE of this test module")
    return STATIONARY_COVARIANCE[name]


@pytest.mark.parametrize("name,setting", scheme_settings(SCHEMES))
def test_gaussian_stationary_variance_is_the_exact_law_of_the_scheme(name, setting):
    # Two layers with different curvatures k_l and step sizes η_l, at η_l k_l = 0.5 and 0.2:
    # ULA's law T/(k(1 − ηk/2)) is 33 % and 11 % above T/k, far outside 4 SE, so the test
    # tells the laws apart (MALA and BAOAB are unbiased where ULA is visibly biased).
    temperature, curvatures, etas = 0.5, {"x": 1.0, "y": 4.0}, {"x": 0.5, "y": 0.05}
    k, eta = np.array(list(curvatures.values())), np.array(list(etas.values()))
    law = np.diag(_stationary_covariance(name)(np.diag(k), eta, temperature))
    ula_law = temperature / (k * (1 - eta * k / 2))
    other_law = temperature / k if np.allclose(law, ula_law) else ula_law
    num_chains = 1000
    generator = torch.Generator().manual_seed(11)
    integrator = with_compile(
        INTEGRATORS[name](gaussian_potential(curvatures), etas, temperature), setting)
    theta0 = {layer: torch.zeros(num_chains, 1, dtype=torch.float64) for layer in curvatures}
    # Slowest relaxation: ~1/(ηk) = 5 steps (ULA, MALA); 2/(ζh) ≈ 6 steps (BAOAB, ζ = 1).
    second_moments = time_averages(
        integrator, theta0, generator, 200, 2000,
        lambda s: torch.cat([s.theta["x"] ** 2, s.theta["y"] ** 2], dim=1))
    estimate, se = assert_within_4_se(second_moments, law)
    assert np.all(np.abs(estimate - other_law) > 4 * se), (estimate, other_law, se)


def test_baoab_momenta_have_the_exact_law_at_step_boundaries():
    # Stationary law of BAOAB on U = ½kθ² (langevin.underdamped): p ~ N(0, T(1 − h²k/4)),
    # h² = 2η, independent of θ ~ N(0, T/k).
    temperature, k, eta, num_chains = 0.5, 1.0, 0.5, 1000
    generator = torch.Generator().manual_seed(12)
    integrator = INTEGRATORS["baoab"](gaussian_potential({"x": k}), {"x": eta}, temperature)
    theta0 = {"x": torch.zeros(num_chains, 1, dtype=torch.float64)}
    moments = time_averages(
        integrator, theta0, generator, 200, 2000,
        lambda s: torch.cat([s.momentum["x"] ** 2, s.momentum["x"] * s.theta["x"]], dim=1))
    assert_within_4_se(moments, np.array([temperature * (1 - eta * k / 2), 0.0]))


@pytest.mark.parametrize("name", SCHEMES)
def test_bayesian_linear_regression_matches_the_exact_law_of_the_scheme(name):
    generator = torch.Generator().manual_seed(3)
    x, y = linear_regression_data(generator)
    noise_variance, prior_variance = 0.5, 2.0
    temperature = noise_variance  # σ² = T for the ½-SSE loss
    decay = temperature / prior_variance  # γ = T / σ_p²
    model = LinearModel(3, prior_variance)
    X, Y = x.numpy(), y.numpy()
    A = X.T @ X + decay * np.eye(3)  # U = ½(θ − μ)ᵀA(θ − μ) + const
    eigenvalues = np.linalg.eigvalsh(A)
    eta = 0.4 / eigenvalues.max()  # ULA's bias is O(ηλ) ≈ 20 % on the stiffest direction
    integrator = INTEGRATORS[name](make_potential(model, x, y, {"theta": decay}),
                                  {"theta": eta}, temperature)
    # Exact Bayesian posterior: Σ_post = (XᵀX/σ² + I/σ_p²)⁻¹ = T A⁻¹, μ = A⁻¹XᵀY.
    post_mean = np.linalg.solve(A, X.T @ Y)
    covariance = _stationary_covariance(name)(A, np.full(3, eta), temperature)
    num_chains = 512
    theta0 = model.sample_prior(num_chains, generator, torch.float64)
    relaxation = int(1 / (eta * eigenvalues.min())) + 1  # ULA; BAOAB (ζ = 1) is faster here
    iu = np.triu_indices(3)

    def moments(state):
        t = state.theta["theta"]
        outer = (t[:, :, None] * t[:, None, :])[:, iu[0], iu[1]]
        return torch.cat([t, outer], dim=1)

    per_chain = time_averages(integrator, theta0, generator, 10 * relaxation,
                               40 * relaxation, moments)
    # First moments μ (every scheme is unbiased in the mean of a Gaussian), second
    # moments about zero Σ + μμᵀ.
    truth = np.concatenate([post_mean, (covariance + np.outer(post_mean, post_mean))[iu]])
    assert_within_4_se(per_chain, truth)


def _quartic_potential(theta):
    """U = Σ θ⁴/4 per chain (a non-Gaussian target with moments by quadrature)."""
    x = theta["x"]
    return PotentialValue(potential=(x**4).sum(1) / 4, loss=torch.zeros(x.shape[0],
                          dtype=x.dtype), gradient={"x": x**3})


@pytest.mark.parametrize("name", sorted(EXACT_FOR_ANY_TARGET & set(INTEGRATORS)))
def test_metropolis_adjusted_scheme_is_exact_on_a_non_gaussian_target(name):
    temperature, eta, num_chains = 1.0, 0.4, 1000
    density = lambda t: math.exp(-t**4 / (4 * temperature))  # noqa: E731
    norm = scipy.integrate.quad(density, -np.inf, np.inf)[0]
    truth = np.array([scipy.integrate.quad(lambda t: t**p * density(t), -np.inf, np.inf)[0]
                      / norm for p in (2, 4)])
    generator = torch.Generator().manual_seed(13)
    integrator = INTEGRATORS[name](_quartic_potential, {"x": eta}, temperature)
    theta0 = {"x": torch.zeros(num_chains, 1, dtype=torch.float64)}
    per_chain = time_averages(integrator, theta0, generator, 200, 2000,
                               lambda s: torch.cat([s.theta["x"] ** 2, s.theta["x"] ** 4], 1))
    assert_within_4_se(per_chain, truth)


def _network_problem(num_chains=5, dtype=torch.float64):
    generator = torch.Generator().manual_seed(4)
    d, width, n = 3, 6, 8
    model = TwoLayerNetwork(d, width, "erf", {"w": 1.0 / d, "a": 1.0 / width})
    x = torch.randn(n, d, generator=generator, dtype=dtype)
    y = torch.randn(n, generator=generator, dtype=dtype)
    temperature = 0.3
    decays = {layer: temperature / v for layer, v in model.prior_variances.items()}
    potential = make_potential(model, x, y, decays)
    etas = {layer: 0.01 / decay for layer, decay in decays.items()}
    theta0 = model.sample_prior(num_chains, generator, dtype)
    return model, potential, etas, temperature, theta0


def _state_tensors(state) -> dict[str, torch.Tensor]:
    """Every tensor of a state (NamedTuple of tensors and dicts of tensors), by path."""
    out = {}
    for field, value in state._asdict().items():
        if isinstance(value, dict):
            out.update({f"{field}.{layer}": tensor for layer, tensor in value.items()})
        else:
            out[field] = value
    return out


@pytest.mark.parametrize("name", SCHEMES)
def test_chains_are_independent(name):
    _, potential, etas, temperature, theta0 = _network_problem()
    integrator = INTEGRATORS[name](potential, etas, temperature)
    perturbed = {layer: value.clone() for layer, value in theta0.items()}
    perturbed["w"][0] += 0.3
    perturbed["a"][0] *= -2.0
    runs = []
    for start in (theta0, perturbed):
        generator = torch.Generator().manual_seed(21)
        state, infos = integrator.init(start), []
        for _ in range(25):
            state, info = integrator.step(state, generator)
            infos.append(info)
        runs.append((state, infos))
    (state_a, infos_a), (state_b, infos_b) = runs
    tensors_a, tensors_b = _state_tensors(state_a), _state_tensors(state_b)
    assert not torch.equal(tensors_a["theta.w"][0], tensors_b["theta.w"][0])
    for path, tensor in tensors_a.items():
        assert tensor.shape[0] == 5, path
        assert torch.equal(tensor[1:], tensors_b[path][1:]), f"{path} of chains 1.. changed"
    for info_a, info_b in zip(infos_a, infos_b):
        for key, value in info_a.items():
            assert value.shape == (5,), f"info[{key!r}] must be per chain"
            assert torch.equal(value[1:], info_b[key][1:]), key


@pytest.mark.parametrize("name", SCHEMES)
def test_step_returns_a_new_state_and_never_mutates_its_input(name):
    _, potential, etas, temperature, theta0 = _network_problem()
    integrator = INTEGRATORS[name](potential, etas, temperature)
    generator = torch.Generator().manual_seed(0)
    state = integrator.init(theta0)
    state, _ = integrator.step(state, generator)
    assert isinstance(state, integrator.state_type)
    before = {path: tensor.clone() for path, tensor in _state_tensors(state).items()}
    new_state, _ = integrator.step(state, generator)
    assert type(new_state) is integrator.state_type
    for path, tensor in _state_tensors(state).items():
        assert torch.equal(tensor, before[path]), f"step mutated {path}"
    assert not torch.equal(_state_tensors(new_state)["theta.w"], before["theta.w"])


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("step_sizes, temperature, message", [
    ({"x": -0.1}, 1.0, "step_sizes"),
    ({"x": 0.0}, 1.0, "step_sizes"),
    ({"x": math.inf}, 1.0, "step_sizes"),
    ({"x": math.nan}, 1.0, "step_sizes"),
    ({"x": 0.1}, 0.0, "temperature"),
    ({"x": 0.1}, -1.0, "temperature"),
    ({"x": 0.1}, math.nan, "temperature"),
])
def test_bad_hyperparameters_are_named(name, step_sizes, temperature, message):
    with pytest.raises(ValueError, match=message):
        INTEGRATORS[name](gaussian_potential({"x": 1.0}), step_sizes, temperature)


@pytest.mark.parametrize("name", SCHEMES)
def test_init_names_missing_layers(name):
    integrator = INTEGRATORS[name](gaussian_potential({"x": 1.0}), {"x": 0.1, "y": 0.1}, 1.0)
    with pytest.raises(ValueError, match="lacks layers"):
        integrator.init({"x": torch.zeros(2, 1)})


@pytest.mark.parametrize("friction", [0.0, -1.0, math.nan])
def test_baoab_friction_is_validated(friction):
    with pytest.raises(ValueError, match="friction"):
        INTEGRATORS["baoab"](gaussian_potential({"x": 1.0}), {"x": 0.1}, 1.0, friction=friction)


@pytest.mark.parametrize("setting", COMPILE_SETTINGS)
@pytest.mark.parametrize("name", SCHEMES)
def test_interrupted_run_resumes_bit_identically(name, tmp_path, setting):
    """run_chains stopped mid-way and resumed from its checkpoint (restored as the
    scheme's own state type) stores the draws of an uninterrupted run, bit for bit."""
    model, potential, etas, temperature, theta0 = _network_problem(num_chains=3,
                                                                   dtype=torch.float32)
    observables = {"train_loss": train_loss(), "virial": virial_temperature(model.layer_names)}
    plan = RunPlan(burn_in=10, num_steps=60, thin=5, checkpoint_every=20)

    def run(directory, seed, stop_after=None):
        calls = {"n": 0}

        def stop():
            calls["n"] += 1
            return stop_after is not None and calls["n"] >= stop_after

        return run_chains(
            integrator=with_compile(INTEGRATORS[name](potential, etas, temperature), setting),
            initial_theta=theta0,
            generator=torch.Generator().manual_seed(seed), observables=observables, plan=plan,
            store=SampleStore(directory / "samples.zarr", 3),
            checkpoint_dir=directory / "checkpoint", config_hash="suite", stop_requested=stop)

    whole = run(tmp_path / "whole", seed=5)
    first = run(tmp_path / "split", seed=5, stop_after=37)
    assert first.status == "interrupted" and first.step == 37
    # A different seed and start: the checkpoint must restore the state and the generator.
    resumed = run(tmp_path / "split", seed=99)
    assert resumed.status == "completed" and resumed.step == whole.step == plan.total_steps
    assert type(resumed.state) is type(whole.state)
    for path, tensor in _state_tensors(whole.state).items():
        assert torch.equal(tensor, _state_tensors(resumed.state)[path]), path
    stored = [SampleStore(tmp_path / d / "samples.zarr", 3).open().load()
              for d in ("whole", "split")]
    assert stored[0].sizes["draw"] == plan.num_steps // plan.thin
    for variable in stored[0].data_vars:
        np.testing.assert_array_equal(stored[0][variable].values, stored[1][variable].values,
                                      err_msg=variable)
