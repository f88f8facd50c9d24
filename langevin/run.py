"""The sampling loop: the only loop and the only I/O of the sampler.

Phases: `burn_in` steps (nothing recorded), then `num_steps` sampling steps. Sampling
step k = 1..num_steps records every observable whose cadence divides k (its `every`, or
`thin`). Recorded values are buffered on the device in preallocated tensors (no
`torch.cat` in the loop) and, every `checkpoint_every` steps, appended to the store,
after which a checkpoint (state, generator state, step, draw counts, config hash) is
written atomically. A run killed at any point resumes from its last checkpoint and
stores exactly the draws of an uninterrupted run: the store is cut back to the
checkpoint's draw counts and the generator continues from its saved state.

A scheme with `integrator.finished` (T = 0 gradient descent) ends the run at the first
step after which `finished(state)` is True: that step is recorded in every cadence group
(even off its cadence), flushed and checkpointed, and the run returns "completed" with
its `step` below `plan.total_steps`; a resume from that checkpoint ends at once.

Commit order of a flush: (1) every buffered value is checked to be finite (nothing is
written otherwise), (2) each group's arrays are appended (`SampleStore.append`), (3)
the checkpoint is written atomically — the commit point: draws appended after the
last checkpoint are cut at the next start (`SampleStore.truncate`). A buffer holds at
most min(checkpoint_every, num_steps) // cadence + 1 draws of every group.

An observable with an `initial` function (langevin.observables.Observable) has it
evaluated once on the initial state of a fresh run; its values are saved in every
checkpoint and restored on resume, so e.g. the NTK's change from initialization resumes
bitwise.

`fault_hook(point)`, if given, is called at every point of that sequence ("flush",
"create:<group>", "append:<group>:<variable>", "checkpoint", "checkpoint:replace",
"committed", and "truncate:<group>:<variable>" at start): a test seam to stop the
process between any two writes.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

import numpy as np
import torch

from langevin.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, state_to_device
from langevin.integrators import Integrator, LangevinState
from langevin.observables import Observable, check_unique_names, evaluate
from langevin.store import SampleStore, group_name


class RunPlan(NamedTuple):
    burn_in: int  # steps before recording starts
    num_steps: int  # sampling steps after burn-in
    thin: int  # default cadence of observables, in steps
    checkpoint_every: int  # steps between flushes + checkpoints

    @property
    def total_steps(self) -> int:
        return self.burn_in + self.num_steps


class RunResult(NamedTuple):
    state: LangevinState
    step: int
    status: str  # "completed" or "interrupted"
    seconds: float
    chain_steps_per_second: float


class NonFiniteError(FloatingPointError):
    """The sampler produced NaN or ±inf; nothing after the last good checkpoint is kept."""


def validate_plan(plan: RunPlan) -> None:
    for key in ("burn_in", "num_steps", "thin", "checkpoint_every"):
        value = getattr(plan, key)
        minimum = 0 if key == "burn_in" else 1
        if not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")


class _GroupBuffer:
    """Device-side buffer of one cadence group between two flushes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.values: dict[str, torch.Tensor] = {}
        self.steps: list[int] = []

    def put(self, step: int, values: Mapping[str, torch.Tensor]) -> None:
        slot = len(self.steps)
        for name, value in values.items():
            if name not in self.values:
                self.values[name] = torch.empty(
                    (self.capacity, *value.shape), dtype=value.dtype, device=value.device
                )
            self.values[name][slot] = value.detach()
        self.steps.append(step)

    def drain(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        count = len(self.steps)
        arrays = {
            # (draw, chain, ...) -> (chain, draw, ...)
            name: buf[:count].transpose(0, 1).cpu().numpy()
            for name, buf in self.values.items()
        }
        steps = np.asarray(self.steps, dtype=np.int64)
        self.steps = []
        return arrays, steps


def buffer_capacity(plan: RunPlan, every: int) -> int:
    """Draws of a cadence-`every` group between two flushes, at most."""
    return min(plan.checkpoint_every, plan.num_steps) // every + 1


def _kept_text(last_checkpoint_step: int | None) -> str:
    if last_checkpoint_step is None:
        return "No checkpoint was written before the divergence, so nothing is kept."
    return (f"The last good checkpoint (step {last_checkpoint_step}) is kept: after changing "
            "the step size start a new run; a resume would need the same configuration.")


def _hyperparameter_text(value) -> str:
    """A float as 3 significant digits; a per-chain (C,) tensor as its range."""
    if isinstance(value, torch.Tensor):
        return f"per chain {float(value.min()):.3g}..{float(value.max()):.3g}"
    return f"{value:.3g}"


def _non_finite_report(state: LangevinState, integrator: Integrator, first: int, last: int,
                       last_checkpoint_step: int | None = None) -> str:
    bad_chains = (~torch.isfinite(state.potential)).nonzero().flatten().tolist()
    layers = [
        layer for layer, param in state.theta.items() if not bool(torch.isfinite(param).all())
    ]
    layers = layers or [
        layer for layer, grad in state.gradient.items() if not bool(torch.isfinite(grad).all())
    ]
    if len(layers) == len(state.theta) and len(layers) > 1:
        where = (f"every layer {layers} (NaN had spread through the network by the time it "
                 "was detected, so the layer it started in is unknown)")
    else:
        where = f"{layers or 'none (the potential overflowed)'}"
    # When only U overflowed, the layer that ran away is the one with the largest weights.
    largest = {layer: float(param.abs().max()) for layer, param in state.theta.items()}
    sizes = ", ".join(f"{layer!r}: {_hyperparameter_text(eta)}"
                      for layer, eta in integrator.step_sizes.items())
    magnitudes = ", ".join(f"{layer!r}: {value:.3g}" for layer, value in largest.items())
    return (
        f"non-finite potential (NaN or overflow) between steps {first} and {last} in chains "
        f"{bad_chains[:10]}{'...' if len(bad_chains) > 10 else ''}; non-finite layer(s): "
        f"{where}; largest |θ| per layer {{{magnitudes}}}; "
        f"per-layer step sizes {{{sizes}}}, temperature "
        f"{_hyperparameter_text(integrator.temperature)}. The step "
        "size is too large for this posterior: lower sampler.step_size. "
        + _kept_text(last_checkpoint_step)
    )


def initial_constants(observables: Mapping[str, Observable],
                      state) -> dict[str, dict[str, torch.Tensor]]:
    """`obs.initial(state)` of every observable that has one, at the initial state."""
    return {name: {key: value.detach().clone() for key, value in obs.initial(state).items()}
            for name, obs in observables.items() if obs.initial is not None}


def _restored_constants(observables: Mapping[str, Observable], checkpoint: Checkpoint,
                        checkpoint_dir, device) -> dict[str, dict[str, torch.Tensor]]:
    stored = checkpoint.observable_constants or {}
    missing = sorted(name for name, obs in observables.items()
                     if obs.initial is not None and name not in stored)
    if missing:
        raise ValueError(f"checkpoint in {checkpoint_dir} lacks the initial-state values of "
                         f"observables {missing}; refusing to resume")
    return {name: state_to_device(stored[name], device) for name, obs in observables.items()
            if obs.initial is not None}


def run_chains(
    *,
    integrator: Integrator,
    initial_theta: Mapping[str, torch.Tensor],
    generator: torch.Generator,
    observables: Mapping[str, Observable],
    plan: RunPlan,
    store: SampleStore,
    checkpoint_dir: str | Path,
    config_hash: str,
    stop_requested: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
    fault_hook: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) the chains to `plan.total_steps`, streaming draws to `store`.

    If `checkpoint_dir` holds a checkpoint with the same `config_hash`, the run resumes
    from it (bit-identically on the same device); `initial_theta` is then ignored.
    `stop_requested()` is polled every step; when it returns True the run flushes,
    checkpoints and returns with status "interrupted". `progress(step, total)` is called
    every few steps. `fault_hook(point)`: see the module docstring (None in normal use).
    """
    validate_plan(plan)
    check_unique_names(observables)
    device = next(iter(initial_theta.values())).device

    checkpoint = load_checkpoint(checkpoint_dir)
    groups = {group_name(obs.every or plan.thin, plan.thin) for obs in observables.values()}
    if checkpoint is None:
        state = integrator.init(dict(initial_theta))
        step = 0
        draw_counts = {g: 0 for g in groups}
        store.truncate(draw_counts, hook=fault_hook)
        last_checkpoint_step = None
        constants = initial_constants(observables, state)
    else:
        if checkpoint.config_hash != config_hash:
            raise ValueError(
                f"checkpoint in {checkpoint_dir} was written by a different configuration "
                f"(hash {checkpoint.config_hash} != {config_hash}); refusing to resume"
            )
        state = integrator.state_type(**state_to_device(checkpoint.state, device))
        generator.set_state(checkpoint.generator_state)
        step = checkpoint.step
        draw_counts = {g: int(checkpoint.draws.get(g, 0)) for g in groups}
        store.truncate(draw_counts, hook=fault_hook)
        last_checkpoint_step = step
        constants = _restored_constants(observables, checkpoint, checkpoint_dir, device)

    buffers = {
        g: _GroupBuffer(capacity=buffer_capacity(plan, min(
            obs.every or plan.thin for obs in observables.values()
            if group_name(obs.every or plan.thin, plan.thin) == g)))
        for g in groups
    }
    dims = {g: {} for g in groups}
    for obs in observables.values():
        dims[group_name(obs.every or plan.thin, plan.thin)].update(obs.dims)

    def hook(point: str) -> None:
        if fault_hook is not None:
            fault_hook(point)

    def flush_and_checkpoint(at_step: int, since_step: int) -> None:
        nonlocal last_checkpoint_step
        if not bool(torch.isfinite(state.potential).all()):
            raise NonFiniteError(_non_finite_report(state, integrator, since_step, at_step,
                                                    last_checkpoint_step))
        drained = {g: buf.drain() for g, buf in buffers.items()}
        for g, (arrays, _steps) in drained.items():  # (1) nothing is written if any is bad
            for name, values in arrays.items():
                if not np.isfinite(values).all():
                    raise NonFiniteError(
                        f"observable {name!r} is non-finite between steps {since_step} and "
                        f"{at_step} while the potential is finite (test inputs or a teacher "
                        f"direction too large for sampler.dtype?). "
                        f"{_kept_text(last_checkpoint_step)}")
        hook("flush")
        counts = dict(draw_counts)
        for g, (arrays, steps) in drained.items():  # (2) append
            store.append(g, arrays, steps, dims[g], hook=fault_hook)
            counts[g] += len(steps)
        hook("checkpoint")  # (3) commit
        save_checkpoint(
            checkpoint_dir,
            Checkpoint(state._asdict(), generator.get_state(), at_step, counts, config_hash,
                       constants),
            hook=fault_hook,
        )
        draw_counts.update(counts)
        last_checkpoint_step = at_step
        hook("committed")

    start_step, start_time = step, time.perf_counter()
    last_flush = step
    status = "completed"
    progress_every = max(1, min(100, plan.total_steps // 200))
    finished = integrator.finished
    while step < plan.total_steps:
        if finished is not None and finished(state):
            break  # resumed from the checkpoint of a run that had already ended
        state, _info = integrator.step(state, generator)
        step += 1
        sample_index = step - plan.burn_in  # 1-based index of the sampling step
        done = finished is not None and finished(state)
        if sample_index > 0:
            recorded: dict[str, dict[str, torch.Tensor]] = {}
            for obs_name, obs in observables.items():
                every = obs.every or plan.thin
                # The step at which every chain has stopped is recorded in every group.
                if sample_index % every == 0 or done:
                    recorded.setdefault(group_name(every, plan.thin), {}).update(
                        evaluate(obs, state, constants.get(obs_name)))
            for g, values in recorded.items():
                buffers[g].put(sample_index, values)
        stop = stop_requested()
        if step % plan.checkpoint_every == 0 or step == plan.total_steps or stop or done:
            flush_and_checkpoint(step, last_flush)
            last_flush = step
        elif step % 100 == 0 and not bool(torch.isfinite(state.potential).all()):
            raise NonFiniteError(_non_finite_report(state, integrator, last_flush, step,
                                                    last_checkpoint_step))
        if progress is not None and (step % progress_every == 0 or step == plan.total_steps):
            progress(step, plan.total_steps)
        if stop and not done:
            status = "interrupted"
            break
        if done:
            break
    seconds = time.perf_counter() - start_time
    num_chains = state.potential.shape[0]
    rate = (step - start_step) * num_chains / seconds if seconds > 0 else math.nan
    return RunResult(state, step, status, seconds, rate)
