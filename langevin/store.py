"""Chunked, appendable on-disk sample store: `samples.zarr`.

Layout: every observable group (one per cadence) is a zarr group holding arrays with
dims (chain, draw, ...) and a `step` coordinate along draw (the sampler step, counted
from the end of burn-in, at which the draw was taken). The group of the run's main
cadence (`thin`) is the root; a cadence of k steps lives in the subgroup `every_k`.
Each flush appends along `draw` (one zarr chunk per flush). The checkpoint, not the
store, is the record of what is committed: after a crash the store is truncated back
to the draw counts of the last checkpoint (`truncate`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr
import zarr

ROOT_GROUP = ""


def group_name(every: int, thin: int) -> str:
    """The store group of a cadence: the root for `thin`, else `every_<k>`."""
    return ROOT_GROUP if every == thin else f"every_{every}"


def _dimension_names(array) -> tuple[str, ...]:
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if names is None:  # zarr format 2 keeps xarray's dims in an attribute
        names = array.attrs.get("_ARRAY_DIMENSIONS")
    return tuple(names)


class SampleStore:
    """Appends draws of named variables to `path` (a zarr directory)."""

    def __init__(self, path: str | Path, num_chains: int):
        self.path = Path(path)
        self.num_chains = int(num_chains)

    def _group_path(self, group: str) -> str | None:
        return group or None

    def num_draws(self, group: str) -> int:
        if not self.path.exists():
            return 0
        try:
            ds = xr.open_zarr(self.path, group=self._group_path(group), consolidated=False)
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            return 0
        return int(ds.sizes.get("draw", 0))

    def append(
        self,
        group: str,
        draws: Mapping[str, np.ndarray],
        steps: np.ndarray,
        dims: Mapping[str, tuple[str, ...]],
    ) -> None:
        """Append `draws[var]` of shape (chain, k, ...) taken at sampler `steps` (k,)."""
        if len(steps) == 0:
            return
        data_vars = {
            name: (("chain", "draw", *dims[name]), np.asarray(values))
            for name, values in draws.items()
        }
        ds = xr.Dataset(data_vars, coords={"step": ("draw", np.asarray(steps, dtype=np.int64))})
        existing = self.num_draws(group)
        if existing == 0:
            ds = ds.assign_coords(chain=np.arange(self.num_chains))
            encoding = {
                name: {"chunks": (self.num_chains, len(steps), *np.shape(v)[2:])}
                for name, v in draws.items()
            }
            ds.to_zarr(
                self.path, group=self._group_path(group), mode="a",
                consolidated=False, encoding=encoding,
            )
        else:
            ds.to_zarr(
                self.path, group=self._group_path(group), append_dim="draw", consolidated=False
            )

    def truncate(self, draws_per_group: Mapping[str, int]) -> None:
        """Cut every group back to the given number of draws (0 removes its data)."""
        if not self.path.exists():
            return
        for group, count in draws_per_group.items():
            if self.num_draws(group) <= count:
                continue
            zgroup = zarr.open_group(str(self.path), mode="a", path=group or "")
            if count == 0:  # drop the group's arrays, keep its subgroups
                for name in list(zgroup.array_keys()):
                    del zgroup[name]
                continue
            for name, array in zgroup.arrays():
                names = _dimension_names(array)
                if "draw" in names:
                    shape = list(array.shape)
                    shape[names.index("draw")] = count
                    array.resize(tuple(shape))

    def open(self, group: str = ROOT_GROUP) -> xr.Dataset:
        return xr.open_zarr(self.path, group=self._group_path(group), consolidated=False)
