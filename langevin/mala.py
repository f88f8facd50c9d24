"""Metropolis-adjusted Langevin algorithm (MALA): an Euler–Maruyama proposal corrected
by a per-chain Metropolis–Hastings accept/reject step, so the chain's stationary law is
exactly exp(−U/T) at any step size (no O(η) bias; a large step only lowers the
acceptance rate).

Proposal (per layer l, preconditioned by the per-layer step sizes η_l, as ULA):

    θ'_l = θ_l − η_l ∇_l U(θ) + √(2 η_l T) ξ_l,      ξ ~ N(0, I),
    log q(θ' | θ) = −Σ_l |θ'_l − θ_l + η_l ∇_l U(θ)|² / (4 η_l T)  + const.

Acceptance (Metropolis–Hastings with target π ∝ exp(−U/T)):

    log α = −(U(θ') − U(θ))/T + log q(θ | θ') − log q(θ' | θ),
    accept iff log u < log α,  u ~ Uniform(0, 1), independently per chain.

The forward term is −|ξ|²/2 exactly (computed from the noise, not by subtraction).
A proposal with a non-finite U(θ') is rejected (α = 0), so a MALA chain never
diverges. Chains are independent: the accept/reject is vectorized with torch.where
over the chain axis. Each step costs one U and ∇U evaluation (at the proposal); the
values at the current point are cached in the state.

Convention: the same U, T and per-layer η_l as `langevin.integrators.euler_maruyama`
(a constant diagonal preconditioner keeps the target; here it also sets the proposal
covariance 2η_l T per coordinate of layer l). For a Gaussian target the accepted chain
is exact; for d ≫ 1 the step must shrink like d^{−1/3} to keep the acceptance (optimal
≈ 0.574, Roberts & Rosenthal 1998).

References: G. O. Roberts, R. L. Tweedie, "Exponential convergence of Langevin
distributions and their discrete approximations", Bernoulli 2(4), 341–363 (1996),
(MALA); G. O. Roberts, J. S. Rosenthal, "Optimal scaling of discrete
approximations to Langevin diffusions", J. R. Stat. Soc. B 60(1), 255–268 (1998).
"""
from __future__ import annotations

import math
from typing import Mapping

import torch

from langevin.integrators import (
    Coefficients, Integrator, LangevinState, _check_hyperparameters, as_step_sizes,
    as_temperature, chain_tensor, langevin_update, noise_scale)
from langevin.noise import NormalDraws
from langevin.potential import PotentialFn
from langevin.types import Tensor, Theta


def _per_chain_sum(x: Tensor) -> Tensor:
    return x.sum(tuple(range(1, x.ndim)))


def _select(accept: Tensor, proposed: Tensor, current: Tensor) -> Tensor:
    """Per chain: `proposed` where accepted, else `current` (accept has shape (C,))."""
    mask = accept.reshape(accept.shape + (1,) * (proposed.ndim - 1))
    return torch.where(mask, proposed, current)


def mala(
    potential_fn: PotentialFn, step_sizes: Mapping[str, float | Tensor],
    temperature: float | Tensor
) -> Integrator:
    """MALA with per-layer step sizes η_l at temperature T (module docstring).

    State: `langevin.integrators.LangevinState` (θ with U, L, ∇U cached there).
    Info per step: "acceptance_probability" (C,) = min(1, α) and "accepted" (C,) bool.
    Random numbers per step, in this order from `generator`: the proposal noise layer
    by layer in `step_sizes` order, then one Uniform(0, 1) per chain (both drawn before
    any arithmetic, by `Integrator.draw`).
    `temperature`: a float or a (C,) tensor of per-chain T_c; `step_sizes[l]`: a float or
    a (C,) tensor of per-chain η_{l,c}. The step reads them as tensors
    (`Integrator.coefficients`): per layer η_l, √(2η_l T) (C, 1, …) and 4η_l T (C,), and
    T (C,); float hyperparameters give the floats of the float expressions.
    """
    _check_hyperparameters(step_sizes, temperature)
    sizes = as_step_sizes(step_sizes)
    temperature = as_temperature(temperature)
    draws = NormalDraws(sizes)
    # Per-chain T (or η) keep the acceptance arithmetic (and its uniforms) in float64, as
    # it always was for a (C,) float64 temperature; floats are rounded to the state dtype.
    per_chain = isinstance(temperature, Tensor) or any(
        isinstance(eta, Tensor) for eta in sizes.values())

    def init(theta: Theta) -> LangevinState:
        missing = set(sizes) - set(theta)
        if missing:
            raise ValueError(f"theta lacks layers {sorted(missing)} that have step sizes")
        value = potential_fn(theta)
        return LangevinState(theta, value.potential, value.loss, value.gradient)

    def build(theta: Theta) -> dict:
        like = theta[next(iter(sizes))]
        chain_dtype = torch.float64 if per_chain else like.dtype
        layers = {}
        for layer, eta in sizes.items():
            param = theta[layer]
            layers[layer] = {
                "step_size": chain_tensor(eta, param),
                "scale": chain_tensor(noise_scale(2.0 * eta, temperature, param), param),
                "four_step_temperature": chain_tensor(4.0 * eta * temperature, param, 1,
                                                      chain_dtype)}
        return {"layers": layers, "temperature": chain_tensor(temperature, like, 1, chain_dtype)}

    coefficients = Coefficients(build)

    def draw(state: LangevinState, generator: torch.Generator) -> dict:
        noise = draws.draw(state.theta, generator)
        uniform = torch.rand(state.potential.shape, generator=generator,
                             dtype=torch.float64 if per_chain else state.potential.dtype,
                             device=state.potential.device)
        return {"noise": noise, "uniform": uniform}

    def advance(state: LangevinState, randoms: dict, coefs: dict):
        proposal: Theta = {}
        log_forward = torch.zeros_like(state.potential)  # log q(θ'|θ) = −|ξ|²/2
        noise = randoms["noise"]
        for layer, c in coefs["layers"].items():
            log_forward = log_forward - 0.5 * _per_chain_sum(noise[layer] * noise[layer])
            # θ' = θ − η ∇U(θ) + √(2ηT) ξ
            proposal[layer] = langevin_update(state.theta[layer], state.gradient[layer],
                                              c["step_size"], c["scale"], noise[layer])
        value = potential_fn(proposal)
        log_backward = torch.zeros_like(state.potential)  # log q(θ|θ')
        for layer, c in coefs["layers"].items():
            # θ − θ' + η ∇U(θ'): the reverse move's noise times √(2ηT)
            residual = state.theta[layer] - proposal[layer] + c["step_size"] * value.gradient[layer]
            log_backward = log_backward - _per_chain_sum(residual * residual) / c[
                "four_step_temperature"]
        log_alpha = (-(value.potential - state.potential) / coefs["temperature"] + log_backward
                     - log_forward)
        # NaN/inf proposals (overflow) are rejected: α = 0.
        log_alpha = torch.where(
            torch.isfinite(log_alpha), log_alpha, torch.full_like(log_alpha, -math.inf)
        )
        accept = torch.log(randoms["uniform"]) < log_alpha
        new_state = LangevinState(
            theta={layer: _select(accept, proposal[layer], state.theta[layer])
                   for layer in proposal},
            potential=_select(accept, value.potential, state.potential),
            loss=_select(accept, value.loss, state.loss),
            gradient={layer: _select(accept, value.gradient[layer], state.gradient[layer])
                      for layer in proposal},
        )
        info = {"acceptance_probability": torch.exp(torch.clamp(log_alpha, max=0.0)),
                "accepted": accept}
        return new_state, info

    def step(state: LangevinState, generator: torch.Generator):
        return advance(state, draw(state, generator), coefficients(state.theta))

    return Integrator("mala", init, step, sizes, temperature, LangevinState, draw=draw,
                      advance=advance, coefficients=coefficients)
