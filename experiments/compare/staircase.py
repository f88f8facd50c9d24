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
Sampled networks at these thresholds (P* ≈ 1.6·10³ at d = 8) are beyond a CPU-sized sweep; the sampled study
`experiments.staircase_study` takes σ̃² = 0.1 (adaptive P*(8) ≈ 165) and uses the estimators below
(`sampled_learnabilities`, `training_set_ratio`, `threshold_crossing`, `draw_learnability_curves`).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from experiments.setup.plotting import pyplot
from langevin import diagnostics
from theory import staircase
from theory.hermite import hermite_he

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
    """Log-log P*(d) of the GP and the adaptive kernel with their fits; with a "sampled" entry (dims,
    thresholds, se; None where the grid did not bracket 90 %) also the sampled P* ± se and its fit, and its
    lower_bounds (the largest grid P where 90 % was not reached) as open triangles."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name, label, color in (("gp", "GP (NNGP)", "tab:red"), ("adaptive", "adaptive kernel", "tab:orange")):
        dims = np.array(table[name]["dims"], dtype=float)
        fit = table[name]["fit"]
        ax.loglog(dims, table[name]["thresholds"], "o", color=color,
                  label=f"{label}: fit d^{fit['exponent']:.2f}±{fit['exponent_se'] or float('nan'):.3f}, "
                        f"last local {fit['local_exponents'][-1]:.2f}")
        ax.loglog(dims, np.exp(fit["intercept"]) * dims ** fit["exponent"], "-", color=color, lw=1)
    sampled = table.get("sampled")
    if sampled:
        rows = [(d, t, e) for d, t, e in zip(sampled["dims"], sampled["thresholds"], sampled["se"]) if t is not None]
        if rows:
            d_s, t_s, e_s = (np.array(v, dtype=float) for v in zip(*rows))
            fit = sampled.get("fit")
            label = "sampled networks" + (f": fit d^{fit['exponent']:.2f}" if fit else "")
            ax.errorbar(d_s, t_s, yerr=e_s, fmt="s", color="tab:blue", capsize=3, label=label)
            if fit:
                ax.loglog(d_s, np.exp(fit["intercept"]) * d_s ** fit["exponent"], "-", color="tab:blue", lw=1)
        bounds = [(d, b) for d, b in zip(sampled["dims"], sampled.get("lower_bounds") or []) if b is not None]
        if bounds:
            ax.loglog(*zip(*bounds), "^", color="tab:blue", mfc="none",
                      label="sampled networks: P* > largest grid P (L_3 < 90 % on the grid)")
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


# ---- Sampled networks (experiments.staircase_study) ---------------------------------------------------------

def sampled_learnabilities(projection: np.ndarray, epsilon: float) -> dict:
    """L_1, L_3 of sampled networks from the exact Gaussian projections (chain, draw, 2) =
    (E_x[f He_1], E_x[f He_3]) of `langevin.observables.erf_hermite_projections`:

        L_1 = E_x[f̄ He_1]/E_x[y He_1] = E_x[f̄ He_1]/(1 + 3ε),   L_3 = E_x[f̄ He_3]/E_x[y He_3] = E_x[f̄ He_3]/(6ε),

    the population (continuum) learnabilities that `theory.staircase` predicts (E[He_3²] = 3! = 6; f̄ is
    linear in the draws, so the mean of per-draw ratios is the ratio of the posterior mean). MCSE from the
    independent chains: the standard deviation of the per-chain means / √C (C ≥ 2); `tau_steps_per_thin`:
    the integrated autocorrelation time in recorded draws, C·D/ESS_bulk, for each of L_1, L_3."""
    values = np.asarray(projection, dtype=np.float64)
    if values.ndim != 3 or values.shape[-1] != 2 or values.shape[0] < 2 or values.shape[1] < 4:
        raise ValueError(f"projection must have shape (chain >= 2, draw >= 4, 2), got {values.shape}")
    y1, y3 = staircase.cubic_target_coefficients(epsilon)
    ratios = values / np.array([y1, 6.0 * y3])
    chain_means = ratios.mean(axis=1)                                   # (C, 2)
    num_chains, num_draws = ratios.shape[:2]
    ess = np.array([float(diagnostics.effective_sample_size(ratios[..., k])) for k in range(2)])
    return {"L1": float(chain_means[:, 0].mean()), "L3": float(chain_means[:, 1].mean()),
            "L1_mcse": float(chain_means[:, 0].std(ddof=1) / np.sqrt(num_chains)),
            "L3_mcse": float(chain_means[:, 1].std(ddof=1) / np.sqrt(num_chains)),
            "rhat": [float(diagnostics.rank_normalized_split_rhat(ratios[..., k])) for k in range(2)],
            "tau_draws": (num_chains * num_draws / ess).tolist()}


def training_set_ratio(f_train: np.ndarray, x_train: np.ndarray, y_train: np.ndarray,
                       teacher: np.ndarray) -> dict:
    """The training-set ratio f̄(X)·He_3(Xw*)/y(X)·He_3(Xw*) (f_train (chain, draw, n)), with the MCSE of the
    per-chain means: an estimate of L_3 that mixes in the sampling noise of the P training points (reported
    beside the population L_3, not as the theory's quantity)."""
    probe = hermite_he(3, np.asarray(x_train) @ np.asarray(teacher))
    per_chain = np.einsum("cdn,n->c", np.asarray(f_train, dtype=np.float64), probe) / f_train.shape[1]
    per_chain = per_chain / float(np.asarray(y_train) @ probe)
    return {"ratio": float(per_chain.mean()), "mcse": float(per_chain.std(ddof=1) / np.sqrt(per_chain.size))}


def threshold_crossing(samples, learnability, mcse, fraction: float = staircase.LEARNED_FRACTION) -> dict:
    """P* where L_3(P) first reaches `fraction`, interpolating L_3 linearly in log P between the bracketing
    grid points (P_a, L_a), (P_b, L_b) (L_a < fraction ≤ L_b):

        log P* = log P_a + t Δ,   t = (fraction − L_a)/(L_b − L_a),   Δ = log(P_b/P_a),

    with se(log P*) = Δ √((∂t/∂L_a σ_a)² + (∂t/∂L_b σ_b)²), ∂t/∂L_a = (fraction − L_b)/(L_b − L_a)²,
    ∂t/∂L_b = −(fraction − L_a)/(L_b − L_a)² (the MCSEs σ of independent runs), and se(P*) = P* se(log P*).
    status "crossed"; "below" (L_3 < fraction on the whole grid: P* > max P) or "above" (already at the
    smallest P: P* ≤ min P), with samples/se None."""
    p = np.asarray(samples, dtype=np.float64)
    lv = np.asarray(learnability, dtype=np.float64)
    sv = np.asarray(mcse, dtype=np.float64)
    if not (p.ndim == 1 and p.shape == lv.shape == sv.shape and p.size >= 2 and np.all(np.diff(p) > 0)
            and np.all(p > 0) and np.all(np.isfinite(lv)) and np.all(np.isfinite(sv) & (sv >= 0))):
        raise ValueError("samples (increasing, positive), learnability and mcse must be finite sequences of "
                         "one length >= 2")
    reached = np.flatnonzero(lv >= fraction)
    if not reached.size:
        return {"status": "below", "samples": None, "se": None, "bracket": None}
    b = int(reached[0])
    if b == 0:
        return {"status": "above", "samples": None, "se": None, "bracket": None}
    a = b - 1
    rise = lv[b] - lv[a]
    delta = math.log(p[b] / p[a])
    t = (fraction - lv[a]) / rise
    dt_da, dt_db = (fraction - lv[b]) / rise ** 2, -(fraction - lv[a]) / rise ** 2
    value = p[a] * math.exp(t * delta)
    se_log = delta * math.hypot(dt_da * sv[a], dt_db * sv[b])
    return {"status": "crossed", "samples": value, "se": value * se_log, "bracket": [float(p[a]), float(p[b])]}


def draw_learnability_curves(points: list[dict], path: Path, fraction: float = staircase.LEARNED_FRACTION) -> None:
    """Sampled L_3 ± 2 MCSE against P per d, beside the adaptive-kernel and GP L_3 at the same P and, where the
    points carry it (`experiments.compare.staircase_finite_data`), the finite-data VGA's L_3 on each run's data."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    dims = sorted({pt["d"] for pt in points})
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, max(len(dims), 1)))
    for d, color in zip(dims, colors):
        rows = sorted((pt for pt in points if pt["d"] == d and pt.get("check", "grid") == "grid"), key=lambda pt: pt["P"])
        P = [r["P"] for r in rows]
        sampled = [r["L3"]["sampled"] for r in rows]
        if all(v is not None for v in sampled):
            ax.errorbar(P, sampled, yerr=[2 * r["L3"]["mcse"] for r in rows], fmt="o-", color=color,
                        capsize=2, label=f"d = {d} sampled")
        ax.plot(P, [r["L3"]["adaptive"] for r in rows], "--", color=color, lw=1, label=f"d = {d} adaptive")
        ax.plot(P, [r["L3"]["gp"] for r in rows], ":", color=color, lw=1)
        finite = [(p, r["L3"].get("finite_data_vga")) for p, r in zip(P, rows)]
        finite = [(p, v) for p, v in finite if v is not None]
        if finite:
            ax.plot(*zip(*finite), "-.", marker="x", ms=4, color=color, lw=1,
                    label=f"d = {d} finite-data VGA")
    for kind, marker, color, text in (("width", "x", "tab:red", "width check: N = "),
                                      ("data_seed", "+", "tab:purple", "other training sets: seed "),
                                      ("aligned_start", "d", "tab:gray", "aligned start: |w·w*| = ")):
        checks = [pt for pt in points if pt.get("check") == kind]
        if checks:
            ax.errorbar([pt["P"] for pt in checks], [pt["L3"]["sampled"] for pt in checks],
                        yerr=[2 * pt["L3"]["mcse"] for pt in checks], fmt=marker, color=color, capsize=2,
                        label=text + ", ".join(str(pt[{"width": "width", "data_seed": "data_seed"}.get(kind, "init_q")])
                                          for pt in checks))
    ax.axhline(fraction, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("P (training samples)")
    ax.set_ylabel("L_3 (population, cubic component)")
    ax.set_title("sampled (±2 MCSE), adaptive (dashed), GP (dotted), finite-data VGA (dash-dot)", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
