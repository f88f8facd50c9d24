"""Observables of classification and feature-learning studies, per chain per draw.

Labels are taken as the data give them (±1 for binary classification); margins are y·f.
Shapes: chains on the leading axis of every returned tensor, (C, ...).

- `ntk_observable`: the empirical NTK Θ_c on a probe set (langevin.ntk;
  Geiger, Petrini & Wyart, Phys. Rep. 2021, Eq. (5)) and its relative change from the initialization,
  r_c = ‖Θ_c(t) − Θ_c(0)‖_F / ‖Θ_c(0)‖_F (Geiger, Petrini & Wyart, Fig. 4: the lazy/feature cross-over
  is r = 1). Θ_c(0) is the kernel at the run's initial state (step 0, before burn-in),
  evaluated once and kept in the checkpoint (`Observable.initial`).
- `margin_violations`: N_Δ = #{μ : y_μ f_c(x_μ) < 1} on the training set (Geiger, Petrini & Wyart, §3:
  the number of training points with Δ_μ = 1 − y_μ f_μ > 0, the active terms of the hinge
  loss; N_Δ = 0 is the zero-training-loss side of the jamming line).
- `layer_separation`: D_ℓ = Tr(Σ_w Σ_b⁺) of the representation of every layer on the
  training set (langevin.separation; the law of data separation of He & Su, PNAS 2023), ℓ = 0
  the inputs x, ℓ = 1..L the post-activations φ(h^ℓ) of the hidden layers.
- `dictionary_alignment`: overlaps of the first-layer neurons with the atoms of an
  orthonormal dictionary and the good-neuron sets of Allen-Zhu & Li (arXiv:2005.10190; the
  NumPy reference is experiments.setup.sparse_coding_data.good_neurons).

None of them depends on the likelihood, the temperature or the scaling χ: they are
functions of θ and the data only.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from langevin.likelihoods import unsatisfied_constraints
from langevin.ntk import empirical_ntk, relative_ntk_change
from langevin.observables import Observable
from langevin.separation import separation_fuzziness

Tensor = torch.Tensor
Predict = Callable[[dict, Tensor], Tensor]


def ntk_observable(predict: Predict, x_probe: Tensor, every: int | None = None) -> Observable:
    """Θ_c(x_p, x_p') on the probe inputs x_probe (P, d): variable `ntk`, dims
    (ntk_probe, ntk_probe_other), and `ntk_relative_change` r_c (a scalar per chain).

    Θ_c(x, x') = Σ_l ∂f_c(x)/∂θ_{c,l} · ∂f_c(x')/∂θ_{c,l} over every parameter of the model
    (langevin.ntk.empirical_ntk); the initial kernel Θ_c(0) is `initial(state_0)`."""

    def initial(state) -> dict[str, Tensor]:
        return {"ntk": empirical_ntk(predict, state.theta, x_probe)}

    def fn(state, initial_values: dict[str, Tensor]) -> dict[str, Tensor]:
        kernel = empirical_ntk(predict, state.theta, x_probe)
        return {"ntk": kernel,
                "ntk_relative_change": relative_ntk_change(kernel, initial_values["ntk"])}

    dims = {"ntk": ("ntk_probe", "ntk_probe_other"), "ntk_relative_change": ()}
    return Observable(fn, dims, every, initial)


def margin_violations(predict: Predict, x_train: Tensor, y_train: Tensor) -> Observable:
    """N_Δ,c = Σ_μ 1[y_μ f_c(x_μ) < 1] (int64, a scalar per chain): variable `n_delta`
    (langevin.likelihoods.unsatisfied_constraints of the outputs on the training set)."""

    def fn(state) -> dict[str, Tensor]:
        return {"n_delta": unsatisfied_constraints(predict(state.theta, x_train), y_train)}

    return Observable(fn, {"n_delta": ()})


def layer_separation(preactivations: Callable[[dict, Tensor], list[Tensor]],
                     activation: Callable[[Tensor], Tensor], x_train: Tensor,
                     labels: Tensor) -> Observable:
    """D_{c,ℓ} = Tr(Σ_w Σ_b⁺) per layer ℓ = 0..L: variable `separation`, dims (depth,),
    depth 0 the inputs (the same for every chain), depth ℓ ≥ 1 the representation φ(h^ℓ) of
    hidden layer ℓ on the training inputs x_train (n, d), with the classes of `labels` (n,)
    (langevin.separation.separation_fuzziness; invariant under an orthogonal change of
    basis and a rescaling of every representation)."""
    input_separation = separation_fuzziness(x_train.unsqueeze(0), labels)  # (1,)

    def fn(state) -> dict[str, Tensor]:
        hidden = [separation_fuzziness(activation(h), labels)
                  for h in preactivations(state.theta, x_train)]
        inputs = input_separation.expand_as(hidden[0])
        return {"separation": torch.stack([inputs, *hidden], -1)}

    return Observable(fn, {"separation": ("depth",)})


def normalized_overlaps(weights: Tensor, dictionary: Tensor) -> Tensor:
    """Ō_{c,i,j} = ⟨w_{c,i}, M_j⟩ / |w_{c,i}|: weights (C, N, d), dictionary (d, d) with the
    atoms as unit columns -> (C, N, d). For an orthonormal M, Σ_j Ō_ij² = 1."""
    return torch.matmul(weights, dictionary) / weights.norm(dim=-1, keepdim=True)


def good_neuron_sets(overlaps: Tensor, label_weights: Tensor, c1: float, c2: float
                     ) -> tuple[Tensor, Tensor, Tensor]:
    """The Allen-Zhu & Li good-neuron sets on the normalized overlaps Ō (..., N, d), with the scale
    σ₃ = 1/√d (the RMS of Ō over the atoms, Σ_j Ō_ij² = 1), i.e. their rule with
    σ₃^{(t)} = |w_i^{(t)}|/√d, a time-dependent scale of every neuron (at a prior draw
    w_i ~ N(0, σ₁² I), Ō_ij² has mean 1/d):

        surely good for atom j:      Ō_ij² ≥ (c₁ + c₂) log d / d,
                                     Ō_ij'² < (c₁ − c₂) log d / d for every j' ≠ j,
                                     Ō_ij w*_j > 0;
        potentially good for atom j: Ō_ij² ≥ (c₁ − c₂) log d / d.

    Returns (surely good mask (..., N, d), potentially good mask (..., N, d), the atom of
    every surely good neuron (..., N), int64, −1 for none: a neuron is surely good for at
    most one atom, as c₁ + c₂ ≥ c₁ − c₂)."""
    if not c1 > c2 >= 0:
        raise ValueError(f"need c1 > c2 ≥ 0, got c1 = {c1!r}, c2 = {c2!r}")
    num_atoms = overlaps.shape[-1]
    unit = math.log(num_atoms) / num_atoms  # σ₃² log d with σ₃² = 1/d
    squared = overlaps * overlaps
    large = squared >= (c1 + c2) * unit
    not_small = squared >= (c1 - c2) * unit
    others_not_small = not_small.sum(-1, keepdim=True) - not_small.to(torch.int64)
    surely = large & (others_not_small == 0) & (overlaps * label_weights > 0)
    atom = torch.where(surely.any(-1), surely.to(torch.int64).argmax(-1),
                       torch.full(surely.shape[:-1], -1, dtype=torch.int64,
                                  device=overlaps.device))
    return surely, not_small, atom


def dictionary_alignment(dictionary: Tensor, label_weights: Tensor, c1: float, c2: float,
                         layer: str = "w", every: int | None = None) -> Observable:
    """Alignment of the neurons of the first layer θ[layer] (C, N, d) with the atoms M_j:

        dictionary_overlap  (neuron, atom)  Ō_ij (`normalized_overlaps`)
        good_atom           (neuron,)       j if neuron i is surely good for atom j, else −1
        good_neuron_count   (atom,)         |S_j,sure|, the surely good neurons of atom j
        potentially_good_count (atom,)      |S_j,pot|
        good_neurons        ()              neurons surely good for some atom

    (`good_neuron_sets`; Allen-Zhu & Li, "Good Property Sets")."""
    if dictionary.ndim != 2 or dictionary.shape[0] != dictionary.shape[1]:
        raise ValueError(f"dictionary must be a square (d, d) matrix, got "
                         f"{tuple(dictionary.shape)}")
    if label_weights.shape != (dictionary.shape[1],):
        raise ValueError(f"label_weights must have shape ({dictionary.shape[1]},), got "
                         f"{tuple(label_weights.shape)}")
    if not c1 > c2 >= 0:
        raise ValueError(f"need c1 > c2 ≥ 0, got c1 = {c1!r}, c2 = {c2!r}")

    def fn(state) -> dict[str, Tensor]:
        overlaps = normalized_overlaps(state.theta[layer], dictionary)
        surely, potentially, atom = good_neuron_sets(overlaps, label_weights, c1, c2)
        return {"dictionary_overlap": overlaps, "good_atom": atom,
                "good_neuron_count": surely.sum(-2), "potentially_good_count": potentially.sum(-2),
                "good_neurons": (atom >= 0).sum(-1)}

    dims = {"dictionary_overlap": ("neuron", "atom"), "good_atom": ("neuron",),
            "good_neuron_count": ("atom",), "potentially_good_count": ("atom",),
            "good_neurons": ()}
    return Observable(fn, dims, every)
