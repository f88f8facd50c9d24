"""The report of a replica-exchange run: one ordinary posterior per rung.

Stored chain s belongs to rung s // C (`langevin.tempering.by_rung`; the variable
`rung_noise_variance` / `rung_temperature` says which value), so each rung gets what a
plain run at that σ² (or T) gets: per-variable diagnostics (R̂, ESS, MCSE over its C
chains), the virial thermometer (target 1 for "noise_variance" rungs, which sample
U_c = L/τ_c + prior at T = 1; T_c for "temperature" rungs), the equilibration checks, and
the theory comparisons of `experiments.compare.comparisons` with the rung's convention (noise
variance τ_r, prior unchanged; for "temperature" rungs prior numerators scaled by T_r/T).

Replica-exchange diagnostics (sampling phase, from the checkpoint's state): per-pair
acceptance rates (accepted fraction and mean min(1, α)), the round trips 0 → R−1 → 0
of every chain and their rate, and each replica's rung trace (figure `rung_traces.png`).

Well masses of the grokking order parameter: the fraction of neurons with
|q| = |w·w*| > WELL_THRESHOLD (between the q ≈ 0 basin and the q ≈ ±1 wells,
Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1) with its MCSE, beside the finite-d Landau theory's P(|q| > threshold)
(`theory.cubic_teacher.order_parameter_density`, integrated on a grid).
The step-size bias check of the plain report is not run for tempered runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from experiments.compare import comparisons
from experiments.compare.feature_learning_comparison import solve_landau
from experiments.compare.theory_inputs import two_layer_inputs
from experiments.reporting import equilibration
from experiments.reporting.convergence import scalar_diagnostics, thermometer, warnings_for
from experiments.reporting.sweep_tables import (
    draw_learnability_transition, draw_neg_log_q, feature_learning_columns, format_table,
)
from experiments.rundirs import rundir
from experiments.rundirs.run_draws import chain_draw, q_draws
from experiments.setup.data import read_dataset
from experiments.setup.plotting import pyplot
from experiments.setup.tempering_config import RUNG_VALUE_NAME
from langevin import diagnostics
from langevin.checkpoint import load_checkpoint
from langevin.store import SampleStore
from theory.cubic_teacher import order_parameter_density

WELL_THRESHOLD = 0.5
SLOT_VARIABLES = ("replica", "rung_noise_variance", "rung_temperature")


def rung_convention(convention: dict, mode: str, value: float) -> dict:
    """The meta.json convention of a plain run at rung value `value` (module docstring)."""
    out = dict(convention)
    if mode == "temperature":
        ratio = value / float(convention["temperature"])
        out["sigma_w2"] = float(convention["sigma_w2"]) * ratio
        out["sigma_a2"] = float(convention["sigma_a2"]) * ratio
        out["prior_variances"] = {k: v * ratio for k, v in convention["prior_variances"].items()}
    out["noise_variance"] = value
    out["noise_variance_tilde"] = value * float(convention["chi"])
    out["temperature"] = value if mode == "temperature" else 1.0
    return out


def swap_statistics(state: dict, num_rungs: int, num_replicas: int, num_steps: int,
                    swap_every: int) -> dict:
    """Per-pair acceptance and round trips of the sampling phase (module docstring)."""
    attempts = np.asarray(state["swap_attempts"], dtype=np.float64)
    accepts = np.asarray(state["swap_accepts"], dtype=np.float64)
    probability = np.asarray(state["swap_probability_sum"], dtype=np.float64)
    trips = np.asarray(state["round_trips"], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accepted = accepts / attempts
        mean_probability = probability / attempts
    rounds = num_steps // swap_every
    return {
        "pairs": [[r, r + 1] for r in range(num_rungs - 1)],
        "acceptance_rate": accepted.tolist(), "mean_acceptance_probability": mean_probability.tolist(),
        "attempts": attempts.astype(int).tolist(),
        "rejection_rate_spread": float(np.nanmax(1 - mean_probability) - np.nanmin(1 - mean_probability))
        if attempts.size else None,
        "round_trips_total": int(trips.sum()),
        "round_trips_per_chain": trips.tolist(),
        "round_trips_per_system_per_1000_steps": float(trips.sum() / num_replicas / num_steps * 1000)
        if num_steps else None,
        # Syed et al.'s round-trip rate: trips per swap round per system (≤ 1/(2 + 2Λ)).
        "round_trip_rate_per_swap_round": float(trips.sum() / num_replicas / rounds) if rounds else None,
    }


def well_mass(q: np.ndarray, threshold: float = WELL_THRESHOLD) -> dict:
    """Fraction of neurons with |q| > threshold per draw, (chain, draw), mean ± MCSE."""
    fraction = (np.abs(q) > threshold).mean(axis=-1)
    mcse = float(diagnostics.mcse_mean(fraction)) if fraction.shape[1] >= 4 else float("nan")
    return {"threshold": threshold, "sampled": float(fraction.mean()), "mcse": mcse}


def theory_well_mass(config: dict, meta: dict, data, threshold: float = WELL_THRESHOLD):
    """P(|q| > threshold) under the finite-d Landau p(q) of the rung (None: no theory)."""
    inputs = two_layer_inputs(config, meta, n_train=len(data.y_train),
                              input_dim=data.x_train.shape[1])
    if inputs.activation != "erf" or inputs.linear_cubic_target is None or inputs.chi <= 1:
        return None
    prediction = solve_landau(inputs)
    if prediction is None:
        return None
    grid = np.linspace(0.0, 4.0, 8001)
    density = order_parameter_density(prediction.solution, grid)[0]
    outside = grid > threshold
    return float(2 * np.trapezoid(density[outside], grid[outside]) / (2 * np.trapezoid(density, grid)))


def _rung_summary(config, meta, data, ds_r, q_r, mode, value) -> dict:
    ds_r = ds_r.drop_vars([v for v in SLOT_VARIABLES if v in ds_r])
    convention = rung_convention(meta["convention"], mode, value)
    target = convention["temperature"]
    diag = scalar_diagnostics(ds_r)
    thermo = thermometer(ds_r, target)
    out = {"value": value, "convention": convention, "diagnostics": diag, "thermometer": thermo,
           "warnings": warnings_for(diag, thermo, int(ds_r.sizes["chain"]))}
    eq = equilibration.equilibration_summary(ds_r, target, config["sampler"]["burn_in"],
                                             config["sampler"]["thin"])
    out["equilibration"] = eq
    out["warnings"] += eq["warnings"]
    meta_r = dict(meta, convention=convention)
    out["theory"] = comparisons.compare_with_theory(config, meta_r, data, ds_r, q=q_r)
    if q_r is not None and q_r.sizes["draw"] >= 4:
        values = chain_draw(q_r, "neuron").astype(np.float64)
        out["well_mass"] = well_mass(values)
        out["well_mass"]["landau"] = theory_well_mass(config, meta_r, data)
    return out


def rung_row(summary: dict) -> dict:
    """One table row per rung, in the columns of a σ² sweep (experiments.reporting.sweep_tables)."""
    row = feature_learning_columns({"convention": summary["convention"],
                                    "theory": summary["theory"]})
    row.setdefault("sigma2", summary["value"])
    if "well_mass" in summary:
        row["well_mass"] = summary["well_mass"]["sampled"]
        row["well_mass_mcse"] = summary["well_mass"]["mcse"]
        row["well_mass_landau"] = summary["well_mass"]["landau"]
    return row


def rung_traces(replica: np.ndarray, num_replicas: int) -> np.ndarray:
    """(chain b, draw) rung of every batch chain, from the stored `replica` (slot, draw)."""
    slots, draws = replica.shape
    trace = np.empty((slots, draws), dtype=np.int64)
    for draw in range(draws):  # small: one inverse permutation per draw
        trace[replica[:, draw], draw] = np.arange(slots) // num_replicas
    return trace


def draw_figures(figures_dir: Path, traces: np.ndarray, steps: np.ndarray, ladder: np.ndarray,
                 num_replicas: int, rows: list[dict], mode: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for b in range(0, traces.shape[0], num_replicas):  # the R chains of system 0
        ax.step(steps, traces[b], where="post", lw=0.8, label=f"chain {b}")
    ax.set_yticks(range(ladder.size), [f"{v:.3g}" for v in ladder])
    ax.set_xlabel("sampling step")
    ax.set_ylabel("rung (σ²)" if mode == "noise_variance" else "rung (T)")
    ax.set_title("rung of each replica of system 0")
    ax.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    fig.savefig(figures_dir / "rung_traces.png", dpi=110)
    plt.close(fig)
    if rows and "well_mass" in rows[0]:
        x = np.array([r["sigma2"] for r in rows])
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.errorbar(x, [r["well_mass"] for r in rows], yerr=[4 * r["well_mass_mcse"] for r in rows],
                    fmt="ko", capsize=3, label="tempered (± 4 MCSE)")
        landau = [np.nan if r["well_mass_landau"] is None else r["well_mass_landau"] for r in rows]
        ax.plot(x, landau, "r-", label="Landau (finite d)")
        ax.set_xlabel("σ²")
        ax.set_ylabel(f"P(|w·w*| > {WELL_THRESHOLD})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(figures_dir / "well_mass_vs_noise.png", dpi=110)
        plt.close(fig)
    draw_learnability_transition("tempered", "sigma2", rows, figures_dir)
    draw_neg_log_q("tempered", "sigma2", rows, figures_dir)


def write_tempering_report(run_dir: Path) -> Path:
    """summary.json and figures of a tempered run, from its files only."""
    run_dir = Path(run_dir)
    config = rundir.load_config(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    data = read_dataset(run_dir / rundir.DATA_FILE)
    sampler = config["sampler"]
    mode = sampler["tempering"]
    store = SampleStore(run_dir / rundir.SAMPLES_DIR, sampler["num_chains"])
    if store.num_draws("") == 0:
        raise ValueError(f"{str(run_dir)!r} has no stored draws yet")
    checkpoint = load_checkpoint(run_dir / rundir.CHECKPOINT_DIR)
    state = checkpoint.state
    ladder = state["ladder"].numpy()
    num_rungs = ladder.size
    replicas = sampler["num_chains"] // num_rungs
    ds = store.open().load()
    q = q_draws(store, config)
    values = ds[RUNG_VALUE_NAME[mode]].values
    warnings = []
    if not np.all(values == values[:, :1]):
        warnings.append("the ladder changed while draws were recorded (ladder adaptation "
                        "longer than the burn-in?): rungs mix values")
    rungs = []
    for r in range(num_rungs):
        chains = slice(r * replicas, (r + 1) * replicas)
        q_r = None if q is None else q.isel(chain=chains)
        summary_r = _rung_summary(config, meta, data, ds.isel(chain=chains), q_r, mode,
                                  float(ladder[r]))
        summary_r["rung"] = r
        warnings += [f"rung {r} ({ladder[r]:.4g}): {w}" for w in summary_r["warnings"]]
        rungs.append(summary_r)
    num_steps = max(0, int(checkpoint.step) - sampler["burn_in"])
    swaps = swap_statistics(state, num_rungs, replicas, num_steps, sampler["swap_every"])
    rows = [rung_row(s) for s in rungs]
    summary = {
        "run": {"name": meta.get("name"), "status": meta.get("status"),
                "num_chains": int(ds.sizes["chain"]), "num_draws": int(ds.sizes["draw"]),
                "config_hash": meta.get("config_hash")},
        "convention": meta["convention"],
        "tempering": {"mode": mode, "ladder": ladder.tolist(), "rungs": num_rungs,
                      "replicas_per_rung": replicas, "swap_every": sampler["swap_every"],
                      **swaps},
        "table": [{k: v for k, v in row.items() if not isinstance(v, (dict, list))} for row in rows],
        "rungs": rungs,
        "warnings": warnings,
    }
    figures_dir = run_dir / rundir.FIGURES_DIR
    figures_dir.mkdir(exist_ok=True)
    traces = rung_traces(ds["replica"].values.astype(np.int64), replicas)
    draw_figures(figures_dir, traces, ds["step"].values, ladder, replicas, rows, mode)
    path = run_dir / rundir.SUMMARY_FILE

    rundir.write_json_atomic(path, rundir.json_ready(summary))
    return path


def plain_run_row(run_dir: Path) -> dict:
    """σ², start (sampler.init_q), well mass and R_He3 (± MCSE) of a plain run directory."""
    run_dir = Path(run_dir)
    config = rundir.load_config(run_dir)
    meta = rundir.read_json(run_dir / rundir.META_FILE)
    store = SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"])
    q = q_draws(store, config)
    row = {"run": str(run_dir), "sigma2": float(meta["convention"]["noise_variance"]),
           "init_q": config["sampler"]["init_q"]}
    if q is not None:
        mass = well_mass(chain_draw(q, "neuron").astype(np.float64))
        row.update(well_mass=mass["sampled"], well_mass_mcse=mass["mcse"])
    summary_path = run_dir / rundir.SUMMARY_FILE
    if summary_path.is_file():
        fl = rundir.read_json(summary_path).get("theory", {}).get("feature_learning", {})
        he3 = fl.get("hermite_learnabilities", {}).get("He3", {})
        row.update(R_He3=he3.get("sampled"), R_He3_mcse=he3.get("mcse"))
    return row


def hysteresis_table(tempered_dir: Path, plain_dirs: list[Path]) -> list[dict]:
    """Each plain run beside the tempered rung nearest to its σ² (well mass, R_He3, Landau)."""
    summary = rundir.read_json(Path(tempered_dir) / rundir.SUMMARY_FILE)
    table = summary["table"]
    sigma2 = np.array([row["sigma2"] for row in table])
    out = []
    for plain_dir in plain_dirs:
        row = plain_run_row(plain_dir)
        nearest = table[int(np.argmin(np.abs(np.log(sigma2 / row["sigma2"]))))]
        row.update({f"tempered_{k}": nearest.get(k) for k in
                    ("sigma2", "well_mass", "well_mass_mcse", "R_He3", "R_He3_mcse",
                     "well_mass_landau", "R_He3_landau")})
        out.append(row)
    return out


if __name__ == "__main__":  # python -m experiments.reporting.tempering_report TEMPERED_DIR PLAIN_DIR ...
    rows = hysteresis_table(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
    print(format_table([{k: v for k, v in r.items() if k != "run"} for r in rows]))
