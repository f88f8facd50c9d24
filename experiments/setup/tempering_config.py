"""Replica exchange in a run: config keys, validation, and the wiring of
`langevin.tempering` into `experiments.setup.build` (the sampling loop is the ordinary one).

    sampler.tempering     "none" | "noise_variance" | "temperature"
    sampler.ladder        rung values (σ² = T, the run's temperature units), increasing; or
    sampler.ladder_min, sampler.ladder_max, sampler.ladder_rungs   a geometric ladder
    sampler.ladder_adapt  re-place the rungs toward equal swap rejection during the first
                          half of the burn-in (`langevin.ladder`), then freeze
    sampler.swap_every    steps between swap rounds (even and odd pairs alternate)
    sampler.init_q        0: chains start from the prior; q > 0: every neuron's w·w* is set
                          to ±q (random sign), the rest of w from the prior (a start on the
                          feature-learning side of the grokking transition)

Rung values are in the units of the run's temperature T = σ² (meta.json convention.
noise_variance = posterior.noise_variance/χ, the physical σ² of the grokking paper):
"noise_variance" rungs are likelihood variances τ at the run's fixed prior (the prior
variances of meta.json), sampled as U_c = L/τ_c + Σ|θ_l|²/(2v_l) at T = 1; "temperature"
rungs are temperatures of the whole U (prior variance T_c/γ_l). `sampler.num_chains` is
the total R·C and must be a multiple of the number of rungs R; stored chain s belongs to
rung s // C (`langevin.tempering.by_rung`).
"""
from __future__ import annotations

import numpy as np

from langevin.ladder import geometric_ladder, validate_ladder

TEMPERING_MODES = ("noise_variance", "temperature")  # = langevin.tempering.TEMPERING_MODES
TEMPERING_CHOICES = ("none",) + TEMPERING_MODES
# Keys of this block, hashed only when they differ from their default (so the hash of
# every run without tempering is what it was before these keys existed).
TEMPERING_KEYS = ("tempering", "ladder", "ladder_min", "ladder_max", "ladder_rungs",
                  "ladder_adapt", "swap_every", "init_q")
RUNG_VALUE_NAME = {"noise_variance": "rung_noise_variance", "temperature": "rung_temperature"}


def schema_keys(Key, positive, non_negative, one_of, finite_list) -> dict:
    """The [sampler] keys of replica exchange (experiments.setup.config.SCHEMA)."""
    return {
        "tempering": Key(str, "none", one_of(*TEMPERING_CHOICES),
                         "replica exchange: 'noise_variance' (likelihood tempered, prior fixed) "
                         "or 'temperature' (whole posterior); 'none': plain chains"),
        "ladder": Key(list, [], finite_list, "rung values sigma^2 = T, increasing (or the range)"),
        "ladder_min": Key(float, 0.0, non_negative, "geometric ladder: lowest rung (0: unset)"),
        "ladder_max": Key(float, 0.0, non_negative, "geometric ladder: highest rung"),
        "ladder_rungs": Key(int, 0, non_negative, "geometric ladder: number of rungs"),
        "ladder_adapt": Key(bool, True, None, "adapt the rungs during the first half of burn-in"),
        "swap_every": Key(int, 10, positive, "steps between swap rounds"),
        "init_q": Key(float, 0.0, non_negative,
                      "start every neuron at w.w* = +-init_q (0: from the prior)"),
    }


def validate(config: dict, user_keys, error) -> None:
    """Cross-key rules; `error(message)` is raised (ConfigError) naming the key."""
    sampler = config["sampler"]
    mode = sampler["tempering"]
    if mode == "none":
        set_keys = sorted(f"sampler.{k}" for k in TEMPERING_KEYS[1:-1] if f"sampler.{k}" in user_keys)
        if set_keys:
            raise error(f"config keys {set_keys} need sampler.tempering = 'noise_variance' or "
                        "'temperature', got 'none'")
        return
    ranged = [sampler[k] for k in ("ladder_min", "ladder_max", "ladder_rungs")]
    if sampler["ladder"] and any(ranged):
        raise error("give the ladder either as config key 'sampler.ladder' or as "
                    "sampler.ladder_min/ladder_max/ladder_rungs, not both")
    try:
        ladder = ladder_of(sampler)
    except ValueError as err:
        key = "sampler.ladder" if sampler["ladder"] else "sampler.ladder_min/ladder_max/ladder_rungs"
        raise error(f"config key '{key}': {err}") from None
    if sampler["num_chains"] % len(ladder):
        raise error(f"config key 'sampler.num_chains' ({sampler['num_chains']}) must be a multiple "
                    f"of the number of rungs ({len(ladder)}): num_chains = rungs x replicas")
    if sampler["swap_every"] > sampler["burn_in"] + sampler["num_steps"]:
        raise error(f"config key 'sampler.swap_every' ({sampler['swap_every']}) exceeds the run "
                    "length: no swap would happen")


def ladder_of(sampler: dict) -> np.ndarray:
    """The initial ladder from `sampler.ladder` or the geometric range keys."""
    if sampler["ladder"]:
        return validate_ladder(sampler["ladder"])
    if not all(sampler[k] for k in ("ladder_min", "ladder_max", "ladder_rungs")):
        raise ValueError("set sampler.ladder or all of sampler.ladder_min, ladder_max, "
                         "ladder_rungs")
    return geometric_ladder(sampler["ladder_min"], sampler["ladder_max"], sampler["ladder_rungs"])
