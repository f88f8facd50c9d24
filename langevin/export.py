"""Open a run's ``samples.zarr`` and hand its draws to ArviZ, whichever ArviZ is installed.

ArviZ changed its container at 1.0 (its 1.0 release: xarray DataTree instead of InferenceData):

- ArviZ < 1.0 (the newest on Python 3.11 is 0.23.x): ``arviz.InferenceData``, one
  ``xarray.Dataset`` per group;
- ArviZ ≥ 1.0 (Python ≥ 3.12): an ``xarray.DataTree`` whose children are the groups
  (``/posterior``, ``/observed_data``, ...); every ArviZ 1.x function accepts it as is.

``to_arviz`` hides the difference; the only version switch is
``_arviz_expects_datatree``, which reads the installed version from the package
metadata (ArviZ is imported only for the < 1.0 branch, and only when called).

Variable rule. A variable goes to the chosen group (default ``"posterior"``) if and only
if it has both a ``chain`` and a ``draw`` dimension; it is transposed to
``(chain, draw, ...)``. Every other variable (a per-cadence observable recorded on its
own draw axis such as ``draw_kernel``, or per-run data without ``chain``/``draw``) is
left out, and its name is listed in the group's ``attrs["skipped_variables"]`` (absent
when nothing was left out: an empty list would not survive netCDF). To
analyse such a variable, rename its draw axis to ``draw`` and call ``to_arviz`` on it
alone. Dimensions without coordinates get integer coordinates 0…n−1, as ArviZ's own
converters give them.
"""
from __future__ import annotations

import importlib.metadata
import os
from typing import Mapping

import numpy as np
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


def open_samples(
    path: str | os.PathLike | list, *, group: str | None = None, consolidated: bool = False
) -> xr.Dataset:
    """Open a ``samples.zarr`` store as an ``xarray.Dataset`` with dims (chain, draw, ...).

    ``path``: a zarr store; a list of stores of one posterior (shards), merged along
    ``chain`` by `merge_chains`; or a directory with a ``shards.json`` manifest (a sharded
    run directory), opened as the merge of the stores it lists.

    ``group``: the zarr group of one cadence (``langevin.store``: the run's main cadence
    is the root, None; a cadence of k steps is ``"every_k"``). Lazy: arrays are read
    when used (as dask arrays when dask is installed).

    ``consolidated``: False (default) reads every array's own metadata, which opens
    consolidated and unconsolidated stores alike and is always current, also while a
    run appends (``SampleStore`` never consolidates). True reads only the consolidated
    metadata (fewer reads on object storage), which is stale if the store was written
    after it was consolidated; it raises if the store has none.
    """
    if isinstance(path, (list, tuple)):
        return merge_chains([open_samples(p, group=group, consolidated=consolidated)
                             for p in path])
    if os.path.isfile(os.path.join(path, SHARDS_MANIFEST)):
        return open_samples(_manifest_stores(path), group=group, consolidated=consolidated)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no zarr store at {os.fspath(path)!r}")
    return xr.open_zarr(path, group=group, consolidated=consolidated)


# ---- Sharded runs: one posterior whose chains were sampled in several stores ----
# A directory holding SHARDS_MANIFEST (JSON with "stores": zarr paths relative to it) is
# opened by `open_samples` as the concatenation of its stores along `chain`.
SHARDS_MANIFEST = "shards.json"


def _manifest_stores(directory: str | os.PathLike) -> list[str]:
    import json

    with open(os.path.join(directory, SHARDS_MANIFEST)) as handle:
        stores = json.load(handle)["stores"]
    return [os.path.join(directory, store) for store in stores]


def merge_chains(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Concatenate the chains of several stores of one posterior: dims (K·C, draw, ...).

    Shard k contributes chains ``sum(C_<k) ... sum(C_<=k) - 1`` in order; the new
    non-dimension coordinate ``shard`` (chain,) says which store a chain came from.
    Every store must have the same draws (the same ``step`` coordinate); if one holds
    fewer (a shard still running), all are cut to the common prefix and
    ``attrs["draws_per_shard"]`` records the stored counts. Variables without a
    ``chain`` dimension are taken from the first store. Lazy if the inputs were.
    """
    if not datasets:
        raise ValueError("merge_chains needs at least one dataset")
    counts = [int(ds.sizes.get("draw", 0)) for ds in datasets]
    common = min(counts)
    cut = [ds.isel(draw=slice(0, common)) if "draw" in ds.dims else ds for ds in datasets]
    if "step" in cut[0].coords:
        first = np.asarray(cut[0]["step"].values)
        for index, ds in enumerate(cut[1:], start=1):
            if not np.array_equal(np.asarray(ds["step"].values), first):
                raise ValueError(f"store {index} records its draws at other steps than store 0: "
                                 "not shards of one run")
    shard = np.concatenate([np.full(int(ds.sizes["chain"]), k) for k, ds in enumerate(cut)])
    stripped = [ds.drop_vars("chain", errors="ignore") for ds in cut]
    merged = xr.concat(stripped, dim="chain", data_vars="minimal", coords="minimal",
                       compat="override", join="override", combine_attrs="override")
    merged = merged.assign_coords(chain=np.arange(merged.sizes["chain"]),
                                  shard=("chain", shard))
    merged.attrs = dict(datasets[0].attrs)
    merged.attrs["shards"] = len(datasets)
    if len(set(counts)) > 1:
        merged.attrs["draws_per_shard"] = counts
    return merged


def _arviz_expects_datatree(arviz_version: str) -> bool:
    """The one version switch: ArviZ ≥ 1.0 takes a DataTree, < 1.0 an InferenceData."""
    return int(arviz_version.split(".")[0]) >= 1


def _with_integer_coords(dataset: xr.Dataset) -> xr.Dataset:
    missing = {
        dim: np.arange(size)
        for dim, size in dataset.sizes.items()
        if dim not in dataset.coords
    }
    return dataset.assign_coords(missing)


def _sample_group(dataset: xr.Dataset) -> xr.Dataset:
    """The variables with (chain, draw) dims, transposed to (chain, draw, ...).

    The names of the variables left out are in ``attrs["skipped_variables"]`` (if any);
    the attrs of ``dataset`` (run metadata) are kept. Selecting variables keeps only
    the coordinates on their dims.
    """
    kept = [
        name
        for name, variable in dataset.data_vars.items()
        if set(SAMPLE_DIMS) <= set(variable.dims)
    ]
    if not kept:
        raise ValueError(
            f"no variable has dims {SAMPLE_DIMS}; variables: "
            + ", ".join(f"{name} {variable.dims}" for name, variable in dataset.data_vars.items())
        )
    skipped = [str(name) for name in dataset.data_vars if name not in kept]
    group = dataset[kept].transpose(*SAMPLE_DIMS, ...)
    group.attrs = dict(dataset.attrs)
    if skipped:
        group.attrs["skipped_variables"] = skipped
    return _with_integer_coords(group)


def _observed_group(observed: Mapping[str, object] | xr.Dataset) -> xr.Dataset:
    """A Dataset as is; a mapping of arrays with ArviZ's default dims ``{name}_dim_{i}``."""
    if isinstance(observed, xr.Dataset):
        return _with_integer_coords(observed)
    variables = {}
    for name, value in observed.items():
        if isinstance(value, xr.DataArray):
            variables[name] = value
        else:
            values = np.asarray(value)
            dims = tuple(f"{name}_dim_{axis}" for axis in range(values.ndim))
            variables[name] = (dims, values)
    return _with_integer_coords(xr.Dataset(variables))


def to_arviz(
    dataset: xr.Dataset,
    *,
    observed: Mapping[str, object] | xr.Dataset | None = None,
    group: str = "posterior",
):
    """ArviZ's container for the draws in ``dataset``, for the installed ArviZ version.

    ``dataset``: variables with dims (chain, draw, ...) (e.g. from ``open_samples``);
    they go to ``group`` by the rule of the module docstring (others are skipped and
    named in ``attrs["skipped_variables"]``; ``ValueError`` if none has both).
    ``observed``: optional data for the
    ``observed_data`` group (a Dataset, or a mapping of names to arrays).

    Returns ``arviz.InferenceData`` for ArviZ < 1.0 and ``xarray.DataTree`` with one
    child per group for ArviZ ≥ 1.0. Data stay lazy if they were.
    """
    groups = {group: _sample_group(dataset)}
    if observed is not None:
        groups["observed_data"] = _observed_group(observed)
    return _arviz_container(groups, importlib.metadata.version("arviz"))


def _arviz_container(groups: Mapping[str, xr.Dataset], arviz_version: str):
    """Wrap named group Datasets into ArviZ's container of the given version."""
    if _arviz_expects_datatree(arviz_version):
        # ArviZ 1.x (arviz_base.convert_to_datatree passes a DataTree through).
        return xr.DataTree.from_dict(dict(groups))
    import arviz  # < 1.0; imported lazily: slow, and warns about the 1.0 refactor

    return arviz.InferenceData(**groups)
