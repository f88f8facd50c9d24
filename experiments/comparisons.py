"""Sample-vs-theory comparisons attached to a run's summary: every applicable theory's
prediction beside the sampled value with its MCSE."""
from __future__ import annotations

import xarray as xr

from experiments.data import DataSet
from experiments.gp_comparison import compare_gp
from experiments.theory_inputs import two_layer_inputs


def compare_with_theory(config: dict, meta: dict, data: DataSet, ds: xr.Dataset) -> dict:
    inputs = two_layer_inputs(config, meta, n_train=len(data.y_train),
                              input_dim=data.x_train.shape[1])
    out = {}
    gp = compare_gp(inputs, data, ds)
    if gp is not None:
        out["gp"] = gp
    return out
