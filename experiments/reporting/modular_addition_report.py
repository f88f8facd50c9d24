"""The modular-addition study's table and figure (experiments.modular_addition_comparison), drawn
from its summary tables alone: the sampled discrepancy a(σ²) (± 2 MCSE) and well fraction beside
`theory.modular_addition` (finite P, exact per-mode average, P → ∞) and the NNGP
a_GP = −σ²/(4σ_a² + σ²) (Rubin, Seroussi, Ringel, ICLR 2024, §3.2 and App. B).

A table is the dict `run_study` writes to summary.json: {"parameters": the study's parameters,
"noise_variance_gmfl1", "noise_variance_gmfl2": σ²_I and σ²_II (P → ∞), "points": one point summary
per finished σ², "unfinished": the σ² without one}.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from experiments.setup.modular_addition_data import gp_discrepancy
from experiments.setup.plotting import pyplot
from theory.modular_addition import closed_form_discrepancy, solve_modular_addition


def format_table(table: dict) -> str:
    """The sweep as a markdown table: a and λ sampled ± MCSE beside the theories (* no finite-P root), R̂ of a."""
    head = ("| σ² | a sampled | a theory (P) | a exact modes | a (P→∞) | a GP | λ_a sampled | λ theory | "
            "λ exact modes | 4P²σ_a²⟨XY⟩ sampled | well fraction | p_w theory | phase | R̂(a) |")
    rows = [head, "|" + "---|" * 14]
    for pt in table["points"]:
        d, e, w = pt["discrepancy"], pt["eigenvalue"], pt["well_fraction"]
        rows.append(
            f"| {pt['noise_variance']:g} | {d['sampled']:.4f} ± {d['sampled_mcse']:.4f} | {d['theory']:.4f}"
            f"{'' if pt['theory']['converged'] else '*'} | {d['theory_exact_modes']:.4f} | "
            f"{d['theory_p_infinity']:.4f} | {d['gp']:.4f} | {e['sampled']:.5f} ± {e['sampled_mcse']:.5f} | "
            f"{e['theory']:.5f} | {e['theory_exact_modes']:.5f} | "
            f"{e['order_parameter']:.5f} ± {e['order_parameter_mcse']:.5f} | "
            f"{w['sampled']:.4f} ± {w['sampled_mcse']:.4f} | {w['theory']:.3g} | {pt['theory']['phase']} | "
            f"{pt['sampled']['discrepancy']['r_hat']:.3f} |")
    return "\n".join(rows)


def _exact_mode_discrepancy(noise_variance, *args) -> float:
    """a of the exact-mode theory, nan where its grid would be too fine (`exact_mode_moment`)."""
    try:
        return solve_modular_addition(noise_variance, *args, mode_average="exact").a
    except ValueError:
        return math.nan


@functools.lru_cache(maxsize=8)
def theory_curves(low: float, high: float, modulus: int, width: int, readout_variance: float,
                  sextic_decay: float) -> dict[str, np.ndarray]:
    """a(σ²) of each theory on 200 points of [0.8 low, 1.05 high] (the exact-mode one, the slow
    quadrature, on every 8th): finite P (nan where it has no root), exact modes, P → ∞, NNGP.
    Cached: a study's run and its report in one process draw the same curves."""
    grid = np.linspace(low * 0.8, high * 1.05, 200)
    args = (modulus, width, readout_variance, sextic_decay)
    finite = [solve_modular_addition(s2, *args) for s2 in grid]
    coarse = grid[::8]
    return {"grid": grid, "coarse": coarse,
            "finite": np.array([sol.a if sol.converged else np.nan for sol in finite]),
            "exact": np.array([_exact_mode_discrepancy(s2, *args) for s2 in coarse]),
            "p_infinity": np.array([closed_form_discrepancy(s2, *args) for s2 in grid]),
            "gp": np.array([gp_discrepancy(s2, readout_variance) for s2 in grid])}


def draw_sweep(tables: dict, path: Path) -> None:
    """a(σ²) sampled (± 2 MCSE) for each labelled sweep in `tables` beside the finite-P theory (where
    it has a root), the exact-mode theory (small P), the P → ∞ form and the NNGP, with σ²_I (and σ²_II
    when > 0) marked; and the sampled well fraction."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    first = next(iter(tables.values()))
    p = first["parameters"]
    curves = theory_curves(min(p["noise_variances"]), max(p["noise_variances"]), p["modulus"], p["width"],
                           p["readout_variance"], p["sextic_decay"])
    left.plot(curves["grid"], curves["finite"], "k-", label="theory (finite P)")
    left.plot(curves["coarse"], curves["exact"], "b-", lw=0.8, label="theory (exact modes)")
    left.plot(curves["grid"], curves["p_infinity"], "k:", label="theory (P → ∞)")
    left.plot(curves["grid"], curves["gp"], "r--", label="NNGP")
    for label, table in tables.items():
        pts = sorted(table["points"], key=lambda pt: pt["noise_variance"])
        s2 = [pt["noise_variance"] for pt in pts]
        left.errorbar(s2, [pt["discrepancy"]["sampled"] for pt in pts],
                      yerr=[2 * pt["discrepancy"]["sampled_mcse"] for pt in pts], fmt="o", ms=4, label=label)
        right.errorbar(s2, [pt["well_fraction"]["sampled"] for pt in pts],
                       yerr=[2 * pt["well_fraction"]["sampled_mcse"] for pt in pts], fmt="o", ms=4, label=label)
    for ax in (left, right):
        for key, style in (("noise_variance_gmfl1", "-."), ("noise_variance_gmfl2", ":")):
            if first[key] > 0:  # σ²_II ≤ 0: GMFL-II is not reached
                ax.axvline(first[key], color="gray", ls=style, lw=0.8)
        ax.set_xlabel("noise variance σ²")
    left.set_ylabel("discrepancy a (σ² t̄ = a y)")
    right.set_ylabel("share of modes in the well")
    right.set_yscale("log")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle(f"modular addition, P = {p['modulus']}, N = {p['width']}, γ = {p['sextic_decay']:g}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
