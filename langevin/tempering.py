"""Replica exchange (parallel tempering) across noise variances or temperatures, as an
integrator wrapper around any scheme of `langevin.schemes.INTEGRATORS`.

Two tempered families, each a ladder of R rung values s_0 < … < s_{R−1}:

"noise_variance" — the likelihood is tempered, the prior is not. With L_c = ½ Σ_μ
    (f_c(x_μ) − y_μ)² and the per-weight prior variances v_l (= T/γ_l of the run),
    chain c at rung value τ_c samples, at temperature 1, the potential

        U_c(θ) = L_c(θ)/τ_c + Σ_l |θ_l|²/(2 v_l),   stationary law ∝ exp(−L/τ_c) · prior,

    which is the project's posterior exp(−U/T) (U = L + Σ γ_l/2 |θ_l|²) at noise
    variance σ² = T = τ_c with γ_l = τ_c/v_l: the same prior at every rung, only the
    noise variance differs. Swaps exchange β = 1/τ with tempered energy E = L.
    Step sizes: ULA on U_c at T = 1 with step η'_l is ULA on the plain U at T = τ_c with
    step η'_l/τ_c, so η'_l = step_size · v_l (the "prior" preconditioner with γ'_l = 1/v_l)
    is the plain run's η_l = step_size/γ_l at every rung.
"temperature" — the whole posterior is tempered: chain c samples exp(−U/T_c) with the
    plain U (prior variance T_c/γ_l, noise variance T_c) by the base integrator with the
    per-chain temperature tensor. Swaps exchange β = 1/T with E = U; BAOAB momenta are
    rescaled by √(T_new/T_old) on a swap (so the kinetic energy drops out of the rule).

Layout: R rungs × C replicas in one batch of R·C chains. The chains k, C + k, 2C + k, …
form the k-th of C independent replica-exchange systems; batch chain b starts at rung
b // C. Swaps move rung labels, never weights: the state holds `rung` (R·C,) and every
chain's rung value is ladder[rung] (an O(R·C) index update per swap).

Swap move (Metropolis on the tempered part only; the prior is common to both rungs and
cancels): for the pair of rungs (r, r+1) of one system, held by chains i (at r) and j
(at r+1), the joint law Π_b exp(−β_{rung(b)} E_b) · prior gives

    α = min(1, exp((β_r − β_{r+1}) (E_i − E_j))).

Non-reversible even–odd scheme (Okabe et al. 2001; Syed et al. 2022): every
`swap_every` steps, swap round m proposes all pairs (r, r+1) with r ≡ m (mod 2) at once,
alternating even and odd pairs deterministically ("reversible": the parity is drawn
from the generator instead). Swap uniforms come from the run's generator, one per pair
and system, after the base step's noise.

Ladder adaptation: during the first `adapt_steps` steps the ladder is re-placed at the
ends of rounds of doubling length toward equal rejection rates (`langevin.ladder`); then
it is frozen. Statistics of the sampling phase (per-pair attempts, accepts, summed
acceptance probabilities, round trips 0 → R−1 → 0 of each chain) count from step
`record_from` on. All of it is tensors in the state, so checkpoints resume bit for bit.

Cost: after a swap round (or an adaptation) the "noise_variance" potential is
re-evaluated at the new τ (one extra ∇U every `swap_every` steps).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

from langevin.integrators import Integrator
from langevin.ladder import equalized_ladder, validate_ladder
from langevin.observables import Observable, evaluate
from langevin.potential import Model, PotentialFn, PotentialValue
from langevin.types import Tensor, Theta

TEMPERING_MODES = ("noise_variance", "temperature")
SWAP_SCHEMES = ("even_odd", "reversible")
CORE_FIELDS = ("theta", "potential", "loss", "gradient")
# Base-state fields that are momenta at temperature T (rescaled on a temperature swap).
MOMENTUM_FIELDS = ("momentum",)
# Swap rounds in the first adaptation round (later rounds double).
FIRST_ADAPT_ROUNDS = 16


class TemperingState(NamedTuple):
    """The base scheme's state (flattened) plus the replica-exchange bookkeeping."""

    theta: Theta  # (R·C, ...) per layer, batch order
    potential: Tensor  # (R·C,) the sampled (tempered) potential
    loss: Tensor  # (R·C,) L = ½ Σ (f − y)²
    gradient: Theta  # ∇ of `potential`
    extra: dict  # the base state's other fields (e.g. {"momentum": {...}})
    ladder: Tensor  # (R,) float64 rung values, increasing
    rung: Tensor  # (R·C,) int64 rung of every batch chain
    step: Tensor  # () int64 steps taken
    swap_attempts: Tensor  # (R−1,) int64, sampling phase
    swap_accepts: Tensor  # (R−1,) int64, sampling phase
    swap_probability_sum: Tensor  # (R−1,) float64 Σ min(1, α), sampling phase
    adapt_attempts: Tensor  # (R−1,) int64 since the last adaptation
    adapt_rejection_sum: Tensor  # (R−1,) float64 Σ (1 − min(1, α)) since the last adaptation
    direction: Tensor  # (R·C,) int64: +1 last extreme visited rung 0, −1 rung R−1, 0 none
    round_trips: Tensor  # (R·C,) int64 trips 0 → R−1 → 0 completed in the sampling phase


def tempered_potential(model: Model, x: Tensor, y: Tensor,
                       prior_variances: Mapping[str, float]) -> Callable[[Tensor], PotentialFn]:
    """τ ↦ (θ ↦ U_c): U_c = L_c/τ_c + Σ_l |θ_l|²/(2 v_l), ∇_l U_c = ∂_l L_c/τ_c + θ_l/v_l.

    Built from `model.loss_and_gradient(theta, x, y)` only; `τ` is a (C,) tensor of
    noise variances (module docstring: the posterior at σ² = τ_c with the prior
    variances v_l untempered). PotentialValue.loss is the untempered L_c.
    """
    variances = {layer: float(prior_variances[layer]) for layer in model.layer_names}
    for layer, v in variances.items():
        if not v > 0:
            raise ValueError(f"prior_variances[{layer!r}] must be positive, got {v!r}")

    def for_noise_variances(tau: Tensor) -> PotentialFn:
        def potential(theta: Theta) -> PotentialValue:
            loss, data_gradient = model.loss_and_gradient(theta, x, y)
            value = loss / tau
            gradient = {}
            for layer, v in variances.items():
                param = theta[layer]
                reduce_dims = tuple(range(1, param.ndim))
                value = value + (0.5 / v) * (param * param).sum(reduce_dims)
                scale = tau.reshape(tau.shape + (1,) * (param.ndim - 1))
                gradient[layer] = data_gradient[layer] / scale + param / v
            return PotentialValue(potential=value, loss=loss, gradient=gradient)

        return potential

    return for_noise_variances


def slot_order(rung: Tensor, num_replicas: int) -> Tensor:
    """order[s] = the batch chain at slot s = rung·C + k (k = its system, b mod C)."""
    batch = torch.arange(rung.shape[0], device=rung.device)
    slots = rung * num_replicas + batch % num_replicas
    return torch.empty_like(batch).scatter_(0, slots, batch)


def swap_proposals(rung: Tensor, ladder: Tensor, energy: Tensor, parity: int,
                   num_replicas: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The pairs (r, r+1), r ≡ parity (mod 2), of every system and their log acceptance.

    Returns `lower` (P,) the lower rung of each pair, `chain_lo`, `chain_hi` (P, C) the
    batch chains at rungs r and r+1 of each system, and (P, C) float64

        log α = (β_r − β_{r+1}) (E_lo − E_hi),   β = 1/ladder,

    with non-finite values set to −inf (rejected).
    """
    num_rungs = ladder.shape[0]
    lower = torch.arange(parity, num_rungs - 1, 2, device=rung.device)
    order = slot_order(rung, num_replicas).reshape(num_rungs, num_replicas)
    chain_lo, chain_hi = order[lower], order[lower + 1]
    energy = energy.double()
    beta = 1.0 / ladder
    log_alpha = (beta[lower] - beta[lower + 1]).unsqueeze(1) * (energy[chain_lo] - energy[chain_hi])
    log_alpha = torch.where(torch.isfinite(log_alpha), log_alpha,
                            torch.full_like(log_alpha, -float("inf")))
    return lower, chain_lo, chain_hi, log_alpha


def swapped_rungs(rung: Tensor, lower: Tensor, chain_lo: Tensor, chain_hi: Tensor,
                  accept: Tensor) -> Tensor:
    """A new rung assignment: the two chains of every accepted pair exchange rungs."""
    lo_rung = lower.unsqueeze(1).expand_as(chain_lo)
    out = rung.clone()
    out[chain_lo.flatten()] = torch.where(accept, lo_rung + 1, lo_rung).flatten()
    out[chain_hi.flatten()] = torch.where(accept, lo_rung, lo_rung + 1).flatten()
    return out


def _adaptation_steps(swap_every: int, adapt_steps: int) -> tuple[int, ...]:
    """Adaptation at the ends of rounds of FIRST_ADAPT_ROUNDS·2^k swap rounds, ≤ adapt_steps."""
    out, length, end = [], FIRST_ADAPT_ROUNDS * swap_every, 0
    while end + length <= adapt_steps:
        end += length
        out.append(end)
        length *= 2
    return tuple(out)


def replica_exchange(
    base_factory: Callable[..., Integrator],
    potential_for: Callable[[Tensor], PotentialFn],
    step_sizes: Mapping[str, float],
    ladder: Sequence[float],
    num_replicas: int,
    swap_every: int,
    *,
    mode: str = "noise_variance",
    scheme: str = "even_odd",
    adapt_steps: int = 0,
    record_from: int | None = None,
    **base_options: Any,
) -> Integrator:
    """Replica exchange over `ladder` (R values) with `num_replicas` (C) systems.

    base_factory(potential_fn, step_sizes, temperature, **base_options): a scheme of
        `langevin.schemes.INTEGRATORS`.
    potential_for(values): the potential of per-chain rung values (R·C,): for
        "noise_variance" `tempered_potential(...)`; for "temperature" `lambda _: U`.
    swap_every: steps between swap rounds; adapt_steps: steps during which the ladder
        adapts (0: fixed ladder); record_from: first step whose swaps count in the
        sampling-phase statistics (default adapt_steps).
    init(theta) takes θ of R·C chains (batch chain b starts at rung b // C).
    Returns an `Integrator` whose state is a `TemperingState` and whose `temperature`
    is 1.0 ("noise_variance") or the lowest rung ("temperature").
    """
    if mode not in TEMPERING_MODES:
        raise ValueError(f"tempering mode must be one of {TEMPERING_MODES}, got {mode!r}")
    if scheme not in SWAP_SCHEMES:
        raise ValueError(f"swap scheme must be one of {SWAP_SCHEMES}, got {scheme!r}")
    initial_ladder = validate_ladder(ladder)
    for name, value, minimum in (("num_replicas", num_replicas, 1), ("swap_every", swap_every, 1),
                                 ("adapt_steps", adapt_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    record_from = adapt_steps if record_from is None else int(record_from)
    num_rungs, replicas = initial_ladder.size, int(num_replicas)
    adapt_at = frozenset(_adaptation_steps(swap_every, adapt_steps))
    # Memo of the base integrator for the current (ladder, rung) tensors: a swap or an
    # adaptation makes new tensors, a plain step passes the same objects on.
    memo: dict[str, Any] = {"key": None, "base": None, "step": None, "count": 0}

    def chain_values(ladder_t: Tensor, rung: Tensor, like: Tensor) -> Tensor:
        return ladder_t[rung].to(like.dtype)

    def base_for(ladder_t: Tensor, rung: Tensor, like: Tensor) -> Integrator:
        key = memo["key"]
        if key is not None and key[0] is ladder_t and key[1] is rung:
            return memo["base"]
        values = chain_values(ladder_t, rung, like)
        if mode == "noise_variance":
            base = base_factory(potential_for(values), step_sizes, 1.0, **base_options)
        else:
            base = base_factory(potential_for(values), step_sizes, values, **base_options)
        memo["key"], memo["base"] = (ladder_t, rung), base
        return base

    def step_count(state: TemperingState) -> int:
        if memo["step"] is not None and memo["step"] is state.step:
            return memo["count"]
        return int(state.step)

    def split(state: TemperingState, base: Integrator):
        return base.state_type(theta=state.theta, potential=state.potential, loss=state.loss,
                               gradient=state.gradient, **state.extra)

    def merge(state: TemperingState, base_state) -> TemperingState:
        fields = base_state._asdict()
        extra = {k: v for k, v in fields.items() if k not in CORE_FIELDS}
        return state._replace(theta=fields["theta"], potential=fields["potential"],
                              loss=fields["loss"], gradient=fields["gradient"], extra=extra)

    def init(theta: Theta) -> TemperingState:
        first = next(iter(theta.values()))
        total, device = first.shape[0], first.device
        if total != num_rungs * replicas:
            raise ValueError(f"replica exchange over {num_rungs} rungs x {replicas} replicas "
                             f"needs {num_rungs * replicas} chains, got {total}")
        ladder_t = torch.as_tensor(initial_ladder, dtype=torch.float64, device=device)
        rung = torch.arange(total, device=device) // replicas
        pairs = max(num_rungs - 1, 0)
        zeros_i = torch.zeros(pairs, dtype=torch.int64, device=device)
        zeros_f = torch.zeros(pairs, dtype=torch.float64, device=device)
        direction = torch.zeros(total, dtype=torch.int64, device=device)
        direction[rung == 0] = 1
        state = TemperingState(
            theta={}, potential=first.new_zeros(total), loss=first.new_zeros(total), gradient={},
            extra={}, ladder=ladder_t, rung=rung,
            step=torch.zeros((), dtype=torch.int64, device=device),
            swap_attempts=zeros_i, swap_accepts=zeros_i.clone(), swap_probability_sum=zeros_f,
            adapt_attempts=zeros_i.clone(), adapt_rejection_sum=zeros_f.clone(),
            direction=direction, round_trips=torch.zeros_like(direction))
        return merge(state, base_for(ladder_t, rung, first).init(dict(theta)))

    def refresh(state: TemperingState, old_values: Tensor) -> TemperingState:
        """Make the base state consistent with the new rung values of every chain."""
        like = state.potential
        values = chain_values(state.ladder, state.rung, like)
        if mode == "noise_variance":
            value = potential_for(values)(state.theta)
            return state._replace(potential=value.potential, loss=value.loss,
                                  gradient=value.gradient)
        extra = dict(state.extra)
        for name in MOMENTUM_FIELDS:
            if name in extra:
                ratio = torch.sqrt(values / old_values)
                extra[name] = {layer: p * ratio.reshape(ratio.shape + (1,) * (p.ndim - 1))
                               for layer, p in extra[name].items()}
        return state._replace(extra=extra)

    def swap(state: TemperingState, parity: int, recording: bool, generator: torch.Generator):
        device = state.rung.device
        energy = state.loss if mode == "noise_variance" else state.potential
        lower, chain_lo, chain_hi, log_alpha = swap_proposals(
            state.rung, state.ladder, energy, parity, replicas)
        if lower.numel() == 0:
            return state
        uniform = torch.rand(log_alpha.shape, generator=generator, dtype=torch.float64,
                             device=device)
        accept = torch.log(uniform) < log_alpha
        probability = torch.exp(torch.clamp(log_alpha, max=0.0))
        rung = swapped_rungs(state.rung, lower, chain_lo, chain_hi, accept)
        # Round trips 0 → R−1 → 0 of every chain.
        at_bottom, at_top = rung == 0, rung == num_rungs - 1
        completed = at_bottom & (state.direction == -1)
        direction = torch.where(at_bottom, torch.ones_like(state.direction), state.direction)
        direction = torch.where(at_top & (state.direction == 1), -torch.ones_like(direction),
                                direction)
        pair_accepts = torch.zeros(num_rungs - 1, dtype=torch.int64, device=device)
        pair_accepts = pair_accepts.index_add(0, lower, accept.sum(1))
        pair_attempts = torch.zeros_like(pair_accepts).index_add(
            0, lower, torch.full_like(lower, replicas))
        pair_probability = torch.zeros(num_rungs - 1, dtype=torch.float64, device=device)
        pair_probability = pair_probability.index_add(0, lower, probability.sum(1))
        out = state._replace(
            rung=rung, direction=direction,
            adapt_attempts=state.adapt_attempts + pair_attempts,
            adapt_rejection_sum=state.adapt_rejection_sum + (
                pair_attempts.double() - pair_probability))
        if recording:
            out = out._replace(
                swap_attempts=state.swap_attempts + pair_attempts,
                swap_accepts=state.swap_accepts + pair_accepts,
                swap_probability_sum=state.swap_probability_sum + pair_probability,
                round_trips=state.round_trips + completed.long())
        return out

    def adapt(state: TemperingState) -> TemperingState:
        attempts = state.adapt_attempts.cpu().numpy()
        if np.any(attempts == 0):
            return state
        rejection = state.adapt_rejection_sum.cpu().numpy() / attempts
        new = equalized_ladder(state.ladder.cpu().numpy(), rejection)
        return state._replace(
            ladder=torch.as_tensor(new, dtype=torch.float64, device=state.ladder.device),
            adapt_attempts=torch.zeros_like(state.adapt_attempts),
            adapt_rejection_sum=torch.zeros_like(state.adapt_rejection_sum))

    def step(state: TemperingState, generator: torch.Generator):
        count = step_count(state)
        base = base_for(state.ladder, state.rung, state.potential)
        base_state, info = base.step(split(state, base), generator)
        new = merge(state, base_state)
        count += 1
        new = new._replace(step=state.step + 1)
        if num_rungs > 1 and count % swap_every == 0:
            old_values = chain_values(state.ladder, state.rung, state.potential)
            rounds = count // swap_every
            if scheme == "even_odd":
                parity = rounds % 2
            else:
                parity = int(torch.randint(2, (1,), generator=generator,
                                           device=generator.device))
            new = swap(new, parity, count > record_from, generator)
            if count in adapt_at:
                new = adapt(new)
            new = refresh(new, old_values)
        memo["step"], memo["count"] = new.step, count
        return new, info

    temperature = 1.0 if mode == "noise_variance" else float(initial_ladder[0])
    return Integrator(f"replica_exchange[{mode}]", init, step, dict(step_sizes), temperature,
                      TemperingState)


def by_rung(observables: Mapping[str, Observable], num_replicas: int,
            value_name: str = "rung_value") -> dict[str, Observable]:
    """Every observable with its chain axis re-ordered to slot = rung·C + system k, plus
    `tempering_slots`: `replica` (the batch chain in the slot, int64) and `value_name`
    (the slot's rung value σ² or T). A pure function of the state; after the ladder is
    frozen, stored chain s belongs to rung s // C."""

    def reorder(obs: Observable) -> Observable:
        def fn(state: TemperingState, *initial_values) -> dict[str, Tensor]:
            order = slot_order(state.rung, num_replicas)
            values = evaluate(obs, state, *initial_values)
            return {name: value[order] for name, value in values.items()}

        # `initial` is evaluated in batch order (as fn is, before the reordering)
        return Observable(fn, obs.dims, obs.every, obs.initial)

    out = {name: reorder(obs) for name, obs in observables.items()}

    def slots(state: TemperingState) -> dict[str, Tensor]:
        order = slot_order(state.rung, num_replicas)
        return {"replica": order, value_name: state.ladder[state.rung[order]]}

    out["tempering_slots"] = Observable(slots, {"replica": (), value_name: ()})
    return out
