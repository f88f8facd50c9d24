"""Staircase sample complexity as a theory sweep (`theory.staircase`): for several d, the smallest P
at which the NNGP and the adaptive-kernel (Gaussian-closure) mean-field network learn 90 % of the
cubic part of y = z + εz³, the fitted exponents of P*(d) with their standard errors, and a
log-log figure.

    python -m experiments.compare.staircase --out DIR [--dims 8 16 32 64 128]

writes DIR/summary.json (the table and fits) and DIR/figures/staircase.png. Parameters
(`DEFAULTS`): ε = −0.1 (the erf network's own He_3 response to learning He_1 has the sign of −He_3,
so a negative ε makes the staircase cooperative and the Gaussian-closure branch continuous; with
ε > 0 the reduction crosses a first-order point and its GP-side branch is lost), the NNGP with
σ_w² = σ_a² = 1 and noise σ² = 1, and the mean-field network with σ̃_a² = σ̃² = 1 (the same
σ_a²/σ² ratio, so the N → ∞ limit of the network is exactly this NNGP) and N = 8d.
Sampled networks at these thresholds (P* ≈ 1.6·10³ at d = 8) are beyond this CPU-sized sweep.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from experiments.setup.plotting import pyplot
from theory import staircase

DEFAULTS = {"epsilon": -0.1, "gp_noise_variance": 1.0, "gp_sigma_a2": 1.0, "sigma_w2": 1.0,
            "readout_variance": 1.0, "noise_variance": 1.0, "width_per_dim": 8.0}
GP_DIMS = (8, 16, 32, 64, 128, 256, 512)
ADAPTIVE_DIMS = (8, 16, 32, 64, 128)


def staircase_table(gp_dims=GP_DIMS, adaptive_dims=ADAPTIVE_DIMS, steps: int = 40, **params) -> dict:
    """Thresholds P*(d) of both theories and their power-law fits (`theory.staircase.fit_exponent`;
    `steps`: continuation steps in P of the adaptive threshold search). JSON-ready (nan → None)."""
    p = dict(DEFAULTS, **params)
    gp = [staircase.gp_threshold(d, epsilon=p["epsilon"], noise_variance=p["gp_noise_variance"],
                                 sigma_w2=p["sigma_w2"], sigma_a2=p["gp_sigma_a2"]) for d in gp_dims]
    adaptive = [staircase.gfl_threshold(d, epsilon=p["epsilon"], noise_variance=p["noise_variance"],
                                        readout_variance=p["readout_variance"], width_per_dim=p["width_per_dim"],
                                        input_variance=p["sigma_w2"], steps=steps) for d in adaptive_dims]
    out = {"parameters": p, "gp": {"dims": list(gp_dims), "thresholds": gp},
           "adaptive": {"dims": list(adaptive_dims), "thresholds": [a.samples for a in adaptive],
                        "sigma_parallel_times_d": [a.solution.sigma_parallel * d
                                                   for a, d in zip(adaptive, adaptive_dims)]}}
    for name in ("gp", "adaptive"):
        fit = staircase.fit_exponent(out[name]["dims"], out[name]["thresholds"])
        out[name]["fit"] = {"exponent": fit.exponent,
                            "exponent_se": fit.exponent_se if np.isfinite(fit.exponent_se) else None,
                            "intercept": fit.intercept, "local_exponents": fit.local_exponents.tolist()}
    return out


def draw_staircase(table: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, label, color in (("gp", "GP (NNGP)", "tab:red"), ("adaptive", "adaptive kernel (N = 8d)", "tab:orange")):
        dims = np.array(table[name]["dims"], dtype=float)
        fit = table[name]["fit"]
        ax.loglog(dims, table[name]["thresholds"], "o", color=color,
                  label=f"{label}: fit d^{fit['exponent']:.2f}±{fit['exponent_se'] or float('nan'):.3f}, "
                        f"last local {fit['local_exponents'][-1]:.2f}")
        ax.loglog(dims, np.exp(fit["intercept"]) * dims ** fit["exponent"], "-", color=color, lw=1)
    dims = np.array(table["gp"]["dims"], dtype=float)
    ax.loglog(dims, table["gp"]["thresholds"][-1] * (dims / dims[-1]) ** 3, "k:", label="∝ d³")
    ax.set_xlabel("input dimension d")
    ax.set_ylabel("P* (90 % of the cubic component learned)")
    ax.set_title(f"staircase y = z + εz³, ε = {table['parameters']['epsilon']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--dims", type=int, nargs="+", default=None, help="d values of the adaptive sweep")
    args = parser.parse_args(argv)
    table = staircase_table(adaptive_dims=tuple(args.dims) if args.dims else ADAPTIVE_DIMS)
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(table, indent=1))
    draw_staircase(table, args.out / "figures" / "staircase.png")
    for name in ("gp", "adaptive"):
        fit = table[name]["fit"]
        print(f"{name:9s} P*(d) = {np.round(table[name]['thresholds'], 1).tolist()}  exponent "
              f"{fit['exponent']:.3f} ± {fit['exponent_se']:.3f}, local {np.round(fit['local_exponents'], 3).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
