"""Replica exchange in a run: the wiring of `langevin.tempering` into `experiments.setup.build`
(the sampling loop is the ordinary one). Config keys and their validation:
`experiments.setup.tempering_config`."""
from __future__ import annotations

import numpy as np
import torch

from experiments.setup.architectures import get_entry
from experiments.setup.tempering_config import RUNG_VALUE_NAME, ladder_of
from langevin.integrators import per_layer_step_sizes
from langevin.potential import make_potential
from langevin.schemes import INTEGRATORS, scheme_options
from langevin.tempering import by_rung, replica_exchange, tempered_potential


def initial_theta(model, config: dict, num_chains: int, generator, dtype, device,
                  teacher_direction: np.ndarray | None) -> dict:
    """Prior draws; with sampler.init_q > 0 every neuron's w·w* is set to ±init_q."""
    theta = model.sample_prior(num_chains, generator, dtype, device)
    q = config["sampler"]["init_q"]
    if q > 0:
        if teacher_direction is None:
            raise ValueError("config key 'sampler.init_q' needs a teacher direction (single-index "
                             "data or an npz with teacher_direction)")
        if not get_entry(config["model"]["architecture"]).first_layer_sees_input:
            raise ValueError("config key 'sampler.init_q' needs a first layer that multiplies "
                             f"the raw input (model.architecture = "
                             f"{config['model']['architecture']!r} has patches)")
        w_star = torch.as_tensor(teacher_direction, dtype=dtype, device=device)
        w = theta["w"]
        signs = torch.randint(0, 2, w.shape[:2], generator=generator, device=device).to(dtype)
        along = (w @ w_star).unsqueeze(-1) * w_star
        theta["w"] = w - along + (2 * signs - 1).unsqueeze(-1) * q * w_star
    return theta


def build_tempered(config: dict, model, x, y, physics, observables: dict):
    """(integrator, observables stored by rung) of a tempered run (module docstring)."""
    sampler = config["sampler"]
    mode = sampler["tempering"]
    ladder = ladder_of(sampler)
    replicas = sampler["num_chains"] // len(ladder)
    factory = INTEGRATORS[sampler["integrator"]]
    options = scheme_options(sampler["integrator"], sampler)
    if mode == "noise_variance":
        potential_for = tempered_potential(model, x, y, physics.prior_variances)
        # At T = 1 the prior's weight decay is 1/v_l (module docstring of langevin.tempering).
        decays = {layer: 1.0 / v for layer, v in physics.prior_variances.items()}
    else:
        potential = make_potential(model, x, y, physics.weight_decays)
        potential_for = lambda values: potential  # noqa: E731 - the whole U is tempered by T
        decays = physics.weight_decays
    step_sizes = per_layer_step_sizes(sampler["step_size"], decays, sampler["preconditioner"])
    adapt_steps = sampler["burn_in"] // 2 if sampler["ladder_adapt"] else 0
    integrator = replica_exchange(factory, potential_for, step_sizes, ladder, replicas,
                                  sampler["swap_every"], mode=mode, adapt_steps=adapt_steps,
                                  record_from=sampler["burn_in"], **options)
    return integrator, by_rung(observables, replicas, RUNG_VALUE_NAME[mode])


def run_metadata(config: dict, state) -> dict:
    """{"tempering": ...} for meta.json: the ladder now (frozen once step ≥ the adaptation
    phase) and the swap statistics; {} for a run without tempering."""
    sampler = config["sampler"]
    if sampler["tempering"] == "none":
        return {}
    ladder = state.ladder.cpu().numpy()
    step = int(state.step)
    return {"tempering": {
        "mode": sampler["tempering"], "rungs": int(ladder.size),
        "replicas_per_rung": sampler["num_chains"] // int(ladder.size),
        "ladder": ladder.tolist(), "initial_ladder": ladder_of(sampler).tolist(),
        "ladder_frozen": (not sampler["ladder_adapt"]) or step >= sampler["burn_in"] // 2,
        "rung_units": "noise variance sigma^2 = T (physical, = posterior.noise_variance/chi)"
                      if sampler["tempering"] == "noise_variance" else "temperature T",
        "swap_every": sampler["swap_every"], "step": step,
        "swap_attempts": state.swap_attempts.cpu().tolist(),
        "swap_accepts": state.swap_accepts.cpu().tolist(),
        "swap_probability_sum": state.swap_probability_sum.cpu().tolist(),
        "round_trips": state.round_trips.cpu().tolist(),
    }}
