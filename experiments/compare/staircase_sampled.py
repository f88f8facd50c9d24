"""The table of the sampled staircase study (`experiments.staircase_study`): one run's measurement (sampled L_1, L_3
± MCSE, training-set ratio, τ(L_3), ε_N) and the study summary (per point beside the adaptive-kernel and GP L_3 at
its P, per d the three P*, the power-law fits, the spread over training sets), from stored run directories only.

Definitions and estimators: `experiments.compare.staircase` (L_3 = E_x[f̄ He_3]/E_x[y He_3], the population
projection of `theory.staircase`, MCSE over independent chains; P* by interpolation in log P). ε_N = κ E[φ²]/N with
κ = Pσ̃_a²/σ̃² is the relative size of the per-neuron self-interaction the mean-field theory drops
(`experiments.compare.feature_learning_comparison.mean_field_expansion`). Beside the population theories, the
finite-data theories on each run's own training set (`experiments.compare.staircase_finite_data`: the VGA and the
GP solved on (X, y), their population L_3 ± Monte Carlo error over w, Σ_VGA along w* against the sampled E[q²]).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from experiments.compare import staircase as compare
from experiments.compare.staircase_finite_data import measure_finite_data
from experiments.rundirs import rundir
from langevin.export import open_samples
from theory import staircase
from theory.cubic_teacher import scan_cubic_teacher
from theory.network_prior import NetworkPrior


def erf_second_moment(sigma_w2: float) -> float:
    """E[erf(w·x)²] at the prior |w|² ≈ σ_w²: (2/π) arcsin(2σ_w²/(1 + 2σ_w²))."""
    return 2.0 / math.pi * math.asin(2.0 * sigma_w2 / (1.0 + 2.0 * sigma_w2))

def measure_point(params: dict, d: int, samples: int, width: int, data_seed: int, init_q: float,
                  run_dir: Path, check: str = "grid") -> dict:
    """The sampled L_1, L_3 (population, MCSE over chains), the training-set ratio, τ and ε_N of one run."""
    ds = open_samples(run_dir / rundir.SAMPLES_DIR)
    projection = ds["hermite_projection"].transpose("chain", "draw", "hermite_degree").values
    sampled = compare.sampled_learnabilities(projection, params["epsilon"])
    data = rundir.read_run_data(run_dir)
    f_train = ds["f_train"].transpose("chain", "draw", "train_point").values
    ratio = compare.training_set_ratio(f_train, data.x_train, data.y_train, data.teacher_direction)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    seconds = sum(s.get("seconds", 0.0) for s in meta.get("segments", []))
    tau_steps = float(sampled["tau_draws"][1] * params["thin"])
    kappa = samples * params["readout_variance"] / params["noise_variance"]
    warnings = []
    if params["burn_in"] < 10 * tau_steps or params["num_steps"] < 50 * tau_steps:
        warnings.append(f"tau(L_3) = {tau_steps:.0f} steps: burn_in {params['burn_in']} < 10 tau or num_steps "
                        f"{params['num_steps']} < 50 tau")
    finite = measure_finite_data(run_dir, params["epsilon"], draws_per_batch=params["finite_data_draws"])
    warnings += [f"finite-data theory: {w}" for w in finite.pop("warnings")]
    if max(sampled["rhat"]) > 1.01:
        warnings.append(f"R-hat of (L_1, L_3) = {np.round(sampled['rhat'], 4).tolist()} > 1.01")
    return {"d": d, "P": samples, "run_dir": run_dir.name, "width": width,
            "check": check, "data_seed": data_seed, "init_q": init_q,
            "epsilon_N": kappa * erf_second_moment(params["sigma_w2"]) / width,
            "L3": {"sampled": sampled["L3"], "mcse": sampled["L3_mcse"], "training_set_ratio": ratio["ratio"],
                   "training_set_ratio_mcse": ratio["mcse"],
                   "finite_data_vga": finite["vga"]["L3"] if finite["vga"] else None,
                   "finite_data_vga_se": finite["vga"]["L3_se"] if finite["vga"] else None,
                   "finite_data_gp": finite["gp"]["L3"], "finite_data_gp_se": finite["gp"]["L3_se"]},
            "L1": {"sampled": sampled["L1"], "mcse": sampled["L1_mcse"]},
            "finite_data": finite,
            "rhat": sampled["rhat"], "tau_L3_steps": tau_steps, "seconds": seconds, "warnings": warnings}


def landau_cubic_learnability(params: dict, d: int, samples: int) -> float | None:
    """L_3 of the finite-d Landau theory with the exact (non-Gaussian) p(q) (`theory.cubic_teacher`), a population
    theory like the Gaussian closure. Its teacher is He_1 + ε'He_3; y = (1 + 3ε)He_1 + εHe_3 is (1 + 3ε) times that
    with ε' = ε/(1 + 3ε), and dividing the labels by (1 + 3ε) is the same posterior with σ̃² → σ̃²/(1 + 3ε)² and
    σ̃_a² → σ̃_a²/(1 + 3ε)² (f scales with a), learnabilities unchanged. Mean-field χ = N = width_per_dim·d; reached by
    continuation in σ̃² from 100× the target (10 geometric steps; the solution is unique, `theory.cubic_teacher`,
    so the path only supplies starting points). None where the continuation fails."""
    scale = 1.0 + 3.0 * params["epsilon"]
    width = int(params["width_per_dim"]) * int(d)
    noise = params["noise_variance"] / scale ** 2
    prior = NetworkPrior(activation="erf", input_dim=int(d), widths=(width,), weight_variances=(params["sigma_w2"],),
                         readout_variance_tilde=params["readout_variance"] / scale ** 2, noise_variance_tilde=noise,
                         chi=width)
    path = scan_cubic_teacher(lambda v: dataclasses.replace(prior, noise_variance_tilde=float(v)),
                              np.geomspace(100.0 * noise, noise, 10), num_samples=samples,
                              epsilon=params["epsilon"] / scale)
    last = path.solutions[-1]
    return float(last.learnability_cubic) if path.converged and last.converged else None


def _fit(dims, thresholds) -> dict | None:
    pairs = [(d, t) for d, t in zip(dims, thresholds) if t is not None]
    if len(pairs) < 2:
        return None
    fit = staircase.fit_exponent(*zip(*pairs))
    return {"dims": [d for d, _ in pairs], "exponent": fit.exponent,
            "exponent_se": fit.exponent_se if math.isfinite(fit.exponent_se) else None,
            "intercept": fit.intercept, "local_exponents": fit.local_exponents.tolist()}


def build_summary(params: dict, theory: dict, points: list[dict]) -> dict:
    """The study table: per point sampled ± MCSE beside the theories, per d the three P*, the three fits."""
    kw = dict(epsilon=params["epsilon"], noise_variance=params["noise_variance"])
    for d in params["dims"]:
        rows = [pt for pt in points if pt["d"] == d]
        if not rows:
            continue
        unique = sorted({r["P"] for r in rows})
        path = staircase.gfl_cubic_learnability_path(unique, d, readout_variance=params["readout_variance"],
                                                     width_per_dim=params["width_per_dim"],
                                                     input_variance=params["sigma_w2"], **kw)
        landau = {P: landau_cubic_learnability(params, d, P) for P in unique}
        for r in rows:
            a = path[unique.index(r["P"])]
            r["L3"]["adaptive"] = float(a)
            r["L3"]["landau"] = landau[r["P"]]
            r["L3"]["gp"] = staircase.gp_cubic_learnability(
                r["P"], d, epsilon=params["epsilon"], noise_variance=params["noise_variance"] / params[
                    "readout_variance"], sigma_w2=params["sigma_w2"])
            r["L3"]["gap_in_mcse"] = (r["L3"]["sampled"] - a) / r["L3"]["mcse"] if r["L3"]["mcse"] > 0 else None
    thresholds = []
    for d in params["dims"]:
        rows = sorted((pt for pt in points if pt["d"] == d and pt["check"] == "grid"), key=lambda pt: pt["P"])
        entry = {"d": d, "adaptive": theory["adaptive"][d], "gp": theory["gp"][d], "sampled": None, "se": None,
                 "status": "missing"}
        if len(rows) >= 2:
            crossing = compare.threshold_crossing([r["P"] for r in rows], [r["L3"]["sampled"] for r in rows],
                                                  [r["L3"]["mcse"] for r in rows], params["fraction"])
            entry.update(sampled=crossing["samples"], se=crossing["se"], status=crossing["status"],
                         bracket=crossing["bracket"], grid=[r["P"] for r in rows])
        thresholds.append(entry)
    adaptive_dims = sorted(theory["adaptive"])
    gp_dims = sorted(theory["gp"])
    table = {
        "parameters": params,
        "definition": "L_3 = E_x[f_bar He_3(w*.x)] / E_x[y He_3(w*.x)], x ~ N(0, I_d): the population projection "
                      "of the theory (exact per draw from the weights), MCSE over independent chains",
        "points": sorted(points, key=lambda pt: (pt["d"], pt["P"], pt["width"], pt["data_seed"], pt["init_q"])),
        "thresholds": thresholds,
        "fits": {"sampled": _fit([t["d"] for t in thresholds], [t["sampled"] for t in thresholds]),
                 "adaptive": _fit(adaptive_dims, [theory["adaptive"][d] for d in adaptive_dims]),
                 "gp": _fit(gp_dims, [theory["gp"][d] for d in gp_dims])},
        # The shape `experiments.compare.staircase.draw_staircase` reads.
        "gp": {"dims": gp_dims, "thresholds": [theory["gp"][d] for d in gp_dims]},
        "adaptive": {"dims": adaptive_dims, "thresholds": [theory["adaptive"][d] for d in adaptive_dims]},
        "sampled": {"dims": [t["d"] for t in thresholds], "thresholds": [t["sampled"] for t in thresholds],
                    "se": [t["se"] for t in thresholds],
                    # P* > the largest grid P where L_3 stays below the fraction on the whole grid
                    "lower_bounds": [max(t["grid"]) if t["status"] == "below" else None for t in thresholds]},
        "training_sets": training_set_spread(params, points),
        "sampling_seconds": sum(pt["seconds"] for pt in points),
        "warnings": [f"d={pt['d']}, P={pt['P']}: {w}" for pt in points for w in pt["warnings"]],
    }
    for name in ("gp", "adaptive", "sampled"):
        table[name]["fit"] = table["fits"][name]
    return rundir.json_ready(table)


def training_set_spread(params: dict, points: list[dict]) -> dict | None:
    """L_3 over the training sets at the data-seed check point (grid seed and data_seed_checks): the values, their
    mean, standard deviation and the standard error of the mean. The chains of one run share one training set, so
    its MCSE does not contain this data-set fluctuation, which the theory (a data average) does not have."""
    checks = [pt for pt in points if pt["check"] == "data_seed"]
    if not checks:
        return None
    d, P, width = checks[0]["d"], checks[0]["P"], checks[0]["width"]
    rows = sorted((pt for pt in points if (pt["d"], pt["P"], pt["width"]) == (d, P, width)
                   and pt["check"] in ("grid", "data_seed")), key=lambda pt: pt["data_seed"])
    values = np.array([pt["L3"]["sampled"] for pt in rows])
    sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return {"d": d, "P": P, "width": width, "data_seeds": [pt["data_seed"] for pt in rows], "L3": values.tolist(),
            "mean": float(values.mean()), "sd": sd, "se": sd / math.sqrt(values.size),
            "adaptive": rows[0]["L3"]["adaptive"], "gp": rows[0]["L3"]["gp"]}


def format_summary(table: dict) -> str:
    """The study table as text: per point sampled ± MCSE beside the population (adaptive, Landau, GP) and finite-data
    (VGA, GP on the run's own training set) theories, and the weight second moment along w*; per d the three P*."""
    lines = ["  d     P    N seed q0   eps_N   L3 sampled ± MCSE     adaptive   Landau      GP   finite-data VGA ± se"
             "   finite-data GP ± se   train-set ratio  tau(L3)"]
    for pt in table["points"]:
        l3 = pt["L3"]
        vga = "—" if l3.get("finite_data_vga") is None else f"{l3['finite_data_vga']:.4f} ± {l3['finite_data_vga_se']:.4f}"
        landau = "—" if l3.get("landau") is None else f"{l3['landau']:.4f}"
        gp = "—" if l3.get("finite_data_gp") is None else f"{l3['finite_data_gp']:.4f} ± {l3['finite_data_gp_se']:.4f}"
        lines.append(f"{pt['d']:3d} {pt['P']:5d} {pt['width']:4d} {pt['data_seed']:4d} {pt['init_q']:2g} {pt['epsilon_N']:7.1f}   {l3['sampled']:.4f} ± "
                     f"{l3['mcse']:.4f}   {l3['adaptive']:9.4f} {landau:>8s} {l3['gp']:7.4f}   {vga:>17s}   {gp:>17s}   "
                     f"{l3['training_set_ratio']:.4f}   {pt['tau_L3_steps']:6.0f}")
    lines.append("  d     P    N seed q0   E[q²] sampled ± MCSE   w*ᵀΣw* VGA   Σ_⊥ VGA   prior   VGA train-set ratio")
    for pt in table["points"]:
        fd = pt.get("finite_data")
        if fd and fd.get("vga"):
            lines.append(f"{pt['d']:3d} {pt['P']:5d} {pt['width']:4d} {pt['data_seed']:4d} {pt['init_q']:2g}   "
                         f"{fd['sampled_q2']:.4f} ± {fd['sampled_q2_mcse']:.4f}      {fd['vga']['sigma_parallel']:.4f}"
                         f"    {fd['vga']['sigma_perp']:.4f}  {fd['prior_q2']:.4f}   {fd['vga']['training_set_ratio']:.4f}")
    lines.append("  d   P* sampled ± se        adaptive        GP   status")
    for t in table["thresholds"]:
        s = "—" if t["sampled"] is None else f"{t['sampled']:.1f} ± {t['se']:.1f}"
        lines.append(f"{t['d']:3d}   {s:>18s}   {t['adaptive']:9.1f} {t['gp']:9.1f}   {t['status']}")
    for name, fit in table["fits"].items():
        if fit:
            se = "n/a" if fit["exponent_se"] is None else f"{fit['exponent_se']:.3f}"
            lines.append(f"fit {name:9s} exponent {fit['exponent']:.3f} ± {se} over d = {fit['dims']}")
    spread = table.get("training_sets")
    if spread:
        lines.append(f"training sets at d={spread['d']}, P={spread['P']}, N={spread['width']}: L3 = "
                     f"{np.round(spread['L3'], 4).tolist()}, mean {spread['mean']:.4f} ± {spread['se']:.4f} "
                     f"(sd {spread['sd']:.4f}) vs adaptive {spread['adaptive']:.4f}, GP {spread['gp']:.4f}")
    lines.append(f"sampling: {table['sampling_seconds']:.0f} s")
    lines += [f"warning: {w}" for w in table["warnings"]]
    return "\n".join(lines)
