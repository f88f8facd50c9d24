"""Config keys of the classification observables ([observables]) and of the sparse-coding
data source ([data], data.source = "sparse_coding"), with their rules; merged into
experiments.setup.config.SCHEMA. Every key is off (or inert) at its default and enters the config
hash only when it differs from its default (observables) or for its data source (data), so
the hash of every earlier run is unchanged."""
from __future__ import annotations

import math

from experiments.setup.config_keys import ConfigError, Key, non_negative

OBSERVABLE_KEYS = {
    "ntk_points": Key(int, 0, non_negative,
                      "empirical NTK of every chain on the first P test points (training points "
                      "without a test set) and its relative change from the initialization "
                      "(0: off)"),
    "ntk_every": Key(int, 0, non_negative, "cadence of the NTK (0: sampler.thin)"),
    "n_delta": Key(bool, False, None,
                   "N_Delta: training points with margin y f < 1, per chain per draw"),
    "separation": Key(bool, False, None,
                      "class separation D_l = Tr(S_within S_between^+) of the inputs (l = 0) "
                      "and of every hidden layer's representation on the training set (fc)"),
    "dictionary_alignment": Key(bool, False, None,
                                "sparse_coding data: overlaps of the first-layer neurons with "
                                "the dictionary atoms and the good-neuron sets"),
    "dictionary_every": Key(int, 0, non_negative,
                            "cadence of the dictionary alignment (0: sampler.thin)"),
    "good_c1": Key(float, 3.0, lambda v: None if math.isfinite(v) and v > 0 else
                   "must be positive and finite",
                   "c1 of the good-neuron sets (thresholds (c1 +- c2) log d / d on the "
                   "squared normalized overlaps)"),
    "good_c2": Key(float, 1.0, non_negative, "c2 of the good-neuron sets (0 <= c2 < c1)"),
}

SPARSE_CODING_KEYS = {
    "noise_std": Key(float, 0.1, non_negative,
                     "sparse_coding: standard deviation sigma_0 of the Gaussian noise xi"),
    "sparsity": Key(int, 0, non_negative,
                    "sparse_coding: non-zeros ||z||_0 = k of every code (0: round(sqrt(d)))"),
}

# Observables that read the hidden layers of the fully connected model.
FC_ONLY = ("separation", "dictionary_alignment")


def validate(config: dict, user_keys) -> None:
    """Cross-key rules, before any compute; messages name the key."""
    observables, data = config["observables"], config["data"]
    defaults = {k: key.default for k, key in OBSERVABLE_KEYS.items()}
    if observables["ntk_every"] > 0 and observables["ntk_points"] == 0:
        raise ConfigError("config key 'observables.ntk_every' needs observables.ntk_points > 0 "
                          "(the probe set of the NTK)")
    if not observables["good_c1"] > observables["good_c2"]:
        raise ConfigError(f"config key 'observables.good_c2' must be smaller than "
                          f"observables.good_c1 = {observables['good_c1']!r}, got "
                          f"{observables['good_c2']!r}")
    if not observables["dictionary_alignment"]:
        stray = [k for k in ("dictionary_every", "good_c1", "good_c2")
                 if observables[k] != defaults[k]]
        if stray:
            raise ConfigError(f"config key 'observables.{stray[0]}' applies with "
                              "observables.dictionary_alignment = true only")
    elif data["source"] != "sparse_coding":
        raise ConfigError("config key 'observables.dictionary_alignment' needs data.source = "
                          f"'sparse_coding' (a dictionary), got {data['source']!r}")
    architecture = config["model"]["architecture"]
    for key in FC_ONLY:
        if observables[key] and architecture not in ("fc", "two_layer"):
            raise ConfigError(f"config key 'observables.{key}' applies to model.architecture "
                              f"= 'fc' only, got {architecture!r}")
    if data["source"] == "sparse_coding":
        if data["d"] < 2:
            raise ConfigError(f"config key 'data.d' must be at least 2 for data.source = "
                              f"'sparse_coding', got {data['d']!r}")
        if data["sparsity"] > data["d"]:
            raise ConfigError(f"config key 'data.sparsity' must be at most data.d = "
                              f"{data['d']}, got {data['sparsity']!r}")
    else:
        stray = sorted(f"data.{k}" for k, key in SPARSE_CODING_KEYS.items()
                       if f"data.{k}" in user_keys and data[k] != key.default)
        if stray:
            raise ConfigError(f"config key {stray[0]!r} applies to data.source = "
                              f"'sparse_coding' only, got data.source {data['source']!r}")
