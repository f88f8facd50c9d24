"""`torch.compile` of a whole integrator step, and the measured choice between the
compiled and the eager step.

A step of every base scheme is split (`langevin.integrators.Integrator`) into

    step(state, g) = advance(state, draw(state, g), coefficients(state.theta)):

`draw` takes every random number of the step from the explicit generator, eagerly and in
the scheme's stream order; `advance` is a pure function of tensors (state, draws,
hyperparameter tensors), and it is what is compiled: the potential, its analytic
gradient, the update and (MALA) the accept/reject become one graph. So

- the compiled chain consumes exactly the random numbers of the eager chain; it differs
  from it only by the rounding of the fused kernels (the same chain to float tolerance,
  tested), not bitwise;
- the hyperparameters are graph inputs, not constants: a new temperature or step size
  (the step-halving check, per-chain values) reuses the compiled graph (tested with a
  compile counter);
- a resumed compiled run is bitwise identical to an uninterrupted compiled run on the
  same machine (same kernels, same draws; tested on CPU).

`mode` is passed to torch.compile ("reduce-overhead" records CUDA graphs on a GPU; not run
on a GPU by this code's tests). Composite schemes (replica exchange) have no split and are
refused.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from langevin.integrators import Integrator

COMPILE_SETTINGS = ("off", "on", "auto")


def compile_unavailable_reason() -> str | None:
    """None when torch.compile can be used in this build, else why not."""
    try:
        import torch._dynamo  # noqa: F401
    except Exception as err:  # an unusual build: report it
        return f"torch._dynamo cannot be imported ({type(err).__name__}: {err})"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile is not supported on this Python/torch build"
    return None


def compile_step(integrator: Integrator, mode: str | None = None,
                 backend: str = "inductor") -> Integrator:
    """The integrator with its `advance` compiled (module docstring); `init`, the draws
    and the state type are unchanged, so checkpoints are interchangeable."""
    if integrator.advance is None or integrator.draw is None or integrator.coefficients is None:
        raise ValueError(f"integrator {integrator.name!r} has no draw/advance split and "
                         "cannot be compiled (sampler.compile = 'off')")
    reason = compile_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"sampler.compile: {reason}")
    advance = torch.compile(integrator.advance, mode=mode, backend=backend, dynamic=False)
    draw, coefficients = integrator.draw, integrator.coefficients

    def step(state, generator: torch.Generator):
        return advance(state, draw(state, generator), coefficients(state.theta))

    return integrator._replace(name=f"{integrator.name}[compiled]", step=step)


def _rate(step: Callable, state, generator: torch.Generator, steps: int, sync) -> float:
    state, _ = step(state, generator)  # warm-up (and, compiled, the compilation)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        state, _ = step(state, generator)
    sync()
    return steps / (time.perf_counter() - start)


def faster_step(eager: Integrator, compiled: Integrator, state, steps: int = 20,
                seed: int = 0) -> tuple[Integrator, dict]:
    """Time `steps` steps of each from `state` (not mutated) with a throwaway generator
    (the run's stream is untouched) and return the faster integrator with
    {"eager_steps_per_second", "compiled_steps_per_second", "chosen"}."""
    device = state.potential.device

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rates = {}
    for name, integrator in (("eager", eager), ("compiled", compiled)):
        generator = torch.Generator(device=device).manual_seed(seed)
        rates[name] = _rate(integrator.step, state, generator, steps, sync)
    chosen = "compiled" if rates["compiled"] > rates["eager"] else "eager"
    return (compiled if chosen == "compiled" else eager), {
        "eager_steps_per_second": rates["eager"],
        "compiled_steps_per_second": rates["compiled"], "chosen": chosen}
