"""The classification part of a report, from the stored draws alone: the ensemble predictor
and the final values of the classification observables (experiments.setup.classification_setup).

Ensemble predictor (Geiger, Petrini & Wyart, Phys. Rep. 2021, §5: the mean output of an ensemble of
nets with distinct initial weights, which removes the double descent). With f_c(x; t) the
output of chain c at draw t on the test inputs, the ensemble predictor of the C chains is
f̄(x; t) = (1/C) Σ_c f_c(x; t). For an error e(f) on the n test points,

    sign error  e(f) = (1/n) Σ_μ 1[sign f(x_μ) ≠ y_μ]   (labels ±1; f = 0 counts as an error)
    MSE         e(f) = (1/n) Σ_μ (f(x_μ) − y_μ)²

two summaries are reported, each as the ensemble's error beside the mean over chains of the
single chains' errors, ± its standard error over the C independent chains (sd/√C, ddof 1):

    last_draw     e(f̄(·; t_last))  and  (1/C) Σ_c e(f_c(·; t_last))
    draw_average  (1/D) Σ_t e(f̄(·; t))  and  (1/C) Σ_c [(1/D) Σ_t e(f_c(·; t))]

over the D recorded draws (the draw average is the ensemble of chains at each draw, then
averaged over draws; it is not the error of the mean over chains and draws, which the
report's predictions.test_mse_of_posterior_mean gives). The task is "classification" when
every test label is ±1 (sign error and MSE are both given), else "regression" (MSE only).

Output fluctuation (Geiger, Petrini & Wyart §5, ‖f_N − ⟨f_N⟩‖ ~ N^{-1/4}): at the last draw,
‖f_c − f̄‖ = [(1/n) Σ_μ (f_c(x_μ) − f̄(x_μ))²]^{1/2} per chain, reported as its mean over
chains ± sd/√C (an approximate error: f̄ is built from the same chains).

Over training (`over_training`, for the figures): per recorded draw, the step, the ensemble's
and the chain-mean sign error (classification) or MSE, and the chain means of the scalar
classification observables of the root group.

Final values: for every classification observable (n_delta, ntk_relative_change,
separation per depth, good_neurons and the number of atoms with a surely good neuron) the
mean over chains at the last draw ± its standard error over chains (and the sd over chains),
and the mean over all chains and draws ± its MCSE (meaningful for an equilibrium run).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from experiments.rundirs import rundir
from langevin import diagnostics
from langevin.store import SampleStore, group_name

# The scalar-per-chain observables summarized, and their vector ones (one row per index).
SCALARS = ("n_delta", "ntk_relative_change", "good_neurons")
CADENCE_KEYS = ("ntk_every", "dictionary_every")


def _standard_error(values: np.ndarray) -> float:
    """sd/√C over the leading (chain) axis, ddof 1 (nan for one chain)."""
    count = values.shape[0]
    return float(values.std(ddof=1) / np.sqrt(count)) if count > 1 else float("nan")


def _errors(f: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """e(f) over the last axis (test points) of f (..., n)."""
    if kind == "sign_error":
        return np.mean(np.sign(f) != y, axis=-1)
    return np.mean((f - y) ** 2, axis=-1)


def ensemble_errors(f_test: np.ndarray, y_test: np.ndarray, steps: np.ndarray | None = None
                    ) -> dict:
    """The ensemble section (module docstring) of f_test (chain, draw, test_point)."""
    f = np.asarray(f_test, dtype=np.float64)
    y = np.asarray(y_test, dtype=np.float64)
    classification = bool(np.isin(y, (-1.0, 1.0)).all())
    kinds = ("sign_error", "mse") if classification else ("mse",)
    num_chains, num_draws = f.shape[:2]
    out = {"task": "classification" if classification else "regression",
           "num_chains": int(num_chains), "num_draws": int(num_draws),
           "test_points": int(y.size), "last_draw": {}, "draw_average": {}}
    if steps is not None and len(steps):
        out["last_draw"]["step"] = int(steps[-1])
    ensemble = f.mean(axis=0)  # (draw, n): f̄(x; t)
    for kind in kinds:
        single = _errors(f, y, kind)  # (chain, draw)
        of_ensemble = _errors(ensemble, y, kind)  # (draw,)
        out["last_draw"][kind] = {
            "ensemble": float(of_ensemble[-1]),
            "single_chain_mean": float(single[:, -1].mean()),
            "single_chain_se": _standard_error(single[:, -1])}
        per_chain = single.mean(axis=1)
        out["draw_average"][kind] = {
            "ensemble": float(of_ensemble.mean()),
            "single_chain_mean": float(per_chain.mean()),
            "single_chain_se": _standard_error(per_chain)}
    fluctuation = np.sqrt(np.mean((f[:, -1] - ensemble[-1]) ** 2, axis=-1))  # (chain,)
    out["output_fluctuation"] = {"mean": float(fluctuation.mean()),
                                              "se": _standard_error(fluctuation)}
    curves = {"error_kind": kinds[0],
              "ensemble": _errors(ensemble, y, kinds[0]).tolist(),
              "single_chain_mean": _errors(f, y, kinds[0]).mean(axis=0).tolist()}
    if steps is not None and len(steps):
        curves["step"] = [int(s) for s in steps]
    out["over_training"] = curves
    return out


def _final(values: np.ndarray) -> dict:
    """values (chain, draw): last-draw mean ± SE over chains; all-draw mean ± MCSE."""
    values = np.asarray(values, dtype=np.float64)
    last = values[:, -1]
    out = {"last_draw_mean": float(last.mean()), "last_draw_se": _standard_error(last),
           "last_draw_sd_over_chains": float(last.std(ddof=1)) if last.size > 1 else float("nan"),
           "mean": float(values.mean()), "mcse": None}
    if values.shape[1] >= 4:
        mcse = float(diagnostics.mcse_mean(values))
        out["mcse"] = mcse if np.isfinite(mcse) else None
    return out


def final_values(datasets: list[xr.Dataset]) -> dict:
    """{row name: _final(...)} of every classification observable found in `datasets`."""
    rows = {}
    for ds in datasets:
        for name in SCALARS:
            if name in ds and ds.sizes["draw"] > 0:
                rows[name] = _final(ds[name].transpose("chain", "draw").values)
        if "separation" in ds and ds.sizes["draw"] > 0:
            values = ds["separation"].transpose("chain", "draw", "depth").values
            for depth in range(values.shape[-1]):
                rows[f"separation[{depth}]"] = _final(values[..., depth])
        if "good_neuron_count" in ds and ds.sizes["draw"] > 0:
            counts = ds["good_neuron_count"].transpose("chain", "draw", "atom").values
            rows["atoms_with_good_neuron"] = _final((counts > 0).sum(-1))
    return rows


def cadence_groups(run_dir: Path, config: dict) -> list[xr.Dataset]:
    """The stored groups of the classification cadences other than sampler.thin (empty for
    a run directory without its own samples, e.g. the parent of shards)."""
    path = Path(run_dir) / rundir.SAMPLES_DIR
    if not path.exists():
        return []
    store = SampleStore(path, config["sampler"]["num_chains"])
    thin = config["sampler"]["thin"]
    groups = {group_name(config["observables"][key] or thin, thin) for key in CADENCE_KEYS}
    return [store.open(g).load() for g in sorted(groups - {""}) if store.num_draws(g) > 0]


def classification_summary(ds: xr.Dataset, y_test: np.ndarray, extra: list[xr.Dataset]
                           ) -> dict | None:
    """{"ensemble": ..., "final_values": ...} of a run (root group ds, other groups extra);
    None when there is neither f_test with test labels nor a classification observable."""
    out = {}
    if "f_test" in ds and len(y_test) and ds.sizes["draw"] > 0:
        steps = ds["step"].values if "step" in ds.coords else None
        out["ensemble"] = ensemble_errors(
            ds["f_test"].transpose("chain", "draw", "test_point").values, y_test, steps)
    rows = final_values([ds, *extra])
    if rows:
        out["final_values"] = rows
    curves = observables_over_training([ds, *extra])
    if curves:
        out["observables_over_training"] = curves
    return out or None


def observables_over_training(datasets: list[xr.Dataset]) -> dict:
    """{name: {"step": [...], "mean": [...]}}: the chain mean per recorded draw of every scalar
    classification observable (SCALARS) and of the number of atoms with a surely good neuron."""
    curves = {}
    for ds in datasets:
        if ds.sizes.get("draw", 0) == 0 or "step" not in ds.coords:
            continue
        steps = [int(s) for s in ds["step"].values]
        for name in SCALARS:
            if name in ds:
                values = ds[name].transpose("chain", "draw").values.astype(np.float64)
                curves[name] = {"step": steps, "mean": values.mean(axis=0).tolist()}
        if "good_neuron_count" in ds:
            counts = ds["good_neuron_count"].transpose("chain", "draw", "atom").values
            curves["atoms_with_good_neuron"] = {
                "step": steps, "mean": (counts > 0).sum(-1).mean(axis=0).astype(float).tolist()}
    return curves
