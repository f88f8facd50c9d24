"""Step-size bias of a run, estimated by step halving (Richardson extrapolation).

Unadjusted schemes (euler_maruyama, baoab) sample exp(−U/T) only up to a bias of the
stationary mean of an observable g:

    m(η) = m(0) + b η + O(η²)     (ULA: O(η); BAOAB: O(h²) = O(η) with h² = 2η).

So m(η) − m(η/2) = bη/2 + O(η²), and the bias of the run at its step size is

    bias(η) ≈ 2 (m(η) − m(η/2)),   MCSE = 2 √(mcse(m(η))² + mcse(m(η/2))²).

The two means come from a short continuation of the run's chains by the sampler's one
loop (`langevin.run.run_chains`, in a scratch directory that is removed; nothing is
written to the run): from the last checkpoint, K steps at the run's step size and,
from the same state, 2K steps at half the step size (the same Langevin time η·K, so
both means have about the same Monte Carlo error), recording the observables every
step and every second step respectively. The first `DISCARD_FRACTION` of each arm is
dropped: the half-step arm starts at the law of step η and relaxes to that of η/2
(a relaxation slower than K/4 steps makes the estimate too small). Each mean's MCSE is
`langevin.diagnostics.mcse_mean` (ESS over all chains). The two arms share their start,
so they are positively correlated and adding the MCSEs in quadrature is conservative.

The η arm continues the run's own generator (restored from the checkpoint); the η/2
arm uses a separate generator seeded from `sampler.seed`, so the check is
deterministic and repeatable.

Metropolis-adjusted schemes (those whose step info carries "acceptance_probability",
i.e. mala) have no step-size bias; for them the K-step continuation reports the mean
acceptance probability instead (optimal ≈ 0.574 for MALA, Roberts & Rosenthal 1998).

A warning is raised when a bias is resolved (|bias| > `RESOLVED_IN_MCSE` · its MCSE)
and larger than the MCSE of the run's posterior mean of the same observable: then the
step size, not the sampling length, limits the run's accuracy.
"""
from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch
import xarray as xr

from experiments.rundirs import rundir
from experiments.rundirs.run_draws import chain_draw
from experiments.setup.architectures import get_entry
from experiments.setup.build import RunSetup, build_run, resolve_physics
from experiments.setup.data import DataSet
from langevin import diagnostics
from langevin import observables as obs
from langevin.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, state_to_device
from langevin.integrators import Integrator
from langevin.run import NonFiniteError, RunPlan, run_chains
from langevin.store import SampleStore

DISCARD_FRACTION = 0.25  # of each arm, for the relaxation between the η and η/2 laws
RESOLVED_IN_MCSE = 3.0  # |bias| above this many MCSE: the bias is resolved
# Automatic K: min(num_steps // STEPS_FRACTION, DEFAULT_MAX_STEPS), at least MIN_STEPS; the
# check then costs 3K steps, ≤ 15 % of the sampling steps (the default preset: 3000 steps).
STEPS_FRACTION = 20
DEFAULT_MAX_STEPS = 1000
MIN_STEPS = 40
# "auto" runs the check when 3K · chains · parameters · training points (≈ the
# multiply-adds of the extra forward+backward passes) is at most this: ~1 min on 2 CPU
# cores. The default preset costs ≈ 7·10⁹ (K = 1000).
AUTO_BUDGET = 2e10
HALF_STEP_SEED_OFFSET = 1_000_003  # seed of the η/2 arm: sampler.seed + this
ACCEPTANCE_KEY = "acceptance_probability"
CONTINUATION_HASH = "step-halving"  # config hash of the scratch checkpoint of continue_chains


class ArmDraws(NamedTuple):
    """Draws of one continuation arm: observables (chain, draw, ...) and, for
    Metropolis-adjusted schemes, the acceptance probability of every step (chain, step)."""

    values: dict[str, np.ndarray]
    acceptance: np.ndarray | None


def continue_chains(integrator: Integrator, state, generator: torch.Generator, num_steps: int,
                    observables: Mapping[str, obs.Observable], every: int = 1) -> ArmDraws:
    """Run `num_steps` steps from `state` (not mutated), recording every observable every
    `every` steps; returns NumPy (chain, draw, ...) arrays.

    The steps are those of `langevin.run.run_chains`, the one sampling loop: the state and
    the generator's state are written as a step-0 checkpoint into a scratch directory,
    from which run_chains resumes (its one restore), with burn_in = 0, thin = `every` and
    a single flush; its store is read back and the scratch directory removed. The
    acceptance probabilities of a Metropolis-adjusted scheme are collected from the
    info of each step."""
    acceptance: list[torch.Tensor] = []

    def step(current, stream):
        new_state, info = integrator.step(current, stream)
        if ACCEPTANCE_KEY in info:
            acceptance.append(info[ACCEPTANCE_KEY])
        return new_state, info

    recorded = {key: observable._replace(every=None) for key, observable in observables.items()}
    names = [name for observable in recorded.values() for name in observable.dims]
    num_chains = int(state.potential.shape[0])
    with tempfile.TemporaryDirectory(prefix="step-halving-") as scratch:
        checkpoint_dir = Path(scratch) / rundir.CHECKPOINT_DIR
        save_checkpoint(checkpoint_dir, Checkpoint(state._asdict(), generator.get_state(), 0, {},
                                                   CONTINUATION_HASH))
        store = SampleStore(Path(scratch) / rundir.SAMPLES_DIR, num_chains)
        run_chains(integrator=integrator._replace(step=step), initial_theta=state.theta,
                   generator=generator, observables=recorded,
                   plan=RunPlan(burn_in=0, num_steps=num_steps, thin=every,
                                checkpoint_every=num_steps),
                   store=store, checkpoint_dir=checkpoint_dir, config_hash=CONTINUATION_HASH)
        ds = store.open().load()
        values = {name: chain_draw(ds[name]) for name in names}
    accepted = torch.stack(acceptance, dim=1).cpu().numpy() if acceptance else None
    return ArmDraws(values, accepted)


def discard_transient(draws: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) draws without the first DISCARD_FRACTION of the draws."""
    return draws[:, int(DISCARD_FRACTION * draws.shape[1]):]


def richardson_bias(full_step: np.ndarray, half_step: np.ndarray) -> dict:
    """bias(η) = 2 (m(η) − m(η/2)) with its MCSE, from (chain, draw, ...) draws of both arms
    (the first DISCARD_FRACTION of each dropped). Values are floats or nested lists."""
    full, half = discard_transient(full_step), discard_transient(half_step)
    mean_full, mean_half = full.mean(axis=(0, 1)), half.mean(axis=(0, 1))
    mcse_full, mcse_half = diagnostics.mcse_mean(full), diagnostics.mcse_mean(half)
    bias = 2.0 * (mean_full - mean_half)
    bias_mcse = 2.0 * np.sqrt(mcse_full**2 + mcse_half**2)
    return {"mean_step": mean_full, "mcse_step": mcse_full, "mean_half_step": mean_half,
            "mcse_half_step": mcse_half, "bias": bias, "bias_mcse": bias_mcse}


def step_halving(build_integrator: Callable[[float], Integrator], step_size: float, state,
                 generator: torch.Generator, half_step_generator: torch.Generator,
                 num_steps: int, observables: Mapping[str, obs.Observable]
                 ) -> tuple[ArmDraws, ArmDraws | None]:
    """The two arms from `state`: K = `num_steps` steps at `step_size` with `generator`,
    then 2K steps at step_size/2 with `half_step_generator` (recorded every 2nd step).
    The half-step arm is None for a Metropolis-adjusted scheme (it has no bias)."""
    full = continue_chains(build_integrator(step_size), state, generator, num_steps,
                           observables)
    if full.acceptance is not None:
        return full, None
    half = continue_chains(build_integrator(step_size / 2), state, half_step_generator,
                           2 * num_steps, observables, every=2)
    return full, half


def automatic_steps(config: dict) -> int:
    """K: `diagnostics.bias_check_steps`, or min(num_steps // 20, 1000), at least 40."""
    chosen = config["diagnostics"]["bias_check_steps"]
    if chosen > 0:
        return int(chosen)
    automatic = min(config["sampler"]["num_steps"] // STEPS_FRACTION, DEFAULT_MAX_STEPS)
    return max(MIN_STEPS, automatic)


def check_cost(config: dict, data: DataSet, num_steps: int) -> float:
    """≈ multiply-adds of the check: 3K steps × chains × parameters × training points."""
    d = data.x_train.shape[1]
    model = get_entry(config["model"]["architecture"]).build(
        config, d, resolve_physics(config, d).prior_variances)
    parameters = sum(math.prod(shape) for shape in model.parameter_shapes().values())
    return 3.0 * num_steps * config["sampler"]["num_chains"] * parameters * len(data.x_train)


def _on_available_device(config: dict) -> dict:
    """The config, moved to the CPU if it names a CUDA device this machine lacks."""
    if config["sampler"]["device"].startswith("cuda") and not torch.cuda.is_available():
        config = copy.deepcopy(config)
        config["sampler"]["device"] = "cpu"
    return config


def _listed(value):
    return value.tolist() if isinstance(value, np.ndarray) else float(value)


def _acceptance_summary(acceptance: np.ndarray) -> tuple[dict, list[str]]:
    per_chain = acceptance.mean(axis=1)
    summary = {"mean": float(acceptance.mean()),
               "mcse": float(diagnostics.mcse_mean(acceptance)),
               "min_over_chains": float(per_chain.min()),
               "note": "Metropolis-adjusted: no step-size bias; optimal MALA acceptance "
                       "is about 0.574 (Roberts & Rosenthal 1998)"}
    notes = []
    if summary["mean"] < 0.2:
        notes.append(f"MALA acceptance {summary['mean']:.2f} < 0.2: the chains mostly stand "
                     "still; lower sampler.step_size")
    return summary, notes


class PhysicsMismatch(ValueError):
    """The posterior rebuilt from config.toml is not the one meta.json records."""


class Continuation(NamedTuple):
    """The chains of a run restored from its last checkpoint, ready to continue."""

    setup: RunSetup  # experiments.setup.build of the run's config (on an available device)
    state: object  # the checkpoint's integrator state, on setup.device
    generator: torch.Generator  # the run's stream at the checkpoint
    half_step_generator: torch.Generator  # seeded: sampler.seed + HALF_STEP_SEED_OFFSET
    build_integrator: Callable[[float], Integrator]  # the run's integrator at a step size


def restore_continuation(run_dir, config: dict, data: DataSet) -> Continuation | None:
    """The one restore of a run's chains for a continuation (the step-size-bias check of
    the report and of `experiments.reference_check`); None without a checkpoint.

    The physics comes from the run's meta.json: the posterior rebuilt from config.toml
    must equal the one recorded there (temperature, per-layer prior variances and
    weight decays), else PhysicsMismatch. A generator state saved on another device type
    is replaced by a stream seeded with sampler.seed."""
    checkpoint = load_checkpoint(Path(run_dir) / rundir.CHECKPOINT_DIR)
    if checkpoint is None:
        return None
    config = _on_available_device(config)
    setup = build_run(config, data)
    meta_path = Path(run_dir) / rundir.META_FILE
    if meta_path.is_file():
        _check_physics(rundir.read_json(meta_path)["convention"], setup.physics.as_metadata())
    state = setup.integrator.state_type(**state_to_device(checkpoint.state, setup.device))
    generator = torch.Generator(device=setup.device)
    try:
        generator.set_state(checkpoint.generator_state)
    except RuntimeError:  # saved on another device type: a seeded stream instead
        generator.manual_seed(config["sampler"]["seed"])
    half_step_generator = torch.Generator(device=setup.device).manual_seed(
        config["sampler"]["seed"] + HALF_STEP_SEED_OFFSET)

    def build_integrator(step_size: float) -> Integrator:
        changed = copy.deepcopy(config)
        changed["sampler"]["step_size"] = step_size
        return build_run(changed, data).integrator

    return Continuation(setup, state, generator, half_step_generator, build_integrator)


def _check_physics(recorded: dict, rebuilt: dict) -> None:
    """PhysicsMismatch naming the first key where meta.json and the rebuild disagree."""
    for key in ("temperature", "prior_variances", "weight_decays"):
        want, got = recorded.get(key), rebuilt[key]
        pairs = ([(want.get(layer), got[layer]) for layer in got] if isinstance(got, dict)
                 else [(want, got)])
        if want is None or not all(a is not None and math.isclose(a, b, rel_tol=1e-9)
                                   for a, b in pairs):
            raise PhysicsMismatch(f"the posterior rebuilt from config.toml differs from "
                                  f"meta.json in convention.{key} ({got} vs {want})")


def step_size_bias_summary(run_dir, config: dict, data: DataSet, ds: xr.Dataset) -> dict:
    """The report's step-size-bias section for `run_dir` (see the module docstring):
    {"status", "step_size", "steps", "observables" | "acceptance", "warnings"}.

    `diagnostics.bias_check`: "off"; "on"; "auto" (default): on when `check_cost` ≤
    AUTO_BUDGET. Observables: train_loss, squared_norm_{layer}, virial_temperature_{layer};
    run_mcse is the MCSE of the run's posterior mean (from `ds`)."""
    mode = config["diagnostics"]["bias_check"]
    num_steps = automatic_steps(config)
    out = {"status": "off", "step_size": config["sampler"]["step_size"], "steps": num_steps,
           "warnings": []}
    if mode == "off":
        return out
    cost = check_cost(config, data, num_steps)
    if mode == "auto" and cost > AUTO_BUDGET:
        out["status"] = (f"skipped: cost {cost:.2g} > {AUTO_BUDGET:.2g} (set "
                         "diagnostics.bias_check = 'on' or fewer diagnostics.bias_check_steps)")
        return out
    try:
        restored = restore_continuation(run_dir, config, data)
    except PhysicsMismatch as err:
        out["status"] = f"skipped: {err}"
        return out
    if restored is None:
        out["status"] = "skipped: no checkpoint"
        return out
    setup = restored.setup
    layers = setup.model.layer_names
    observables = {"train_loss": obs.train_loss(), "squared_norms": obs.squared_norms(layers),
                   "virial_temperature": obs.virial_temperature(layers)}
    try:
        full, half = step_halving(restored.build_integrator, config["sampler"]["step_size"],
                                  restored.state, restored.generator,
                                  restored.half_step_generator, num_steps, observables)
    except NonFiniteError as err:
        out["status"] = "failed: non-finite draws in the continuation"
        out["warnings"].append(f"step-size-bias check: {err}")
        return out
    out["status"] = "done"
    if half is None:
        out["acceptance"], out["warnings"] = _acceptance_summary(full.acceptance)
        return out
    out["method"] = ("bias = 2 (mean at step_size - mean at step_size/2), Richardson for an "
                     "O(step_size) bias; K steps at step_size, 2K at step_size/2, from the "
                     f"last checkpoint, first {DISCARD_FRACTION:.0%} of each dropped")
    table = {}
    for name in sorted(full.values):
        entry = {key: _listed(value)
                 for key, value in richardson_bias(full.values[name], half.values[name]).items()}
        run_mcse = (float(diagnostics.mcse_mean(chain_draw(ds[name])))
                    if name in ds and ds.sizes["draw"] >= 4 else math.nan)
        entry["run_mcse"] = run_mcse
        entry["resolved"] = bool(abs(entry["bias"]) > RESOLVED_IN_MCSE * entry["bias_mcse"])
        table[name] = entry
        if entry["resolved"] and abs(entry["bias"]) > run_mcse:
            out["warnings"].append(
                f"{name}: estimated step-size bias {entry['bias']:+.3g} ± "
                f"{entry['bias_mcse']:.2g} (step halving) exceeds the MCSE {run_mcse:.2g} of "
                "the run's posterior mean: the step size limits the accuracy; lower "
                "sampler.step_size or use sampler.integrator = 'mala'")
    out["observables"] = table
    if all(entry["bias_mcse"] > entry["run_mcse"] for entry in table.values()):
        out["note"] = ("the check's MCSE exceeds the run's for every observable: it cannot "
                       "resolve a bias of the size of the run's Monte Carlo error; raise "
                       "diagnostics.bias_check_steps for a sharper estimate")
    return out
