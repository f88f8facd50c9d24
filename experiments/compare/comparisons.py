"""Sample-vs-theory comparisons attached to a run's summary: every applicable theory's
prediction beside the sampled value with its MCSE."""
from __future__ import annotations

import xarray as xr

from experiments.compare.feature_learning_comparison import compare_feature_learning
from experiments.compare.gp_comparison import compare_gp
from experiments.compare.proportional_cnn_comparison import compare_proportional_cnn
from experiments.compare.proportional_comparison import compare_proportional
from experiments.compare.proportional_deep_comparison import compare_proportional_deep
from experiments.compare.relu_learnability import compare_relu_learnability
from experiments.compare.three_layer_comparison import compare_three_layer
from experiments.compare.theory_inputs import is_two_layer, network_prior, two_layer_inputs
from experiments.setup.data import DataSet
from experiments.setup.run_mode_setup import theory_skip_reason


def compare_with_theory(config: dict, meta: dict, data: DataSet, ds: xr.Dataset,
                        q: xr.DataArray | None = None) -> dict:
    """The GP limit for every architecture (its registry NNGP kernel, χ = 1); the two-layer
    theories (single-index learnabilities, GFL, Landau) for one hidden layer without bias.
    None of them applies to a non-Gaussian likelihood, an output scale, centring, T = 0 or
    an annealed T: then {"skipped": reason}."""
    reason = theory_skip_reason(config)
    if reason is not None:
        return {"skipped": reason}
    input_dim = data.x_train.shape[1]
    prior = network_prior(config, meta, input_dim)
    inputs = (two_layer_inputs(config, meta, n_train=len(data.y_train), input_dim=input_dim)
              if is_two_layer(config) else None)
    out = {}
    gp = compare_gp(prior, data, ds, inputs)
    if gp is not None:
        out["gp"] = gp
    out.update(compare_proportional(prior, data, ds))  # 1HL, χ = 1, no bias, odd φ: Q̄ (§5.2)
    out.update(compare_proportional_deep(prior, data, ds))  # L ≥ 2 hidden layers: Q_l (§5.3)
    out.update(compare_proportional_cnn(prior, config["model"]["channels"], data, ds))  # cnn/lcn: Q_pq (§5.5)
    out.update(compare_three_layer(prior, data, ds))  # 2 hidden erf layers: Σ, K1 (§3.5)
    if inputs is not None:
        out.update(compare_feature_learning(inputs, data, ds, q))  # χ > 1: GFL and Landau
        out.update(compare_relu_learnability(inputs, config, data, ds))  # relu, relu_abs teacher
    return out
