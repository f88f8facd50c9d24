"""Integrators of the overdamped Langevin equation dθ = −∇U dt + √(2T) dW.

Each integrator is a factory: it validates and captures hyperparameters once and
returns `Integrator(init, step)`. State is data (a NamedTuple of tensors); `step`
returns a new state and an info dict, and never mutates its input.

Per-layer step sizes η_l are a constant diagonal preconditioner M = diag(η_l/η):
the continuous dynamics dθ = −M∇U dt + √(2TM) dW keeps exp(−U/T) stationary for any
constant positive M, so per-layer step sizes change the speed, not the target.

Temperature: a float T for every chain, or a (C,) tensor T_c, one per chain (chain c
then targets exp(−U_c/T_c); the noise scale √(2η_l T_c) broadcasts over the trailing
dims of each layer). The float path is unchanged by the tensor option.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import torch

from langevin.noise import NormalDraws
from langevin.potential import PotentialFn

Tensor = torch.Tensor
Theta = dict[str, Tensor]


class LangevinState(NamedTuple):
    """Position and the potential evaluated there (cached so each step costs one ∇U)."""

    theta: Theta
    potential: Tensor  # (C,) U(θ)
    loss: Tensor  # (C,) ½ Σ (f − y)²
    gradient: Theta  # per layer, ∇U(θ)


class Integrator(NamedTuple):
    name: str
    init: Callable[[Theta], LangevinState]
    step: Callable[[LangevinState, torch.Generator], tuple[LangevinState, dict[str, Tensor]]]
    step_sizes: dict[str, float]
    temperature: float | Tensor  # a float, or (C,) per-chain temperatures
    # The NamedTuple class of this scheme's state: a checkpoint's state dict is restored
    # as state_type(**state_dict) (langevin.run).
    state_type: type = LangevinState


PRECONDITIONERS = ("prior", "none")


def per_layer_step_sizes(
    step_size: float, weight_decays: Mapping[str, float], preconditioner: str = "prior"
) -> dict[str, float]:
    """Per-layer step sizes η_l from one dimensionless `step_size`.

    "prior": η_l = step_size / γ_l. Under the prior alone one step then contracts every
        layer by the same factor (1 − step_size), whatever the width, fan-in or χ, and the
        ULA stability condition η_l γ_l < 2 reads step_size < 2. The likelihood adds a
        stiffness ≈ n λ_max/σ² in these units (λ_max the largest eigenvalue of the
        output kernel on the data), which is width- and χ-independent: one step_size
        works across widths and scalings at fixed data and noise.
    "none": η_l = step_size for every layer (a plain learning rate, as in the papers'
        scripts).
    """
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a finite positive number, got {step_size!r}")
    if preconditioner == "none":
        return {layer: float(step_size) for layer in weight_decays}
    if preconditioner == "prior":
        sizes = {}
        for layer, decay in weight_decays.items():
            if not decay > 0:
                raise ValueError(
                    f"preconditioner 'prior' needs weight_decays[{layer!r}] > 0, got {decay!r}"
                )
            sizes[layer] = float(step_size) / float(decay)
        return sizes
    raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, got {preconditioner!r}")


def _check_hyperparameters(step_sizes: Mapping[str, float], temperature: float | Tensor) -> None:
    if isinstance(temperature, torch.Tensor):
        if temperature.ndim != 1 or not bool(
                (torch.isfinite(temperature) & (temperature > 0)).all()):
            raise ValueError("temperature must be a float or a (C,) tensor of finite positive "
                             f"per-chain temperatures, got {temperature!r}")
    elif not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature!r}")
    for layer, eta in step_sizes.items():
        if not (math.isfinite(eta) and eta > 0):
            raise ValueError(f"step_sizes[{layer!r}] must be finite and positive, got {eta!r}")


def as_temperature(temperature: float | Tensor) -> float | Tensor:
    """A float stays a float; a per-chain tensor is kept as is (validated elsewhere)."""
    return temperature if isinstance(temperature, torch.Tensor) else float(temperature)


def noise_scale(variance_factor: float, temperature: float | Tensor, like: Tensor) -> float | Tensor:
    """√(variance_factor · T): a float for a float T; for a (C,) tensor T_c the per-chain
    scale of shape (C, 1, …, 1), broadcasting over the trailing dims of `like` (C, ...)."""
    if not isinstance(temperature, torch.Tensor):
        return math.sqrt(variance_factor * temperature)
    scale = torch.sqrt(variance_factor * temperature.to(like.dtype))
    return scale.reshape(scale.shape + (1,) * (like.ndim - 1))


def init_state(potential_fn: PotentialFn, theta: Theta) -> LangevinState:
    value = potential_fn(theta)
    return LangevinState(theta, value.potential, value.loss, value.gradient)


def euler_maruyama(
    potential_fn: PotentialFn, step_sizes: Mapping[str, float], temperature: float | Tensor
) -> Integrator:
    """Unadjusted Langevin algorithm (ULA), full batch:

        θ_{n+1} = θ_n − η_l ∇_l U(θ_n) + √(2 η_l T) ξ_n,   ξ_n ~ N(0, I).

    Targets exp(−U/T) with an O(η) bias: for U = ½kθ² the chain's exact stationary
    variance is T / (k (1 − ηk/2)) (stable iff ηk < 2), not T/k. Halve the step size
    (or use a Metropolis-adjusted scheme) to see the bias of a given observable.
    Noise is drawn layer by layer in `step_sizes` order from `generator`
    (`langevin.noise.NormalDraws`: the stream of one torch.randn per layer).
    `temperature`: a float, or a (C,) tensor of per-chain T_c (chain c then has the
    stationary variance T_c / (k (1 − ηk/2)) on U = ½kθ²).
    """
    _check_hyperparameters(step_sizes, temperature)
    sizes = {layer: float(eta) for layer, eta in step_sizes.items()}
    temperature = as_temperature(temperature)

    def init(theta: Theta) -> LangevinState:
        missing = set(sizes) - set(theta)
        if missing:
            raise ValueError(f"theta lacks layers {sorted(missing)} that have step sizes")
        return init_state(potential_fn, theta)

    draws = NormalDraws(sizes)

    def step(state: LangevinState, generator: torch.Generator):
        noise = draws.draw(state.theta, generator)
        theta = {}
        for layer, eta in sizes.items():
            param = state.theta[layer]
            # θ_{n+1} = θ_n − η ∇U(θ_n) + √(2ηT) ξ_n, into one new tensor (rounded as
            # (θ − (η∇U)) + (√(2ηT) ξ), the order of the plain expression)
            scale = noise_scale(2.0 * eta, temperature, param)
            update = torch.mul(state.gradient[layer], eta)
            theta[layer] = torch.sub(param, update, out=update).add_(noise[layer].mul_(scale))
        return init_state(potential_fn, theta), {}

    return Integrator("euler_maruyama", init, step, sizes, temperature)
