"""The classification observables of a run (langevin.classification_observables) from the
[observables] keys (experiments.setup.classification_keys) and the run's data: the NTK on the
probe set, N_Δ, the per-layer class separation and the dictionary alignment of the
sparse-coding model. The labels are those of the data (±1 for binary classification)."""
from __future__ import annotations

import numpy as np
import torch

from experiments.setup.data import DataSet
from langevin.run import RunPlan, buffer_capacity
from langevin import classification_observables as cobs
from langevin.activations import get_activation


def _binary_labels(y: np.ndarray, key: str) -> None:
    values = np.unique(y)
    if not np.isin(values, (-1.0, 1.0)).all():
        shown = values[:5].tolist()
        raise ValueError(f"config key 'observables.{key}' needs labels ±1 (margins y·f), but "
                         f"the training labels take {len(values)} values {shown}"
                         f"{' ...' if len(values) > 5 else ''}")


def _class_labels(y: np.ndarray) -> None:
    values, counts = np.unique(y, return_counts=True)
    if len(values) < 2 or counts.min() < 2:
        raise ValueError(f"config key 'observables.separation' needs class labels (at least 2 "
                         f"classes of at least 2 training points each), but the training labels "
                         f"take {len(values)} values, the rarest {int(counts.min())} time(s)")


def classification_observables(config: dict, model, data: DataSet, device, dtype) -> dict:
    """{name: Observable} of the keys that are on (none at their defaults); the labels are
    checked here, before any compute."""
    spec = config["observables"]

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    out = {}
    x_train = tensor(data.x_train)
    if spec["ntk_points"] > 0:
        source = data.x_test if len(data.x_test) else data.x_train
        if spec["ntk_points"] > len(source):
            raise ValueError(f"config key 'observables.ntk_points' = {spec['ntk_points']} exceeds "
                             f"the {len(source)} {'test' if len(data.x_test) else 'training'} "
                             "points of the data")
        out["ntk"] = cobs.ntk_observable(model.predict, tensor(source[:spec["ntk_points"]]),
                                         spec["ntk_every"] or None)
    if spec["n_delta"]:
        _binary_labels(data.y_train, "n_delta")
        out["n_delta"] = cobs.margin_violations(model.predict, x_train, tensor(data.y_train))
    if spec["separation"]:
        _class_labels(data.y_train)
        out["separation"] = cobs.layer_separation(
            model.preactivations, get_activation(config["model"]["activation"]).value, x_train,
            torch.as_tensor(data.y_train, device=device))
    if spec["dictionary_alignment"]:
        if data.dictionary is None or data.label_weights is None:
            raise ValueError("config key 'observables.dictionary_alignment' needs the dictionary "
                             "of data.source = 'sparse_coding' (the run's data has none)")
        out["dictionary_alignment"] = cobs.dictionary_alignment(
            tensor(data.dictionary), tensor(data.label_weights), spec["good_c1"],
            spec["good_c2"], every=spec["dictionary_every"] or None)
    return out


def buffer_elements(config: dict, hidden_widths: tuple[int, ...], data: DataSet) -> int:
    """Numbers per chain the device-side buffers hold between two flushes for these
    observables (experiments.setup.preflight): P² + 1 per NTK draw, 1 for N_Δ, L + 1 for the
    separation, N·d + N + 2d + 1 for the dictionary alignment (N first-layer neurons)."""
    sampler, spec = config["sampler"], config["observables"]
    plan = RunPlan(sampler["burn_in"], sampler["num_steps"], sampler["thin"],
                   sampler["checkpoint_every"])
    thin_draws = buffer_capacity(plan, sampler["thin"])
    total = thin_draws * (int(spec["n_delta"])
                          + (len(hidden_widths) + 1 if spec["separation"] else 0))
    if spec["ntk_points"] > 0:
        total += (buffer_capacity(plan, spec["ntk_every"] or sampler["thin"])
                  * (spec["ntk_points"] ** 2 + 1))
    if spec["dictionary_alignment"]:
        width, d = hidden_widths[0], data.x_train.shape[1]
        total += (buffer_capacity(plan, spec["dictionary_every"] or sampler["thin"])
                  * (width * d + width + 2 * d + 1))
    return total
