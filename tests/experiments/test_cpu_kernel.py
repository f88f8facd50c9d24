"""sampler.cpu_kernel (experiments.setup.step_options): what "native" covers and refuses,
hashing, the same chain as "torch" to float tolerance, and a native run stopped between two
writes that resumes to identical draws at another thread count."""
import numpy as np
import pytest
import torch
import xarray as xr

from experiments import presets
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data
from experiments.setup.config_keys import ConfigError
from experiments.setup.native_kernel import two_layer_kernel_unavailable
from langevin.run import run_chains
from langevin.store import SampleStore
from tests.experiments.crash_settings import GROUPS, SET_ARGS, Crash, crash_at

NATIVE = ["sampler.cpu_kernel=native"]
needs_kernel = pytest.mark.skipif(two_layer_kernel_unavailable() is not None,
                                  reason=f"no native kernel: {two_layer_kernel_unavailable()}")


@pytest.mark.parametrize("settings, named", [
    (["sampler.dtype=float64"], "sampler.dtype"),
    (["sampler.device=cuda"], "sampler.device"),
    (["model.activation=relu"], "model.activation"),
    (["model.bias=true", "posterior.sigma_b2=0.3"], "model.bias"),
    (["model.widths=[16, 16]"], "one hidden layer"),
    (["model.center_at_init=true"], "likelihood"),
    (["model.output_scale=2.0"], "likelihood"),
])
def test_native_refuses_what_it_does_not_cover(settings, named):
    with pytest.raises(ConfigError, match=f"sampler.cpu_kernel.*{named}"):
        cfg.resolve([presets.get_preset("smoke").overrides], [*NATIVE, *settings])


def test_native_has_no_compiled_step_and_bad_values_are_named():
    with pytest.raises(ConfigError, match="sampler.compile.*sampler.cpu_kernel"):
        cfg.resolve([], [*NATIVE, "sampler.compile=on"])
    with pytest.raises(ConfigError, match="sampler.cpu_kernel"):
        cfg.resolve([], ["sampler.cpu_kernel=c"])


def test_the_default_keeps_the_hash_and_native_has_its_own():
    config, _ = cfg.resolve([], [])
    legacy = {s: dict(v) for s, v in config.items()}
    del legacy["sampler"]["cpu_kernel"]
    assert cfg.config_hash(config) == cfg.config_hash(legacy)
    assert cfg.config_hash(cfg.resolve([], NATIVE)[0]) != cfg.config_hash(config)


def _config(*extra):
    return cfg.resolve([presets.get_preset("smoke").overrides], [*SET_ARGS, *extra])[0]


def _sample(config, run_dir, hook=None):
    setup = build_run(config, make_data(config))
    return run_chains(
        integrator=setup.integrator, initial_theta=setup.initial_theta,
        generator=setup.generator, observables=setup.observables, plan=setup.plan,
        store=SampleStore(run_dir / "samples.zarr", config["sampler"]["num_chains"]),
        checkpoint_dir=run_dir / "checkpoint", config_hash=cfg.config_hash(config),
        fault_hook=hook)


def _draws(run_dir, group=None):
    return xr.open_zarr(run_dir / "samples.zarr", group=group, consolidated=False).load()


@needs_kernel
def test_native_and_torch_give_the_same_chain_to_float_tolerance(tmp_path):
    """Same draws, another rounding: over the run's 180 steps the chains stay together to
    float32 accuracy (they separate only as rounding differences grow, like compiled and
    eager steps)."""
    _sample(_config(), tmp_path / "torch")
    _sample(_config(*NATIVE), tmp_path / "native")
    left, right = _draws(tmp_path / "torch"), _draws(tmp_path / "native")
    for name in ("train_loss", "squared_norm_w", "f_test"):
        scale = np.abs(left[name].values).max()
        np.testing.assert_allclose(right[name].values, left[name].values, rtol=0,
                                   atol=1e-4 * scale, err_msg=name)
    assert not np.array_equal(left["train_loss"].values, right["train_loss"].values)


@needs_kernel
@pytest.mark.parametrize("point, occurrence", [("append:root:f_test", 1), ("checkpoint:replace", 2),
                                               ("committed", 2)])
def test_a_stopped_native_run_resumes_to_identical_draws_at_another_thread_count(
        tmp_path, point, occurrence):
    config = _config(*NATIVE)
    reference = tmp_path / "reference"
    _sample(config, reference)
    run_dir = tmp_path / "run"
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(Crash):
            _sample(config, run_dir, crash_at(point, occurrence))
        torch.set_num_threads(2)
        _sample(config, run_dir)
    finally:
        torch.set_num_threads(previous)
    for group in GROUPS:
        left, right = _draws(reference, group), _draws(run_dir, group)
        assert set(left.data_vars) == set(right.data_vars)
        for name in left.data_vars:
            np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=name)
