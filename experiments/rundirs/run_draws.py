"""The draws of a run as NumPy arrays: the one accessor of (chain, draw, ...) values, and
the q = w·w* draws from the group of their cadence."""
from __future__ import annotations

import numpy as np
import xarray as xr

from langevin import diagnostics
from langevin.store import SampleStore, group_name


def chain_draw(values: xr.DataArray, *dims: str) -> np.ndarray:
    """The values of `values` with the chain axis first and the draw axis second, then
    `dims` in that order (all remaining dimensions in stored order when `dims` is empty)."""
    return values.transpose("chain", "draw", *(dims or (...,))).values


def mean_with_mcse(values: np.ndarray) -> dict:
    """{"sampled": posterior mean, "mcse": its MCSE} of a (chain, draw) series
    (`langevin.diagnostics.mcse_mean`: ESS over all chains)."""
    return {"sampled": float(values.mean()), "mcse": float(diagnostics.mcse_mean(values))}


def q_group(config: dict) -> str:
    """The store group of the q draws: the root group when observables.q_every is 0 or
    sampler.thin, else `every_<q_every>` (langevin.store.group_name)."""
    return group_name(config["observables"]["q_every"] or config["sampler"]["thin"],
                      config["sampler"]["thin"])


def q_draws(store: SampleStore, config: dict) -> xr.DataArray | None:
    """The stored q = w·w* draws, from the root group or from their cadence subgroup."""
    group = q_group(config)
    if store.num_draws(group) == 0:
        return None
    ds = store.open(group)
    return ds["q"].load() if "q" in ds else None
