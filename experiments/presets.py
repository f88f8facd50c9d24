"""Named presets: plain dict of name -> Preset(description, overrides).

Each preset is a set of config overrides on top of the defaults of `config.SCHEMA`;
`langevin run NAME` runs it, `--set` adjusts it.
"""
from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):
    """Config overrides; with `sweep` = {"section.key": [values]} a preset is a sweep:
    one run per value, in subdirectories of the sweep directory."""

    description: str
    overrides: dict
    sweep: dict | None = None


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "erf network (N=64, standard scaling) on the cubic teacher He1 - 0.3 He3, d=16, "
        "n=128; about two minutes on a 2-core CPU",
        {},
    ),
    "smoke": Preset(
        "a few seconds: 4 chains, 2000 steps (for tests and first checks)",
        {"sampler": {"num_chains": 4, "num_steps": 2000, "burn_in": 500, "thin": 10,
                     "checkpoint_every": 500},
         "model": {"width": 16}, "data": {"d": 4, "n_train": 16, "n_test": 32}},
    ),
    "gp_limit": Preset(
        "erf network, standard scaling, widths 16..1024 against the NNGP posterior: the gap "
        "of the posterior mean and variance falls like 1/width (about 15 min on 2 CPU cores)",
        {"sampler": {"num_chains": 32, "num_steps": 40_000, "burn_in": 5_000, "thin": 20,
                     "step_size": 0.01},
         "model": {"activation": "erf", "scaling": "standard"},
         "posterior": {"sigma_w2": 1.0, "sigma_a2": 1.0, "noise_variance": 0.05},
         "data": {"d": 4, "n_train": 16, "n_test": 32, "hermite_coefficients": [0.0, 1.0, 0.0, -0.3]}},
        sweep={"model.width": [16, 64, 256, 1024]},
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)} "
                         "(or give a path to a .toml config)")
    return PRESETS[name]
