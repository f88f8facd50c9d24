"""Tables and figures across the runs of a sweep, from their summary.json files.

Every row has the generic columns (GP gaps and learnabilities of standard-scaling runs, the
thermometer); presets add their own columns through `ROW_BUILDERS` and their own figures through
`FIGURE_DRAWERS` (plain dicts keyed by preset name). Non-scalar row entries (curves kept for the
figures, e.g. the −log p(q) histograms) are stored in summary.json but not printed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.compare import (
    proportional_cnn_comparison, proportional_comparison, proportional_deep_comparison,
    relu_learnability,
)
from experiments.reporting import data_separation, phase_diagram, sparse_coding_training
from experiments.setup.plotting import pyplot

GP_COLUMNS = ("relative_gap_mean", "relative_gap_mean_mcse", "relative_gap_variance",
              "relative_gap_variance_mcse", "fraction_of_means_within_4_mcse")


def build_table(preset: str, key: str, rows: list[tuple[object, dict]]) -> list[dict]:
    """One row per swept value: the GP gaps (if any), the learnabilities, the thermometer."""
    table = []
    for value, summary in rows:
        row = {key: value}
        gp = summary.get("theory", {}).get("gp")
        if gp:
            row.update({c: gp[c] for c in GP_COLUMNS})
            for name, entry in gp.get("hermite_learnabilities", {}).items():
                row[f"R_{name}"] = entry["sampled"]
                row[f"R_{name}_mcse"] = entry["mcse"]
                row[f"R_{name}_gp"] = entry["gp"]
        for layer, t in summary.get("thermometer", {}).items():
            row[f"virial_temperature_{layer}"] = t["mean"]
        # a T = 0 gradient-descent run's summary has no convention section
        row["temperature"] = summary["convention"]["temperature"] if "convention" in summary else 0.0
        row.update(ROW_BUILDERS.get(preset, _no_columns)(summary))
        table.append(row)
    return table


def _no_columns(_summary: dict) -> dict:
    return {}


def feature_learning_columns(summary: dict) -> dict:
    """Per run: the paper's σ² (= the physical noise, convention.noise_variance), u, the size
    κE[φ²]/N of the neglected O(1/N) terms (`feature_learning_comparison.mean_field_expansion`), sampled
    R_He1, R_He3 and b = E[(w·w*)²], a, the kurtosis ratio of q, each with its MCSE, beside the
    GFL / Landau / GP values, the Landau phase and the theory's transition points, and the
    −log p(q) curves (sampled with errors, theories) for the figures."""
    fl = summary.get("theory", {}).get("feature_learning")
    if not fl:
        return {}
    row = {"sigma2": summary["convention"]["noise_variance"], "u": fl["parameters"].get("u"),
           "mean_field_expansion": fl["parameters"].get("mean_field_expansion")}
    for name, entry in fl.get("hermite_learnabilities", {}).items():
        for field, suffix in (("sampled", ""), ("mcse", "_mcse"), ("gfl", "_gfl"),
                              ("landau", "_landau"), ("gp", "_gp")):
            if field in entry:
                row[f"R_{name}{suffix}"] = entry[field]
    for column, name in (("b", "w_second_moment_parallel"), ("a", "w_second_moment_perp"),
                         ("kurtosis", "q_kurtosis_ratio")):
        for field, suffix in (("sampled", ""), ("mcse", "_mcse"), ("gfl", "_gfl"),
                              ("landau", "_landau")):
            if name in fl and fl[name].get(field) is not None:
                row[f"{column}{suffix}"] = fl[name][field]
    if "landau" in fl:
        row["landau_phase"] = fl["landau"]["phase"]
        row["landau_well_mass"] = fl["landau"]["well_mass"]
    transition = fl.get("transition", {})
    for column, name in (("sigma2_c", "scaling_limit"), ("sigma2_crossover", "finite_d_crossover")):
        if transition.get(name, {}).get("found"):
            row[column] = transition[name]["noise_variance"]
    row["theory_warnings"] = len(fl.get("warnings", []))
    if "q_density" in fl:
        row["q_curves"] = {k: fl["q_density"][k] for k in
                           ("centers", "sampled_neg_log", "sampled_neg_log_error", "gfl_neg_log",
                            "landau_neg_log") if k in fl["q_density"]}
    return row


def format_table(table: list[dict]) -> str:
    """Scalar columns (numbers, strings) of the table as fixed-width text."""
    if not table:
        return "(no finished runs)"
    columns = [c for c in table[0] if not isinstance(table[0][c], (dict, list))]
    lines = ["  ".join(f"{c:>14.14s}" for c in columns)]
    for row in table:
        lines.append("  ".join(f"{row.get(c, float('nan')):>14.5g}" if isinstance(row.get(c), float)
                               else f"{str(row.get(c)):>14.14s}" for c in columns))
    return "\n".join(lines)


def draw(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """The preset's figures (`FIGURE_DRAWERS`), by default the GP gaps."""
    FIGURE_DRAWERS.get(preset, draw_gp_gaps)(preset, key, table, figures_dir)


def draw_gp_gaps(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Relative GP gaps against the swept value on log-log axes, with a 1/x guide."""
    plt = pyplot()
    if not table or "relative_gap_mean" not in table[0]:
        return
    x = np.array([float(row[key]) for row in table])
    fig, ax = plt.subplots(figsize=(5.2, 4))
    for name, label in (("relative_gap_mean", "posterior mean"),
                        ("relative_gap_variance", "posterior variance")):
        y = np.array([row[name] for row in table])
        err = np.array([row[name + "_mcse"] for row in table])
        ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3, label=f"{label}: |sampled − GP|/|GP|")
    first = np.array([row["relative_gap_mean"] for row in table])[0]
    ax.plot(x, first * x[0] / x, "k:", label="∝ 1/" + key.split(".")[-1])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel("relative gap to the NNGP posterior")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures_dir / f"{preset}_gap_vs_{key.split('.')[-1]}.png", dpi=110)
    plt.close(fig)


def _column(table: list[dict], name: str) -> np.ndarray:
    return np.array([np.nan if row.get(name) is None else float(row[name]) for row in table])


def draw_learnability_transition(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Paper Fig. 1 style: R_He1, R_He3, E[q²] and the kurtosis ratio of q against σ², sampled
    (± MCSE) beside GFL, Landau and GP, with the Landau transition points as vertical lines."""
    plt = pyplot()
    if not table or "sigma2" not in table[0]:
        return
    order = np.argsort(_column(table, "sigma2"))
    table = [table[i] for i in order]
    x = _column(table, "sigma2")
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    panels = (("R_He1", "R_He1 = f·He1 / y·He1"), ("R_He3", "R_He3 = f·He3 / y·He3"),
              ("b", "E[(w·w*)²] (b)"), ("kurtosis", "E[q⁴] / (3 E[q²]²)"))
    for ax, (name, label) in zip(axes.ravel(), panels):
        ax.errorbar(x, _column(table, name), yerr=4 * _column(table, name + "_mcse"), fmt="ko",
                    capsize=3, label="sampled (± 4 MCSE)")
        for suffix, style, theory in (("_landau", "r-", "Landau (finite d)"),
                                      ("_gfl", "b--", "GFL"), ("_gp", "g:", "GP")):
            values = _column(table, name + suffix)
            if np.any(np.isfinite(values)):
                ax.plot(x, values, style, label=theory)
        for column, style, what in (("sigma2_c", "m-.", "σ²_c (d → ∞)"),
                                    ("sigma2_crossover", "c-.", "crossover (finite d)")):
            values = _column(table, column)
            if np.any(np.isfinite(values)):
                ax.axvline(np.nanmean(values), color=style[0], ls="-.", lw=0.8, label=what)
        ax.set_xlabel("σ² (likelihood variance)")
        ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures_dir / f"{preset}_learnability_vs_noise.png", dpi=110)
    plt.close(fig)


def draw_neg_log_q(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Paper Fig. 2 style: −log p(w·w*) per σ², sampled (± 4 MCSE) beside Landau and GFL."""
    plt = pyplot()
    rows = [row for row in table if "q_curves" in row]
    if not rows:
        return
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.4), squeeze=False,
                             sharey=True)
    for ax, row in zip(axes[0], sorted(rows, key=lambda r: r["sigma2"])):
        curves = row["q_curves"]
        q = np.asarray(curves["centers"], dtype=np.float64)
        sampled = np.array(curves["sampled_neg_log"], dtype=np.float64)
        error = np.array(curves["sampled_neg_log_error"], dtype=np.float64)
        ax.errorbar(q, sampled, yerr=4 * error, fmt="k.", ms=3, lw=0.6, label="sampled")
        for name, style in (("landau", "r-"), ("gfl", "b--")):
            if f"{name}_neg_log" in curves:
                ax.plot(q, np.array(curves[f"{name}_neg_log"], dtype=np.float64), style,
                        label="Landau (finite d)" if name == "landau" else "GFL")
        ax.set_ylim(np.nanmin(sampled) - 1, np.nanmin(sampled) + 12)
        ax.set_title(f"σ² = {row['sigma2']:.3g}", fontsize=9)
        ax.set_xlabel("q = w·w*")
    axes[0, 0].set_ylabel("−log p(q)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures_dir / f"{preset}_neg_log_q.png", dpi=110)
    plt.close(fig)


def draw_feature_learning(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    draw_learnability_transition(preset, key, table, figures_dir)
    draw_neg_log_q(preset, key, table, figures_dir)


# Each preset's own sweep-table columns and figures (module docstring), by preset name.
ROW_BUILDERS = {
    "gfl_single_index": feature_learning_columns,
    "grokking_cubic": feature_learning_columns,
    "grokking_cubic_small": feature_learning_columns,
    "relu_learnability": relu_learnability.table_columns,
    "relu_learnability_talk": relu_learnability.table_columns,
    "proportional_fc": proportional_comparison.table_columns,
    "proportional_deep": proportional_deep_comparison.table_columns,
    "proportional_cnn": proportional_cnn_comparison.table_columns,
    "phase_diagram": phase_diagram.table_columns,
    "data_separation": data_separation.table_columns,
    "sparse_coding": sparse_coding_training.table_columns,
}
FIGURE_DRAWERS = {
    "grokking_cubic": draw_feature_learning,
    "grokking_cubic_small": draw_feature_learning,
    "relu_learnability": relu_learnability.draw_learnability_ratios,
    "relu_learnability_talk": relu_learnability.draw_learnability_ratios,
    "proportional_fc": proportional_comparison.draw_width_and_temperature,
    "proportional_deep": proportional_comparison.draw_variance_vs_width,
    "proportional_cnn": proportional_cnn_comparison.draw_test_errors,
    "phase_diagram": phase_diagram.draw,
    "data_separation": data_separation.draw,
    "sparse_coding": sparse_coding_training.draw,
}
