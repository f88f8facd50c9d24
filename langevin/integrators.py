"""Integrators of the overdamped Langevin equation dθ = −∇U dt + √(2T) dW.

Each integrator is a factory: it validates and captures hyperparameters once and
returns `Integrator(init, step)`. State is data (a NamedTuple of tensors); `step`
returns a new state and an info dict, and never mutates its input.

Per-layer step sizes η_l are a constant diagonal preconditioner M = diag(η_l/η):
the continuous dynamics dθ = −M∇U dt + √(2TM) dW keeps exp(−U/T) stationary for any
constant positive M, so per-layer step sizes change the speed, not the target.

Temperature: a float T for every chain, or a (C,) tensor T_c, one per chain (chain c
then targets exp(−U_c/T_c); the noise scale √(2η_l T_c) broadcasts over the trailing
dims of each layer). Step sizes: a float η_l per layer, or a (C,) tensor η_{l,c}.

Hyperparameters as tensors: a step reads its coefficients (η_l, √(2η_l T), ...) as
(C, 1, …, 1) tensors of the state's dtype and device (`Coefficients`, built once per
(C, dtype, device)), never as Python floats, so a compiled step (`langevin.compiled`)
takes them as graph inputs and a new value does not recompile it. A float is rounded to
the state dtype once, exactly as PyTorch rounds a Python scalar that multiplies a tensor
of that dtype, so the floats of a float-hyperparameter run are unchanged
(tests/langevin/test_step_bitwise.py). Each scheme's step is
`advance(state, draw(state, generator), coefficients(state.theta))`: `draw` takes all the
step's random numbers first, in the scheme's documented order (the same stream as drawing
them where they are used), `advance` is pure.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import torch

from langevin.noise import NormalDraws
from langevin.potential import PotentialFn
from langevin.types import Tensor, Theta


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
    step_sizes: dict[str, float | Tensor]  # per layer: a float, or (C,) per-chain values
    temperature: float | Tensor  # a float, or (C,) per-chain temperatures
    # The NamedTuple class of this scheme's state: a checkpoint's state dict is restored
    # as state_type(**state_dict) (langevin.run).
    state_type: type = LangevinState
    # For schemes that end on their own (T = 0 gradient descent): state -> True when every
    # chain has stopped; `langevin.run.run_chains` then ends the run. None: run the plan.
    finished: Callable[[NamedTuple], bool] | None = None
    # The step split in two (None for composite schemes such as replica exchange):
    # step(state, g) = advance(state, draw(state, g), coefficients(state.theta)).
    # draw: every random number of the step, in the scheme's stream order; advance: a pure
    # function of tensors only (`langevin.compiled` compiles it); coefficients: the
    # hyperparameters as (C, 1, …) tensors of the state's dtype and device.
    draw: Callable | None = None
    advance: Callable | None = None
    coefficients: Callable[[Theta], dict] | None = None


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


def _check_hyperparameters(step_sizes: Mapping[str, float | Tensor],
                           temperature: float | Tensor) -> None:
    if isinstance(temperature, torch.Tensor):
        if temperature.ndim != 1 or not bool(
                (torch.isfinite(temperature) & (temperature > 0)).all()):
            raise ValueError("temperature must be a float or a (C,) tensor of finite positive "
                             f"per-chain temperatures, got {temperature!r}")
    elif not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature!r}")
    for layer, eta in step_sizes.items():
        if isinstance(eta, torch.Tensor):
            if eta.ndim != 1 or not bool((torch.isfinite(eta) & (eta > 0)).all()):
                raise ValueError(f"step_sizes[{layer!r}] must be a float or a (C,) tensor of "
                                 f"finite positive per-chain step sizes, got {eta!r}")
        elif not (math.isfinite(eta) and eta > 0):
            raise ValueError(f"step_sizes[{layer!r}] must be finite and positive, got {eta!r}")
    chains = {int(v.shape[0]) for v in (temperature, *step_sizes.values())
              if isinstance(v, torch.Tensor)}
    if len(chains) > 1:
        raise ValueError(f"per-chain temperature and step sizes must have the same number of "
                         f"chains, got lengths {sorted(chains)}")


def as_temperature(temperature: float | Tensor) -> float | Tensor:
    """A float stays a float; a per-chain tensor is kept as is (validated elsewhere)."""
    return temperature if isinstance(temperature, torch.Tensor) else float(temperature)


def as_step_sizes(step_sizes: Mapping[str, float | Tensor]) -> dict[str, float | Tensor]:
    """Floats stay floats (as float); per-chain (C,) tensors are kept as float64 tensors."""
    return {layer: (eta.to(torch.float64) if isinstance(eta, torch.Tensor) else float(eta))
            for layer, eta in step_sizes.items()}


def noise_scale(variance_factor: float | Tensor, temperature: float | Tensor,
                like: Tensor) -> float | Tensor:
    """√(variance_factor · T): a float for float arguments; otherwise the per-chain scale
    of shape (C, 1, …, 1), broadcasting over the trailing dims of `like` (C, ...).

    A float factor with a (C,) tensor T_c is computed in like's dtype (as it always was);
    a per-chain (C,) factor (per-chain step sizes) in float64, then rounded to like's dtype.
    """
    if not isinstance(temperature, torch.Tensor) and not isinstance(variance_factor, Tensor):
        return math.sqrt(variance_factor * temperature)
    if isinstance(variance_factor, torch.Tensor):
        temperature = (temperature.to(torch.float64) if isinstance(temperature, Tensor)
                       else temperature)
        scale = torch.sqrt(variance_factor.to(torch.float64) * temperature).to(like.dtype)
    else:
        scale = torch.sqrt(variance_factor * temperature.to(like.dtype))
    scale = scale.to(like.device)
    return scale.reshape(scale.shape + (1,) * (like.ndim - 1))


def chain_tensor(value: float | Tensor, like: Tensor, dims: int | None = None,
                 dtype: torch.dtype | None = None) -> Tensor:
    """A hyperparameter as a (C, 1, …, 1) tensor with `dims` dims (default like.ndim) of
    like's device and `dtype` (default like's): a float is filled in (rounded to the dtype
    once, exactly as the float is rounded when it multiplies a tensor of that dtype, so
    the float path's floats are unchanged); a (C,) or (C, 1, …) tensor is reshaped."""
    dims = like.ndim if dims is None else dims
    dtype = like.dtype if dtype is None else dtype
    chains = like.shape[0]
    if isinstance(value, torch.Tensor):
        tensor = value.to(dtype=dtype, device=like.device).reshape(chains)
    else:
        tensor = torch.full((chains,), value, dtype=dtype, device=like.device)
    return tensor.reshape((chains,) + (1,) * (dims - 1))


class Coefficients:
    """The tensors of a scheme's hyperparameters for the current chains, built by
    `build(theta)` the first time a (C, dtype, device) is seen and then reused, so a step
    reads tensors only (a compiled step then never recompiles for a new value)."""

    def __init__(self, build: Callable[[Theta], dict]):
        self._build = build
        self._key = None
        self._value: dict = {}

    def __call__(self, theta: Theta) -> dict:
        first = next(iter(theta.values()))
        key = (first.shape[0], first.dtype, first.device)
        if key != self._key:
            self._value, self._key = self._build(theta), key
        return self._value


def init_state(potential_fn: PotentialFn, theta: Theta) -> LangevinState:
    value = potential_fn(theta)
    return LangevinState(theta, value.potential, value.loss, value.gradient)


def langevin_update(param: Tensor, gradient: Tensor, step_size: Tensor, scale: Tensor,
                    noise: Tensor) -> Tensor:
    """θ − η ∇U + s ξ (η, s broadcasting (C, 1, …) tensors), rounded as (θ − (η∇U)) + (sξ),
    the order of the plain expression. Eager: one new tensor, the rest in place (ξ is
    overwritten by sξ); under torch.compile the plain expression (the compiler fuses it)."""
    if torch.compiler.is_compiling():
        return param - step_size * gradient + scale * noise
    update = torch.mul(gradient, step_size)
    return torch.sub(param, update, out=update).add_(noise.mul_(scale))


def euler_maruyama(
    potential_fn: PotentialFn, step_sizes: Mapping[str, float | Tensor],
    temperature: float | Tensor
) -> Integrator:
    """Unadjusted Langevin algorithm (ULA), full batch:

        θ_{n+1} = θ_n − η_l ∇_l U(θ_n) + √(2 η_l T) ξ_n,   ξ_n ~ N(0, I).

    Targets exp(−U/T) with an O(η) bias: for U = ½kθ² the chain's exact stationary
    variance is T / (k (1 − ηk/2)) (stable iff ηk < 2), not T/k. Halve the step size
    (or use a Metropolis-adjusted scheme) to see the bias of a given observable.
    Noise is drawn layer by layer in `step_sizes` order from `generator`
    (`langevin.noise.NormalDraws`: the stream of one torch.randn per layer).
    `temperature`: a float, or a (C,) tensor of per-chain T_c (chain c then has the
    stationary variance T_c / (k (1 − ηk/2)) on U = ½kθ²). `step_sizes[l]`: a float or a
    (C,) tensor of per-chain η_{l,c} (chain c then has T / (k (1 − η_c k/2))).
    The step reads η_l and √(2η_l T) as (C, 1, …) tensors (`Integrator.coefficients`);
    for float hyperparameters its floats are those of the float expression.
    """
    _check_hyperparameters(step_sizes, temperature)
    sizes = as_step_sizes(step_sizes)
    temperature = as_temperature(temperature)
    draws = NormalDraws(sizes)

    def init(theta: Theta) -> LangevinState:
        missing = set(sizes) - set(theta)
        if missing:
            raise ValueError(f"theta lacks layers {sorted(missing)} that have step sizes")
        return init_state(potential_fn, theta)

    def build(theta: Theta) -> dict:
        return {layer: {"step_size": chain_tensor(eta, theta[layer]),
                        "scale": chain_tensor(noise_scale(2.0 * eta, temperature, theta[layer]),
                                              theta[layer])}
                for layer, eta in sizes.items()}

    coefficients = Coefficients(build)

    def draw(state: LangevinState, generator: torch.Generator) -> dict:
        return {"noise": draws.draw(state.theta, generator)}

    def advance(state: LangevinState, randoms: dict, coefs: dict):
        # θ_{n+1} = θ_n − η ∇U(θ_n) + √(2ηT) ξ_n
        theta = {layer: langevin_update(state.theta[layer], state.gradient[layer],
                                        c["step_size"], c["scale"], randoms["noise"][layer])
                 for layer, c in coefs.items()}
        return init_state(potential_fn, theta), {}

    def step(state: LangevinState, generator: torch.Generator):
        return advance(state, draw(state, generator), coefficients(state.theta))

    return Integrator("euler_maruyama", init, step, sizes, temperature, LangevinState,
                      draw=draw, advance=advance, coefficients=coefficients)
