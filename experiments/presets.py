"""Named presets: plain dict of name -> Preset(description, overrides).

Each preset is a set of config overrides on top of the defaults of `config.SCHEMA`;
`langevin run NAME` runs it, `--set` adjusts it.
"""
from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):
    description: str
    overrides: dict


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
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)} "
                         "(or give a path to a .toml config)")
    return PRESETS[name]
