"""Underdamped Langevin dynamics integrated by BAOAB splitting (Leimkuhler–Matthews).

Dynamics (per coordinate of layer l, unit mass, in the layer's own time t_l):

    dθ = p dt_l,   dp = −∇_l U dt_l − ζ p dt_l + √(2ζT) dW,

with ζ the friction (`friction`; Leimkuhler–Matthews call it γ, renamed here because
γ_l is the weight decay of layer l in this project). The stationary law is
∝ exp(−U(θ)/T − |p|²/(2T)): the θ-marginal is the posterior exp(−U/T) of the
project's convention (docs/conventions.md), the momenta are N(0, T).

One step of size h (B: kick, A: drift, O: exact Ornstein–Uhlenbeck on p):

    B   p ← p − (h/2) ∇U(θ_n)                      # p_{n+1/4}
    A   θ ← θ + (h/2) p                            # θ_{n+1/2}
    O   p ← c p + √((1 − c²) T) ξ_n,  c = e^{−ζh}  # p_{n+3/4}, ξ_n ~ N(0, I)
    A   θ ← θ + (h/2) p                            # θ_{n+1}
    B   p ← p − (h/2) ∇U(θ_{n+1})                  # p_{n+1}

One evaluation of ∇U per step: the gradient at θ_{n+1} is cached in the state and
reused by the first B of the next step.

What the per-layer step sizes η_l mean here (the convention of this module): layer l
takes the time step

    h_l = √(2 η_l),   c_l = exp(−ζ h_l).

Why √(2η): as ζ → ∞ (c → 0) BAOAB becomes the Leimkuhler–Matthews scheme
θ_{n+1} = θ_n − (h²/2) ∇U(θ_n) + (h/2)√T (ξ_n + ξ_{n+1}); with h² = 2η its drift is
exactly the Euler–Maruyama drift −η∇U and its noise has the same long-time
diffusivity 2ηT per step. So one `step_size` means the same thing for every scheme of
the project in the overdamped limit, and the stability bound of the harmonic
oscillator, h²k < 4, reads ηk < 2 as for ULA. (Rejected: h_l = √η_l, whose
overdamped limit is ULA at step η/2.)

Equivalently, in time measured in steps: a mass matrix M = diag(1/(2η_l)) and a
diagonal friction Γ_l = ζ h_l, i.e. dθ = M⁻¹p dt, dp = −∇U dt − Γp dt + √(2TΓM) dW
(the state stores the unit-mass momenta p_l/√m_l). Any positive diagonal M and Γ keep
exp(−U/T) stationary, so per-layer step sizes are a preconditioner, not a change of
target. The friction ζ is in units of 1/t_l: with the "prior" preconditioner
(η_l = step_size/γ_l) every layer has the same dimensionless ω_l h_l = √(2·step_size)
under the prior alone (ω_l = √γ_l), but ζ h_l differs between layers; ζ = 2ω is
critical damping of a mode of frequency ω.

Accuracy (Leimkuhler & Matthews 2013a, 2013b): configurational averages have an
O(h²) = O(η) error in general (like ULA in η), with a small constant, and they are
EXACT for any Gaussian target U = ½(θ−μ)ᵀA(θ−μ) with any diagonal per-layer h_l and
any friction, as long as every mode is stable (A⁻¹ − M⁻¹/4 positive definite, i.e.
η k < 2 for a scalar mode of curvature k). Proof for the scalar case U = ½kθ²: let
θ ~ N(0, T/k), p ~ N(0, T(1 − h²k/4)) independent at the start of a step. After
B: Var p = T, Cov(θ, p) = −hT/2; after A: Var θ = (T/k)(1 − h²k/4), Cov(θ, p) = 0.
O maps N(0, T) momenta independent of θ to the same law; the last A and B are the
mirror image of the first two and restore Var θ = T/k, Var p = T(1 − h²k/4),
Cov = 0. That law is therefore stationary (and unique when c < 1 and h²k < 4). The
same computation with matrices (A for k, M for the unit mass) gives θ ~ N(μ, T A⁻¹)
exactly. So at step boundaries:  Var θ = T/k  and  Var p = T(1 − ηk/2)  (h² = 2η).

Momenta start at zero (`init` takes no generator); the O step thermalizes them within
a few 1/(1 − c²) steps, well inside any burn-in.

References:
    B. Leimkuhler, C. Matthews, "Rational construction of stochastic numerical methods
    for molecular sampling", Appl. Math. Res. Express 2013(1), 34–56 (2013a): BAOAB and
    its configurational accuracy.
    B. Leimkuhler, C. Matthews, "Robust and efficient configurational molecular sampling
    via Langevin dynamics", J. Chem. Phys. 138, 174102 (2013b): the harmonic exactness
    and the ζ → ∞ (overdamped) limit scheme.
    B. Leimkuhler, C. Matthews, "Molecular Dynamics", Springer (2015), ch. 7.
"""
from __future__ import annotations

import math
from typing import Mapping, NamedTuple

import torch

from langevin.integrators import (
    Coefficients, Integrator, _check_hyperparameters, as_step_sizes, as_temperature,
    chain_tensor, noise_scale)
from langevin.noise import NormalDraws
from langevin.potential import PotentialFn
from langevin.types import Tensor, Theta


class UnderdampedState(NamedTuple):
    """Position, unit-mass momenta and the potential at θ (cached: one ∇U per step)."""

    theta: Theta
    momentum: Theta  # per layer, unit-mass p_n (after the closing half kick B)
    potential: Tensor  # (C,) U(θ)
    loss: Tensor  # (C,) ½ Σ (f − y)²
    gradient: Theta  # per layer, ∇U(θ)


def baoab_time_steps(step_sizes: Mapping[str, float | Tensor]) -> dict[str, float | Tensor]:
    """h_l = √(2 η_l): the BAOAB time step of each layer (see the module docstring); a
    (C,) tensor of per-chain step sizes gives a (C,) float64 tensor."""
    return {layer: (torch.sqrt(2.0 * eta.to(torch.float64)) if isinstance(eta, Tensor)
                    else math.sqrt(2.0 * float(eta)))
            for layer, eta in step_sizes.items()}


def baoab(
    potential_fn: PotentialFn,
    step_sizes: Mapping[str, float | Tensor],
    temperature: float | Tensor,
    friction: float = 1.0,
) -> Integrator:
    """BAOAB integrator of underdamped Langevin dynamics with per-layer time steps
    h_l = √(2η_l) and friction ζ (`friction`, in units of 1/t_l; math.inf gives the
    Leimkuhler–Matthews overdamped limit c = 0).

    Targets exp(−U/T) in θ with an O(η) error (exact for Gaussian targets); see the
    module docstring for the equations, the convention and the references.
    Noise is drawn layer by layer in `step_sizes` order from `generator`, one N(0, 1)
    per coordinate and chain. Info: {} (nothing beyond the state).
    `temperature`: a float or a (C,) tensor of per-chain T_c (O-step noise √((1 − c²)T_c));
    `step_sizes[l]`: a float or a (C,) tensor of per-chain η_{l,c}. The step reads h_l/2,
    c_l and √((1 − c_l²)T) as (C, 1, …) tensors (`Integrator.coefficients`).
    """
    _check_hyperparameters(step_sizes, temperature)
    if not (friction > 0):  # also rejects NaN; +inf is the overdamped limit
        raise ValueError(f"friction must be positive (math.inf allowed), got {friction!r}")
    sizes = as_step_sizes(step_sizes)
    half_steps = {layer: 0.5 * h for layer, h in baoab_time_steps(sizes).items()}
    # c_l = e^{−ζ h_l}: the exact OU decay of the momentum over one time step.
    decays = {layer: (torch.exp(-friction * 2.0 * half) if isinstance(half, Tensor)
                      else math.exp(-friction * 2.0 * half))
              for layer, half in half_steps.items()}
    temperature = as_temperature(temperature)
    draws = NormalDraws(sizes)

    def evaluate(theta: Theta, momentum: Theta) -> UnderdampedState:
        value = potential_fn(theta)
        return UnderdampedState(theta, momentum, value.potential, value.loss, value.gradient)

    def init(theta: Theta) -> UnderdampedState:
        missing = set(sizes) - set(theta)
        if missing:
            raise ValueError(f"theta lacks layers {sorted(missing)} that have step sizes")
        return evaluate(theta, {layer: torch.zeros_like(theta[layer]) for layer in sizes})

    def build(theta: Theta) -> dict:
        out = {}
        for layer, half in half_steps.items():
            param, decay = theta[layer], decays[layer]
            out[layer] = {"half_step": chain_tensor(half, param),
                          "decay": chain_tensor(decay, param),
                          "scale": chain_tensor(noise_scale(1.0 - decay * decay, temperature,
                                                            param), param)}
        return out

    coefficients = Coefficients(build)

    def draw(state: UnderdampedState, generator: torch.Generator) -> dict:
        # ξ_n of every layer: the stream of one randn per layer in this order.
        return {"noise": draws.draw(state.theta, generator)}

    def advance(state: UnderdampedState, randoms: dict, coefs: dict):
        theta_next, momentum_before_kick = {}, {}
        for layer, c in coefs.items():
            half = c["half_step"]
            # B: p_{n+1/4} = p_n − (h/2) ∇U(θ_n)
            momentum = state.momentum[layer] - half * state.gradient[layer]
            # A: θ_{n+1/2} = θ_n + (h/2) p_{n+1/4}
            position = state.theta[layer] + half * momentum
            # O: p_{n+3/4} = c p_{n+1/4} + √((1 − c²) T) ξ_n
            momentum = c["decay"] * momentum + c["scale"] * randoms["noise"][layer]
            # A: θ_{n+1} = θ_{n+1/2} + (h/2) p_{n+3/4}
            theta_next[layer] = position + half * momentum
            momentum_before_kick[layer] = momentum
        value = potential_fn(theta_next)
        # B: p_{n+1} = p_{n+3/4} − (h/2) ∇U(θ_{n+1})
        momentum_new = {layer: momentum_before_kick[layer] - c["half_step"] * value.gradient[layer]
                        for layer, c in coefs.items()}
        new_state = UnderdampedState(
            theta_next, momentum_new, value.potential, value.loss, value.gradient
        )
        return new_state, {}

    def step(state: UnderdampedState, generator: torch.Generator):
        return advance(state, draw(state, generator), coefficients(state.theta))

    return Integrator("baoab", init, step, sizes, temperature, UnderdampedState, draw=draw,
                      advance=advance, coefficients=coefficients)
