"""Figures of a run, drawn from the stored samples only (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from experiments.rundirs.run_draws import chain_draw
from experiments.setup.data import DataSet
from experiments.setup.plotting import pyplot

TRACE_VARIABLES = ("train_loss", "virial_temperature_w", "virial_temperature_a",
                   "squared_norm_w", "squared_norm_a", "w_second_moment_parallel")
# Per-layer scalars of deeper networks (w2, b1, ...) are traced after the ones above.
PER_LAYER_PREFIXES = ("virial_temperature_", "squared_norm_")


def _scalar_names(ds: xr.Dataset) -> list[str]:
    names = [n for n in TRACE_VARIABLES if n in ds]
    names += sorted(n for n in ds.data_vars if n.startswith(PER_LAYER_PREFIXES) and n not in names)
    return [n for n in names if ds[n].dims == ("chain", "draw")]


def trace_and_rank(path: Path, ds: xr.Dataset) -> None:
    """Trace (left) and rank histograms per chain (right) of the scalar observables."""
    plt = pyplot()
    names = _scalar_names(ds)
    if not names:
        return
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 2.2 * len(names)), squeeze=False)
    steps = ds["step"].values
    for row, name in enumerate(names):
        values = chain_draw(ds[name])
        ax = axes[row, 0]
        for chain in values:
            ax.plot(steps, chain, lw=0.5, alpha=0.7)
        ax.set_ylabel(name, fontsize=8)
        ranks = values.ravel().argsort().argsort().reshape(values.shape)
        bins = np.linspace(0, values.size, 21)
        ax = axes[row, 1]
        for chain in ranks:
            ax.hist(chain, bins=bins, histtype="step", lw=0.8)
        ax.axhline(values.shape[1] / 20, color="k", ls=":", lw=0.8)
    axes[-1, 0].set_xlabel("sampling step")
    axes[-1, 1].set_xlabel("rank over all chains (uniform if mixed)")
    fig.tight_layout()
    fig.savefig(path / "trace_rank.png", dpi=110)
    plt.close(fig)


def q_histogram(path: Path, q: xr.DataArray | None, prior_variance: float,
                theory_density: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Histogram of q = w·w* over all neurons, chains and draws, against its prior."""
    plt = pyplot()
    if q is None:
        return
    values = q.values.ravel()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    grid = np.linspace(values.min() - 0.1 * np.ptp(values), values.max() + 0.1 * np.ptp(values), 400)
    prior = np.exp(-grid**2 / (2 * prior_variance)) / np.sqrt(2 * np.pi * prior_variance)
    ax[0].hist(values, bins=80, density=True, alpha=0.6, label="sampled")
    ax[0].plot(grid, prior, "k--", label=f"prior N(0, {prior_variance:.3g})")
    counts, edges = np.histogram(values, bins=80, density=True)
    centers = 0.5 * (edges[1:] + edges[:-1])
    keep = counts > 0
    ax[1].plot(centers[keep], -np.log(counts[keep]), ".", label="sampled")
    ax[1].plot(grid, grid**2 / (2 * prior_variance) + 0.5 * np.log(2 * np.pi * prior_variance),
               "k--", label="prior")
    if theory_density is not None:
        tq, tp = (np.asarray(v, dtype=np.float64) for v in theory_density)  # lists from JSON
        ax[0].plot(tq, tp, "r-", label="theory")
        pos = tp > 0
        ax[1].plot(tq[pos], -np.log(tp[pos]), "r-", label="theory")
    ax[0].set_xlabel("q = w·w*")
    ax[1].set_xlabel("q = w·w*")
    ax[1].set_ylabel("−log p(q)")
    ax[0].legend(fontsize=8)
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path / "q_histogram.png", dpi=110)
    plt.close(fig)


def predictions_vs_targets(path: Path, predictions: dict | None, data: DataSet,
                           gp_mean: np.ndarray | None = None) -> None:
    plt = pyplot()
    if predictions is None or not len(data.y_test):
        return
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.errorbar(data.y_test, predictions["mean"], yerr=np.sqrt(predictions["variance"]),
                fmt=".", ms=3, lw=0.5, alpha=0.6, label="posterior mean ± sd")
    if gp_mean is not None:
        ax.plot(data.y_test, gp_mean, "r.", ms=2, label="GP prediction")
    lo, hi = float(np.min(data.y_test)), float(np.max(data.y_test))
    ax.plot([lo, hi], [lo, hi], "k:", lw=0.8)
    ax.set_xlabel("target y(x*)")
    ax.set_ylabel("f(x*)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path / "predictions.png", dpi=110)
    plt.close(fig)


def draw_all(path: Path, ds: xr.Dataset, q_values: xr.DataArray | None, data: DataSet,
             meta: dict, predictions: dict | None, theory: dict) -> None:
    """Every figure of a run; q_values may come from a cadence subgroup of the store."""
    trace_and_rank(path, ds)
    prior_variance = meta["convention"]["prior_variances"]["w"]
    q_histogram(path, q_values, prior_variance, theory.get("q_density"))
    gp = theory.get("gp", {})
    gp_mean = np.asarray(gp["test_mean"]) if "test_mean" in gp else None
    predictions_vs_targets(path, predictions, data, gp_mean)
