"""Deep fc networks in the proportional regime (Pacelli et al., Nat. Mach. Intell. 2023) beside a sampled run.

Applies to L ≥ 2 hidden fc layers, standard scaling (χ = 1), no bias, odd activation
(theory.proportional_deep: Pacelli et al. 2023, nested form; for linear networks also the
back-propagating kernel renormalization of Li & Sompolinsky, PRX 11, 031059 (2021)).
Mapping of the run's convention (theory.proportional_deep docstring): weight_variances =
(σ_1², ..., σ_L², σ̃_a²/χ) with layer-l weights ~ N(0, σ_l²/fan_in) (the registry's deep NNGP,
experiments.compare.theory_inputs.network_prior), widths (N_1..N_L) = model.widths, noise σ² = T.

Section theory.proportional_deep of summary.json:
- order_parameters: the nested-form minimizer Q_l (l = 1..L) with converged/residual/
  iterations, for linear networks the BKR solution u_l beside it, and the sampled Q_l from
  the norm of the weights W_l reading hidden layer l (observables squared_norm_<layer>):
  Q̂_l = 1 + (E|W_l|² − σ_l² n_l/N_l)/σ_l², n_l = N_l N_{l+1} (n_L = N_L), MCSE = MCSE(|W_l|²)/σ_l²
  (theory.proportional_deep.order_parameters_from_weight_norms; an inner layer's norm moves
  only by (Q_l − 1)/N_{l+1} relative, so its Q̂_l is noisy);
- the nested-form test predictions, the NNGP's and the sampled ones
  (experiments.compare.proportional_comparison.sampled_test_section).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from experiments.compare.gp_comparison import gp_prediction
from experiments.compare.proportional_comparison import (ODD_ACTIVATIONS, moment_columns,
                                                 sampled_test_section)
from experiments.rundirs.run_draws import chain_draw
from experiments.setup.data import DataSet
from langevin import diagnostics
from langevin.models.fc import weight_name
from theory.network_prior import NetworkPrior
from theory.proportional_deep import deep_prediction, solve_bkr, solve_deep


def applies(prior: NetworkPrior) -> bool:
    """L ≥ 2 hidden fc layers, χ = 1, no bias, odd activation."""
    return (prior.architecture == "fc" and len(prior.widths) >= 2 and prior.chi == 1.0
            and prior.bias_variance == 0.0 and prior.activation in ODD_ACTIVATIONS)


def _readers(prior: NetworkPrior) -> list[tuple[str, float, int, int]]:
    """(layer name, σ_l², n_l, N_l) of the weights that read hidden layer l = 1..L."""
    widths, out = prior.widths, []
    for l in range(1, len(widths) + 1):
        if l < len(widths):
            out.append((weight_name(l + 1), prior.weight_variances[l], widths[l - 1] * widths[l],
                        widths[l - 1]))
        else:
            out.append(("a", prior.readout_variance, widths[-1], widths[-1]))
    return out


def compare_proportional_deep(prior: NetworkPrior, data: DataSet, ds: xr.Dataset) -> dict:
    """{"proportional_deep": ...} (module docstring), or {} where it does not apply."""
    if not applies(prior) or "f_test" not in ds or not len(data.y_test):
        return {}
    variances = (*prior.weight_variances, prior.readout_variance)
    problem = dict(activation=prior.activation, weight_variances=variances,
                   noise_variance=prior.noise_variance)
    solution = solve_deep(data.x_train, data.y_train, widths=prior.widths, **problem)
    predicted = deep_prediction(data.x_train, data.x_test, data.y_train,
                                solution.order_parameters, y_test=data.y_test, **problem)
    gp = gp_prediction(prior, data)
    nngp = {"test_mean": gp.mean, "test_variance": gp.variance,
            "test_error": float(np.mean((data.y_test - gp.mean) ** 2 + gp.variance))}
    renormalized = {"test_mean": predicted.mean_test, "test_variance": predicted.variance_test,
                    "test_error": predicted.test_error, "train_error": predicted.train_error}
    order = {"theory": solution.order_parameters.tolist(), "converged": solution.converged,
             "residual": solution.residual, "iterations": solution.iterations,
             "alpha": [len(data.y_train) / n for n in prior.widths], "form": "nested"}
    if prior.activation == "linear":
        bkr = solve_bkr(data.x_train, data.y_train, weight_variances=variances,
                        widths=prior.widths, noise_variance=prior.noise_variance)
        order["bkr"] = bkr.order_parameters.tolist()
        order["bkr_converged"] = bkr.converged
    sampled, mcse = [], []
    for name, variance, count, width in _readers(prior):
        key = f"squared_norm_{name}"
        if key not in ds:
            break
        norm = chain_draw(ds[key]).astype(np.float64)
        sampled.append(1.0 + (float(norm.mean()) - variance * count / width) / variance)
        mcse.append(float(diagnostics.mcse_mean(norm)) / variance)
    else:
        order.update(sampled=sampled, sampled_mcse=mcse,
                     estimator="1 + (E|W_l|^2 - sigma_l^2 n_l/N_l)/sigma_l^2")
    f = chain_draw(ds["f_test"], "test_point").astype(np.float64)
    return {"proportional_deep": {"order_parameters": order,
                                  **sampled_test_section(f, data.y_test, renormalized, nngp)}}


def table_columns(summary: dict) -> dict:
    """Sweep-table columns: α_1, Q_l (nested theory, BKR for linear, sampled ± MCSE) per
    layer, and the var_*/err_* columns of experiments.compare.proportional_comparison.moment_columns."""
    section = summary.get("theory", {}).get("proportional_deep")
    if not section:
        return {}
    order = section["order_parameters"]
    row = {"alpha": order["alpha"][0]}
    for l, q in enumerate(order["theory"], start=1):
        row[f"Q{l}_theory"] = q
        if "bkr" in order:
            row[f"Q{l}_bkr"] = order["bkr"][l - 1]
        if "sampled" in order:
            row[f"Q{l}_sampled"] = order["sampled"][l - 1]
            row[f"Q{l}_sampled_mcse"] = order["sampled_mcse"][l - 1]
    row.update(moment_columns(section))
    return row
