"""Sample-vs-theory comparisons attached to a run's summary: every applicable theory's
prediction beside the sampled value with its MCSE."""
from __future__ import annotations

import xarray as xr

from experiments.data import DataSet
from experiments.feature_learning_comparison import compare_feature_learning
from experiments.gp_comparison import compare_gp
from experiments.relu_learnability import compare_relu_learnability
from experiments.theory_inputs import two_layer_inputs


def compare_with_theory(config: dict, meta: dict, data: DataSet, ds: xr.Dataset,
                        q: xr.DataArray | None = None) -> dict:
    inputs = two_layer_inputs(config, meta, n_train=len(data.y_train),
                              input_dim=data.x_train.shape[1])
    out = {}
    gp = compare_gp(inputs, data, ds)
    if gp is not None:
        out["gp"] = gp
    out.update(compare_feature_learning(inputs, data, ds, q))  # χ > 1: GFL and Landau
    out.update(compare_relu_learnability(inputs, config, data, ds))  # relu on the relu_abs teacher
    return out
