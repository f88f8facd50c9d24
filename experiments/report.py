"""`langevin report DIR`: diagnostics, posterior means with MCSE, theory comparisons and
figures, computed from the run directory alone (so figures can be redrawn without
sampling again). Writes `summary.json` (atomically) and `figures/*.png`;
`print_report` also prints it as tables (experiments.summary_table).

Convergence diagnostics are computed only for statistics identifiable across chains.
A variable indexed by hidden units (a dimension named `UNIT_DIM`, e.g. q = w_i·w*) is
diagnosed through its unit-symmetric statistics (`langevin.unit_symmetry`: the mean
of x² and of |x| over the units, per draw), never per unit: chains sit in different
copies of the permutation (and sign) symmetry of the posterior, so a per-unit R̂
measures the symmetry, not convergence. Every statistic
that has not converged (R̂ > 1.01 or bulk ESS below 50 per chain) is listed in ONE
warning with its remedy."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from experiments import rundir
from langevin import diagnostics, unit_symmetry
from langevin.store import SampleStore

# Rank-normalized R-hat above this flags a run (Vehtari et al. 2021 recommend 1.01).
RHAT_THRESHOLD = 1.01
# Fewer bulk-ESS than this per chain makes R-hat and MCSE unreliable (Vehtari et al. 2021).
MIN_ESS_PER_CHAIN = 50
UNIT_DIM = "neuron"  # dims containing this name index hidden units (not identifiable)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _worst(values: np.ndarray) -> dict:
    rhat = diagnostics.rank_normalized_split_rhat(values)
    ess = diagnostics.effective_sample_size(values, "bulk")
    return {"r_hat_max": _finite(np.nanmax(rhat)), "ess_bulk_min": _finite(np.nanmin(ess))}


def scalar_diagnostics(ds: xr.Dataset) -> dict:
    """summarize() of every (chain, draw) variable; worst-case R-hat/ESS of arrays; for
    unit-indexed arrays those of their unit-symmetric statistics (module docstring)."""
    out = {}
    for name, var in ds.data_vars.items():
        if var.dims[:2] != ("chain", "draw") or var.sizes["draw"] < 4:
            continue
        var = var.transpose("chain", "draw", ...)
        values = var.values
        if var.ndim == 2:
            out[name] = diagnostics.summarize({name: values})[name]
            continue
        unit_axes = [i for i, dim in enumerate(var.dims) if UNIT_DIM in str(dim)]
        if not unit_axes:
            out[name] = {"shape": list(values.shape[2:]), **_worst(values)}
            continue
        symmetric = unit_symmetry.unit_symmetric_statistics(values, unit_axes[0])
        per_statistic = {key: _worst(stat) for key, stat in symmetric.items()}
        rhats = [v["r_hat_max"] for v in per_statistic.values() if v["r_hat_max"] is not None]
        esses = [v["ess_bulk_min"] for v in per_statistic.values() if v["ess_bulk_min"] is not None]
        out[name] = {"shape": list(values.shape[2:]),
                     "diagnosed_through": f"statistics symmetric in the {var.dims[unit_axes[0]]} "
                                          "index (mean of x^2 and of |x| over units)",
                     "symmetric_statistics": per_statistic,
                     "r_hat_max": max(rhats) if rhats else None,
                     "ess_bulk_min": min(esses) if esses else None}
    return out


def thermometer(ds: xr.Dataset, temperature: float) -> dict:
    """Virial temperature per layer against T, in units of its MCSE."""
    out = {}
    for name in ds.data_vars:
        if not name.startswith("virial_temperature_") or ds.sizes["draw"] < 4:
            continue
        values = ds[name].transpose("chain", "draw").values
        mean = float(values.mean())
        mcse = float(diagnostics.mcse_mean(values))
        out[name.removeprefix("virial_temperature_")] = {
            "mean": mean, "mcse": mcse, "target_temperature": temperature,
            "deviation_in_mcse": (mean - temperature) / mcse if mcse > 0 else None,
        }
    return out


def mixing_warning(diag: dict, num_chains: int, num_steps: int | None = None) -> str | None:
    """One warning listing every statistic with R-hat > 1.01 or bulk ESS below 50 per
    chain, worded plainly, with the remedy; None when all have converged."""
    needed = MIN_ESS_PER_CHAIN * num_chains
    problems = []
    for name, stats in diag.items():
        rhat = stats.get("r_hat", stats.get("r_hat_max"))
        ess = stats.get("ess_bulk", stats.get("ess_bulk_min"))
        parts = []
        if rhat is not None and rhat > RHAT_THRESHOLD:
            parts.append(f"R-hat {rhat:.3f}")
        if ess is not None and ess < needed:
            parts.append(f"bulk ESS {ess:.0f}")
        if parts:
            label = f"{name} (symmetric statistics)" if "symmetric_statistics" in stats else name
            problems.append(f"{label}: {', '.join(parts)}")
    if not problems:
        return None
    steps = f" (now {num_steps})" if num_steps is not None else ""
    return (f"{len(problems)} of {len(diag)} statistics have not converged (the chains "
            f"disagree: R-hat above {RHAT_THRESHOLD}, or bulk ESS over {num_chains} chains "
            f"below {MIN_ESS_PER_CHAIN} per chain = {needed}): {'; '.join(problems)}. Their "
            "means and MCSE are not yet reliable. Remedy: sample longer, raise "
            f"sampler.num_steps{steps} (the ESS grows in proportion), or run more chains")


def warnings_for(diag: dict, thermo: dict, num_chains: int,
                 num_steps: int | None = None) -> list[str]:
    notes = []
    mixing = mixing_warning(diag, num_chains, num_steps)
    if mixing:
        notes.append(mixing)
    for layer, t in thermo.items():
        dev = t["deviation_in_mcse"]
        if dev is not None and abs(dev) > 4:
            relative = t["mean"] / t["target_temperature"] - 1
            notes.append(
                f"virial temperature of layer {layer} is {t['mean']:.4g} vs T = "
                f"{t['target_temperature']:.4g} ({relative:+.2%}, {dev:+.1f} MCSE): the "
                "discretization bias of the step size (O(step_size)), or burn-in too short; "
                "halve sampler.step_size to tell them apart")
    return notes


def posterior_predictions(ds: xr.Dataset, y_test: np.ndarray) -> dict | None:
    if "f_test" not in ds:
        return None
    f = ds["f_test"].transpose("chain", "draw", "test_point").values
    mean = f.mean(axis=(0, 1))
    mcse = diagnostics.mcse_mean(f) if f.shape[1] >= 4 else np.full_like(mean, np.nan)
    test_mse = float(np.mean((mean - y_test) ** 2))
    return {"mean": mean, "mcse": mcse, "variance": f.var(axis=(0, 1), ddof=1),
            "test_mse_of_posterior_mean": test_mse}


def q_draws(store: SampleStore, config: dict) -> xr.DataArray | None:
    """The stored q = w·w* draws, from the root group or from their cadence subgroup."""
    every = config["observables"]["q_every"]
    group = "" if every in (0, config["sampler"]["thin"]) else f"every_{every}"
    if store.num_draws(group) == 0:
        return None
    ds = store.open(group)
    return ds["q"].load() if "q" in ds else None


def write_report(run_dir: Path) -> Path:
    """Compute summary.json and figures for `run_dir` from its files only (a sharded
    run: of the merged posterior of its shards, experiments.shards)."""
    run_dir = Path(run_dir)
    from experiments import shards

    if shards.is_sharded_dir(run_dir):
        inputs = shards.report_inputs(run_dir)
        data = rundir.read_run_data(run_dir)
        return _write_summary(run_dir, inputs["config"], inputs["meta"], data, inputs["ds"],
                              inputs["q"], inputs["bias_dir"], inputs["bias_config"])
    config = rundir.load_config(run_dir)
    if config["sampler"]["integrator"] == "gradient_descent":  # T = 0: trained nets, no posterior
        from experiments.gradient_descent_report import write_gradient_descent_report
        return write_gradient_descent_report(run_dir)
    if config["sampler"]["tempering"] != "none":  # one posterior per rung
        from experiments.tempering_report import write_tempering_report
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
    from experiments import comparisons, figures

    summary["theory"] = comparisons.compare_with_theory(config, meta, data, ds, q=q)
    from experiments import classification_report

    classification = classification_report.classification_summary(
        ds, data.y_test, classification_report.cadence_groups(run_dir, config))
    if classification is not None:
        summary["classification"] = classification
    from experiments import bias, equilibration

    summary["equilibration"] = equilibration.equilibration_summary(
        ds, temperature, config["sampler"]["burn_in"], config["sampler"]["thin"])
    summary["step_size_bias"] = bias.step_size_bias_summary(bias_dir, bias_config, data, ds)
    summary["warnings"] += (summary["equilibration"]["warnings"]
                            + summary["step_size_bias"]["warnings"])
    figures_dir = run_dir / rundir.FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)
    figures.draw_all(figures_dir, ds, q, data, meta, predictions,
                     summary["theory"])
    path = run_dir / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, summary)
    return path


def print_report(run_dir: Path) -> Path:
    """write_report, then print summary.json as tables (experiments.summary_table)."""
    from experiments.summary_table import format_summary

    path = write_report(run_dir)
    summary = rundir.read_json(path)
    if "gradient_descent" in summary:
        from experiments.gradient_descent_report import format_gradient_descent
        print(format_gradient_descent(summary))
    else:
        print(format_summary(summary))
    return path
