"""Observables: pure functions of the sampler state returning named (C, ...) tensors.

An `Observable` bundles the function, the names of the trailing dimensions of each
variable it returns (after the leading (chain, draw)), and its own cadence `every`
(in sampling steps; None means the run's `thin`). Factories capture what the function
needs (test inputs, the teacher direction, control directions) as explicit tensors.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import torch

from langevin.integrators import LangevinState
from langevin.types import Tensor


class Observable(NamedTuple):
    """`fn(state)` -> named (C, ...) tensors; with `initial` set, `initial(state_0)` is
    evaluated once on the run's initial state (step 0, before burn-in), kept in every
    checkpoint (so a resume uses the same bits), and the function is called as
    `fn(state, initial_values)` (e.g. the NTK at initialization for its relative change)."""

    fn: Callable[..., dict[str, Tensor]]
    dims: dict[str, tuple[str, ...]]
    every: int | None = None
    initial: Callable[[LangevinState], dict[str, Tensor]] | None = None


def evaluate(observable: Observable, state, initial_values: dict[str, Tensor] | None = None
             ) -> dict[str, Tensor]:
    """The observable's values at `state`; `initial_values` = `observable.initial(state_0)`
    for an observable that has an `initial` function (ignored otherwise)."""
    if observable.initial is None:
        return observable.fn(state)
    if initial_values is None:
        raise ValueError("this observable needs the values of its `initial` function at the "
                         "run's initial state")
    return observable.fn(state, initial_values)


def _sum_trailing(x: Tensor) -> Tensor:
    return x.sum(tuple(range(1, x.ndim)))


def train_loss() -> Observable:
    """L_c = ½ Σ_μ (f_c(x_μ) − y_μ)² on the training set."""
    return Observable(lambda state: {"train_loss": state.loss}, {"train_loss": ()})


def potential_energy() -> Observable:
    """U_c(θ) = L_c + Σ_l (γ_l/2)|θ_l|²."""
    return Observable(lambda state: {"potential": state.potential}, {"potential": ()})


def squared_norms(layers: tuple[str, ...]) -> Observable:
    """|θ_{c,l}|² for every layer l (prior mean: P_l · prior variance)."""

    def fn(state: LangevinState) -> dict[str, Tensor]:
        return {f"squared_norm_{l}": _sum_trailing(state.theta[l] ** 2) for l in layers}

    return Observable(fn, {f"squared_norm_{l}": () for l in layers})


def virial_temperature(layers: tuple[str, ...]) -> Observable:
    """Configurational (virial) temperature per layer, T_l = θ_l·∇_l U / P_l.

    Integration by parts under p ∝ exp(−U/T) gives E[θ_i ∂_i U] = T for every
    coordinate, so at equilibrium E[T_l] = T for every layer: a thermometer that needs
    no theory. (Under ULA it equals T up to the O(step) discretization bias.)
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        out = {}
        for l in layers:
            param = state.theta[l]
            count = param[0].numel()
            out[f"virial_temperature_{l}"] = _sum_trailing(param * state.gradient[l]) / count
        return out

    return Observable(fn, {f"virial_temperature_{l}": () for l in layers})


def outputs(predict: Callable[[dict, Tensor], Tensor], x: Tensor, name: str, point_dim: str,
            every: int | None = None) -> Observable:
    """f_c(x_μ) on fixed inputs x of shape (n, d): variable `name`, dims (point_dim,)."""
    return Observable(lambda state: {name: predict(state.theta, x)}, {name: (point_dim,)}, every)


def teacher_projections(teacher_direction: Tensor, control_directions: Tensor | None = None,
                        every: int | None = None) -> Observable:
    """q_{c,i} = w_{c,i}·w* for every neuron (dims (neuron,)), and the same projection on
    fixed unit control directions (variable q_control, dims (neuron, direction)).

    Under the prior q ~ N(0, σ_w²/d); feature learning shows up as a wider or
    multi-modal law of q, while the control projections stay at the prior.
    """
    dims = {"q": ("neuron",)}
    if control_directions is not None:
        dims["q_control"] = ("neuron", "direction")

    def fn(state: LangevinState) -> dict[str, Tensor]:
        w = state.theta["w"]
        out = {"q": torch.matmul(w, teacher_direction)}
        if control_directions is not None:
            out["q_control"] = torch.matmul(w, control_directions.transpose(0, 1))
        return out

    return Observable(fn, dims, every)


def weight_second_moments(teacher_direction: Tensor) -> Observable:
    """Second moments of the input weights, averaged over the neurons of a chain:

        along w*:        m_∥ = mean_i (w_i·w*)²
        orthogonal:      m_⊥ = mean_i (|w_i|² − (w_i·w*)²) / (d − 1)

    These estimate the eigenvalues b (along w*) and a (orthogonal) of the weight
    covariance Σ = a P_⊥ + b w*w*ᵀ of the adaptive-kernel theory (prior: σ_w²/d both).
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        w = state.theta["w"]
        d = w.shape[-1]
        q2 = torch.matmul(w, teacher_direction) ** 2
        norm2 = (w * w).sum(-1)
        return {
            "w_second_moment_parallel": q2.mean(-1),
            "w_second_moment_perp": ((norm2 - q2) / max(d - 1, 1)).mean(-1),
        }

    return Observable(fn, {"w_second_moment_parallel": (), "w_second_moment_perp": ()})


def erf_hermite_projections(teacher_direction: Tensor) -> Observable:
    """Exact Gaussian projections of a two-layer erf network f(x) = Σ_i a_i erf(w_i·x) on the
    Hermite polynomials of the teacher coordinate z* = w*·x (|w*| = 1), x ~ N(0, I_d):

        E_x[f He_1(z*)] = Σ_i a_i q_i · 2/√(π g_i),
        E_x[f He_3(z*)] = Σ_i a_i q_i³ · (−4)/(√π g_i^{3/2}),      q_i = w_i·w*, g_i = 1 + 2|w_i|²,

    by Stein's lemma E[φ(h) He_k(z*)] = q^k E[φ^{(k)}(h)], h ~ N(0, |w|²), with E[erf′(h)] =
    2/√(π g) and E[erf‴(h)] = −4/(√π g^{3/2}) (unnormalized He_k, E[He_k²] = k!). These are the
    population ("continuum") Hermite coefficients × k! that the single-index theories
    (`theory.single_index_gfl`) predict; no test set enters. Variable `hermite_projection`,
    dims (hermite_degree,) with degrees (1, 3); per chain (C, 2). Needs theta "w" (C, N, d)
    and "a" (C, N) (one hidden erf layer, no bias).
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        w, a = state.theta["w"], state.theta["a"]
        q = torch.matmul(w, teacher_direction)                      # (C, N)
        g = 1.0 + 2.0 * (w * w).sum(-1)
        he1 = (a * q * (2.0 / math.sqrt(math.pi)) * g.rsqrt()).sum(-1)
        he3 = (a * q ** 3 * (-4.0 / math.sqrt(math.pi)) * g.rsqrt() ** 3).sum(-1)
        return {"hermite_projection": torch.stack([he1, he3], dim=-1)}

    return Observable(fn, {"hermite_projection": ("hermite_degree",)})


def first_layer_weights(every: int | None = None) -> Observable:
    """The input-layer weights w_{c,i} of every neuron (theta["w"], (C, N, d)): variable
    first_layer_weights, dims (neuron, input). Opt-in (N·d numbers per chain and draw): the
    readout posterior given W is Gaussian, so these draws give the Rao-Blackwellized posterior
    mean and the kernel ladder of `experiments.compare.kernel_ladder`.
    """
    return Observable(lambda state: {"first_layer_weights": state.theta["w"]},
                      {"first_layer_weights": ("neuron", "input")}, every)


def hidden_preactivation_kernel(preactivations: Callable[[dict, Tensor], list[Tensor]],
                                x_train: Tensor, every: int | None = None) -> Observable:
    """Kernel of the last hidden layer's pre-activations on the training inputs,

        hidden_kernel[μ, ν] = (1/N_L) Σ_i h^L_i(x_μ) h^L_i(x_ν),

    dims (train_point, train_point_other), per chain (C, n, n). Its posterior mean is the K1 of the
    three-layer adaptive-kernel equations of state (theory.three_layer_adaptive; prior mean:
    σ_L² E[φ(h^{L−1})φ(h^{L−1})], the NNGP of layer L's pre-activations).
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        h = preactivations(state.theta, x_train)[-1]
        return {"hidden_kernel": torch.matmul(h, h.transpose(-1, -2)) / h.shape[-1]}

    return Observable(fn, {"hidden_kernel": ("train_point", "train_point_other")}, every)


def readout_patch_gram() -> Observable:
    """Σ_c a_{p,c} a_{q,c} of a patch network's readout a (C, M, K) (langevin.models.conv):
    variable readout_patch_gram, dims (patch, patch_other), per chain (C, M, M).

    Its posterior mean gives the local order parameter Q_pq = (χM/σ_a²) E[Σ_c a_pc a_qc] of the
    proportional-regime theory (theory.proportional_cnn; prior mean σ_a²/(χM) · I).
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        a = state.theta["a"]
        return {"readout_patch_gram": torch.matmul(a, a.transpose(-1, -2))}

    return Observable(fn, {"readout_patch_gram": ("patch", "patch_other")})


def preactivation_statistics(preactivations: Callable[[dict, Tensor], list[Tensor]],
                             x_probe: Tensor, every: int | None = None) -> Observable:
    """Statistics over the neurons of every hidden layer at fixed probe inputs.

    With h^l_i(x_p) the pre-activation of neuron i of hidden layer l at probe point p
    (`preactivations(theta, x_probe)`: a list of (C, P, N_l)), per chain:

        preactivation_mean[l, p]      m = (1/N_l) Σ_i h^l_i(x_p)
        preactivation_variance[l, p]  v = (1/N_l) Σ_i (h^l_i(x_p) − m)²
        preactivation_kurtosis[l, p]  (1/N_l) Σ_i (h^l_i(x_p) − m)⁴ / v²   (3 for a Gaussian)

    dims (layer, probe); `layer` 0 is the first hidden layer. These are the posterior
    pre-activation statistics of the kernel-renormalization theories (Pacelli et al., Nat. Mach. Intell. 2023): at
    infinite width h^l(x) is Gaussian over neurons with variance K^l(x, x).
    """
    names = ("preactivation_mean", "preactivation_variance", "preactivation_kurtosis")

    def fn(state: LangevinState) -> dict[str, Tensor]:
        means, variances, kurtoses = [], [], []
        for h in preactivations(state.theta, x_probe):
            mean = h.mean(-1)
            centered = h - mean.unsqueeze(-1)
            second = (centered * centered).mean(-1)
            fourth = (centered ** 4).mean(-1)
            means.append(mean)
            variances.append(second)
            kurtoses.append(fourth / (second * second))
        return {"preactivation_mean": torch.stack(means, 1),
                "preactivation_variance": torch.stack(variances, 1),
                "preactivation_kurtosis": torch.stack(kurtoses, 1)}

    return Observable(fn, {name: ("layer", "probe") for name in names}, every)


def empirical_kernels(preactivations: Callable[[dict, Tensor], list[Tensor]],
                      activation: Callable[[Tensor], Tensor], x_probe: Tensor,
                      every: int | None = None) -> Observable:
    """Empirical kernel of every hidden layer on the probe inputs:

        empirical_kernel[l, p, p'] = (1/N_l) Σ_i φ(h^l_i(x_p)) φ(h^l_i(x_p'))

    dims (layer, probe, probe_other), per chain (C, L, P, P). At infinite width in standard
    scaling it is the NNGP kernel E[φφ] of layer l (theory.kernels), which the readout
    multiplies by σ_a²; its posterior change measures feature learning (Seroussi, Naveh & Ringel, Nat. Commun. 2023).
    """

    def fn(state: LangevinState) -> dict[str, Tensor]:
        kernels = []
        for h in preactivations(state.theta, x_probe):
            features = activation(h)
            kernels.append(torch.matmul(features, features.transpose(-1, -2)) / h.shape[-1])
        return {"empirical_kernel": torch.stack(kernels, 1)}

    return Observable(fn, {"empirical_kernel": ("layer", "probe", "probe_other")}, every)


def check_unique_names(observables: Mapping[str, Observable]) -> None:
    """Every variable name must come from exactly one observable."""
    seen: dict[str, str] = {}
    for obs_name, obs in observables.items():
        for var in obs.dims:
            if var in seen:
                raise ValueError(
                    f"variable {var!r} is produced by both {seen[var]!r} and {obs_name!r}"
                )
            seen[var] = obs_name
