"""Chunked, appendable on-disk sample store: `samples.zarr`.

Layout: every observable group (one per cadence) is a zarr group holding arrays with
dims (chain, draw, ...) and a `step` coordinate along draw (the sampler step, counted
from the end of burn-in, at which the draw was taken). The group of the run's main
cadence (`thin`) is the root; a cadence of k steps lives in the subgroup `every_k`.

Crash safety. The checkpoint, not the store, is the record of what is committed: a
flush appends every group's arrays one after the other and only then writes the
checkpoint (`langevin.run`), so a process killed at any instant leaves the store with
every array at least as long as the checkpoint's draw count, some possibly longer (an
append that was under way). `truncate` brings each array back to the checkpoint's
count working on the raw zarr arrays one by one (it never needs a consistent xarray
view, which a torn append does not have), and is idempotent, so a kill during the
truncation itself is repaired by the next one. Every zarr metadata and chunk write is
atomic (write to a temporary name, rename); the temporary `*.partial` files a kill
leaves behind are removed by `truncate`.

The first flush of a group creates it through xarray (dims, coordinates, chunking);
later flushes append to the raw zarr arrays (`zarr.Array.append`: resize, then write
the new region), each array's write preceded by a call of the optional `hook(point)`
(`point` = "append:<group>:<variable>", group "root" for the root group): a test seam
to stop the process between any two writes.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import xarray as xr
import zarr

ROOT_GROUP = ""
STEP = "step"  # the coordinate along draw; appended last in every group
Hook = Callable[[str], None] | None


class StoreError(RuntimeError):
    """The store does not hold the draws a checkpoint says are committed, or is torn."""


def group_name(every: int, thin: int) -> str:
    """The store group of a cadence: the root for `thin`, else `every_<k>`."""
    return ROOT_GROUP if every == thin else f"every_{every}"


def _label(group: str) -> str:
    return group or "root"


def _dimension_names(array) -> tuple[str, ...]:
    names = getattr(getattr(array, "metadata", None), "dimension_names", None)
    if names is None:  # zarr format 2 keeps xarray's dims in an attribute
        names = array.attrs.get("_ARRAY_DIMENSIONS")
    return tuple(names or ())


def _call(hook: Hook, point: str) -> None:
    if hook is not None:
        hook(point)


class SampleStore:
    """Appends draws of named variables to `path` (a zarr directory)."""

    def __init__(self, path: str | Path, num_chains: int):
        self.path = Path(path)
        self.num_chains = int(num_chains)

    def _group_path(self, group: str) -> str | None:
        return group or None

    def _zarr_group(self, group: str, mode: str = "r"):
        """The raw zarr group, or None if it (or the store) does not exist."""
        if not self.path.exists():
            return None
        try:
            return zarr.open_group(str(self.path), mode=mode, path=group or "")
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError,
                zarr.errors.NodeTypeValidationError):
            return None
        except ValueError as err:  # a corrupt zarr.json
            raise StoreError(f"{self.path}: the metadata of group {_label(group)!r} is "
                             f"corrupt ({err})") from err

    def _draw_arrays(self, group: str, mode: str = "r") -> dict[str, tuple[object, int]]:
        """{name: (zarr array, its draw axis)} of the arrays of `group` with a draw dim."""
        zgroup = self._zarr_group(group, mode)
        if zgroup is None:
            return {}
        out = {}
        for name, array in zgroup.arrays():
            names = _dimension_names(array)
            if "draw" in names:
                out[name] = (array, names.index("draw"))
        return out

    def draw_lengths(self, group: str) -> dict[str, int]:
        """Length along `draw` of every array of `group` that has a draw dimension."""
        return {name: int(array.shape[axis])
                for name, (array, axis) in self._draw_arrays(group).items()}

    def num_draws(self, group: str) -> int:
        """Draws of `group` (the length of its `step` coordinate; 0 if it has none)."""
        return self.draw_lengths(group).get(STEP, 0)

    def check_consistent(self, group: str) -> None:
        """Raise StoreError if the arrays of `group` have different draw counts (a run
        killed during a flush and not resumed since)."""
        lengths = self.draw_lengths(group)
        if len(set(lengths.values())) > 1:
            raise StoreError(
                f"{self.path}: the arrays of group {_label(group)!r} have different numbers "
                f"of draws {lengths} (the run stopped during a flush); `langevin resume` "
                "cuts them back to the last checkpoint")

    def append(
        self,
        group: str,
        draws: Mapping[str, np.ndarray],
        steps: np.ndarray,
        dims: Mapping[str, tuple[str, ...]],
        hook: Hook = None,
    ) -> None:
        """Append `draws[var]` of shape (chain, k, ...) taken at sampler `steps` (k,).

        The group must hold equally long arrays (as after `truncate`); `hook(point)` is
        called before each array's write."""
        if len(steps) == 0:
            return
        steps = np.asarray(steps, dtype=np.int64)
        arrays = self._draw_arrays(group, mode="r+")
        lengths = {name: int(array.shape[axis]) for name, (array, axis) in arrays.items()}
        if lengths.get(STEP, 0) == 0:
            _call(hook, f"create:{_label(group)}")
            data_vars = {
                name: (("chain", "draw", *dims[name]), np.asarray(values))
                for name, values in draws.items()
            }
            ds = xr.Dataset(data_vars, coords={STEP: ("draw", steps)})
            ds = ds.assign_coords(chain=np.arange(self.num_chains))
            encoding = {
                name: {"chunks": (self.num_chains, len(steps), *np.shape(v)[2:])}
                for name, v in draws.items()
            }
            ds.to_zarr(self.path, group=self._group_path(group), mode="a",
                       consolidated=False, encoding=encoding)
            return
        expected = set(draws) | {STEP}
        if set(lengths) != expected or len(set(lengths.values())) != 1:
            raise StoreError(
                f"{self.path}: group {_label(group)!r} holds {lengths}, cannot append "
                f"{sorted(expected)}; truncate it to the checkpoint first")
        for name in [*draws, STEP]:
            array, axis = arrays[name]
            values = steps if name == STEP else np.asarray(draws[name])
            _call(hook, f"append:{_label(group)}:{name}")
            array.append(values, axis=axis)

    def _discard(self, directory: Path) -> None:
        """Remove a directory of the store atomically: rename it out of the store, then
        delete it (a kill leaves at most a `.trash-*` folder beside the store)."""
        if not directory.exists():
            return
        trash = self.path.parent / f".trash-{self.path.name}-{os.getpid()}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(directory, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def truncate(self, draws_per_group: Mapping[str, int], hook: Hook = None) -> None:
        """Cut every group back to the given number of draws (0 removes its arrays).

        Works on each raw zarr array independently; idempotent; raises StoreError if an
        array is shorter than asked (draws a checkpoint committed are missing)."""
        if not self.path.exists():
            return
        for leftover in self.path.rglob("*.partial"):  # torn atomic writes of a killed run
            leftover.unlink(missing_ok=True)
        for trash in self.path.parent.glob(f".trash-{self.path.name}-*"):
            shutil.rmtree(trash, ignore_errors=True)
        if all(count == 0 for count in draws_per_group.values()):
            self._discard(self.path)  # nothing committed: start from an empty store
            return
        for group, count in draws_per_group.items():
            group_dir = self.path / group if group else self.path
            zgroup = self._zarr_group(group, mode="r+")
            if zgroup is None:
                if count > 0:
                    raise StoreError(f"{self.path}: group {_label(group)!r} is missing but the "
                                     f"checkpoint has {count} draws in it")
                self._discard(group_dir)
                continue
            for name, array in list(zgroup.arrays()):
                names = _dimension_names(array)
                if "draw" not in names:
                    continue
                axis = names.index("draw")
                length = array.shape[axis]
                if count == 0:  # drop the group's arrays (also the chain coordinate below)
                    _call(hook, f"truncate:{_label(group)}:{name}")
                    self._discard(group_dir / name)
                elif length > count:
                    _call(hook, f"truncate:{_label(group)}:{name}")
                    shape = list(array.shape)
                    shape[axis] = count
                    array.resize(tuple(shape))
                elif length < count:
                    raise StoreError(
                        f"{self.path}: array {name!r} of group {_label(group)!r} has {length} "
                        f"draws but the checkpoint committed {count}: the store lost data "
                        "that was written before the checkpoint (was it modified or copied "
                        "while the run wrote it?)")
            if count == 0:
                for name in list(zgroup.array_keys()):
                    self._discard(group_dir / name)

    def open(self, group: str = ROOT_GROUP) -> xr.Dataset:
        self.check_consistent(group)
        return xr.open_zarr(self.path, group=self._group_path(group), consolidated=False)
