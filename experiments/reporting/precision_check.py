"""The paired IEEE continuation of a tf32 run (`sampler.matmul_precision = "tf32"`).

TF32 matmuls round the inputs of every product of the force to a 10-bit mantissa; the
rounding is deterministic, so its error does not average out like noise: it can shift the
stationary law. The check measures that shift where it matters, in the run's own key
observables: from the run's last checkpoint, two arms of K steps each, both starting from
the same state WITH THE SAME GENERATOR STATE (so the same noise: a paired comparison),

    arm "run":  the run's (eager) step in its precision (tf32),
    arm "ieee": the same step with IEEE float32 matmuls,

recording the observables every step (`experiments.reporting.bias.continue_chains`, the machinery of
the step-halving check, whose K and budget rules it shares). After dropping the first
`bias.DISCARD_FRACTION` of each arm (the IEEE arm relaxes from the tf32 law):

    difference = m_run − m_ieee,   MCSE = √(mcse_run² + mcse_ieee²),

each mcse from `diagnostics.mcse_mean` (ESS over all chains). The shared noise makes the
arms positively correlated, so the quadrature MCSE is conservative. Reported per
observable: the difference, its MCSE, the difference in MCSE units and the MCSE of the
run's posterior mean; a warning when |difference| > `bias.RESOLVED_IN_MCSE` MCSE.

On a CPU tf32 does nothing (the config refuses it there), so `force=True` runs the same
two arms on the CPU: they are then the same chain bit for bit (difference exactly 0), which
is how the machinery is tested without a GPU.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from experiments.reporting import bias
from experiments.rundirs import rundir
from experiments.setup.build import build_run
from experiments.setup.data import DataSet
from experiments.setup.step_options import matmul_precision
from langevin import diagnostics
from langevin import observables as obs
from langevin.checkpoint import load_checkpoint, state_to_device


def paired_difference(run_arm: np.ndarray, ieee_arm: np.ndarray) -> dict:
    """difference = m_run − m_ieee with its MCSE, from (chain, draw, ...) draws of both
    arms (the first bias.DISCARD_FRACTION of each dropped)."""
    run, ieee = bias.discard_transient(run_arm), bias.discard_transient(ieee_arm)
    mean_run, mean_ieee = run.mean(axis=(0, 1)), ieee.mean(axis=(0, 1))
    mcse_run, mcse_ieee = diagnostics.mcse_mean(run), diagnostics.mcse_mean(ieee)
    difference = mean_run - mean_ieee
    mcse = np.sqrt(mcse_run**2 + mcse_ieee**2)
    return {"mean_run": mean_run, "mean_ieee": mean_ieee, "difference": difference,
            "difference_mcse": mcse,
            "difference_in_mcse": np.where(mcse > 0, difference / np.where(mcse > 0, mcse, 1),
                                           0.0)}


def paired_precision_check(run_dir, config: dict, data: DataSet, ds: xr.Dataset,
                           force: bool = False) -> dict:
    """The report's matmul-precision section (module docstring): {"status", "precision",
    "steps", "observables", "warnings"}; status "off" for an IEEE run unless `force`."""
    precision = config["sampler"]["matmul_precision"]
    out = {"status": "off", "precision": precision, "warnings": []}
    if precision != "tf32" and not force:
        return out
    num_steps = bias.automatic_steps(config)
    out["steps"] = num_steps
    checkpoint = load_checkpoint(Path(run_dir) / rundir.CHECKPOINT_DIR)
    if checkpoint is None:
        out["status"] = "skipped: no checkpoint"
        return out
    config = bias._on_available_device(copy.deepcopy(config))
    setup = build_run(config, data)
    state = setup.integrator.state_type(**state_to_device(checkpoint.state, setup.device))
    layers = setup.model.layer_names
    observables = {"train_loss": obs.train_loss(), "squared_norms": obs.squared_norms(layers),
                   "virial_temperature": obs.virial_temperature(layers)}
    arms = {}
    for arm, arm_precision in (("run", precision), ("ieee", "ieee")):
        generator = torch.Generator(device=setup.device)
        try:
            generator.set_state(checkpoint.generator_state)
        except RuntimeError:  # saved on another device type: the same seeded stream for both
            generator.manual_seed(config["sampler"]["seed"])
        with matmul_precision(arm_precision):
            arms[arm] = bias.continue_chains(setup.integrator, state, generator, num_steps,
                                             observables)
    out["status"] = "done"
    out["method"] = ("difference = mean in the run's precision - mean in IEEE float32, K steps "
                     "each from the last checkpoint with the same noise, first "
                     f"{bias.DISCARD_FRACTION:.0%} of each dropped")
    table = {}
    for name in sorted(arms["run"].values):
        entry = {key: bias._listed(value) for key, value in
                 paired_difference(arms["run"].values[name], arms["ieee"].values[name]).items()}
        entry["run_mcse"] = (float(diagnostics.mcse_mean(ds[name].transpose("chain", "draw").values))
                             if name in ds and ds.sizes["draw"] >= 4 else math.nan)
        table[name] = entry
        if abs(entry["difference"]) > bias.RESOLVED_IN_MCSE * entry["difference_mcse"]:
            out["warnings"].append(
                f"{name}: {precision} and IEEE float32 continuations differ by "
                f"{entry['difference']:+.3g} ± {entry['difference_mcse']:.2g} "
                f"({entry['difference_in_mcse']:+.1f} MCSE): the matmul precision shifts the "
                "sampled law; use sampler.matmul_precision = 'ieee'")
    out["observables"] = table
    return out
