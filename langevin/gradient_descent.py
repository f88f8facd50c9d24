"""Zero-temperature run mode: full-batch gradient descent on U with an adaptive step
size (a discretization of gradient flow dθ/dt = −∇U), per chain, with a stopping rule.

U is whatever potential it is given (langevin.potential.make_potential: a likelihood's
loss L plus Σ_l (γ_l/2)|θ_l|², or L alone when the weight decays are zero). T = 0: no
noise, so the run is deterministic and the generator is never used.

Step of chain c, with per-layer base step sizes η_l (the preconditioner of
`per_layer_step_sizes`) and the chain's step multiplier s_c:

    θ'_c = θ_c − s_c η_l ∇_l U(θ_c)                     (proposal)
    accept iff U(θ'_c) ≤ U(θ_c):  θ_c ← θ'_c,  s_c ← min(s_c · growth, max_multiplier)
    else (the potential went up, or is not finite): θ_c unchanged, s_c ← s_c · shrink

(growth ≥ 1, 0 < shrink < 1, s_c starts at 1; defaults 1.1, 0.5 and 10⁶, the cap keeping
s_c finite on a flat stretch of U). This is the "gradient descent with
adaptive learning rate" that Geiger, Petrini & Wyart (Phys. Rep. 2021, Fig. 4; Geiger et al.
2020, arXiv:1906.08034) use to follow gradient flow over many decades of the output
scale: the step grows geometrically while the descent is smooth and is cut back when it
overshoots, so the trajectory stays close to the flow without a tuned learning rate.

Stopping rule, per chain: a chain stops (and is frozen: θ_c, s_c no longer change) when
its training loss L_c ≤ loss_tolerance (`reached` True), or when it has stalled: its step
multiplier fell below min_multiplier (default 10⁻¹⁰), i.e. no step along −∇U lowers U at
the working precision (`reached` False). With loss_tolerance = 0 and a hinge loss this is
the jamming criterion of Geiger, Petrini & Wyart: L_c = 0 exactly iff every margin y_μ f_μ ≥ 1 (no
unsatisfied constraint, N_Δ = 0). For the logistic loss, which never vanishes, a positive
tolerance states when training ends; so for the quadratic hinge, whose gradient flow
approaches the margins y f = 1 only exponentially (L → 0 without reaching it). The linear
hinge is not differentiable at the margins: a monotone descent can stall at a corner of L
(the negative gradient is not a descent direction there) before L = 0; such chains stop
as stalled, with their loss recorded. `finished(state)` is True when every chain has
stopped, and `langevin.run.run_chains` then ends the run; chains that never reach the
tolerance run to the end of the plan (the step budget).

State (`GradientDescentState`, all chains on the leading axis; checkpointed, so a resume
is bit-identical): θ, U, L, ∇U as in `LangevinState`, plus
    step_multiplier (C,)   s_c
    iterations      (C,)   steps taken while running (int64)
    stopped         (C,)   bool
    reached         (C,)   bool, L_c ≤ tolerance (False for a stalled or running chain)
    stop_step       (C,)   the iteration at which the chain stopped, −1 while running
The recorded observables `gradient_descent_observables` expose the last three.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import torch

from langevin.integrators import Integrator
from langevin.observables import Observable
from langevin.potential import PotentialFn

Tensor = torch.Tensor
Theta = dict[str, Tensor]


class GradientDescentState(NamedTuple):
    theta: Theta
    potential: Tensor  # (C,) U(θ)
    loss: Tensor  # (C,) L(θ)
    gradient: Theta  # per layer, ∇U(θ)
    step_multiplier: Tensor  # (C,) s_c
    iterations: Tensor  # (C,) int64, steps taken while running
    stopped: Tensor  # (C,) bool
    reached: Tensor  # (C,) bool, L_c ≤ tolerance
    stop_step: Tensor  # (C,) int64, −1 while running


def _per_chain(mask: Tensor, like: Tensor) -> Tensor:
    """(C,) → (C, 1, …, 1), broadcasting over the trailing dims of `like`."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def gradient_descent(potential_fn: PotentialFn, step_sizes: Mapping[str, float],
                     growth: float = 1.1, shrink: float = 0.5,
                     loss_tolerance: float = 0.0, max_multiplier: float = 1e6,
                     min_multiplier: float = 1e-10) -> Integrator:
    """Adaptive-step full-batch gradient descent on U (module docstring); T = 0."""
    for layer, eta in step_sizes.items():
        if not (math.isfinite(eta) and eta > 0):
            raise ValueError(f"step_sizes[{layer!r}] must be finite and positive, got {eta!r}")
    if not (math.isfinite(growth) and growth >= 1):
        raise ValueError(f"growth must be a finite number >= 1, got {growth!r}")
    if not (0 < shrink < 1):
        raise ValueError(f"shrink must be in (0, 1), got {shrink!r}")
    if not (math.isfinite(loss_tolerance) and loss_tolerance >= 0):
        raise ValueError(f"loss_tolerance must be finite and >= 0, got {loss_tolerance!r}")
    if not (math.isfinite(max_multiplier) and max_multiplier >= 1):
        raise ValueError(f"max_multiplier must be a finite number >= 1, got {max_multiplier!r}")
    if not (0 < min_multiplier < 1):
        raise ValueError(f"min_multiplier must be in (0, 1), got {min_multiplier!r}")
    sizes = {layer: float(eta) for layer, eta in step_sizes.items()}

    def init(theta: Theta) -> GradientDescentState:
        missing = set(sizes) - set(theta)
        if missing:
            raise ValueError(f"theta lacks layers {sorted(missing)} that have step sizes")
        value = potential_fn(theta)
        reached = value.loss <= loss_tolerance
        zeros = torch.zeros_like(value.loss, dtype=torch.int64)
        return GradientDescentState(
            theta, value.potential, value.loss, value.gradient,
            torch.ones_like(value.potential), zeros, reached, reached,
            torch.where(reached, zeros, zeros - 1))

    def step(state: GradientDescentState, generator: torch.Generator):
        del generator  # deterministic: T = 0
        running = ~state.stopped
        multiplier = state.step_multiplier
        proposal = {}
        for layer, eta in sizes.items():
            param = state.theta[layer]
            scale = _per_chain(multiplier, param).to(param.dtype) * eta
            proposal[layer] = param - scale * state.gradient[layer]  # θ' = θ − s_c η_l ∇U
        value = potential_fn(proposal)
        # A non-finite proposal is rejected like an uphill one (the step shrinks).
        accept = running & (value.potential <= state.potential)
        theta = {layer: torch.where(_per_chain(accept, p), p, state.theta[layer])
                 for layer, p in proposal.items()}
        gradient = {layer: torch.where(_per_chain(accept, g), g, state.gradient[layer])
                    for layer, g in value.gradient.items()}
        potential = torch.where(accept, value.potential, state.potential)
        loss = torch.where(accept, value.loss, state.loss)
        factor = torch.where(accept, torch.full_like(multiplier, growth),
                             torch.full_like(multiplier, shrink))
        multiplier = torch.where(running, torch.clamp(multiplier * factor, max=max_multiplier),
                                 multiplier)
        iterations = state.iterations + running.to(torch.int64)
        reached = running & (loss <= loss_tolerance)
        stops = reached | (running & (multiplier < min_multiplier))  # reached, or stalled
        stop_step = torch.where(stops, iterations, state.stop_step)
        new = GradientDescentState(theta, potential, loss, gradient, multiplier, iterations,
                                   state.stopped | stops, state.reached | reached, stop_step)
        return new, {"accepted": accept}

    def finished(state: GradientDescentState) -> bool:
        return bool(state.stopped.all())

    return Integrator("gradient_descent", init, step, sizes, 0.0, GradientDescentState,
                      finished=finished)


def gradient_descent_observables() -> Observable:
    """Per chain: the step multiplier s_c, whether the chain has stopped and whether it
    reached L_c ≤ tolerance (as 0/1), and its stop step (−1 while running). Shapes (C,)."""
    def fn(state: GradientDescentState) -> dict[str, Tensor]:
        return {"gd_step_multiplier": state.step_multiplier,
                "gd_stopped": state.stopped.to(state.potential.dtype),
                "gd_reached_tolerance": state.reached.to(state.potential.dtype),
                "gd_stop_step": state.stop_step.to(state.potential.dtype)}

    names = ("gd_step_multiplier", "gd_stopped", "gd_reached_tolerance", "gd_stop_step")
    return Observable(fn, {name: () for name in names}, None)
