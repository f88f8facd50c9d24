"""The three-layer erf adaptive-kernel equations of state (Seroussi, Naveh & Ringel 2023, `AdaptiveGPs` notebook) beside a sampled run.

Applies to fc networks with two hidden layers, erf, no bias (theory.three_layer_adaptive: Seroussi,
Naveh, Ringel, Nat. Commun. 14, 908 (2023)). Mapping of the run's convention onto the theory's
inputs: f(x) = Σ_c a_c erf(h_c(x)), h = W erf(w·x), w ~ N(0, σ_1²/d) (input_variance =
posterior.sigma_w2[0]), W ~ N(0, σ_2²/N_1) (hidden_variance = sigma_w2[1]), a ~ N(0, σ̃_a²/(χN_2))
(readout_variance = σ̃_a²/χ), noise σ² = T = σ̃²/χ, widths (C1, C2) = model.widths. The equations are
solved for both signs of the log-det term: the derived s = −1 ("theory") and the notebook's s = +1
("theory_notebook_sign"), each by continuation in width from the GP (theory.three_layer_adaptive.
scan_three_layer at C1 = C2 = C on a geometric path from 10⁴ down to min(C1, C2), then one solve at
(C1, C2) if they differ).

The section is computed for runs that record the hidden kernel (observables.hidden_kernel = true).
Section theory.three_layer of summary.json (each entry: sampled, mcse, theory, theory_notebook_sign, gp):
- sigma_parallel = w*ᵀΣw* against w_second_moment_parallel = mean_i (w_i·w*)² (posterior mean over
  the N_1 first-layer neurons); sigma_perp = (Tr Σ − w*ᵀΣw*)/(d − 1) against w_second_moment_perp
  (langevin.observables.weight_second_moments; needs a teacher direction);
- from the observable hidden_kernel = (1/N_2) h hᵀ on the training inputs (its posterior mean is
  K1): hidden_kernel_target = yᵀK1y/yᵀy and hidden_kernel_trace =
  Tr K1/n (linear in K1: the MCSE is that of the per-draw series), and hidden_kernel_eigenvalues, the
  top TOP_EIGENVALUES eigenvalues λ_k of the posterior-mean K1 against those of the theory K1 (each
  sign) and of the GP's Q1. MCSE of λ_k by first-order perturbation: δλ_k = v_kᵀ δK v_k (v_k the
  eigenvector of the sampled mean), so it is the MCSE of the series v_kᵀ K1(draw) v_k (valid while
  it is small against the gaps λ_k − λ_{k±1});
- solutions: converged/residual/iterations of both solves.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from experiments.setup.data import DataSet
from langevin import diagnostics
from theory.network_prior import NetworkPrior
from theory.three_layer_adaptive import scan_three_layer, solve_three_layer, three_layer_gp

HIDDEN_KERNEL = "hidden_kernel"  # langevin.observables.hidden_preactivation_kernel
TOP_EIGENVALUES = 3
SIGNS = {"theory": -1, "theory_notebook_sign": 1}


def applies(prior: NetworkPrior) -> bool:
    """fc, two hidden layers, erf, no bias."""
    return (prior.architecture == "fc" and len(prior.widths) == 2 and prior.activation == "erf"
            and prior.bias_variance == 0.0)


def width_path(widths) -> list[float]:
    """Geometric continuation path C = 10⁴ … min(C1, C2) (about 4 points per decade)."""
    low = float(min(widths))
    if low >= 1e4:
        return [low]
    count = max(2, int(math.ceil(4 * math.log10(1e4 / low))) + 1)
    return [float(c) for c in np.geomspace(1e4, low, count)]


def solve_both_signs(prior: NetworkPrior, data: DataSet) -> dict:
    """{"gp": GP solution, "theory": s = −1, "theory_notebook_sign": s = +1} (ThreeLayerSolution)."""
    params = dict(input_variance=prior.weight_variances[0], hidden_variance=prior.weight_variances[1],
                  readout_variance=prior.readout_variance, noise_variance=prior.noise_variance)
    X, y = data.x_train, data.y_train
    out = {"gp": three_layer_gp(X, y, **params)}
    for name, sign in SIGNS.items():
        scan = scan_three_layer(X, y, width_path(prior.widths), logdet_sign=sign, **params)
        solution = scan.solutions[-1]
        if prior.widths[0] != prior.widths[1]:
            solution = solve_three_layer(X, y, widths=tuple(prior.widths), logdet_sign=sign,
                                         initial=solution, **params)
        out[name] = solution
    return out


def _covariance_parts(Sigma: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    parallel = float(direction @ Sigma @ direction)
    return parallel, (float(np.trace(Sigma)) - parallel) / (len(direction) - 1)


def _entry(series: np.ndarray, values: dict) -> dict:
    return {"sampled": float(series.mean()), "mcse": float(diagnostics.mcse_mean(series)), **values}


def _kernel_scalars(K: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(y @ K @ y) / float(y @ y), float(np.trace(K)) / len(y)


def compare_three_layer(prior: NetworkPrior, data: DataSet, ds: xr.Dataset) -> dict:
    """{"three_layer": ...} (module docstring), or {} where it does not apply or the run did not
    record the hidden kernel (the opt-in: two solves of ~7n³ flops per residual each, minutes at
    n ≈ 10³, are not added to every deep erf run's report)."""
    has_sigma = "w_second_moment_parallel" in ds and data.teacher_direction is not None
    if not applies(prior) or HIDDEN_KERNEL not in ds:
        return {}
    solutions = solve_both_signs(prior, data)
    out = {"solutions": {name: {"converged": s.converged, "residual": s.residual,
                                "iterations": s.iterations, "logdet_sign": s.logdet_sign,
                                "message": s.message}
                         for name, s in solutions.items() if name != "gp"},
           "widths": list(prior.widths)}
    if has_sigma:
        w_star = np.asarray(data.teacher_direction, dtype=np.float64)
        parts = {name: _covariance_parts(s.covariance, w_star) for name, s in solutions.items()}
        for index, (key, observable) in enumerate((("sigma_parallel", "w_second_moment_parallel"),
                                                   ("sigma_perp", "w_second_moment_perp"))):
            series = ds[observable].transpose("chain", "draw").values.astype(np.float64)
            out[key] = _entry(series, {name: p[index] for name, p in parts.items()})
    if HIDDEN_KERNEL in ds:
        K = ds[HIDDEN_KERNEL].transpose("chain", "draw", "train_point", "train_point_other").values
        K = K.astype(np.float64)
        y = data.y_train
        scalars = {name: _kernel_scalars(s.hidden_kernel, y) for name, s in solutions.items()}
        out["hidden_kernel_target"] = _entry(np.einsum("cdij,i,j->cd", K, y, y) / float(y @ y),
                                             {n: v[0] for n, v in scalars.items()})
        out["hidden_kernel_trace"] = _entry(np.einsum("cdii->cd", K) / len(y),
                                            {n: v[1] for n, v in scalars.items()})
        mean = K.mean(axis=(0, 1))
        values, vectors = np.linalg.eigh(0.5 * (mean + mean.T))
        theory = {name: np.linalg.eigvalsh(s.hidden_kernel)[::-1] for name, s in solutions.items()}
        eigen = {}
        for k in range(min(TOP_EIGENVALUES, len(y))):
            v = vectors[:, -1 - k]
            series = np.einsum("cdij,i,j->cd", K, v, v)
            eigen[str(k + 1)] = {"sampled": float(values[-1 - k]),
                                 "mcse": float(diagnostics.mcse_mean(series)),
                                 **{name: float(t[k]) for name, t in theory.items()}}
        out["hidden_kernel_eigenvalues"] = eigen
    return {"three_layer": out}


def table_columns(summary: dict) -> dict:
    """Sweep-table columns: every compared scalar (sampled, MCSE, both signs, GP)."""
    section = summary.get("theory", {}).get("three_layer")
    if not section:
        return {}
    row = {"C1": section["widths"][0], "C2": section["widths"][1]}
    entries = {k: section[k] for k in ("sigma_parallel", "sigma_perp", "hidden_kernel_target",
                                       "hidden_kernel_trace") if k in section}
    entries.update({f"K1_eig{k}": v for k, v in section.get("hidden_kernel_eigenvalues", {}).items()})
    for name, entry in entries.items():
        for field, suffix in (("sampled", ""), ("mcse", "_mcse"), ("theory", "_theory"),
                              ("theory_notebook_sign", "_plus"), ("gp", "_gp")):
            row[f"{name}{suffix}"] = entry[field]
    return row
