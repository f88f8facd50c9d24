"""Staircase sample complexity with SAMPLED mean-field networks (Ringel et al. 2025, arXiv:2502.18553, "Example:
staircase learning"; the theory side is `theory.staircase` and `experiments.compare.staircase`).

For each input dimension d, a grid of training-set sizes P around the theory thresholds; per (d, P) one
ordinary run directory `OUT/d=<d>,P=<P>/` (`experiments.runner.start_run` / `execute`: resumable, reused when
finished) of a two-layer erf network in mean-field scaling (χ = N = width_per_dim·d) on y = z + εz³ =
(1 + 3ε)He_1(z) + εHe_3(z), z = w*·x, x ~ N(0, I_d), sampled by BAOAB. From its draws the learnability of the
cubic component

    L_3 = E_x[f̄ He_3(z)] / E_x[y He_3(z)] = E_x[f̄ He_3(z)] / (6ε),

with the SAME definition as the theory: the population (continuum, x ~ N(0, I_d)) projection of the posterior
mean, not a training- or test-set ratio. Each draw's E_x[f He_3] is computed exactly from its weights
(`langevin.observables.erf_hermite_projections`, Stein's lemma: Σ_i a_i q_i³ (−4)/(√π (1 + 2|w_i|²)^{3/2})),
so no test-set noise enters. The MCSE is that of the per-chain means over the independent chains
(`experiments.compare.staircase.sampled_learnabilities`). The training-set ratio f̄·He_3/y·He_3 over the P
training points is reported beside it for reference. The sampled P*(d) (L_3 = 0.9) interpolates L_3 linearly
in log P between the bracketing grid points, its uncertainty from the two MCSEs through the crossing's slope
(`threshold_crossing`); P*(d) of sampled, GP and adaptive kernel are fitted by `theory.staircase.fit_exponent`.

Parameters chosen from the theory (`DEFAULTS`; computed by `theory_thresholds`). ε = −0.1 (the GP-side
branch of the Gaussian closure is continuous only for ε < 0, see `experiments.compare.staircase`), σ_w² = 1,
readout numerator σ̃_a² = 1 and noise numerator σ̃² = 0.1. The continuum theory at fixed numerators does not
depend on N; lowering σ̃² at fixed σ̃_a² raises the feature-learning strength u = P²σ̃_a²/(σ̃⁴d) and moves both
thresholds down. At σ̃² = 1 (the compare module's defaults) the adaptive P*(8) ≈ 1.6·10³; at σ̃² = 0.1:

    d                      4       6       8      12
    adaptive P* (0.9)   103.7   137.1   164.7   210.4     (fit 0.63 ± 0.01, d = 4…16)
    GP P* (σ_a²/σ² = 10) 1300    3060    5905   15875     (local exponent → 3)

so P* of the adapting network is a few hundred while the GP needs 13-75x more. Width N = 16d (64, 96, 128).

Finite-width size. The per-neuron theory drops one neuron's self-interaction, of relative size
ε_N = κ E[φ²]/N with κ = Pσ̃_a²/σ̃² and E[erf²] = (2/π) arcsin(2/3) = 0.465 at the prior
(`experiments.compare.feature_learning_comparison.mean_field_expansion`); at the adaptive threshold κ ≈ 1.6·10³
for every choice of the numerators (κ* = P*σ̃_a²/σ̃² stays near 1.6·10³ at d = 8 from σ̃² = 1 to 0.1), so
ε_N ≈ 770/N at d = 8, and N ≫ 10³ at every d is beyond a CPU sweep; each point reports ε_N, and the width check
below measures whether the gap depends on it. The sampled-vs-adaptive gap is recorded, not forced.

Sampler. BAOAB (`sampler.integrator = "baoab"`, friction 1 in the prior's time units), prior preconditioner
(η_l = step_size·v_l/T with v_l the prior variance of one weight). Stability: the readout's likelihood
curvature along a coherent direction of the N features is at most P N E[φ²], and η_a = step_size (σ̃_a²/N²)/(σ̃²/N),
so η_a k_a ≤ step_size κ E[φ²]; the step is set per point as step_size = step_scale/κ (step_scale = 1.6:
η k ≤ 0.74 < 2). Measured at d = 8, P = 160, N = 128 (8 chains, step 10⁻³): τ(L_3) ≈ 80 steps, τ of the weight
statistics (mean of q²) ≈ 800 steps; burn_in 6000 and num_steps 8000 give ≈ 7.5 τ of the slower weight statistics
before recording and ≈ 100 τ(L_3) recorded at that point (each run reports its τ(L_3) and warns if
burn_in < 10 τ or num_steps < 50 τ; at larger P the step is smaller and τ longer).

Checks at the smallest d and P = round(P*_adaptive) (`sample_grid`): the widths width_per_dim·d × `width_factors`
(does the sampled-vs-adaptive gap close like ε_N?), other training sets `data_seed_checks` (the chains of a run
share one training set, so its MCSE leaves out the data-set fluctuation that the data-averaged theory does not
have), and chains started with every neuron at w·w* = ±`aligned_start_q` (is the prior start metastable?).

Measured (docs/results.md, 8 chains, 1001 s of sampling): the sampled L_3 stays at 0.61-0.71 on the whole grid
(P up to 4 P*_adaptive) against the adaptive 0.90-0.97, so the sampled P*(d) is only bounded below (> 415, 548,
659 for d = 4, 6, 8) and not fitted. The gap (0.29 at P*_adaptive) is width-independent (N = 64 … 512 at d = 4:
0.6152 … 0.6146, ε_N 7.5 → 0.9) and start-independent (aligned start 0.6146); across training sets L_3 spreads
with sd 0.045 (data seeds 1-3), far above the MCSE (2·10⁻⁴). No allowance derived from ε_N or the step size
covers it, so no sampled-vs-adaptive agreement test exists; the GP L_3 at P*_adaptive falls from 0.40 (d = 4) to
0.18 (d = 8) while the sampled stays at 0.61-0.63. The gap is the continuum treatment of the data: the same closure
solved on each run's own training set (`experiments.compare.staircase_finite_data`, the "finite-data VGA" column)
is within 0.021 of the sampled L_3 at every point and follows it across training sets.

Study interface (`experiments.studies`, registered as "staircase"):
    DEFAULTS; check_parameters(params) -> dict; run_study(out, params) -> dict;
    write_study_report(out, params) -> Path.

    langevin run staircase [--set key=value ...] --out DIR      (values as TOML: --set dims=[4,6])
    langevin resume DIR / langevin report DIR
"""
from __future__ import annotations

import math
from pathlib import Path

from experiments.compare import staircase as compare
from experiments.compare.staircase_sampled import build_summary, format_summary, measure_point
from experiments.rundirs import rundir
from experiments.runner import execute, start_run
from experiments.setup import config as cfg
from theory import staircase

NAME = "staircase"



DEFAULTS: dict[str, object] = {
    "dims": [4, 6, 8],
    "samples_factors": [1.0, 2.0, 4.0],        # P grid = round(factor × adaptive P*(d))
    "width_factors": [2, 4, 8],                # width check at min(dims), P = round(adaptive P*)
    "data_seed_checks": [2, 3],                # other training sets at the same point
    "aligned_start_q": 1.0,                    # start at w·w* = ±1 at the same point (0: no such check)
    "epsilon": -0.1,
    "sigma_w2": 1.0,
    "readout_variance": 1.0,                   # σ̃_a²
    "noise_variance": 0.1,                     # σ̃²
    "width_per_dim": 16,
    "fraction": 0.9,
    "num_chains": 8,
    "burn_in": 6000,
    "num_steps": 8000,
    "thin": 10,
    "step_scale": 1.6,                         # step_size = step_scale / κ, κ = P σ̃_a²/σ̃²
    "friction": 1.0,
    "seed": 0,
    "data_seed": 1,
    "gp_dims": [4, 6, 8, 12, 16, 32],
    "adaptive_dims": [4, 6, 8, 12, 16],
    # Monte Carlo draws of w per batch (16 batches) of the finite-data theories' population L_3
    # (experiments.compare.staircase_finite_data)
    "finite_data_draws": 20000,
}


def _check_int_list(key, value, low):
    if (not isinstance(value, (list, tuple)) or not value or any(isinstance(v, bool) or not isinstance(v, int)
                                                               or v < low for v in value)
            or len(set(value)) != len(value)):
        raise ValueError(f"study parameter {key!r} = {value!r}: must be a non-empty list of distinct integers >= {low}")
    return sorted(int(v) for v in value)


def _check_number(key, value, low=0.0, strict=True, integer=False, high=math.inf):
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    bad = bad or (value <= low if strict else value < low) or value >= high
    if integer and not bad and int(value) != value:
        bad = True
    if bad:
        kind = "an integer" if integer else "a finite number"
        bound = f"> {low}" if strict else f">= {low}"
        raise ValueError(f"study parameter {key!r} = {value!r}: must be {kind} {bound}"
                         + (f" and < {high}" if math.isfinite(high) else ""))
    return int(value) if integer else float(value)


def check_parameters(params: dict | None) -> dict:
    """DEFAULTS merged with `params`, validated; ValueError naming the parameter and its value."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown study parameter {unknown[0]!r} = {params[unknown[0]]!r}; "
                         f"known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    out = {"dims": _check_int_list("dims", p["dims"], 2),
           "gp_dims": _check_int_list("gp_dims", p["gp_dims"], 2),
           "adaptive_dims": _check_int_list("adaptive_dims", p["adaptive_dims"], 2)}
    widths = p["width_factors"]
    if (not isinstance(widths, (list, tuple)) or any(isinstance(f, bool) or not isinstance(f, int) or f < 2
                                                     for f in widths) or len(set(widths)) != len(widths)):
        raise ValueError(f"study parameter 'width_factors' = {widths!r}: must be a list of distinct integers >= 2")
    out["width_factors"] = sorted(widths)
    out["data_seed"] = _check_number("data_seed", p["data_seed"], strict=False, integer=True)
    seeds = p["data_seed_checks"]
    if (not isinstance(seeds, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                                    or v == out["data_seed"] for v in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ValueError(f"study parameter 'data_seed_checks' = {seeds!r}: must be distinct non-negative integers "
                         "other than data_seed")
    out["data_seed_checks"] = sorted(seeds)
    factors = p["samples_factors"]
    if (not isinstance(factors, (list, tuple)) or len(factors) < 2
            or any(isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 < f < math.inf) for f in factors)
            or list(factors) != sorted(set(factors))):
        raise ValueError(f"study parameter 'samples_factors' = {factors!r}: must be >= 2 increasing positive numbers")
    out["samples_factors"] = [float(f) for f in factors]
    eps = p["epsilon"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (-1.0 / 3.0 < eps < 0.0):
        raise ValueError(f"study parameter 'epsilon' = {eps!r}: must be in (-1/3, 0) (the Gaussian closure's "
                         "GP-side branch is continuous for ε < 0; ε = -1/3 removes He_1)")
    out["epsilon"] = float(eps)
    for key in ("sigma_w2", "readout_variance", "noise_variance", "step_scale", "friction"):
        out[key] = _check_number(key, p[key])
    out["fraction"] = _check_number("fraction", p["fraction"], high=1.0)
    out["width_per_dim"] = _check_number("width_per_dim", p["width_per_dim"], integer=True)
    out["num_chains"] = _check_number("num_chains", p["num_chains"], low=2, strict=False, integer=True)
    out["thin"] = _check_number("thin", p["thin"], integer=True)
    out["burn_in"] = _check_number("burn_in", p["burn_in"], strict=False, integer=True)
    out["num_steps"] = _check_number("num_steps", p["num_steps"], integer=True)
    if out["num_steps"] < 4 * out["thin"]:
        raise ValueError(f"study parameter 'num_steps' = {out['num_steps']!r}: must be >= 4 × thin "
                         f"({4 * out['thin']}) for 4 draws per chain")
    out["seed"] = _check_number("seed", p["seed"], strict=False, integer=True)
    out["aligned_start_q"] = _check_number("aligned_start_q", p["aligned_start_q"], strict=False)
    out["finite_data_draws"] = _check_number("finite_data_draws", p["finite_data_draws"], integer=True)
    return out


def theory_thresholds(params: dict) -> dict:
    """{d: {"adaptive": P*, "gp": P*}} on the union of the study's and the fits' dims."""
    kw = dict(epsilon=params["epsilon"], fraction=params["fraction"])
    adaptive_dims = sorted(set(params["dims"]) | set(params["adaptive_dims"]))
    gp_dims = sorted(set(params["dims"]) | set(params["gp_dims"]))
    adaptive = {d: staircase.gfl_threshold(d, noise_variance=params["noise_variance"],
                                           readout_variance=params["readout_variance"],
                                           width_per_dim=params["width_per_dim"], input_variance=params["sigma_w2"],
                                           steps=24, **kw).samples for d in adaptive_dims}
    gp = {d: staircase.gp_threshold(d, noise_variance=params["noise_variance"] / params["readout_variance"],
                                    sigma_w2=params["sigma_w2"], **kw) for d in gp_dims}
    return {"adaptive": adaptive, "gp": gp}


def sample_grid(params: dict, adaptive: dict) -> list[tuple[int, int, int, int, float]]:
    """The points (d, P, N, data seed, init_q): P = round(factor × adaptive P*(d)) (distinct, ≥ 2) at
    N = width_per_dim·d, data_seed, chains started from the prior (init_q = 0); then the checks at min d and
    P = round(adaptive P*): the widths width_per_dim·d × width_factors, the other training sets data_seed_checks,
    and the aligned start (every neuron at w·w* = ±aligned_start_q, `sampler.init_q`; none if 0)."""
    seed = params["data_seed"]
    points = [(d, P, params["width_per_dim"] * d, seed, 0.0) for d in params["dims"]
              for P in sorted({max(2, round(f * adaptive[d])) for f in params["samples_factors"]})]
    d0 = params["dims"][0]
    P0, N0 = max(2, round(adaptive[d0])), params["width_per_dim"] * d0
    aligned = [(d0, P0, N0, seed, params["aligned_start_q"])] if params["aligned_start_q"] > 0 else []
    return (points + [(d0, P0, N0 * f, seed, 0.0) for f in params["width_factors"]]
            + [(d0, P0, N0, s, 0.0) for s in params["data_seed_checks"]] + aligned)


def point_kind(params: dict, d: int, width: int, data_seed: int, init_q: float) -> str:
    """"grid" (a point of the P grid), "width" (width check), "data_seed" (another training set) or
    "aligned_start"."""
    if width != params["width_per_dim"] * d:
        return "width"
    if init_q > 0:
        return "aligned_start"
    return "grid" if data_seed == params["data_seed"] else "data_seed"


def point_config(params: dict, d: int, samples: int, width: int, data_seed: int, init_q: float) -> dict:
    """The run config of one (d, P) point (sampler.step_size = step_scale/κ, module docstring)."""
    kappa = samples * params["readout_variance"] / params["noise_variance"]
    eps = params["epsilon"]
    return {
        "sampler": {"num_chains": params["num_chains"], "num_steps": params["num_steps"],
                    "burn_in": params["burn_in"], "thin": params["thin"], "step_size": params["step_scale"] / kappa,
                    "integrator": "baoab", "friction": params["friction"], "seed": params["seed"],
                    "checkpoint_every": max(params["num_steps"], params["burn_in"], 1), "threads": 1,
                    "progress": False, **({"init_q": init_q} if init_q > 0 else {})},
        "model": {"architecture": "fc", "activation": "erf", "scaling": "mean_field", "width": width},
        "posterior": {"sigma_w2": params["sigma_w2"], "sigma_a2": params["readout_variance"],
                      "noise_variance": params["noise_variance"]},
        # The population L_3 needs no test set (n_test = 1, not recorded).
        "data": {"d": d, "n_train": samples, "n_test": 1, "seed": data_seed,
                 "hermite_coefficients": [0.0, 1.0 + 3.0 * eps, 0.0, eps]},
        "observables": {"outputs_test": False, "outputs_train": True, "hermite_projections": True,
                        "control_directions": 0},
        "diagnostics": {"bias_check": "off"},
    }


def point_dir(params: dict, out: Path, d: int, samples: int, width: int, data_seed: int, init_q: float) -> Path:
    kind = point_kind(params, d, width, data_seed, init_q)
    suffix = {"grid": "", "width": f",N={width}", "data_seed": f",data_seed={data_seed}",
              "aligned_start": f",init_q={init_q:g}"}[kind]
    return Path(out) / f"d={d},P={samples}{suffix}"


def _is_finished(run_dir: Path) -> bool:
    meta = run_dir / rundir.META_FILE
    return meta.is_file() and rundir.read_json(meta).get("status") == "completed"


def _check_stored(run_dir: Path, config: dict) -> dict | None:
    """The stored config of `run_dir` (None if it has none); ValueError if it differs from `config`."""
    if not (Path(run_dir) / rundir.CONFIG_FILE).is_file():
        return None
    stored = rundir.load_config(run_dir)
    wanted, _ = cfg.resolve([config], [])
    if cfg.config_hash(stored) != cfg.config_hash(wanted):
        raise ValueError(f"run directory {str(run_dir)!r} holds a different configuration than these study "
                         "parameters; use another --out")
    return stored


def ensure_run(run_dir: Path, config: dict) -> None:
    """Sample one point: reuse a finished run directory, resume an unfinished one, or start it. A stored
    config that differs from the requested one is refused (a different study in the same OUT)."""
    run_dir = Path(run_dir)
    if (run_dir / rundir.CONFIG_FILE).is_file():
        stored = _check_stored(run_dir, config)
        if _is_finished(run_dir):
            return
        code = execute(run_dir, stored, NAME, report=False)
    else:
        run_dir, resolved = start_run(NAME, [config], [], run_dir)
        code = execute(run_dir, resolved, NAME, report=False)
    if code != 0:
        raise RuntimeError(f"sampling {str(run_dir)!r} failed with exit code {code}")


def _prepare(out: Path, params: dict) -> tuple[dict, dict, dict]:
    params = check_parameters(params)
    theory = theory_thresholds(params)
    return params, theory, sample_grid(params, theory["adaptive"])


def run_study(out: Path, params: dict) -> dict:
    """Sample every (d, P) point (reusing finished runs, resuming unfinished ones), then write the report;
    returns the summary."""
    out = Path(out)
    params, theory, grid = _prepare(out, params)
    out.mkdir(parents=True, exist_ok=True)
    configs = {point: point_config(params, *point) for point in grid}
    for point, config in configs.items():  # every run config is valid, and no stored run differs, before sampling
        cfg.resolve([config], [])
        _check_stored(point_dir(params, out, *point), config)
    for point, config in configs.items():
        ensure_run(point_dir(params, out, *point), config)
    _write_report(out, params, theory, grid)
    return rundir.read_json(out / rundir.SUMMARY_FILE)


def write_study_report(out: Path, params: dict) -> Path:
    """summary.json and figures/ from the stored runs alone (no sampling; unfinished points are skipped and
    named in the warnings)."""
    out = Path(out)
    return _write_report(out, *_prepare(out, params))


def _write_report(out: Path, params: dict, theory: dict, grid: list) -> Path:
    points, missing = [], []
    for point in grid:
        d, _, width, data_seed, init_q = point
        run_dir = point_dir(params, out, *point)
        if _is_finished(run_dir):
            points.append(measure_point(params, *point, run_dir, check=point_kind(params, d, width, data_seed, init_q)))
        else:
            missing.append(run_dir.name)
    table = build_summary(params, theory, points)
    table["warnings"] += [f"{name}: not sampled (run the study to finish it)" for name in missing]
    figures = out / rundir.FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    compare.draw_staircase(table, figures / "staircase.png")
    compare.draw_learnability_curves(table["points"], figures / "staircase_learnability.png", params["fraction"])
    path = out / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, table)
    print(format_summary(table))
    return path
