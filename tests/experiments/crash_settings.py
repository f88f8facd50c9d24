"""One tiny run configuration shared by the crash-safety tests: the smoke preset cut to
180 steps (30 of burn-in), a flush + checkpoint every 60 steps (three in all), q and
q_control in the subgroup `every_20`; and how to sample it in-process, and stop it at a
named point of the write sequence (`crash_at`)."""
import sys

import numpy as np
import xarray as xr

from experiments import presets
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data
from langevin.run import run_chains
from langevin.store import SampleStore

SET_ARGS = ["sampler.num_steps=150", "sampler.burn_in=30", "sampler.checkpoint_every=60",
            "sampler.thin=10", "observables.q_every=20", "sampler.progress=false",
            "sampler.threads=1", "diagnostics.bias_check=off"]
CLI_SETTINGS = [arg for setting in SET_ARGS for arg in ("--set", setting)]
GROUPS = (None, "every_20")
TOTAL_STEPS = 180
CHECKPOINT_EVERY = 60


def cli(*args):
    return [sys.executable, "-m", "experiments.cli", *args]


def config(*extra):
    """The configuration above, with `extra` settings ("key=value") on top."""
    return cfg.resolve([presets.get_preset("smoke").overrides], [*SET_ARGS, *extra])[0]


def assert_same_draws(reference, run_dir):
    """Every variable of every group bit for bit equal (np.testing.assert_array_equal)."""
    for group in GROUPS:
        left = xr.open_zarr(reference / "samples.zarr", group=group, consolidated=False).load()
        right = xr.open_zarr(run_dir / "samples.zarr", group=group, consolidated=False).load()
        assert set(left.data_vars) == set(right.data_vars)
        assert dict(left.sizes) == dict(right.sizes)
        np.testing.assert_array_equal(left["step"].values, right["step"].values)
        for name in left.data_vars:
            np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=name)


def sample(run_dir, hook=None, config_=None):
    """run_chains of `config_` (default: the configuration above) into `run_dir`
    (resuming if it can)."""
    config_ = config() if config_ is None else config_
    setup = build_run(config_, make_data(config_))
    return run_chains(
        integrator=setup.integrator, initial_theta=setup.initial_theta,
        generator=setup.generator, observables=setup.observables, plan=setup.plan,
        store=SampleStore(run_dir / "samples.zarr", config_["sampler"]["num_chains"]),
        checkpoint_dir=run_dir / "checkpoint", config_hash=cfg.config_hash(config_),
        fault_hook=hook)


class Crash(BaseException):
    """Stands for a SIGKILL: nothing catches it, nothing is written on the way out."""


def crash_at(point: str, occurrence: int):
    seen = []

    def hook(name):
        if name == point:
            seen.append(name)
            if len(seen) == occurrence:
                raise Crash(point)

    return hook
