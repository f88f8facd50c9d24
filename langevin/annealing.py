"""Annealed temperature: any integrator of `langevin.schemes.INTEGRATORS` run with a
temperature that follows a schedule T(k) of the step count k.

Geometric schedule from T_0 (the run's temperature) to T_1 over K steps:

    T(k) = T_0 (T_1/T_0)^{min(k, K)/K},   k = 0, 1, …   (T(0) = T_0, T(k ≥ K) = T_1),

where step k + 1 is taken at T(k). The potential U is unchanged: only the temperature of
the target exp(−U/T) moves (prior variance T/γ_l and, for the Gaussian likelihood, noise
variance T move together; docs/conventions.md). Each step rebuilds the scheme's factory
at T(k) through its ordinary float temperature argument (a factory only validates and
captures its hyperparameters, so this costs no potential evaluation), then takes one
step of the scheme's own state. With T_1 → 0 at fixed γ_l the chains cool toward minima
of U (simulated annealing); draws recorded while T moves are not from one posterior.

The state is the scheme's state plus `anneal_step` (a 0-d int64 tensor, the k of the next
step), a NamedTuple built per scheme state type (`annealed_state_type`), so it is
checkpointed with the rest of the state and a resume continues the schedule bit-
identically.
"""
from __future__ import annotations

import math
from collections import namedtuple
from functools import lru_cache
from typing import Callable, Mapping

import torch

from langevin.integrators import Integrator
from langevin.potential import PotentialFn

Tensor = torch.Tensor


def geometric_schedule(initial: float, final: float, steps: int) -> Callable[[int], float]:
    """k ↦ T(k) = T_0 (T_1/T_0)^{min(k, K)/K} (module docstring); T_0, T_1 > 0, K ≥ 1."""
    for name, value in (("initial", initial), ("final", final)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} temperature must be finite and positive, got {value!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    log_ratio = math.log(final / initial)

    def temperature(k: int) -> float:
        if k >= steps:
            return float(final)
        return float(initial * math.exp(log_ratio * max(k, 0) / steps))

    return temperature


@lru_cache(maxsize=None)
def annealed_state_type(state_type: type) -> type:
    """The NamedTuple of `state_type`'s fields plus `anneal_step` (one class per type, so a
    checkpoint restores as annealed_state_type(state_type)(**fields))."""
    return namedtuple(f"Annealed{state_type.__name__}", (*state_type._fields, "anneal_step"))


def annealed(factory: Callable[..., Integrator], potential_fn: PotentialFn,
             step_sizes: Mapping[str, float], schedule: Callable[[int], float],
             **options) -> Integrator:
    """`factory(potential_fn, step_sizes, T(k), **options)` stepped at T(k) at step k."""
    first = factory(potential_fn, step_sizes, schedule(0), **options)
    inner_type = first.state_type
    state_type = annealed_state_type(inner_type)
    num_fields = len(inner_type._fields)

    def init(theta):
        inner = first.init(theta)
        counter = torch.zeros((), dtype=torch.int64, device=inner.potential.device)
        return state_type(*inner, counter)

    def step(state, generator: torch.Generator):
        k = int(state.anneal_step)
        integrator = factory(potential_fn, step_sizes, schedule(k), **options)
        inner, info = integrator.step(inner_type(*state[:num_fields]), generator)
        return state_type(*inner, state.anneal_step + 1), info

    return Integrator(f"annealed_{first.name}", init, step, first.step_sizes,
                      first.temperature, state_type)
