"""Equilibration diagnostics of a run, from its stored draws: was burn-in long enough,
and does the thermometer read T throughout?

1. Virial temperature per layer over time. The draws are cut into W consecutive
   windows (W = 4, fewer for short runs: every window keeps ≥ 4 draws per chain); per
   window the mean of T_l = θ_l·∇_l U/P_l, its MCSE (`langevin.diagnostics.mcse_mean`,
   ESS over all chains) and (mean − T)/MCSE. At equilibrium E[T_l] = T in every window
   (integration by parts under exp(−U/T)), up to the step-size bias, which is the same
   in every window; a trend from the first window to the last is a burn-in too short.

2. Drift of every scalar observable between the first and the last third of the draws:

       z = (m_first − m_last) / √(mcse_first² + mcse_last²),

   |z| > `DRIFT_Z` warns (a two-sample version of Geweke's diagnostic with ESS-based
   standard errors over independent chains; J. Geweke, "Evaluating the accuracy of
   sampling-based approaches to the calculation of posterior moments", Bayesian
   Statistics 4 (1992), compares the first 10 % with the last 50 % of one chain).

3. Integrated autocorrelation time of every scalar observable, in sampler steps,

       τ_int = thin · S / ESS_mean,   S = chains × draws

   (ESS_mean of split chains, Geyer's initial monotone sequence, VGSCB21). A start
   displaced by Δ relaxes like Δ·e^{−t/τ_exp} with τ_int ≈ 2τ_exp for an AR(1)-like
   observable, so a burn-in of `BURN_IN_IN_TAU` = 5 τ_int ≈ 10 τ_exp leaves e^{−10} ≈
   5·10⁻⁵ of the initial displacement. A shorter burn-in than that, for the slowest
   observable, warns.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from experiments.rundirs.run_draws import chain_draw
from langevin import diagnostics

DRIFT_Z = 4.0  # |z| above this: the first and last thirds disagree
BURN_IN_IN_TAU = 5.0  # burn-in shorter than this many τ_int of the slowest observable warns
MAX_WINDOWS = 4
MIN_DRAWS_PER_WINDOW = 4  # the MCSE needs ≥ 4 draws per chain


def _scalar_names(ds: xr.Dataset) -> list[str]:
    return [str(n) for n, v in ds.data_vars.items() if v.dims == ("chain", "draw")]


def _draws(ds: xr.Dataset, name: str) -> np.ndarray:
    return chain_draw(ds[name]).astype(np.float64)


def _mean_and_mcse(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(diagnostics.mcse_mean(values))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def virial_windows(ds: xr.Dataset, temperature: float,
                   max_windows: int = MAX_WINDOWS) -> dict[str, list[dict]]:
    """Per layer: the virial temperature in consecutive windows of draws against T."""
    num_draws = ds.sizes.get("draw", 0)
    num_windows = min(max_windows, num_draws // MIN_DRAWS_PER_WINDOW)
    if num_windows < 1:
        return {}
    edges = np.linspace(0, num_draws, num_windows + 1).astype(int)
    steps = ds["step"].values if "step" in ds.coords else np.arange(num_draws)
    out = {}
    for name in _scalar_names(ds):
        if not name.startswith("virial_temperature_"):
            continue
        values = _draws(ds, name)
        windows = []
        for start, stop in zip(edges[:-1], edges[1:]):
            mean, mcse = _mean_and_mcse(values[:, start:stop])
            windows.append({"first_step": int(steps[start]), "last_step": int(steps[stop - 1]),
                            "mean": mean, "mcse": mcse,
                            "deviation_in_mcse": _finite_or_none((mean - temperature) / mcse)
                            if mcse > 0 else None})
        out[name.removeprefix("virial_temperature_")] = windows
    return out


def drift_between_thirds(ds: xr.Dataset) -> dict[str, dict]:
    """Per scalar observable: means of the first and last thirds of the draws and z."""
    num_draws = ds.sizes.get("draw", 0)
    third = num_draws // 3
    if third < MIN_DRAWS_PER_WINDOW:
        return {}
    out = {}
    for name in _scalar_names(ds):
        values = _draws(ds, name)
        first, first_mcse = _mean_and_mcse(values[:, :third])
        last, last_mcse = _mean_and_mcse(values[:, num_draws - third:])
        scale = math.hypot(first_mcse, last_mcse)
        out[name] = {"mean_first_third": first, "mean_last_third": last,
                     "z": (first - last) / scale if scale > 0 else None}
    return out


def autocorrelation_times(ds: xr.Dataset, thin: int) -> dict[str, float | None]:
    """Per scalar observable: τ_int = thin · S / ESS_mean in sampler steps."""
    if ds.sizes.get("draw", 0) < MIN_DRAWS_PER_WINDOW:
        return {}
    out = {}
    for name in _scalar_names(ds):
        values = _draws(ds, name)
        ess = float(diagnostics.effective_sample_size(values, "mean"))
        out[name] = _finite_or_none(thin * values.size / ess) if ess > 0 else None
    return out


def equilibration_summary(ds: xr.Dataset, temperature: float, burn_in: int, thin: int) -> dict:
    """The report's equilibration section: virial windows, drift z-scores, τ_int per
    observable, the slowest observable, and warnings (module docstring)."""
    drift = drift_between_thirds(ds)
    taus = autocorrelation_times(ds, thin)
    known = {name: tau for name, tau in taus.items() if tau is not None}
    slowest = max(known, key=known.get) if known else None
    notes = []
    for name, entry in drift.items():
        if entry["z"] is not None and abs(entry["z"]) > DRIFT_Z:
            notes.append(
                f"{name} drifts: mean {entry['mean_first_third']:.4g} in the first third of "
                f"the draws vs {entry['mean_last_third']:.4g} in the last (z = "
                f"{entry['z']:+.1f}): not equilibrated; lengthen sampler.burn_in "
                f"(now {burn_in} steps)")
    if slowest is not None and burn_in < BURN_IN_IN_TAU * known[slowest]:
        notes.append(
            f"burn-in of {burn_in} steps is shorter than {BURN_IN_IN_TAU:g} integrated "
            f"autocorrelation times of the slowest observable {slowest} (tau = "
            f"{known[slowest]:.0f} steps): raise sampler.burn_in to at least "
            f"{math.ceil(BURN_IN_IN_TAU * known[slowest])}")
    return {"burn_in_steps": int(burn_in), "virial_windows": virial_windows(ds, temperature),
            "drift_first_vs_last_third": drift, "autocorrelation_time_steps": taus,
            "slowest_observable": slowest, "warnings": notes}
