"""Convergence diagnostics of a run's stored draws, and the warnings the report raises.

Convergence diagnostics are computed only for statistics identifiable across chains.
A variable indexed by hidden units (a dimension named `UNIT_DIM`, e.g. q = w_i·w*) is
diagnosed through its unit-symmetric statistics (`langevin.unit_symmetry`: the mean
of x² and of |x| over the units, per draw), never per unit: chains sit in different
copies of the permutation (and sign) symmetry of the posterior, so a per-unit R̂
measures the symmetry, not convergence. Every statistic that has not converged
(R̂ > 1.01 or bulk ESS below 50 per chain) is listed in ONE warning with its remedy.
The virial thermometer compares the per-layer virial temperature with T in MCSE.
Used by `experiments.reporting.report` and `experiments.reporting.tempering_report` (one posterior per rung).
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from experiments.rundirs.run_draws import chain_draw
from langevin import diagnostics, unit_symmetry

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
        values = chain_draw(ds[name])
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
