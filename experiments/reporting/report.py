"""`langevin report DIR`: diagnostics, posterior means with MCSE, theory comparisons and
figures, computed from the run directory alone (so figures can be redrawn without
sampling again). Writes `summary.json` (atomically) and `figures/*.png`;
`print_report` also prints it as tables (experiments.reporting.summary_table).

Convergence diagnostics and their warnings: `experiments.reporting.convergence`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from experiments.compare import comparisons
from experiments.reporting import bias, equilibration, figures
from experiments.reporting import classification_report
from experiments.reporting.precision_check import paired_precision_check
from experiments.reporting.convergence import (  # noqa: F401 - also read as report.<name>
    MIN_ESS_PER_CHAIN, RHAT_THRESHOLD, UNIT_DIM, mixing_warning, scalar_diagnostics,
    thermometer, warnings_for,
)
from experiments.reporting.gradient_descent_report import (
    format_gradient_descent, write_gradient_descent_report,
)
from experiments.reporting.summary_table import format_summary
from experiments.reporting.tempering_report import write_tempering_report
from experiments.rundirs import rundir, shards
from experiments.rundirs.run_draws import chain_draw, q_draws
from langevin import diagnostics
from langevin.store import SampleStore


def posterior_predictions(ds: xr.Dataset, y_test: np.ndarray) -> dict | None:
    if "f_test" not in ds:
        return None
    f = chain_draw(ds["f_test"], "test_point")
    mean = f.mean(axis=(0, 1))
    mcse = diagnostics.mcse_mean(f) if f.shape[1] >= 4 else np.full_like(mean, np.nan)
    test_mse = float(np.mean((mean - y_test) ** 2))
    return {"mean": mean, "mcse": mcse, "variance": f.var(axis=(0, 1), ddof=1),
            "test_mse_of_posterior_mean": test_mse}


def write_report(run_dir: Path) -> Path:
    """Compute summary.json and figures for `run_dir` from its files only (a sharded
    run: of the merged posterior of its shards, experiments.rundirs.shards)."""
    run_dir = Path(run_dir)
    if shards.is_sharded_dir(run_dir):
        inputs = shards.report_inputs(run_dir)
        data = rundir.read_run_data(run_dir)
        return _write_summary(run_dir, inputs["config"], inputs["meta"], data, inputs["ds"],
                              inputs["q"], inputs["bias_dir"], inputs["bias_config"])
    config = rundir.load_config(run_dir)
    if config["sampler"]["integrator"] == "gradient_descent":  # T = 0: trained nets, no posterior
        return write_gradient_descent_report(run_dir)
    if config["sampler"]["tempering"] != "none":  # one posterior per rung
        return write_tempering_report(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    data = rundir.read_run_data(run_dir)
    store = SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"])
    if store.num_draws("") < 4:
        raise rundir.RunDirectoryError(
            f"{str(run_dir)!r} has {store.num_draws('')} stored draws, fewer than the 4 a "
            f"report needs; continue sampling with `langevin resume {run_dir}`")
    ds = store.open().load()
    return _write_summary(run_dir, config, meta, data, ds, q_draws(store, config), run_dir,
                          config)


def _write_summary(run_dir: Path, config: dict, meta: dict, data, ds: xr.Dataset, q,
                   bias_dir: Path, bias_config: dict) -> Path:
    """summary.json and figures of draws `ds` (chain, draw, ...) into `run_dir`; the
    step-size-bias check continues the checkpoint of `bias_dir` (run with `bias_config`)."""
    # An annealed run's thermometer reads against the final temperature of its schedule.
    temperature = meta.get("annealing", {}).get("final_temperature",
                                                meta["convention"]["temperature"])
    diag = scalar_diagnostics(ds)
    thermo = thermometer(ds, temperature)
    predictions = posterior_predictions(ds, data.y_test)
    summary = {
        "run": {"name": meta.get("name"), "status": meta.get("status"),
                "num_chains": int(ds.sizes["chain"]), "num_draws": int(ds.sizes["draw"]),
                "config_hash": meta.get("config_hash"),
                "architecture": config["model"]["architecture"],
                "activation": config["model"]["activation"]},
        "convention": meta["convention"],
        "diagnostics": diag,
        "thermometer": thermo,
        "predictions": None if predictions is None else {
            "test_mse_of_posterior_mean": predictions["test_mse_of_posterior_mean"],
            "mean": predictions["mean"], "mcse": predictions["mcse"],
            "variance": predictions["variance"]},
        "warnings": warnings_for(diag, thermo, int(ds.sizes["chain"]),
                                 config["sampler"]["num_steps"]),
        "theory": {},
    }
    if ds.attrs.get("shards"):
        summary["run"]["shards"] = int(ds.attrs["shards"])
        if "draws_per_shard" in ds.attrs:
            summary["warnings"].append(
                f"shards hold different numbers of draws {list(ds.attrs['draws_per_shard'])}: "
                "the summary uses the common first draws (a shard is unfinished)")
    summary["theory"] = comparisons.compare_with_theory(config, meta, data, ds, q=q)
    classification = classification_report.classification_summary(
        ds, data.y_test, classification_report.cadence_groups(run_dir, config))
    if classification is not None:
        summary["classification"] = classification
    summary["equilibration"] = equilibration.equilibration_summary(
        ds, temperature, config["sampler"]["burn_in"], config["sampler"]["thin"])
    summary["step_size_bias"] = bias.step_size_bias_summary(bias_dir, bias_config, data, ds)
    summary["warnings"] += (summary["equilibration"]["warnings"]
                            + summary["step_size_bias"]["warnings"])
    precision = paired_precision_check(bias_dir, bias_config, data, ds)  # tf32 runs only
    if precision["status"] != "off":
        summary["matmul_precision_check"] = precision
        summary["warnings"] += precision["warnings"]
    figures_dir = run_dir / rundir.FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)
    figures.draw_all(figures_dir, ds, q, data, meta, predictions,
                     summary["theory"])
    path = run_dir / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, summary)
    return path


def print_report(run_dir: Path) -> Path:
    """write_report, then print summary.json as tables (experiments.reporting.summary_table)."""
    path = write_report(run_dir)
    summary = rundir.read_json(path)
    if "gradient_descent" in summary:
        print(format_gradient_descent(summary))
    else:
        print(format_summary(summary))
    return path
