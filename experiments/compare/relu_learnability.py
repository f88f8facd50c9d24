"""ReLU learnability ratios against the scale β (Ringel et al. 2025: Z. Ringel,
N. Rubin, E. Mor, M. Helias, I. Seroussi, "Applications of statistical field theory in deep
learning", arXiv:2502.18553, the part "Further evidence for complexity change" and its Fig. 2):
a two-layer ReLU network in mean-field scaling on
y = v*·x + ε(|v*·x| − √(2/π)), N = 750β, d = 96β, n ∈ {2d, 3d, 4d}; the learnability ratios

    R_p = f̄(X)·He_p(X v*) / y(X)·He_p(X v*),   p = 1, 2,

sampled (posterior mean f̄ on the training inputs X, per draw, with its MCSE) beside
- "adaptive": the Gaussian (VGA) closure of the adaptive-kernel equations on the run's own training
  set (`theory.adaptive_kernel`, activation "relu", log-det term kept), warm-started from the
  single-index reduction; R_p on the same X;
- "adaptive_continuum": the symmetric reduction Σ = a P_⊥ + b v*v*ᵀ in the continuum
  (`theory.single_index_gfl`, activation "relu", degrees 0, 1, 2, 4, 6), continued in σ̃² from the GP side;
- "scaling": the scaling-approach pattern free energy (`theory.feature_learning_scaling`);
- "gp": the NNGP posterior mean (physical σ_a² = σ̃_a²/χ, σ² = σ̃²/χ) on the same X.
The same ratios on the test inputs (sampled, adaptive, gp) are reported as `test`.

Parameters Ringel et al. 2025 do not state (ε, σ² and the learning rate) are chosen here:
ε = 1, σ_w² = 1, σ̃_a² = 1, σ̃² = 2, fixed in β (so the physical σ² = σ̃²/N ∝ 1/β): the GP
learnability of He_1 is then β-independent (nσ_a²/(σ²d) fixed) and that of He_2 falls like 1/d,
while the feature-learning gain grows with β (u = n²σ_a²/(σ⁴dN) ∝ β): the adaptive and scaling
theories predict R_2 rising with β at n ∝ d (R_2 ≈ 0.10 → 0.18 for n = 2d, β = 1/8 → 1/2), the
GP R_2 → 0 — the change of complexity class.

Finite-size allowance. The per-neuron theories drop one neuron's self-interaction, whose size
relative to the kept terms is ε_N = κ E[φ²]/N = n σ̃_a² E[relu²]/(N σ̃²) with E[relu(w·x)²] =
σ_w²/2 at the prior (`mean_field_expansion`, as `feature_learning_comparison.mean_field_expansion`
for erf). Under their scaling n/N is fixed, so ε_N = 0.064·(n/d) does not shrink with β; the
comparison reports |ΔR_p| against 4 MCSE + ε_N·|R_p| (the first-order size of the dropped term).

Measured (n = 2d; 16 chains, 2·10⁴ steps after 10⁴ burn-in): β = 1/8 (d = 12, N = 94): training
R_1 = 0.5675 ± 0.0005 (0.5707 ± 0.0004 at N = 188: the gap is not a width effect) against adaptive
0.494, scaling 0.523, GP 0.307; test R_1 0.318 vs adaptive 0.289; the weight covariance agrees
(b = 0.202 vs 0.199). The kernel ladder (`experiments.compare.kernel_ladder`, with
observables.first_layer_weights; docs/results.md) puts the whole training-set gap (−0.077 of R_1) in the
non-Gaussian shape of one neuron's law at fixed second moment: not the heavy tail of p(q) (kurtosis ratio
1.30, no effect on R_1 at fixed moments) but how the rest of w depends on q, and the mean of w (a ReLU net
has no w → −w symmetry); kernel fluctuations (+0.007) and the VGA's covariance (−0.004) are small. β = 1/4 (d = 24, N = 188): training R_1 0.705 vs adaptive 0.633, test R_1 0.351 vs 0.344
(within the allowance); p(q) kurtosis ratio 4.5 (a few strongly aligned neurons) and q mixes
slowly (R-hat 1.26 at this run length). The training-set R_2 at n ≤ 48 is dominated by the
sampling noise of y·He_2 over so few points (the finite-data theories give negative values).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import xarray as xr

from experiments.compare import kernel_ladder
from experiments.compare.kernel_ladder import hermite_probes
from experiments.compare.theory_inputs import TwoLayerTheoryInputs
from experiments.rundirs.run_draws import chain_draw
from experiments.setup.data import DataSet
from experiments.setup.plotting import pyplot
from langevin import diagnostics
from theory.adaptive_kernel import projection_ratio, solve_adaptive_kernel
from theory.feature_learning_scaling import scaling_prediction
from theory.kernels import two_layer_gram
from theory.single_index_gfl import relu_abs_hermite_coefficients, scan_single_index_gfl

TALK_WIDTH_PER_BETA = 750
TALK_DIM_PER_BETA = 96
RATIOS = (2, 3, 4)
CPU_BETAS = (0.125, 0.25, 0.5)
EPSILON = 1.0
SIGMA_W2 = 1.0
READOUT_NUMERATOR = 1.0   # σ̃_a²
NOISE_NUMERATOR = 2.0     # σ̃²
DEGREES = (0, 1, 2, 4, 6)
PROBE_DEGREES = (1, 2)
# Continuation of the reduction from the GP side: σ̃² × these factors, down to 1.
CONTINUATION_FACTORS = (100.0, 30.0, 10.0, 3.0, 1.0)
SWEEP_KEYS = ("model.width", "data.d", "data.n_train")
# The finite-data solver uses MINPACK hybr (dense finite-difference Jacobian) up to this many
# unknowns d(d+1)/2 (d = 48: 1176), Newton–Krylov beyond.
HYBR_MAX_UNKNOWNS = 1200


def talk_sizes(beta: float, ratio: int) -> tuple[int, int, int]:
    """(N, d, n) = (round(750β), round(96β), ratio·d)."""
    beta = float(beta)
    if not (beta > 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be positive and finite, got {beta!r}")
    d = max(2, round(TALK_DIM_PER_BETA * beta))
    return max(1, round(TALK_WIDTH_PER_BETA * beta)), d, int(ratio) * d


def talk_sweep(betas=CPU_BETAS, ratios=RATIOS) -> dict:
    """The (width, d, n_train) points of the β sweep at every n/d ratio, for `Preset.sweep`."""
    return {SWEEP_KEYS: [talk_sizes(beta, ratio) for ratio in ratios for beta in betas]}


def applies(inputs: TwoLayerTheoryInputs, config: dict, data: DataSet) -> bool:
    return (inputs.activation == "relu" and config["data"].get("target") == "relu_abs"
            and data.teacher_direction is not None)


def sampled_ratios(f: np.ndarray, y: np.ndarray, probes: np.ndarray) -> dict:
    """Per-draw R_p = f·h_p/y·h_p for f (chain, draw, n): mean and MCSE per p (R_p is linear in f,
    so the mean of the per-draw ratios is the ratio of the posterior mean)."""
    per_draw = np.einsum("cdn,nk->cdk", f, probes) / (y @ probes)
    return {"sampled": per_draw.mean(axis=(0, 1)), "mcse": diagnostics.mcse_mean(per_draw)}


def mean_field_expansion(inputs: TwoLayerTheoryInputs) -> float:
    """ε_N = (σ_a²/N) n E[relu²]/σ² with E[relu(w·x)²] = σ_w²/2 at the prior (module docstring)."""
    return inputs.gp_sigma_a2 * inputs.n_train * (inputs.sigma_w2 / 2.0) / (inputs.width * inputs.noise_variance)


def theory_ratios(inputs: TwoLayerTheoryInputs, epsilon: float, data: DataSet) -> dict:
    """The four predictions of the module docstring (each solver's convergence reported)."""
    coefficients = relu_abs_hermite_coefficients(epsilon, DEGREES)
    prior = inputs.prior
    noise = prior.noise_variance_tilde
    path = scan_single_index_gfl(lambda v: dataclasses.replace(prior, noise_variance_tilde=v),
                                 [noise * f for f in CONTINUATION_FACTORS], num_samples=inputs.n_train,
                                 target_coefficients=coefficients)
    reduced = path.solutions[-1]
    scaling = scaling_prediction(prior, num_samples=inputs.n_train, target_coefficients=coefficients,
                                 degrees=DEGREES)
    probes_train = hermite_probes(data.x_train, data.teacher_direction)
    probes_test = hermite_probes(data.x_test, data.teacher_direction) if len(data.y_test) else None
    teacher = data.teacher_direction
    d = inputs.input_dim
    start = reduced.sigma_perp * (np.eye(d) - np.outer(teacher, teacher)) + reduced.sigma_parallel * np.outer(teacher, teacher)
    adaptive = solve_adaptive_kernel(
        data.x_train, data.y_train, prior,
        X_test=data.x_test if probes_test is not None else None, probes=probes_train,
        initial_covariance=start, method="hybr" if d * (d + 1) // 2 <= HYBR_MAX_UNKNOWNS else "krylov")
    kernel = dict(activation="relu", sigma_a2=inputs.gp_sigma_a2, sigma_w2=inputs.sigma_w2)
    K = two_layer_gram(data.x_train, None, **kernel)
    weights = np.linalg.solve(K + inputs.noise_variance * np.eye(len(data.y_train)), data.y_train)
    gp_train = K @ weights
    index = [DEGREES.index(p) for p in PROBE_DEGREES]
    out = {
        "train": {
            "adaptive": adaptive.learnabilities,
            "gp": np.array([projection_ratio(gp_train, data.y_train, h) for h in probes_train.T]),
            "adaptive_continuum": reduced.learnabilities[index],
            "scaling": scaling.learnabilities[index],
        },
        "solvers": {
            "adaptive": {"converged": adaptive.converged, "residual": adaptive.residual, "message": adaptive.message},
            "adaptive_continuum": {"converged": bool(path.converged), "residual": reduced.residual,
                                   "message": reduced.message},
            "scaling": {"converged": scaling.converged, "residual": scaling.residual, "message": scaling.message},
        },
        "adaptive_covariance": adaptive.covariance,
        "sigma_parallel": {"adaptive": float(teacher @ adaptive.covariance @ teacher),
                           "adaptive_continuum": reduced.sigma_parallel, "scaling": scaling.sigma_parallel,
                           "prior": inputs.sigma_w2 / d},
    }
    if probes_test is not None:
        gp_test = two_layer_gram(data.x_test, data.x_train, **kernel) @ weights
        out["test"] = {
            "adaptive": np.array([projection_ratio(adaptive.mean_test, data.y_test, h) for h in probes_test.T]),
            "gp": np.array([projection_ratio(gp_test, data.y_test, h) for h in probes_test.T]),
        }
    return out


def compare_relu_learnability(inputs: TwoLayerTheoryInputs, config: dict, data: DataSet, ds: xr.Dataset) -> dict:
    """{"relu_learnability": section} for a ReLU run on the relu_abs teacher, {} otherwise."""
    if not applies(inputs, config, data):
        return {}
    epsilon = float(config["data"]["epsilon"])
    theory = theory_ratios(inputs, epsilon, data)
    allowance = mean_field_expansion(inputs)
    section = {"degrees": list(PROBE_DEGREES), "epsilon": epsilon, "mean_field_expansion": allowance,
               "width": inputs.width, "input_dim": inputs.input_dim, "n_train": inputs.n_train,
               "beta": inputs.width / TALK_WIDTH_PER_BETA,
               "solvers": theory["solvers"], "sigma_parallel": theory["sigma_parallel"], "warnings": []}
    for split, name, probes_of in (("train", "f_train", data.x_train), ("test", "f_test", data.x_test)):
        entry = {k: np.asarray(v).tolist() for k, v in theory.get(split, {}).items()}
        if name in ds and split in theory:
            f = chain_draw(ds[name]).astype(np.float64)
            y = data.y_train if split == "train" else data.y_test
            sampled = sampled_ratios(f, y, hermite_probes(probes_of, data.teacher_direction))
            entry["sampled"] = sampled["sampled"].tolist()
            entry["mcse"] = sampled["mcse"].tolist()
            gap = np.abs(sampled["sampled"] - np.asarray(theory[split]["adaptive"]))
            entry["adaptive_within_4_mcse_plus_allowance"] = (
                gap <= 4 * sampled["mcse"] + allowance * np.abs(np.asarray(theory[split]["adaptive"]))).tolist()
        elif split == "train":
            section["warnings"].append("f_train not recorded (observables.outputs_train = false): "
                                       "the training-set R_p of Ringel et al. 2025 are not sampled")
        section[split] = entry
    if kernel_ladder.WEIGHTS in ds:  # observables.first_layer_weights: sampled → VGA one step at a time
        section["kernel_ladder"] = kernel_ladder.ladder_of_draws(inputs, data, ds,
                                                                 vga_covariance=theory["adaptive_covariance"])
    for name, report in theory["solvers"].items():
        if not report["converged"]:
            section["warnings"].append(f"{name} did not converge: {report['message']} "
                                       f"(residual {report['residual']:.3g})")
    if allowance > 0.1:
        section["warnings"].append(f"mean_field_expansion = {allowance:.3g}: the per-neuron theories neglect "
                                   "terms of this relative size")
    return {"relu_learnability": _plain(section)}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --- sweep table and figure (registered in experiments.reporting.sweep_tables) ------------------------------

SERIES = (("sampled", "experiment", "tab:blue"), ("adaptive", "approximate adaptive", "tab:orange"),
          ("scaling", "scaling", "tab:green"), ("gp", "GP", "tab:red"))
RATIO_MARKERS = {2: "o", 3: "D", 4: "x"}


def table_columns(summary: dict) -> dict:
    """Per run: β, n/d, ε_N and the training-set R_1, R_2 (sampled ± MCSE, adaptive, adaptive
    continuum, scaling, GP), plus the test-set sampled/adaptive/GP values."""
    section = summary.get("theory", {}).get("relu_learnability")
    if not section:
        return {}
    row = {"beta": section["beta"], "n_over_d": section["n_train"] / section["input_dim"],
           "mean_field_expansion": section["mean_field_expansion"]}
    for split, prefix in (("train", "R"), ("test", "R_test")):
        for field, values in section.get(split, {}).items():
            if field.endswith("allowance"):
                continue
            for p, value in zip(section["degrees"], values):
                row[f"{prefix}{p}_{field}"] = value
    row["theory_warnings"] = len(section.get("warnings", []))
    return row


def draw_learnability_ratios(preset: str, key: str, table: list[dict], figures_dir) -> None:
    """R_1, R_2 against β for each n/d (the Fig. 2 layout of Ringel et al. 2025): experiment with MCSE error bars,
    approximate adaptive, scaling and GP, one marker per n/d."""
    plt = pyplot()
    rows = [r for r in table if "beta" in r]
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, p in zip(axes, PROBE_DEGREES):
        for ratio in sorted({round(r["n_over_d"]) for r in rows}):
            chosen = sorted((r for r in rows if round(r["n_over_d"]) == ratio), key=lambda r: r["beta"])
            beta = np.array([r["beta"] for r in chosen])
            marker = RATIO_MARKERS.get(ratio, "s")
            for field, label, color in SERIES:
                values = np.array([r.get(f"R{p}_{field}", np.nan) for r in chosen], dtype=float)
                if field == "sampled":
                    errors = np.array([r.get(f"R{p}_mcse", np.nan) for r in chosen], dtype=float)
                    ax.errorbar(beta, values, yerr=errors, color=color, marker=marker, ls="none", capsize=3,
                                label=f"{label}, n = {ratio}d")
                else:
                    ax.plot(beta, values, color=color, marker=marker, ls="-", lw=1, mfc="none",
                            label=f"{label}, n = {ratio}d")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("β  (N = 750β, d = 96β)")
        ax.set_ylabel(f"R_{p} = f̄·He_{p}(Xv*) / y·He_{p}(Xv*)")
        ax.set_title(f"learnability ratio R_{p} (training set)")
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(figures_dir / "learnability_ratios.png", dpi=120)
    plt.close(fig)
