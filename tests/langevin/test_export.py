"""Tests of langevin.export: to_arviz for both ArviZ containers, the variable rule, and a
zarr round trip."""
from __future__ import annotations

import importlib.metadata
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy import signal

from langevin import diagnostics, export

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # ArviZ 0.x announces its 1.0 refactor
    import arviz

ARVIZ_0 = int(importlib.metadata.version("arviz").split(".")[0]) < 1
needs_arviz_0 = pytest.mark.skipif(
    not ARVIZ_0, reason="uses the ArviZ 0.x InferenceData and summary(fmt='xarray') API"
)
AGREEMENT_RTOL = 1e-10


def synthetic_samples(seed: int = 0, num_chains: int = 4, num_draws: int = 201) -> xr.Dataset:
    """A run-like Dataset: per-neuron AR(1) draws, a scalar, an observable on its own
    cadence (draw_kernel) and per-run data without chain/draw. Odd num_draws on purpose:
    ArviZ's summary and ours must agree there too."""
    rng = np.random.default_rng(seed)
    innovations = rng.standard_normal((num_chains, num_draws, 5))
    overlap = signal.lfilter([1.0], [1.0, -0.8], innovations, axis=1)
    overlap[:, :, 4] += 3.0 * np.arange(num_chains)[:, None]  # neuron 4: chains disagree
    return xr.Dataset(
        {
            "overlap": (("chain", "draw", "neuron"), overlap),
            "loss": (("chain", "draw"), rng.gamma(2.0, size=(num_chains, num_draws))),
            "kernel": (("chain", "draw_kernel"), rng.standard_normal((num_chains, 7))),
            "targets": (("sample",), rng.standard_normal(3)),
        },
        coords={"step": ("draw", 10 * np.arange(num_draws)), "neuron": np.arange(5) + 100},
        attrs={"convention": "half_sse", "temperature": 0.01},
    )


def test_version_switch():
    assert not export._arviz_expects_datatree("0.23.4")
    assert export._arviz_expects_datatree("1.0.0")
    assert export._arviz_expects_datatree("1.2.0rc1")


@needs_arviz_0
def test_to_arviz_gives_inference_data_by_the_variable_rule():
    dataset = synthetic_samples()
    idata = export.to_arviz(dataset, observed={"y": np.arange(3.0)})
    assert isinstance(idata, arviz.InferenceData)
    assert set(idata.groups()) == {"posterior", "observed_data"}
    posterior = idata.posterior
    assert set(posterior.data_vars) == {"overlap", "loss"}
    assert posterior["overlap"].dims == ("chain", "draw", "neuron")
    assert posterior.attrs["skipped_variables"] == ["kernel", "targets"]
    assert posterior.attrs["convention"] == "half_sse"
    np.testing.assert_array_equal(posterior["chain"], np.arange(4))  # integer coords added
    np.testing.assert_array_equal(posterior["neuron"], np.arange(5) + 100)  # kept
    assert "sample" not in posterior.dims
    assert idata.observed_data["y"].dims == ("y_dim_0",)

    prior = export.to_arviz(dataset[["loss"]], group="prior")
    assert set(prior.groups()) == {"prior"}
    assert "skipped_variables" not in prior.prior.attrs  # nothing left out

    with pytest.raises(ValueError, match="no variable has dims"):
        export.to_arviz(dataset[["kernel", "targets"]])


def test_datatree_branch_for_arviz_1():
    dataset = synthetic_samples()
    groups = {
        "posterior": export._sample_group(dataset),
        "observed_data": export._observed_group({"y": np.arange(3.0)}),
    }
    tree = export._arviz_container(groups, "1.0.0")
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == {"posterior", "observed_data"}
    xr.testing.assert_identical(tree["posterior"].to_dataset(), groups["posterior"])
    if ARVIZ_0:  # ArviZ 0.x reads the same tree back
        assert set(arviz.from_datatree(tree).groups()) == {"posterior", "observed_data"}


def _assert_summary_matches(idata, dataset: xr.Dataset, var_names: list[str]) -> None:
    ours = diagnostics.summarize(dataset, var_names=var_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = arviz.summary(idata, var_names=var_names, round_to="none", fmt="xarray")
    for name in var_names:
        for statistic in diagnostics.SUMMARY_STATISTICS:
            np.testing.assert_allclose(
                ours[name][statistic],
                theirs[name].sel(metric=statistic).values,
                rtol=AGREEMENT_RTOL,
                err_msg=f"{name} {statistic}",
            )


@needs_arviz_0
def test_arviz_summary_matches_our_summary():
    dataset = synthetic_samples()
    idata = export.to_arviz(dataset)
    _assert_summary_matches(idata, dataset, ["overlap", "loss"])
    assert diagnostics.summarize(dataset, var_names=["overlap"])["overlap"]["r_hat"][4] > 1.1


@pytest.mark.parametrize("consolidated", [True, False])
def test_zarr_round_trip(tmp_path, consolidated):
    dataset = synthetic_samples(seed=1, num_draws=64)
    path = tmp_path / "samples.zarr"
    with warnings.catch_warnings():
        # zarr 3: consolidated metadata is not (yet) part of the format-3 specification
        warnings.simplefilter("ignore", UserWarning)
        dataset.to_zarr(path, consolidated=consolidated)
        cadence_draws = dataset.isel(draw=slice(0, 8))
        cadence_draws.to_zarr(path, group="every_10", consolidated=consolidated)
    opened = export.open_samples(path)  # per-array metadata: opens either kind
    cadence = export.open_samples(path, group="every_10", consolidated=consolidated)
    xr.testing.assert_identical(opened.load(), dataset)
    xr.testing.assert_identical(cadence.load(), cadence_draws)
    if ARVIZ_0:
        _assert_summary_matches(export.to_arviz(opened), dataset, ["overlap", "loss"])


def test_open_samples_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        export.open_samples(tmp_path / "missing.zarr")


def test_open_samples_sees_appended_draws(tmp_path):
    """A running sampler appends along draw (as SampleStore does, unconsolidated): the
    default per-array metadata sees every draw, whatever the store was before."""
    dataset = synthetic_samples(seed=2, num_draws=16)[["overlap", "loss"]]
    path = tmp_path / "samples.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zarr 3 consolidated-metadata note
        dataset.isel(draw=slice(0, 10)).to_zarr(path, consolidated=True)
    assert export.open_samples(path).sizes["draw"] == 10
    dataset.isel(draw=slice(10, None)).to_zarr(path, append_dim="draw", consolidated=False)
    xr.testing.assert_identical(export.open_samples(path).load(), dataset)
