"""The report of a T = 0 gradient-descent run (sampler.integrator = "gradient_descent"):
trained networks, one per chain, not posterior draws, so no R-hat/ESS, thermometer,
step-size bias or theory comparison. From the run directory alone it writes
summary.json with, per chain, whether the training loss reached sampler.gd_loss_tolerance
(zero with a hinge loss: all margins y f ≥ 1, the jamming criterion of Geiger, Petrini & Wyart), the
stop step and the final training loss; and the classification section of
experiments.reporting.classification_report (the ensemble predictor's test error beside single
chains', the final classification observables). The last draw is the step at which the
last chain stopped, so its values are those of the trained nets."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.reporting import classification_report
from experiments.reporting.summary_table import classification_tables, table
from experiments.rundirs import rundir
from langevin.store import SampleStore


def write_gradient_descent_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    config = rundir.load_config(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    result = meta.get("gradient_descent_result")
    if result is None:
        raise rundir.RunDirectoryError(
            f"{str(run_dir)!r} has no finished gradient-descent segment in meta.json; continue "
            f"with `langevin resume {run_dir}`")
    data = rundir.read_run_data(run_dir)
    store = SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"])
    reached = np.asarray(result["reached_loss_tolerance"], dtype=bool)
    stop_steps = np.asarray(result["stop_step"], dtype=np.int64)
    summary = {
        "run": {"name": meta.get("name"), "status": meta.get("status"),
                "num_chains": int(len(reached)), "config_hash": meta.get("config_hash"),
                "likelihood": config["posterior"]["likelihood"],
                "output_scale": config["model"]["output_scale"],
                "architecture": config["model"]["architecture"],
                "activation": config["model"]["activation"],
                "hidden_widths": list(config["model"]["widths"]) or [config["model"]["width"]],
                "input_dim": int(data.x_train.shape[1]), "n_train": int(len(data.y_train))},
        "gradient_descent": {
            "loss_tolerance": config["sampler"]["gd_loss_tolerance"],
            "fraction_reached_tolerance": float(reached.mean()),
            "stop_step": stop_steps.tolist(),
            "reached_loss_tolerance": reached.tolist(),
            "final_loss": result["final_loss"],
            "iterations": result["iterations"],
            "median_stop_step_of_stopped": (float(np.median(stop_steps[reached]))
                                            if reached.any() else None),
        },
        "warnings": [],
    }
    if not reached.all():
        summary["warnings"].append(
            f"{int((~reached).sum())} of {len(reached)} chains did not reach a training loss "
            f"<= {config['sampler']['gd_loss_tolerance']}: they stalled (step multiplier below "
            "sampler.gd_min_step_multiplier) or ran out of steps (sampler.num_steps); below its "
            "jamming point a net cannot fit the data, and the linear hinge can stall at a "
            "corner of the loss (docs/conventions.md)")
    if store.num_draws("") > 0:  # the ensemble predictor and the classification observables
        classification = classification_report.classification_summary(
            store.open().load(), data.y_test, classification_report.cadence_groups(run_dir, config))
        if classification is not None:
            summary["classification"] = classification
    path = run_dir / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, summary)
    return path


def format_gradient_descent(summary: dict) -> str:
    gd = summary["gradient_descent"]
    rows = [[str(c), "yes" if r else "no", str(s), f"{loss:.4g}"]
            for c, (r, s, loss) in enumerate(zip(gd["reached_loss_tolerance"], gd["stop_step"],
                                                 gd["final_loss"]))]
    parts = [f"gradient descent ({summary['run']['likelihood']} loss, T = 0): "
             f"{gd['fraction_reached_tolerance']:.0%} of chains reached loss <= "
             f"{gd['loss_tolerance']}",
             table(["chain", "reached", "stop step", "final loss"], rows)]
    if summary.get("classification"):
        parts.append(classification_tables(summary["classification"]))
    parts += [f"warning: {w}" for w in summary["warnings"]]
    return "\n".join(parts)
