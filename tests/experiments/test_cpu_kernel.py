"""sampler.cpu_kernel (experiments.setup.step_options): what "native" covers and refuses,
hashing, the same chain as "torch" to float tolerance, and a native run stopped between two
writes that resumes to identical draws at another thread count."""
import numpy as np
import pytest
import torch
import xarray as xr

from experiments import presets
from experiments.setup import config as cfg
from experiments.setup.config_keys import ConfigError
from experiments.setup.native_kernel import two_layer_kernel_unavailable
from tests.experiments.crash_settings import (
    TOTAL_STEPS, Crash, assert_same_draws, config, crash_at, sample)

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
    default, _ = cfg.resolve([], [])
    legacy = {s: dict(v) for s, v in default.items()}
    del legacy["sampler"]["cpu_kernel"]
    assert cfg.config_hash(default) == cfg.config_hash(legacy)
    assert cfg.config_hash(cfg.resolve([], NATIVE)[0]) != cfg.config_hash(default)


def _draws(run_dir, group=None):
    return xr.open_zarr(run_dir / "samples.zarr", group=group, consolidated=False).load()


@needs_kernel
def test_native_and_torch_give_the_same_chain_to_float_tolerance(tmp_path):
    """Same draws, another rounding: the two chains differ by rounding only, so after
    TOTAL_STEPS steps they agree to TOTAL_STEPS float32 roundings (relative 2⁻²⁴ each,
    accumulated linearly: at this step size the chain contracts, nothing amplifies them)
    of each observable's scale. Measured: 3·10⁻⁷ of the scale, against the bound 1.1·10⁻⁵."""
    sample(tmp_path / "torch", config_=config())
    sample(tmp_path / "native", config_=config(*NATIVE))
    left, right = _draws(tmp_path / "torch"), _draws(tmp_path / "native")
    for name in ("train_loss", "squared_norm_w", "f_test"):
        scale = np.abs(left[name].values).max()
        np.testing.assert_allclose(right[name].values, left[name].values, rtol=0,
                                   atol=TOTAL_STEPS * 2.0 ** -24 * scale, err_msg=name)
    assert not np.array_equal(left["train_loss"].values, right["train_loss"].values)


@needs_kernel
@pytest.mark.parametrize("point, occurrence", [("append:root:f_test", 1), ("checkpoint:replace", 2),
                                               ("committed", 2)])
def test_a_stopped_native_run_resumes_to_identical_draws_at_another_thread_count(
        tmp_path, point, occurrence):
    native_config = config(*NATIVE)
    reference = tmp_path / "reference"
    sample(reference, config_=native_config)
    run_dir = tmp_path / "run"
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.raises(Crash):
            sample(run_dir, crash_at(point, occurrence), native_config)
        torch.set_num_threads(2)
        sample(run_dir, config_=native_config)
    finally:
        torch.set_num_threads(previous)
    assert_same_draws(reference, run_dir)
