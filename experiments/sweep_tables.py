"""Tables and figures across the runs of a sweep, from their summary.json files."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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
        row["temperature"] = summary["convention"]["temperature"]
        table.append(row)
    return table


def format_table(table: list[dict]) -> str:
    if not table:
        return "(no finished runs)"
    columns = list(table[0])
    lines = ["  ".join(f"{c:>14.14s}" for c in columns)]
    for row in table:
        lines.append("  ".join(f"{row.get(c, float('nan')):>14.5g}" if isinstance(row.get(c), float)
                               else f"{str(row.get(c)):>14.14s}" for c in columns))
    return "\n".join(lines)


def draw(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Relative GP gaps against the swept value on log-log axes, with a 1/x guide."""
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
