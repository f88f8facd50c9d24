"""The sampled modular-addition network against `theory.modular_addition` and the NNGP (Rubin,
Seroussi, Ringel, ICLR 2024, §3.2 and App. B): a sweep over the noise variance σ²
across the theory's onset σ²_I at a CPU-sized modulus P. The study `modular_addition` of the
command line (experiments.studies, whose interface this module provides):

    langevin run modular_addition [--set key=value ...] [--out DIR]
    python -m experiments.modular_addition_comparison --out DIR [--set key=value ...]   (the same
        path: study.json, lock, stop request; rerunning it with the same parameters resumes, as
        `langevin resume DIR` does)

`run_study(out, params)` runs one resumable run per σ² in DIR/noise_variance=<σ²>/ (the sampler loop
`langevin.run.run_chains`, draws in samples.zarr, checkpoints beside them). A point is finished
when its summary.json (the point's finished marker, written atomically after its last draw,
with the hash of its parameters) exists: a rerun reuses finished points without sampling and
resumes unfinished ones from their last checkpoint (a kill at any instant loses at most the steps
since it). It then writes DIR/summary.json (atomically) with the printed table, and
DIR/figures/modular_addition.png (experiments.reporting.modular_addition_report).
`write_study_report(out, params)` rebuilds the point summaries, DIR/summary.json and the figure from
the stored draws of the finished points (no sampling; unfinished σ² are listed in "unfinished").
Ctrl-C / SIGTERM (experiments.rundirs.stop): the point in progress checkpoints at its next step
and `run_point` raises `stop.Interrupted` (no finished marker); `langevin resume DIR` continues
bit-identically. `point_progress(out, params)` is the progress `langevin status DIR` shows.
Test seams (experiments.rundirs.faults, LANGEVIN_FAULT_AT): "study:point_finished" before a point's
marker is written, "study:summary" before DIR/summary.json, and every point of `run_chains`;
occurrences count over the whole study.

Model and posterior (the paper's): all P² pairs as training set (data.train_fraction = 1, the
theory's setting; a fraction < 1 draws a random subset), f_p(x) = Σ_i a_pi (w_i·x)²
(`langevin.models.modular_quadratic`), prior w ~ N(0, 1) per weight, a ~ N(0, σ_a²/N), noise σ²:

    U = ½ Σ_{μ,p} (f_p(x_μ) − y_μp)² + (T/2)|w|² + (T N/(2σ_a²))|a|² + T Σ_i Γ(w_i),   T = σ²,

Γ the sixth-order mode decay with coefficient γ (`sextic_mode_decay`), so exp(−U/T) is the paper's
posterior with the action term Γ. Integrator: ULA with prior-preconditioned steps
(η_l = step_size/γ_l, `langevin.integrators.per_layer_step_sizes`); chains start from the
Gaussian prior (every mode near 0, the GFL side; init = "prior") or with one mode per neuron in
the degenerate well (init = "well", `well_start`): a first-order transition shows as hysteresis
between the two starts where Langevin does not cross the barrier within the run.

Observables per chain and draw (leading axis chains): the discrepancy a_c = f_c·y/(y·y) − 1 on
the training pairs (σ²t̄ = a y ⇔ f̄ = (1 + a) y; a is linear in f, so its posterior mean is the
a of the posterior-mean f̄), the per-mode order parameters averaged over neurons and k ≠ 0,
⟨|u_k|²⟩, ⟨|v_k|²⟩, ⟨|u_k|²|v_k|²⟩ (modes u_k = (1/P) Σ_n u_n e^{−2πikn/P}, prior mean 1/P), the
k-resolved ⟨|u_k|²|v_k|²⟩ and the well fraction: the share of (neuron, k) with both |u_k|² and
|v_k|² beyond the barrier of the degenerate action, W_−(A_c) = 1/√(3γ) (theory's p_w).

Compared (`point_summary`): a sampled (MCSE from the chains, `langevin.diagnostics`) beside the
finite-P theory (`solve_modular_addition`), its P → ∞ closed form, and the NNGP value
a_GP = −σ²/(4σ_a² + σ²); the eigenvalue λ that a defines, λ_a = −σ²(1 + 1/a) (from
a = −σ²/(λ + σ²); MCSE σ²/a² · MCSE(a), the delta method), beside the theory's λ = 4P²σ_a²⟨XY⟩
and the NNGP's 4σ_a²; and λ from the sampled order parameter in the same normalization,
4P²σ_a²⟨|u_k|²|v_k|²⟩ (`theory.modular_addition.target_eigenvalue` [DERIVED: the target eigenvalue
of the network's kernel on the P² pairs; 4σ_a² at the prior]). Where the finite-P theory has no
self-consistent root (its well weight jumps, theory.modular_addition) the table marks its a with *;
"exact modes" is the same self-consistency with the per-mode average ∫∫XY e^{−2S_k} taken exactly
(`theory.modular_addition.exact_mode_moment`; nan where its grid would be too fine).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import torch

from experiments import study_dir
from experiments.launch import records
from experiments.reporting.modular_addition_report import draw_sweep, format_table
from experiments.rundirs import faults, rundir, stop
from experiments.setup.config import parse_override
from experiments.setup.modular_addition_data import gp_discrepancy, modular_addition_data
from langevin.checkpoint import CHECKPOINT_FILE
from langevin.diagnostics import summarize
from langevin.integrators import per_layer_step_sizes
from langevin.models.modular_quadratic import (
    ModularQuadraticNetwork, mode_squared_amplitudes, sextic_mode_decay,
)
from langevin.observables import Observable, train_loss
from langevin.potential import make_potential
from langevin.run import RunPlan, run_chains
from langevin.schemes import INTEGRATORS
from langevin.store import SampleStore
from theory.modular_addition import (
    closed_form_discrepancy, phase_boundaries, solve_modular_addition, target_eigenvalue,
)

__all__ = ["DEFAULTS", "check_parameters", "run_study", "write_study_report", "run_point",
           "point_summary", "point_progress", "format_table", "draw_sweep", "main"]
NAME = "modular_addition"  # its name in experiments.studies

# P = 13, N = 64, γ = 3 (A_c = 2, W_c = 1: the real-weight barrier 2·4PW_c/27 ≈ 3.9 is crossable by
# Langevin), σ_a² set so that σ²_* = 0.05 (σ_a² = σ²_*² N A_c/(2P²); σ²_I = σ²_* − 4σ_a² = 0.0462);
# the NNGP eigenvalue 4σ_a² = 0.0038 is small beside σ², so a_GP ≈ −0.93 at σ²_I.
DEFAULTS = {
    "modulus": 13, "width": 64, "sextic_decay": 3.0,
    "readout_variance": 0.05 ** 2 * 64 * 2.0 / (2 * 13 ** 2),
    "train_fraction": 1.0, "data_seed": 1,
    "noise_variances": [0.02, 0.03, 0.04, 0.045, 0.05, 0.055, 0.065, 0.08],
    "num_chains": 16, "step_size": 0.02, "burn_in": 2000, "num_steps": 4000, "thin": 20,
    "checkpoint_every": 2000, "seed": 0, "dtype": "float32", "integrator": "euler_maruyama",
    "init": "prior",
}
INITS = ("prior", "well")
SCALARS = ("discrepancy", "mode_u_squared", "mode_v_squared", "mode_product", "well_fraction",
           "train_loss")


POSITIVE_INTEGERS = ("modulus", "width", "num_chains", "burn_in", "num_steps", "thin", "checkpoint_every")
SEEDS = ("data_seed", "seed")
POSITIVE_NUMBERS = ("readout_variance", "sextic_decay", "step_size")
CHOICES = {"dtype": ("float32", "float64"), "init": INITS, "integrator": tuple(INTEGRATORS)}
FIGURE = "modular_addition.png"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def point_directory_name(noise_variance: float) -> str:
    return f"noise_variance={noise_variance:g}"


def check_parameters(params: dict) -> dict:
    """Merged with DEFAULTS and validated; a bad key or value raises ValueError naming the key and
    the value (before anything is computed)."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        given = ", ".join(f"{key}={params[key]!r}" for key in unknown)
        raise ValueError(f"unknown key(s) {given}; keys are {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    for key in POSITIVE_INTEGERS:
        if isinstance(p[key], bool) or not isinstance(p[key], int) or p[key] < (2 if key == "modulus" else 1):
            raise ValueError(f"key {key!r} must be a positive integer (modulus ≥ 2), got {p[key]!r}")
    for key in SEEDS:
        if isinstance(p[key], bool) or not isinstance(p[key], int) or not 0 <= p[key] < 2 ** 62:
            raise ValueError(f"key {key!r} must be an integer in [0, 2^62), got {p[key]!r}")
    for key in POSITIVE_NUMBERS:
        if not (_is_number(p[key]) and p[key] > 0):
            raise ValueError(f"key {key!r} must be a positive finite number, got {p[key]!r}")
    if not (_is_number(p["train_fraction"]) and 0 < p["train_fraction"] <= 1):
        raise ValueError(f"key 'train_fraction' must lie in (0, 1], got {p['train_fraction']!r}")
    variances = p["noise_variances"]
    if (not isinstance(variances, (list, tuple)) or not variances
            or not all(_is_number(s) and s > 0 for s in variances)):
        raise ValueError(f"key 'noise_variances' must be a non-empty list of positive numbers, "
                         f"got {variances!r}")
    names = [point_directory_name(s) for s in variances]
    if len(set(names)) != len(names):
        raise ValueError(f"key 'noise_variances' has values equal to 6 significant digits (one directory "
                         f"each: {names}), got {variances!r}")
    for key, choices in CHOICES.items():
        if not isinstance(p[key], str) or p[key] not in choices:
            raise ValueError(f"key {key!r} must be one of {sorted(choices)}, got {p[key]!r}")
    return {**p, "noise_variances": list(variances)}


def well_threshold(sextic_decay: float) -> float:
    """W_−(A_c) = 1/√(3γ): the barrier of the diagonal action S = P W_c t(1 − t)² at t = 1/3."""
    return 1.0 / math.sqrt(3.0 * float(sextic_decay))


def well_start(theta: dict, modulus: int, sextic_decay: float, generator: torch.Generator) -> dict:
    """Prior draws with one mode per neuron put into the degenerate well: for a random k ∈ 1..P−1
    and phases φ, φ', u_n += 2√W_c cos(2πkn/P + φ) and v_n += 2√W_c cos(2πkn/P + φ'), W_c = √(3/γ)
    (each adds |u_k|² = |u_{−k}|² = W_c on top of the prior's O(1/P)); the readout stays at the prior."""
    w = theta["w"]
    C, N, P = w.shape[0], w.shape[1], int(modulus)
    k = torch.randint(1, P, (C, N, 1), generator=generator, device=w.device)
    phases = 2 * math.pi * torch.rand((C, N, 2, 1), generator=generator, dtype=w.dtype, device=w.device)
    n = torch.arange(P, device=w.device, dtype=w.dtype)
    amplitude = 2.0 * math.sqrt(math.sqrt(3.0 / float(sextic_decay)))
    waves = amplitude * torch.cos(2 * math.pi * k.unsqueeze(-2).to(w.dtype) * n / P + phases)  # (C, N, 2, P)
    return {**theta, "w": w + waves.reshape(C, N, 2 * P)}


def modular_observables(model: ModularQuadraticNetwork, x: torch.Tensor, y: torch.Tensor,
                        threshold: float) -> dict[str, Observable]:
    """a_c, the mode order parameters and the well fraction per chain (module docstring)."""
    P = model.modulus
    y_norm = float((y * y).sum())

    def fn(state) -> dict[str, torch.Tensor]:
        f = model.outputs(state.theta, x)  # (C, n, P)
        X, Y = mode_squared_amplitudes(state.theta["w"], P)
        X, Y = X[..., 1:], Y[..., 1:]  # k ≠ 0, (C, N, P − 1)
        product = X * Y
        wells = ((X > threshold) & (Y > threshold)).to(X.dtype)
        return {"discrepancy": (f * y).sum((-1, -2)) / y_norm - 1.0,
                "mode_u_squared": X.mean((-1, -2)), "mode_v_squared": Y.mean((-1, -2)),
                "mode_product": product.mean((-1, -2)), "mode_product_by_k": product.mean(-2),
                "well_fraction": wells.mean((-1, -2))}

    dims = {name: () for name in ("discrepancy", "mode_u_squared", "mode_v_squared", "mode_product",
                                  "well_fraction")}
    dims["mode_product_by_k"] = ("mode",)
    return {"modes": Observable(fn, dims), "train_loss": train_loss()}


def point_config_hash(params: dict, noise_variance: float) -> str:
    """Hash of everything that defines one point's chains (the parameters but the σ² list, and σ²)."""
    record = {k: v for k, v in params.items() if k != "noise_variances"} | {"noise_variance": float(noise_variance)}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def run_point(params: dict, noise_variance: float, directory: Path,
              fault_hook: Callable[[str], None] | None = None) -> dict:
    """Sample one σ² (resumable in `directory`), write its summary (`point_summary`, the point's
    finished marker) atomically to directory/summary.json and return it. A stop request
    (experiments.rundirs.stop) checkpoints at the next step and raises `stop.Interrupted`."""
    p = check_parameters(params)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = {"float32": torch.float32, "float64": torch.float64}[p["dtype"]]
    P, N, T = p["modulus"], p["width"], float(noise_variance)
    n_train = None if p["train_fraction"] == 1 else max(1, round(p["train_fraction"] * P * P))
    data = modular_addition_data(P, n_train, seed=p["data_seed"])
    x = torch.as_tensor(data.x_train, dtype=dtype)
    y = torch.as_tensor(data.y_train, dtype=dtype)
    model = ModularQuadraticNetwork(P, N, {"w": 1.0, "a": p["readout_variance"] / N})
    decays = {"w": T / 1.0, "a": T * N / p["readout_variance"]}  # γ_l = T / (prior variance)
    potential = make_potential(model, x, y, decays, num_outputs=P,
                               extra_terms=(sextic_mode_decay(P, p["sextic_decay"], T),))
    integrator = INTEGRATORS[p["integrator"]](potential, per_layer_step_sizes(p["step_size"], decays), T)
    generator = torch.Generator().manual_seed(p["seed"])
    theta = model.sample_prior(p["num_chains"], generator, dtype)
    if p["init"] == "well":
        theta = well_start(theta, P, p["sextic_decay"], generator)
    plan = RunPlan(p["burn_in"], p["num_steps"], p["thin"], p["checkpoint_every"])
    config_hash = point_config_hash(p, T)
    store = SampleStore(directory / "samples.zarr", p["num_chains"])
    result = run_chains(integrator=integrator, initial_theta=theta, generator=generator,
                        observables=modular_observables(model, x, y, well_threshold(p["sextic_decay"])),
                        plan=plan, store=store, checkpoint_dir=directory, config_hash=config_hash,
                        stop_requested=stop.requested, fault_hook=fault_hook)
    if result.status == "interrupted":
        raise stop.Interrupted(f"point {point_directory_name(T)}", result.step)
    summary = point_summary(store.open(), p, T)
    summary["chain_steps_per_second"] = result.chain_steps_per_second
    summary["config_hash"] = config_hash
    if fault_hook is not None:
        fault_hook("study:point_finished")
    rundir.write_json_atomic(directory / rundir.SUMMARY_FILE, summary)
    return summary


def finished_point(params: dict, noise_variance: float, directory: Path) -> dict | None:
    """The stored summary of a finished point (None: not finished); a point written with other
    parameters is refused (ValueError naming its directory)."""
    path = directory / rundir.SUMMARY_FILE
    if not path.is_file():
        return None
    summary = rundir.read_json(path)
    if "config_hash" not in summary:  # written before markers carried it: run_point re-checks the
        return None                   # checkpoint's hash and rewrites the summary from its draws
    if summary["config_hash"] != point_config_hash(params, noise_variance):
        raise ValueError(f"{str(path)!r} was written with other parameters (hash "
                         f"{summary['config_hash']} != {point_config_hash(params, noise_variance)}); "
                         "use a new output directory")
    return summary


def point_progress(out: Path, params: dict) -> list[dict]:
    """Per σ² in run order, from the files alone: {"label", "finished" (its summary.json, the
    finished marker, exists with these parameters' hash), "step" (its last checkpoint's step, None
    without one), "total_steps"} (experiments.studies, `langevin status DIR`)."""
    p = check_parameters(params)
    points = []
    for s2 in p["noise_variances"]:
        directory = Path(out) / point_directory_name(s2)
        marker = directory / rundir.SUMMARY_FILE
        finished = (marker.is_file()
                    and rundir.read_json(marker).get("config_hash") == point_config_hash(p, s2))
        checkpoint = records.checkpoint_progress(directory, CHECKPOINT_FILE)
        points.append({"label": directory.name, "finished": finished,
                       "step": None if checkpoint is None else checkpoint[0],
                       "total_steps": p["burn_in"] + p["num_steps"]})
    return points


def point_summary(ds, params: dict, noise_variance: float) -> dict:
    """Sampled a, λ and order parameters (mean, MCSE, R̂) beside the theories (module docstring)."""
    p = check_parameters(params)
    P, N, sa2, gamma, s2 = p["modulus"], p["width"], p["readout_variance"], p["sextic_decay"], float(noise_variance)
    stats = summarize(ds, var_names=[*SCALARS, "mode_product_by_k"])
    sampled = {name: {k: stats[name][k] for k in ("mean", "mcse_mean", "r_hat", "ess_bulk")} for name in SCALARS}
    a, a_se = sampled["discrepancy"]["mean"], sampled["discrepancy"]["mcse_mean"]
    theory = solve_modular_addition(s2, P, N, sa2, gamma)
    try:
        exact = solve_modular_addition(s2, P, N, sa2, gamma, mode_average="exact")
    except ValueError:  # the exact per-mode integral is too fine a grid at this size
        exact = None
    product = sampled["mode_product"]
    return {
        "noise_variance": s2, "sampled": sampled,
        "mode_product_by_k": stats["mode_product_by_k"]["mean"],
        "discrepancy": {"sampled": a, "sampled_mcse": a_se, "theory": theory.a,
                        "theory_p_infinity": closed_form_discrepancy(s2, P, N, sa2, gamma),
                        "theory_exact_modes": exact.a if exact else math.nan,
                        "gp": gp_discrepancy(s2, sa2)},
        "eigenvalue": {"sampled": -s2 * (1.0 + 1.0 / a), "sampled_mcse": s2 / (a * a) * a_se,
                       "theory": theory.eigenvalue, "gp": 4.0 * sa2,
                       "theory_exact_modes": exact.eigenvalue if exact else math.nan,
                       "order_parameter": float(target_eigenvalue(product["mean"], P, sa2)),
                       "order_parameter_mcse": float(target_eigenvalue(product["mcse_mean"], P, sa2))},
        "well_fraction": {"sampled": sampled["well_fraction"]["mean"],
                          "sampled_mcse": sampled["well_fraction"]["mcse_mean"],
                          "theory": theory.well_weight},
        "theory": {"phase": theory.phase, "u": theory.u, "coupling": theory.coupling, "well": theory.well,
                   "well_action": theory.well_action, "converged": theory.converged,
                   "mode_product": theory.mode_product, "message": theory.message},
    }


def _table(p: dict, points: list[dict], unfinished: list[float]) -> dict:
    bounds = phase_boundaries(p["modulus"], p["width"], p["readout_variance"], p["sextic_decay"])
    return {"parameters": p, "noise_variance_gmfl1": bounds.noise_variance_gmfl1,
            "noise_variance_gmfl2": bounds.noise_variance_gmfl2, "points": points, "unfinished": unfinished}


def _write_table(out: Path, table: dict, fault_hook: Callable[[str], None]) -> Path:
    """summary.json (atomically), the printed table and figures/modular_addition.png."""
    fault_hook("study:summary")
    path = out / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, table)
    print(f"σ²_I = {table['noise_variance_gmfl1']:.4f}, σ²_II = {table['noise_variance_gmfl2']:.4f} (P → ∞)")
    print(format_table(table))
    if table["unfinished"]:
        print(f"unfinished: σ² = {table['unfinished']} (continue with `langevin resume {out}`)")
    draw_sweep({f"sampled ({table['parameters']['init']} start)": table}, out / rundir.FIGURES_DIR / FIGURE)
    return path


def run_study(out: Path, params: dict) -> dict:
    """Every σ² of `noise_variances` in order: finished points reused (their summary.json read,
    nothing sampled), unfinished ones resumed from their last checkpoint; then the table in
    out/summary.json and the figure (module docstring). Returns the table."""
    p = check_parameters(params)
    out = Path(out)
    hook = faults.hook_from_environment() or (lambda _point: None)
    points = []
    for s2 in p["noise_variances"]:
        directory = out / point_directory_name(s2)
        points.append(finished_point(p, s2, directory) or run_point(p, s2, directory, hook))
    table = _table(p, points, [])
    _write_table(out, table, hook)
    return table


def write_study_report(out: Path, params: dict) -> Path:
    """Rebuild every finished point's summary from its stored draws (no sampling), then
    out/summary.json and the figure; returns the summary path."""
    p = check_parameters(params)
    out = Path(out)
    points, unfinished = [], []
    for s2 in p["noise_variances"]:
        directory = out / point_directory_name(s2)
        stored = finished_point(p, s2, directory)
        if stored is None:
            unfinished.append(s2)
            continue
        summary = point_summary(SampleStore(directory / "samples.zarr", p["num_chains"]).open(), p, s2)
        summary["chain_steps_per_second"] = stored["chain_steps_per_second"]
        summary["config_hash"] = stored["config_hash"]
        rundir.write_json_atomic(directory / rundir.SUMMARY_FILE, summary)
        points.append(summary)
    return _write_table(out, _table(p, points, unfinished), lambda _point: None)


def main(argv=None) -> int:
    """`langevin run modular_addition` from this module (module docstring): validate, then
    `study_dir.run_or_continue` (study.json, the lock, the stop flag; the same parameters in an
    existing study directory continue it). Values are parsed as `--set` parses them for runs
    (TOML, else a bare string)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a parameter (TOML value), keys: {', '.join(sorted(DEFAULTS))}")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set needs KEY=VALUE, got {item!r}")
        key, value = parse_override(item)
        overrides[key] = value
    try:
        params = check_parameters(overrides)
    except ValueError as err:
        parser.error(str(err))
    return study_dir.run_or_continue(NAME, params, args.out, run_study)


if __name__ == "__main__":
    raise SystemExit(main())
