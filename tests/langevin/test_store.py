"""SampleStore: a torn append (arrays of one group at different lengths) is cut back to
the checkpoint's counts on the raw arrays, idempotently; missing committed draws are
an error, not silence."""
import numpy as np
import pytest
import xarray as xr

from langevin.store import SampleStore, StoreError

DIMS = {"x": (), "v": ("unit",)}


def _draws(start, count, chains=2):
    steps = np.arange(start, start + count) + 1
    x = np.broadcast_to(steps, (chains, count)).astype(np.float32)
    v = np.repeat(x[..., None], 3, axis=2)
    return {"x": x, "v": v}, steps


def _torn_store(tmp_path):
    store = SampleStore(tmp_path / "s.zarr", num_chains=2)
    store.append("", *_draws(0, 4), DIMS)
    store.append("", *_draws(4, 3), DIMS)  # committed: 7 draws

    def stop_before_step(point):
        if point == "append:root:step":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # x and v appended, step not: torn
        store.append("", *_draws(7, 5), DIMS, hook=stop_before_step)
    return store


def test_torn_group_is_detected_and_cut_back_to_the_checkpoint(tmp_path):
    store = _torn_store(tmp_path)
    assert store.draw_lengths("") == {"x": 12, "v": 12, "step": 7}
    with pytest.raises(StoreError, match="different numbers of draws"):
        store.open()
    store.truncate({"": 7})
    store.truncate({"": 7})  # idempotent
    ds = xr.open_zarr(tmp_path / "s.zarr", consolidated=False).load()
    np.testing.assert_array_equal(ds["step"].values, np.arange(1, 8))
    np.testing.assert_array_equal(ds["x"].values[0], np.arange(1, 8))
    store.append("", *_draws(7, 5), DIMS)  # appends continue where the checkpoint was
    ds = store.open().load()
    np.testing.assert_array_equal(ds["v"].values[1, :, 2], np.arange(1, 13))


def test_missing_committed_draws_raise(tmp_path):
    store = _torn_store(tmp_path)
    with pytest.raises(StoreError, match="lost data"):
        store.truncate({"": 9})


def test_nothing_committed_empties_the_store(tmp_path):
    store = _torn_store(tmp_path)
    store.truncate({"": 0, "every_5": 0})
    assert not (tmp_path / "s.zarr").exists() and store.num_draws("") == 0
    assert not list(tmp_path.glob(".trash-*"))
