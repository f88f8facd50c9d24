"""The proportional-regime kernel renormalization (Pacelli et al., Nat. Mach. Intell. 2023) beside a sampled run.

Applies to one hidden fc layer, standard scaling (χ = 1), no bias, odd activation (linear,
erf, tanh): the network of theory.proportional_one_layer (Pacelli et al., Nat. Mach. Intell.
5, 1497 (2023)). Mapping of the run's convention onto the theory's inputs (that module's
docstring): the Gram is the run's NNGP kernel K = (σ̃_a²/χ) E_w[φ(w·x)φ(w·x')] with
w ~ N(0, σ_w²/d) (the registry's fc kernel, experiments.compare.theory_inputs.network_prior), the
noise is σ² = σ̃²/χ = T (convention.noise_variance), the width is N = model.width.

Per run (summary.json, section theory.proportional):
- order_parameter: the Q̄ minimizer of S(Q̄) (with converged/residual/iterations), its
  T → 0 closed form where K is invertible, and the sampled Q̄ from the readout norm,
  Q̂ = χ E|a|²/σ̃_a² (E_prior|a|² = σ̃_a²/χ; the envelope-theorem derivation is in
  theory.proportional_one_layer): the posterior mean of the series χ|a|²/σ̃_a² (observable
  squared_norm_a) with its MCSE (langevin.diagnostics.mcse_mean);
- the renormalized-kernel GP (kernel Q̄K) test mean, variance and predicted test error,
  the NNGP's (Q̄ = 1), and the sampled ones: mean/variance per test point with MCSE
  (experiments.compare.gp_comparison.mean_and_variance_gap, against the Q̄ prediction), the
  test-point-averaged variance and the test error E[(y* − f*)²] averaged over test points,
  each as the posterior mean of a per-draw series with its MCSE;
- global_rescaling_bound: the lowest test error of the GP with kernel qK over every q > 0 (the
  oracle best any global rescaling of the NNGP kernel reaches; also in test_error);
- linear activation only: the exact finite-width values (the one-dimensional integral over
  the readout norm, theory.proportional_linear_exact), so exact − Q̄ is the size of the
  1/N corrections the leading-order theory leaves out.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import optimize

from experiments.compare.gp_comparison import mean_and_variance_gap
from experiments.rundirs.run_draws import chain_draw, mean_with_mcse
from experiments.setup.architectures import get_entry
from experiments.setup.data import DataSet
from experiments.setup.plotting import pyplot
from theory.gaussian_process import gp_posterior
from theory.network_prior import NetworkPrior
from theory.proportional_linear_exact import exact_linear_one_layer
from theory.proportional_one_layer import (one_layer_zero_temperature, renormalized_prediction,
                                           solve_one_layer)

ODD_ACTIVATIONS = ("linear", "erf", "tanh")
READOUT_NORM = "squared_norm_a"  # |a|² of the fc readout (langevin.observables.squared_norms)


def applies(prior: NetworkPrior) -> bool:
    """One hidden fc layer, χ = 1, no bias, odd activation."""
    return (prior.architecture == "fc" and len(prior.widths) == 1 and prior.chi == 1.0
            and prior.bias_variance == 0.0 and prior.activation in ODD_ACTIVATIONS)


def _kernel_blocks(prior: NetworkPrior, data: DataSet):
    gram, diag = get_entry(prior.architecture).nngp(prior)
    return gram(data.x_train, None), gram(data.x_test, data.x_train), diag(data.x_test)


def _test_error(mean: np.ndarray, variance: np.ndarray, y_test: np.ndarray) -> float:
    """mean over test points of E[(y* − f*)²] = (y* − f̄)² + Var f* (noise-free test labels)."""
    return float(np.mean((y_test - mean) ** 2 + variance))


def global_rescaling_bound(K, K_test, k_diag, y, noise_variance, y_test) -> dict:
    """min over q > 0 of the test error of the GP with kernel qK: a log grid q ∈ [1e-3, 1e3],
    refined by a bounded scalar minimization around the best grid point."""
    def error(log_q):
        q = math.exp(log_q)
        return renormalized_prediction(q * K, q * K_test, q * k_diag, y, noise_variance=noise_variance,
                                       y_test=y_test).test_error

    grid = np.linspace(math.log(1e-3), math.log(1e3), 61)
    values = [error(v) for v in grid]
    i = int(np.argmin(values))
    low, high = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    result = optimize.minimize_scalar(error, bounds=(low, high), method="bounded",
                                      options={"xatol": 1e-6})
    best = (result.x, result.fun) if result.fun <= values[i] else (grid[i], values[i])
    return {"order_parameter": math.exp(best[0]), "test_error": float(best[1]),
            "at_grid_edge": i in (0, len(grid) - 1)}


def theory_predictions(prior: NetworkPrior, data: DataSet) -> dict:
    """Q̄ minimizer, renormalized-kernel and NNGP test predictions (and, linear, the exact
    finite-width ones) for the run's data and convention; arrays as numpy."""
    K, K_test, k_diag = _kernel_blocks(prior, data)
    y, s2, width = data.y_train, prior.noise_variance, prior.widths[0]
    solution = solve_one_layer(K, y, width=width, noise_variance=s2)
    q = solution.order_parameter
    renormalized = renormalized_prediction(q * K, q * K_test, q * k_diag, y, noise_variance=s2,
                                           y_test=data.y_test)
    gp = gp_posterior(K, K_test, k_diag, y, s2)
    try:
        zero_temperature = one_layer_zero_temperature(K, y, width=width)
    except ValueError:  # singular K (e.g. linear kernel with P > d)
        zero_temperature = None
    out = {
        "order_parameter": {"theory": q, "converged": solution.converged,
                            "residual": solution.residual, "iterations": solution.iterations,
                            "zero_temperature_form": zero_temperature,
                            "alpha": len(y) / width},
        "renormalized": {"test_mean": renormalized.mean_test,
                         "test_variance": renormalized.variance_test,
                         "test_error": renormalized.test_error,
                         "train_error": renormalized.train_error},
        "nngp": {"test_mean": gp.mean, "test_variance": gp.variance,
                 "test_error": _test_error(gp.mean, gp.variance, data.y_test)},
        "global_rescaling_bound": global_rescaling_bound(K, K_test, k_diag, y, s2, data.y_test),
    }
    if prior.activation == "linear":
        exact = exact_linear_one_layer(K, K_test, k_diag, y, width=width, noise_variance=s2,
                                       y_test=data.y_test)
        out["exact_finite_width"] = {"order_parameter": exact.order_parameter,
                                     "test_mean": exact.mean_test,
                                     "test_variance": exact.variance_test,
                                     "test_error": exact.test_error}
    return out


def _listed(section: dict) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in section.items()}


def sampled_test_section(f: np.ndarray, y_test: np.ndarray, renormalized: dict, nngp: dict) -> dict:
    """Sampled test moments beside the renormalized-kernel and NNGP predictions.

    f: (chain, draw, test_point); renormalized/nngp: dicts with test_mean, test_variance (m,)
    and test_error. Per-point mean/variance with MCSE (gp_comparison.mean_and_variance_gap,
    against the renormalized prediction); the test-averaged variance (series mean_t (f − f̄)²)
    and test error (series mean_t (y* − f)²), each with its MCSE."""
    gap = mean_and_variance_gap(f, renormalized["test_mean"], renormalized["test_variance"])
    centered2 = (f - f.mean(axis=(0, 1))) ** 2
    n = f.shape[0] * f.shape[1]
    average_variance = mean_with_mcse(centered2.mean(-1))
    average_variance["sampled"] *= n / (n - 1)
    return {
        "test_mean": gap["sampled_mean"].tolist(),
        "test_mean_mcse": gap["sampled_mean_mcse"].tolist(),
        "test_variance": gap["sampled_variance"].tolist(),
        "test_variance_mcse": gap["sampled_variance_mcse"].tolist(),
        "relative_gap_mean": gap["relative_gap_mean"],
        "relative_gap_variance": gap["relative_gap_variance"],
        "relative_gap_variance_mcse": gap["relative_gap_variance_mcse"],
        "fraction_of_means_within_4_mcse": gap["fraction_of_means_within_4_mcse"],
        "average_test_variance": {
            **average_variance,
            "theory": float(np.mean(renormalized["test_variance"])),
            "nngp": float(np.mean(nngp["test_variance"]))},
        "test_error": {
            **mean_with_mcse(((y_test - f) ** 2).mean(-1)),
            "theory": renormalized["test_error"], "nngp": nngp["test_error"]},
        "renormalized": _listed(renormalized),
        "nngp": _listed(nngp),
    }


def compare_proportional(prior: NetworkPrior, data: DataSet, ds: xr.Dataset) -> dict:
    """{"proportional": ...} (module docstring), or {} where the theory does not apply or the
    run recorded no test outputs."""
    if not applies(prior) or "f_test" not in ds or not len(data.y_test):
        return {}
    theory = theory_predictions(prior, data)
    f = chain_draw(ds["f_test"], "test_point").astype(np.float64)
    out = {"order_parameter": dict(theory["order_parameter"]),
           "global_rescaling_bound": theory["global_rescaling_bound"],
           **sampled_test_section(f, data.y_test, theory["renormalized"], theory["nngp"])}
    out["test_error"]["global_rescaling_bound"] = theory["global_rescaling_bound"]["test_error"]
    if READOUT_NORM in ds:
        norm = chain_draw(ds[READOUT_NORM]).astype(np.float64)
        sampled = mean_with_mcse(norm / prior.readout_variance)  # σ̃_a²/χ: NetworkPrior
        out["order_parameter"].update(sampled=sampled["sampled"], sampled_mcse=sampled["mcse"],
                                      estimator="chi |a|^2 / sigma_a2 (E_prior = 1)")
    if "exact_finite_width" in theory:
        exact = theory["exact_finite_width"]
        out["exact_finite_width"] = _listed(exact)
        out["average_test_variance"]["exact_finite_width"] = float(np.mean(exact["test_variance"]))
        out["test_error"]["exact_finite_width"] = exact["test_error"]
        out["order_parameter"]["exact_finite_width"] = exact["order_parameter"]
    if not math.isfinite(out["order_parameter"]["theory"]):
        out["order_parameter"]["message"] = "no minimum of S found"
    return {"proportional": out}


def table_columns(summary: dict) -> dict:
    """Sweep-table columns of a run (experiments.reporting.sweep_tables.ROW_BUILDERS): α, Q̄ (theory,
    sampled ± MCSE, exact for linear), test-point-averaged variance and test error (sampled ±
    MCSE, Q̄ prediction, NNGP, exact for linear)."""
    section = summary.get("theory", {}).get("proportional")
    if not section:
        return {}
    order = section["order_parameter"]
    row = {"alpha": order["alpha"], "Q_theory": order["theory"],
           "Q_sampled": order.get("sampled"), "Q_sampled_mcse": order.get("sampled_mcse")}
    if "exact_finite_width" in order:
        row["Q_exact"] = order["exact_finite_width"]
    row.update(moment_columns(section))
    return row


def moment_columns(section: dict) -> dict:
    """var_* and err_* columns (sampled, MCSE, theory, NNGP, exact where present)."""
    row = {}
    for name, prefix in (("average_test_variance", "var"), ("test_error", "err")):
        entry = section[name]
        row.update({f"{prefix}_sampled": entry["sampled"], f"{prefix}_mcse": entry["mcse"],
                    f"{prefix}_theory": entry["theory"], f"{prefix}_nngp": entry["nngp"]})
        if "exact_finite_width" in entry:
            row[f"{prefix}_exact"] = entry["exact_finite_width"]
    return row


def _first(width) -> float:
    """N1 of a swept width entry (an int, or a list of widths for deep nets)."""
    return float(width[0]) if isinstance(width, (list, tuple)) else float(width)


def draw_variance_vs_width(preset: str, key: str, table: list[dict], figures_dir) -> None:
    """Test-point-averaged posterior variance against N1 (one panel per activation): sampled
    with 2-MCSE bars, the Q̄ prediction, the NNGP (and the exact finite-width linear value)."""
    plt = pyplot()
    rows = [r for r in table if "var_theory" in r and isinstance(r[key], (list, tuple))]
    if not rows:
        return
    temperatures = [r["temperature"] for r in rows]  # a sweep over T too: the curves at its modal T
    modal = max(set(temperatures), key=temperatures.count)
    rows = [r for r in rows if r["temperature"] == modal]
    activations = sorted({r[key][0] for r in rows})
    fig, axes = plt.subplots(1, len(activations), figsize=(4.2 * len(activations), 3.4),
                             squeeze=False)
    for ax, activation in zip(axes[0], activations):
        part = sorted((r for r in rows if r[key][0] == activation), key=lambda r: _first(r[key][1]))
        width = np.array([_first(r[key][1]) for r in part], dtype=float)
        ax.errorbar(width, [r["var_sampled"] for r in part],
                    yerr=[2 * r["var_mcse"] for r in part], fmt="o", label="sampled")
        ax.plot(width, [r["var_theory"] for r in part], "-", label="Q̄ renormalized")
        ax.plot(width, [r["var_nngp"] for r in part], "--", label="NNGP")
        if all("var_exact" in r for r in part):
            ax.plot(width, [r["var_exact"] for r in part], ":", label="exact (linear)")
        ax.set_xscale("log")
        ax.set_xlabel("N1 (P = α N1)")
        ax.set_ylabel("mean test variance")
        ax.set_title(activation, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(figures_dir) / f"{preset}_variance_vs_width.png", dpi=120)
    plt.close(fig)


def draw_variance_vs_temperature(preset: str, key: str, table: list[dict], figures_dir) -> None:
    """Mean test variance and test error against T = σ² for every (activation, N1) swept over at
    least two temperatures: sampled with 2-MCSE bars, the Q̄ prediction, the NNGP (and the exact
    finite-width linear value)."""
    plt = pyplot()
    groups: dict = {}
    for r in table:
        if "var_theory" in r and isinstance(r[key], (list, tuple)):
            groups.setdefault((r[key][0], _first(r[key][1])), []).append(r)
    groups = {k: sorted(v, key=lambda r: r["temperature"]) for k, v in groups.items()
              if len({r["temperature"] for r in v}) >= 2}
    if not groups:
        return
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 6.4), squeeze=False)
    for column, ((activation, width), part) in enumerate(sorted(groups.items())):
        T = np.array([r["temperature"] for r in part], dtype=float)
        for row, (prefix, label) in enumerate((("var", "mean test variance"), ("err", "test error"))):
            ax = axes[row, column]
            ax.errorbar(T, [r[f"{prefix}_sampled"] for r in part],
                        yerr=[2 * r[f"{prefix}_mcse"] for r in part], fmt="o", label="sampled")
            ax.plot(T, [r[f"{prefix}_theory"] for r in part], "-", label="Q̄ renormalized")
            ax.plot(T, [r[f"{prefix}_nngp"] for r in part], "--", label="NNGP")
            if all(f"{prefix}_exact" in r for r in part):
                ax.plot(T, [r[f"{prefix}_exact"] for r in part], ":", label="exact (linear)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("T = σ²")
            ax.set_ylabel(label)
            ax.set_title(f"{activation}, N1 = {width:g}", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(figures_dir) / f"{preset}_variance_vs_temperature.png", dpi=120)
    plt.close(fig)


def draw_width_and_temperature(preset: str, key: str, table: list[dict], figures_dir) -> None:
    """Both figures of a sweep over N1 and T."""
    draw_variance_vs_width(preset, key, table, figures_dir)
    draw_variance_vs_temperature(preset, key, table, figures_dir)
