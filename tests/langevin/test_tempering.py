"""Replica exchange (langevin.tempering, langevin.ladder) and per-chain temperatures.

Statistical tests: the C replica-exchange systems are independent, so each system's time
average at a rung is one independent estimate of that rung's expectation; a test passes
within 4 standard errors of their mean (tests.langevin.chain_averages). Fixed seeds.
"""
import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import torch

from tests.langevin.chain_averages import (
    assert_within_4_se, linear_regression_data, time_averages)

from langevin.integrators import euler_maruyama
from langevin.ladder import communication_barrier, equalized_ladder, geometric_ladder
from langevin.mala import mala
from langevin.models import LinearModel, TwoLayerNetwork
from langevin.observables import squared_norms, train_loss, virial_temperature
from langevin.potential import gaussian_potential, make_potential
from langevin.run import RunPlan, run_chains
from langevin.schemes import INTEGRATORS
from langevin.store import SampleStore
from langevin.tempering import (
    TemperingState, by_rung, replica_exchange, slot_order, swap_proposals, swapped_rungs,
    tempered_potential)


def _rung_averages(integrator, theta0, generator, burn_in, num_steps, fn, num_rungs,
                   num_replicas):
    """(R, C, ...) time averages of fn(state) per slot (rung r, system k)."""
    state = integrator.init(theta0)
    for _ in range(burn_in):
        state, _ = integrator.step(state, generator)
    total = 0.0
    for _ in range(num_steps):
        state, _ = integrator.step(state, generator)
        total = total + fn(state)[slot_order(state.rung, num_replicas)]
    averages = (total / num_steps).numpy()
    return averages.reshape(num_rungs, num_replicas, *averages.shape[1:]), state


# ---------------------------------------------------------------- per-chain temperatures

def _ula_variance(k, eta, t):
    return t / (k * (1 - eta * k / 2))


def _exact_variance(k, eta, t):
    return t / k


PER_CHAIN_LAW = {"euler_maruyama": _ula_variance, "baoab": _exact_variance,
                 "mala": _exact_variance}


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_per_chain_temperatures_give_each_chain_its_exact_stationary_variance(name):
    # U = ½kθ² at ηk = 0.5: chain c has variance T_c/(k(1 − ηk/2)) (ULA) or T_c/k.
    k, eta, per_group = 1.0, 0.5, 300
    temps = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64).repeat_interleave(per_group)
    integrator = INTEGRATORS[name](gaussian_potential({"x": k}), {"x": eta}, temps)
    generator = torch.Generator().manual_seed(31)
    state = integrator.init({"x": torch.zeros(temps.shape[0], 2, dtype=torch.float64)})
    for _ in range(100):
        state, _ = integrator.step(state, generator)
    total = 0.0
    for _ in range(1000):
        state, _ = integrator.step(state, generator)
        total = total + state.theta["x"] ** 2
    per_chain = (total / 1000).numpy().reshape(3, per_group, 2)
    for group, t in enumerate((0.2, 1.0, 3.0)):
        assert_within_4_se(per_chain[group], np.full(2, PER_CHAIN_LAW[name](k, eta, t)))


@pytest.mark.parametrize("bad", [torch.tensor([1.0, -1.0]), torch.tensor([1.0, math.nan]),
                                 torch.ones(2, 2)])
def test_bad_per_chain_temperatures_are_named(bad):
    with pytest.raises(ValueError, match="temperature"):
        euler_maruyama(gaussian_potential({"x": 1.0}), {"x": 0.1}, bad)


# ---------------------------------------------------------------------- the ladder

def test_geometric_ladder_has_equal_ratios():
    ladder = geometric_ladder(0.1, 0.4, 3)
    np.testing.assert_allclose(ladder, [0.1, 0.2, 0.4])


def test_equalized_ladder_equalizes_a_piecewise_linear_barrier_exactly():
    # λ(β) constant on each interval of the old ladder: Λ is exactly the piecewise-linear
    # interpolant used by equalized_ladder, so every new pair has the same barrier Λ/(R−1).
    old = np.array([0.1, 0.15, 0.3, 0.5, 1.0])
    beta = 1 / old
    density = np.array([0.5, 3.0, 0.2, 1.0])  # λ on each old interval
    rates = density * (beta[:-1] - beta[1:])
    new = equalized_ladder(old, rates)
    assert new[0] == old[0] and new[-1] == old[-1] and np.all(np.diff(new) > 0)

    def barrier(b):  # exact Λ(β), measured from β_0 downward
        return np.interp(-b, -beta, communication_barrier(rates))

    new_rates = np.diff(barrier(1 / new))
    np.testing.assert_allclose(new_rates, rates.sum() / 4, rtol=1e-12)


@pytest.mark.parametrize("ladder", [[1.0], [0.2, 0.1], [0.1, math.inf], [0.0, 1.0]])
def test_bad_ladders_are_named(ladder):
    with pytest.raises(ValueError, match="ladder"):
        replica_exchange(euler_maruyama, lambda v: gaussian_potential({"x": 1.0}),
                         {"x": 0.1}, ladder, 2, 1)


# ------------------------------------------------------- the swap move, by enumeration

def test_swap_rounds_satisfy_detailed_balance_by_exact_enumeration():
    """R = 4 rungs (two simultaneous pairs in an even round), 1 system, fixed energies: enumerate all rung assignments, build the
    transition matrices of an even and an odd swap round from swap_proposals and
    swapped_rungs, and check π P = π with detailed balance for each round, where
    π(σ) ∝ Π_b exp(−E_b / s_σ(b)) (the tempered energy; the untempered prior cancels)."""
    num_rungs, systems = 4, 1
    ladder = torch.tensor([0.3, 0.5, 1.1, 2.0], dtype=torch.float64)
    energy = torch.tensor([0.4, 2.5, 1.0, 0.1], dtype=torch.float64)
    perms = list(itertools.permutations(range(num_rungs)))
    states = [(perm,) for perm in perms]  # one permutation per system
    index = {}

    def rung_of(state):
        rung = torch.empty(num_rungs * systems, dtype=torch.int64)
        for k, perm in enumerate(state):
            for r_init, r in enumerate(perm):  # batch chain r_init·C + k is at rung r
                rung[r_init * systems + k] = r
        return rung

    for i, state in enumerate(states):
        index[tuple(rung_of(state).tolist())] = i
    log_pi = np.array([-(energy / ladder[rung_of(s)]).sum().item() for s in states])
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    matrices = []
    for parity in (0, 1):
        P = np.zeros((len(states), len(states)))
        for i, state in enumerate(states):
            rung = rung_of(state)
            lower, lo, hi, log_alpha = swap_proposals(rung, ladder, energy, parity, systems)
            prob = torch.exp(torch.clamp(log_alpha, max=0)).flatten().numpy()
            for pattern in itertools.product((False, True), repeat=prob.size):
                accept = torch.tensor(pattern).reshape(log_alpha.shape)
                weight = np.prod([p if a else 1 - p for p, a in zip(prob, pattern)])
                j = index[tuple(swapped_rungs(rung, lower, lo, hi, accept).tolist())]
                P[i, j] += weight
        np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-12)
        flow = pi[:, None] * P
        np.testing.assert_allclose(flow, flow.T, atol=1e-15)  # detailed balance per round
        matrices.append(P)
    even_odd = matrices[0] @ matrices[1]  # the non-reversible scheme: stationary, not reversible
    np.testing.assert_allclose(pi @ even_odd, pi, atol=1e-14)
    assert not np.allclose(pi[:, None] * even_odd, (pi[:, None] * even_odd).T)


# ------------------------------------------------------------ exact: a tilted double well

class _DoubleWell:
    """L(t) = (t² − 1)² e^{b t}: wells at t = ±1 of curvature 8e^{±b} (the right one is
    narrower), barrier L(0) = 1; with a Gaussian prior of variance v this is a 1-D
    posterior exp(−L/τ) · prior whose right-well mass is ≈ 0.38 at every τ here."""

    layer_names = ("x",)
    tilt = 0.5

    def loss_and_gradient(self, theta, x, y):
        t = theta["x"][:, 0]
        e = torch.exp(self.tilt * t)
        loss = (t * t - 1) ** 2 * e
        grad = (4 * t * (t * t - 1) + self.tilt * (t * t - 1) ** 2) * e
        return loss, {"x": grad[:, None]}


def _right_well_mass(tau, prior_variance, tilt=_DoubleWell.tilt):
    density = lambda t: math.exp(  # noqa: E731
        -(t * t - 1) ** 2 * math.exp(tilt * t) / tau - t * t / (2 * prior_variance))
    norm = scipy.integrate.quad(density, -6, 6, points=[-1, 0, 1])[0]
    return scipy.integrate.quad(density, 0, 6, points=[1])[0] / norm


def test_tempering_finds_the_exact_well_masses_where_a_plain_chain_stays_stuck():
    # MALA base: each rung's law is exactly exp(−L/τ)·prior, and the swap move keeps the
    # product of these laws, so the well masses are exact (quadrature), no step-size bias.
    # The cold rung's barrier is 1/0.06 ≈ 17 in units of its temperature: a chain started
    # in the left well does not cross in the test's 3000 steps; the hot rung's is 1/3, and
    # the tempered system relaxes in ~500 steps (measured), well inside the burn-in.
    prior_variance, num_rungs, systems = 4.0, 5, 256
    ladder = geometric_ladder(0.06, 3.0, num_rungs)
    truth = np.array([_right_well_mass(t, prior_variance) for t in ladder])
    potential_for = tempered_potential(_DoubleWell(), None, None, {"x": prior_variance})
    theta0 = {"x": -torch.ones(num_rungs * systems, 1, dtype=torch.float64)}
    right = lambda s: (s.theta["x"][:, 0] > 0).double()  # noqa: E731
    masses = {}
    for label, swap_every in (("tempered", 2), ("plain", 10**9)):
        integrator = replica_exchange(mala, potential_for, {"x": 0.007}, ladder, systems,
                                      swap_every)
        masses[label], state = _rung_averages(integrator, theta0, torch.Generator().manual_seed(7),
                                              1000, 2000, right, num_rungs, systems)
    assert masses["plain"][0].max() == 0.0  # stuck: no cold chain ever reached t > 0
    for r in range(num_rungs):
        assert_within_4_se(masses["tempered"][r], truth[r])
    assert int(state.swap_attempts.sum()) == 0  # the plain run never swapped


# ---------------------------------------------------------- swaps off: independent rungs

def _network(num_chains, dtype=torch.float64):
    generator = torch.Generator().manual_seed(4)
    d, width, n = 3, 5, 8
    variances = {"w": 1.0 / d, "a": 1.0 / width}
    model = TwoLayerNetwork(d, width, "erf", variances)
    x = torch.randn(n, d, generator=generator, dtype=dtype)
    y = torch.randn(n, generator=generator, dtype=dtype)
    return model, x, y, variances, model.sample_prior(num_chains, generator, dtype)


def test_with_swaps_off_every_rung_is_an_independent_run_at_its_noise_variance():
    num_rungs, systems, steps = 3, 4, 30
    ladder = [0.1, 0.3, 0.9]
    model, x, y, variances, theta0 = _network(num_rungs * systems)
    potential_for = tempered_potential(model, x, y, variances)
    etas = {layer: 0.01 * v for layer, v in variances.items()}  # step_size · v_l
    tempered = replica_exchange(euler_maruyama, potential_for, etas, ladder, systems, 10**6)
    generator = torch.Generator().manual_seed(9)
    state = tempered.init(theta0)
    for _ in range(steps):
        state, _ = tempered.step(state, generator)
    for r, tau in enumerate(ladder):
        rows = slice(r * systems, (r + 1) * systems)
        # Bit for bit: all chains at τ_r with the same noise.
        alone = euler_maruyama(
            potential_for(torch.full((num_rungs * systems,), tau, dtype=torch.float64)),
            etas, 1.0)
        generator = torch.Generator().manual_seed(9)
        single = alone.init(theta0)
        for _ in range(steps):
            single, _ = alone.step(single, generator)
        for layer in theta0:
            assert torch.equal(state.theta[layer][rows], single.theta[layer][rows]), (r, layer)
        # The same chain in the project's convention: U = L + Σ γ_l/2 |θ_l|² at T = σ² = τ,
        # γ_l = τ/v_l (prior untempered), η_l = step_size/γ_l.
        decays = {layer: tau / v for layer, v in variances.items()}
        plain = euler_maruyama(make_potential(model, x, y, decays),
                               {layer: 0.01 / g for layer, g in decays.items()}, tau)
        generator = torch.Generator().manual_seed(9)
        reference = plain.init(theta0)
        for _ in range(steps):
            reference, _ = plain.step(reference, generator)
        for layer in theta0:
            torch.testing.assert_close(state.theta[layer][rows], reference.theta[layer][rows],
                                       rtol=1e-10, atol=1e-12)


# ------------------------------------------- unimodal: every rung is its exact posterior

def test_every_rung_of_a_tempered_linear_regression_is_its_exact_posterior():
    """Bayesian linear regression, prior N(0, v I) fixed, noise variance τ_r per rung:
    rung r's law is N(μ_r, Σ_r), Σ_r = (XᵀX/τ_r + I/v)⁻¹, μ_r = Σ_r Xᵀy/τ_r."""
    generator = torch.Generator().manual_seed(3)
    x, y = linear_regression_data(generator)
    prior_variance, num_rungs, systems = 2.0, 4, 128
    ladder = [0.2, 0.5, 1.2, 3.0]
    model = LinearModel(3, prior_variance)
    potential_for = tempered_potential(model, x, y, {"theta": prior_variance})
    X, Y = x.numpy(), y.numpy()
    stiffest = np.linalg.eigvalsh(X.T @ X / ladder[0]).max()
    integrator = replica_exchange(mala, potential_for, {"theta": 0.6 / stiffest}, ladder,
                                  systems, 2)
    theta0 = model.sample_prior(num_rungs * systems, generator, torch.float64)
    iu = np.triu_indices(3)

    def moments(state):
        t = state.theta["theta"]
        return torch.cat([t, (t[:, :, None] * t[:, None, :])[:, iu[0], iu[1]]], dim=1)

    averages, state = _rung_averages(integrator, theta0, generator, 200, 1000, moments,
                                     num_rungs, systems)
    for r, tau in enumerate(ladder):
        cov = np.linalg.inv(X.T @ X / tau + np.eye(3) / prior_variance)
        mean = cov @ X.T @ Y / tau
        assert_within_4_se(averages[r], np.concatenate([mean, (cov + np.outer(mean, mean))[iu]]))
    accepted = state.swap_accepts.numpy() / state.swap_attempts.numpy()
    assert np.all((accepted > 0.05) & (accepted < 1.0)), accepted  # swaps did happen


# ------------------------------------------------------- resume, storage, adaptation

def _tempered_network_run(directory, seed, stop_after=None, mode="noise_variance",
                          base="euler_maruyama"):
    num_rungs, systems = 3, 2
    model, x, y, variances, theta0 = _network(num_rungs * systems, torch.float32)
    if mode == "noise_variance":
        potential_for = tempered_potential(model, x, y, variances)
        etas = {layer: 0.01 * v for layer, v in variances.items()}
    else:
        decays = {layer: 1.0 / v for layer, v in variances.items()}
        plain = make_potential(model, x, y, decays)
        potential_for = lambda values: plain  # noqa: E731
        etas = {layer: 0.01 / g for layer, g in decays.items()}
    options = {"friction": 2.0} if base == "baoab" else {}
    integrator = replica_exchange(INTEGRATORS[base], potential_for, etas, [0.1, 0.3, 0.9],
                                  systems, 3, mode=mode, adapt_steps=50, record_from=60,
                                  **options)
    observables = by_rung({"train_loss": train_loss(),
                           "virial": virial_temperature(model.layer_names),
                           "norms": squared_norms(model.layer_names)}, systems)
    plan = RunPlan(burn_in=60, num_steps=60, thin=5, checkpoint_every=20)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] >= stop_after

    return run_chains(integrator=integrator, initial_theta=theta0,
                      generator=torch.Generator().manual_seed(seed), observables=observables,
                      plan=plan, store=SampleStore(directory / "samples.zarr", num_rungs * systems),
                      checkpoint_dir=directory / "checkpoint", config_hash="tempering",
                      stop_requested=stop)


def _flat(state):
    out = {}
    for field, value in state._asdict().items():
        if isinstance(value, dict):
            for key, inner in value.items():
                if isinstance(inner, dict):
                    out.update({f"{field}.{key}.{k}": v for k, v in inner.items()})
                else:
                    out[f"{field}.{key}"] = inner
        else:
            out[field] = value
    return out


@pytest.mark.parametrize("mode, base", [("noise_variance", "euler_maruyama"),
                                        ("temperature", "baoab")])
def test_interrupted_tempered_run_resumes_bit_identically(tmp_path, mode, base):
    """Stopped at step 37 (inside the adaptation phase) and resumed with another seed and
    start: swaps, ladder, counters, stored draws all equal an uninterrupted run's."""
    whole = _tempered_network_run(tmp_path / "whole", 5, mode=mode, base=base)
    first = _tempered_network_run(tmp_path / "split", 5, stop_after=37, mode=mode, base=base)
    assert first.status == "interrupted" and first.step == 37
    resumed = _tempered_network_run(tmp_path / "split", 99, mode=mode, base=base)
    assert isinstance(resumed.state, TemperingState)
    flat_whole, flat_resumed = _flat(whole.state), _flat(resumed.state)
    assert flat_whole.keys() == flat_resumed.keys()
    for path, tensor in flat_whole.items():
        assert torch.equal(tensor, flat_resumed[path]), path
    assert int(whole.state.swap_attempts.sum()) > 0
    assert not np.allclose(whole.state.ladder.numpy(), [0.1, 0.3, 0.9])  # it adapted
    stored = [SampleStore(tmp_path / d / "samples.zarr", 6).open().load() for d in ("whole", "split")]
    for variable in stored[0].data_vars:
        np.testing.assert_array_equal(stored[0][variable].values, stored[1][variable].values,
                                      err_msg=variable)
    # Stored by rung: slot s holds rung s // C, at the frozen ladder.
    np.testing.assert_array_equal(
        stored[0]["rung_value"].values,
        np.repeat(whole.state.ladder.numpy(), 2)[:, None].repeat(stored[0].sizes["draw"], 1))


def test_step_never_mutates_its_input_state():
    model, x, y, variances, theta0 = _network(6)
    integrator = replica_exchange(euler_maruyama, tempered_potential(model, x, y, variances),
                                  {layer: 0.01 * v for layer, v in variances.items()},
                                  [0.1, 0.3, 0.9], 2, 1)
    generator = torch.Generator().manual_seed(0)
    state, _ = integrator.step(integrator.init(theta0), generator)
    before = {path: t.clone() for path, t in _flat(state).items()}
    for _ in range(3):
        integrator.step(state, generator)
    for path, tensor in _flat(state).items():
        assert torch.equal(tensor, before[path]), path


def test_slot_order_inverts_the_rung_assignment():
    rung = torch.tensor([2, 0, 0, 1, 1, 2])  # systems k = b mod 2
    order = slot_order(rung, 2)
    assert (rung[order] == torch.tensor([0, 0, 1, 1, 2, 2])).all()
    assert (order % 2 == torch.tensor([0, 1, 0, 1, 0, 1])).all()


@pytest.mark.slow
def test_every_rung_of_a_tempered_network_matches_an_independent_plain_run():
    """A small erf network (unimodal at these noise variances): rung r of a tempered MALA run
    against an independent plain MALA run of the project's convention at σ² = T = τ_r
    (γ_l = τ_r/v_l): means of L and |θ_l|² agree within 4 combined standard errors."""
    num_rungs, systems, burn_in, steps = 3, 64, 1000, 4000
    ladder = [0.2, 0.35, 0.6]
    model, x, y, variances, theta0 = _network(num_rungs * systems)
    potential_for = tempered_potential(model, x, y, variances)
    etas = {layer: 0.05 * v for layer, v in variances.items()}

    def moments(state):
        norms = [(state.theta[layer] ** 2).flatten(1).sum(1) for layer in model.layer_names]
        return torch.stack([state.loss] + norms, dim=1)

    tempered = replica_exchange(mala, potential_for, etas, ladder, systems, 2)
    averages, state = _rung_averages(tempered, theta0, torch.Generator().manual_seed(17), burn_in,
                                     steps, moments, num_rungs, systems)
    assert int(state.swap_accepts.sum()) > 0
    for r, tau in enumerate(ladder):
        decays = {layer: tau / v for layer, v in variances.items()}
        plain = mala(make_potential(model, x, y, decays),
                     {layer: 0.05 / g for layer, g in decays.items()}, tau)
        start = {layer: value[:systems] for layer, value in theta0.items()}
        independent = time_averages(plain, start, torch.Generator().manual_seed(100 + r), burn_in,
                                    steps, moments)
        a, b = averages[r], independent
        se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        z = np.abs(a.mean(0) - b.mean(0)) / se
        assert np.all(z < 4), (r, a.mean(0), b.mean(0), z)


@pytest.mark.parametrize("name", ["baoab", "mala"])
def test_temperature_exchange_keeps_every_rung_at_its_exact_gaussian_law(name):
    """Mode "temperature" on U = ½kθ² (the whole U tempered): rung r has Var θ = T_r/k
    exactly for BAOAB and MALA; BAOAB's momenta are rescaled by √(T_new/T_old) on a swap
    (without it the swapped momenta carry the wrong temperature and bias the rungs)."""
    k, ladder, systems = 1.0, [0.5, 1.0, 2.0], 200
    potential = gaussian_potential({"x": k})
    options = {"friction": 1.0} if name == "baoab" else {}
    integrator = replica_exchange(INTEGRATORS[name], lambda values: potential, {"x": 0.4},
                                  ladder, systems, 1, mode="temperature", **options)
    theta0 = {"x": torch.zeros(3 * systems, 2, dtype=torch.float64)}
    averages, state = _rung_averages(integrator, theta0, torch.Generator().manual_seed(23), 200,
                                     1500, lambda s: s.theta["x"] ** 2, 3, systems)
    for r, t in enumerate(ladder):
        assert_within_4_se(averages[r], np.full(2, t / k))
    assert int(state.swap_accepts.sum()) > 0
