"""Shared pieces of the executor tests: small run settings, draw comparison, polling."""
import time
from pathlib import Path

import numpy as np
import xarray as xr

from experiments.launch import records

# The smoke preset, short, one torch thread (runs in the test process and in job
# processes must compute the same numbers), no step-size-bias check, no progress bar.
FAST = ["sampler.num_steps=1000", "sampler.burn_in=200", "sampler.checkpoint_every=300",
        "sampler.threads=1", "sampler.progress=false", "diagnostics.bias_check=off"]


def set_args(settings):
    return [arg for setting in settings for arg in ("--set", setting)]


def assert_same_draws(a, b, groups=(None,)):
    """The stores `a` and `b` (paths or Datasets) hold identical draws."""
    for group in groups:
        left = a if isinstance(a, xr.Dataset) else xr.open_zarr(a, group=group, consolidated=False)
        right = b if isinstance(b, xr.Dataset) else xr.open_zarr(b, group=group, consolidated=False)
        left, right = left.load(), right.load()
        assert set(left.data_vars) == set(right.data_vars)
        assert dict(left.sizes) == dict(right.sizes)
        np.testing.assert_array_equal(left["step"].values, right["step"].values)
        for name in left.data_vars:
            np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=name)


def wait_for(predicate, what: str, timeout: float = 180.0, every: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in records.read_events(run_dir) if e["event"] == kind]
