"""Local kernel renormalization of a shallow CNN / LCN (Aiudi et al., arXiv 2307.11807) beside a sampled run.

Applies to model.architecture = cnn or lcn, standard scaling (χ = 1), no bias, odd activation
(linear, erf, tanh), non-overlapping patches (stride = patch size): the network of
theory.proportional_cnn (Aiudi et al., arXiv 2307.11807).

Conversion of the run's convention onto the theory's inputs [DERIVED; the one place it is done].
The sampler's network (langevin.models.conv) is f(x) = Σ_{p,c} a_pc φ(w_(p)c·x^(p)) with
w ~ N(0, σ_w²/k), a ~ N(0, σ̃_a²/(χ M N_c)), noise σ² = T. theory.conv_kernels.patch_block_kernels
returns the bare expectations κ_pq(x, y) = E_w[φ(w·x^(p)) φ(w·y^(q))] (no σ_a², no 1/M), while
theory.proportional_cnn takes K_pq = (σ_a²/χ) E_w[φφ] without the 1/M (it divides by M itself in
K_R = (1/M) Σ_pq Q_pq K_pq). The prior covariance of f is
E[f(x)f(y)] = Σ_{p,c} (σ̃_a²/(χ M N_c)) κ_pp(x, y) = (σ̃_a²/χ)(1/M) Σ_p κ_pp(x, y), which is the
theory's K_R at Q = I exactly when

    K_pq = (σ̃_a²/χ) κ_pq      (`theory_blocks`; channels = model.channels, noise = T).

So at Q = I (infinite channels) K_R is the registry's CNN-GP (theory.conv_kernels.cnn_gp_gram),
and with one patch covering the input K_R = Q K_11 is the fc NNGP rescaled by the FC scalar.

Estimator of Q_pq from the readout [DERIVED, as the fc Q̂ from ∂ log Z/∂σ_a²]: give the readout of
each channel a prior covariance across patches, a_c ~ N(0, s Λ) with s = σ̃_a²/(χ M N_c). Exactly,
∂ log Z/∂Λ⁻¹ |_{Λ=I} = (N_c/2) I − (1/(2s)) E_post[Σ_c a_c a_cᵀ]. On the theory side the readout
integral gives per channel det(I + Λ^{1/2} C Λ^{1/2}/(N_c M))^{−1/2}; with Q' = Λ^{1/2} Q Λ^{1/2} the
action is S = Tr(Λ⁻¹Q') − log det Q' + log det Λ + (1/N_c)[yᵀA⁻¹y + log det A] (A = σ²I + K_R(Q')),
−log Z = (N_c/2) min S, so by the envelope theorem ∂ log Z/∂Λ⁻¹ |_{Λ=I} = (N_c/2)(I − Q). Equating:

    Q_pq = (χ M/σ̃_a²) E_posterior[Σ_c a_pc a_qc]      (prior mean: I),

the posterior mean of the observable readout_patch_gram times χM/σ̃_a², MCSE per entry
(langevin.diagnostics.mcse_mean). In the LCN the off-diagonal entries vanish exactly: for odd φ
the posterior is invariant under (w_pc, a_pc) → (−w_pc, −a_pc) for one patch p.

Section theory.proportional_cnn of summary.json:
- order_parameters: the local theory's Q (solve_cnn for a cnn, solve_lcn for an lcn; converged,
  residual, iterations, restarts) and Q̂ beside it, per entry p ≤ q ("Q[p,q]": theory, sampled, mcse);
- global_rescaling: the same data with Q restricted to one scalar, Q = q I. Then
  Tr Q − log det Q = M(q − log q), so N_c·S is the fc scalar action of width N_c·M on the CNN-GP
  kernel (theory.proportional_one_layer.solve_one_layer): the kernel renormalization an fc-like
  global rescaling allows. global_rescaling_bound: the lowest test error of the GP with kernel
  q·K_GP over every q > 0 (an oracle value no global rescaling can beat);
- the local-theory test mean/variance/error, the NNGP's (the CNN-GP, Q = I) and the sampled ones
  (experiments.compare.proportional_comparison.sampled_test_section), with the global-rescaling test errors
  beside them in test_error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from experiments.compare import proportional_comparison
from experiments.compare.proportional_comparison import (
    ODD_ACTIVATIONS, global_rescaling_bound, moment_columns, sampled_test_section,
)
from experiments.setup.architectures import PATCH_ARCHITECTURES
from experiments.setup.data import DataSet
from experiments.setup.plotting import pyplot
from langevin import diagnostics
from theory.conv_kernels import patch_block_kernels
from theory.gaussian_process import gp_posterior
from theory.network_prior import NetworkPrior
from theory.proportional_cnn import cnn_prediction, order_parameters_from_readout, solve_cnn, solve_lcn
from theory.proportional_one_layer import renormalized_prediction, solve_one_layer

READOUT_GRAM = "readout_patch_gram"  # Σ_c a_pc a_qc (langevin.observables.readout_patch_gram)
GRADIENT_TOL = 1e-6  # max |dS/dQ_pq| of a converged local solve


def applies(prior: NetworkPrior) -> bool:
    """cnn/lcn, χ = 1, no bias, odd activation, non-overlapping patches."""
    if prior.architecture not in PATCH_ARCHITECTURES or prior.geometry is None:
        return False
    _, patch, stride = prior.geometry
    return (prior.chi == 1.0 and prior.bias_variance == 0.0 and prior.activation in ODD_ACTIVATIONS
            and tuple(np.atleast_1d(patch)) == tuple(np.atleast_1d(stride)))


def theory_blocks(prior: NetworkPrior, data: DataSet):
    """K_pq = (σ̃_a²/χ) κ_pq (module docstring): train (M, M, P, P), test–train (M, M, m, P),
    test diagonal (M, M, m)."""
    shape, patch, stride = prior.geometry
    kernel = dict(activation=prior.activation, sigma_w2=prior.weight_variances[0],
                  input_shape=shape, patch_size=patch, stride=stride)
    scale = prior.readout_variance
    train = scale * patch_block_kernels(data.x_train, None, **kernel)
    test_train = scale * patch_block_kernels(data.x_test, data.x_train, **kernel)
    test = scale * patch_block_kernels(data.x_test, None, **kernel)
    return train, test_train, np.einsum("pqii->pqi", test)


def _prediction_dict(p) -> dict:
    return {"test_mean": p.mean_test, "test_variance": p.variance_test,
            "test_error": p.test_error, "train_error": p.train_error}


def theory_predictions(prior: NetworkPrior, channels: int, data: DataSet) -> dict:
    """Local theory (cnn or lcn), global rescaling (saddle and bound) and NNGP on the run's data;
    channels = model.channels (N_c)."""
    B, B_test, B_diag = theory_blocks(prior, data)
    M = B.shape[0]
    y, s2 = data.y_train, prior.noise_variance
    solve = solve_cnn if prior.architecture == "cnn" else solve_lcn
    local = solve(B, y, channels=channels, noise_variance=s2, gradient_tol=GRADIENT_TOL)
    predicted = cnn_prediction(local.order_parameters, B, B_test, B_diag, y, noise_variance=s2,
                               y_test=data.y_test)
    idx = np.arange(M)
    K, K_test, k_diag = (B[idx, idx].mean(0), B_test[idx, idx].mean(0), B_diag[idx, idx].mean(0))
    gp = gp_posterior(K, K_test, k_diag, y, s2)
    scalar = solve_one_layer(K, y, width=channels * M, noise_variance=s2)
    q = scalar.order_parameter
    rescaled = renormalized_prediction(q * K, q * K_test, q * k_diag, y, noise_variance=s2,
                                       y_test=data.y_test)
    return {
        "local": {"order_parameters": local.order_parameters, "converged": local.converged,
                  "residual": local.residual, "iterations": local.iterations,
                  "restarts": local.restarts, "action": local.action, "message": local.message},
        "renormalized": _prediction_dict(predicted),
        "nngp": {"test_mean": gp.mean, "test_variance": gp.variance,
                 "test_error": float(np.mean((data.y_test - gp.mean) ** 2 + gp.variance))},
        "global_rescaling": {"order_parameter": scalar.order_parameter, "converged": scalar.converged,
                             "test_error": rescaled.test_error, "width": channels * M},
        "global_rescaling_bound": global_rescaling_bound(K, K_test, k_diag, y, s2, data.y_test),
        "num_patches": M, "alpha": len(y) / channels,
    }


def sampled_order_parameters(gram: np.ndarray, prior: NetworkPrior) -> tuple[np.ndarray, np.ndarray]:
    """Q̂ = (χM/σ̃_a²) E[Σ_c a_c a_cᵀ] and its MCSE per entry, from readout_patch_gram
    (chain, draw, M, M)."""
    M = gram.shape[-1]
    factor = M / prior.readout_variance  # χM/σ̃_a², σ_a² = σ̃_a²/χ from the record
    mean = order_parameters_from_readout(gram.mean(axis=(0, 1)), prior.readout_variance_tilde, prior.chi)
    return mean, factor * np.asarray(diagnostics.mcse_mean(gram))


def compare_proportional_cnn(prior: NetworkPrior, channels: int, data: DataSet, ds: xr.Dataset) -> dict:
    """{"proportional_cnn": ...} (module docstring), or {} where it does not apply or the run
    recorded no test outputs; channels = model.channels."""
    if not applies(prior) or "f_test" not in ds or not len(data.y_test):
        return {}
    theory = theory_predictions(prior, channels, data)
    local = theory["local"]
    Q = local["order_parameters"]
    order = {"converged": local["converged"], "residual": local["residual"],
             "iterations": local["iterations"], "restarts": local["restarts"],
             "theory": Q.tolist(), "alpha": theory["alpha"], "num_patches": theory["num_patches"],
             "form": prior.architecture}
    if not local["converged"]:
        order["message"] = local["message"]
    entries = {f"Q[{p},{q}]": {"theory": float(Q[p, q])}
               for p in range(len(Q)) for q in range(p, len(Q))}
    if READOUT_GRAM in ds:
        gram = ds[READOUT_GRAM].transpose("chain", "draw", "patch", "patch_other").values
        sampled, mcse = sampled_order_parameters(gram.astype(np.float64), prior)
        order.update(sampled=sampled.tolist(), sampled_mcse=mcse.tolist(),
                     estimator="chi M / sigma_a2 E[sum_c a_pc a_qc] (E_prior = I)")
        for p in range(len(Q)):
            for q in range(p, len(Q)):
                entries[f"Q[{p},{q}]"].update(sampled=float(sampled[p, q]), mcse=float(mcse[p, q]))
    order["entries"] = entries
    f = ds["f_test"].transpose("chain", "draw", "test_point").values.astype(np.float64)
    section = sampled_test_section(f, data.y_test, theory["renormalized"], theory["nngp"])
    section["test_error"]["global_rescaling"] = theory["global_rescaling"]["test_error"]
    section["test_error"]["global_rescaling_bound"] = theory["global_rescaling_bound"]["test_error"]
    return {"proportional_cnn": {"order_parameters": order,
                                 "global_rescaling": theory["global_rescaling"],
                                 "global_rescaling_bound": theory["global_rescaling_bound"],
                                 **section}}


def table_columns(summary: dict) -> dict:
    """Sweep-table columns of a cnn/lcn run (this section) or an fc run (theory.proportional):
    α = P/N_c (fc: P/N), the var_*/err_* columns (sampled ± MCSE, local or Q̄ theory, NNGP), the
    global-rescaling test errors (cnn/lcn) and the diagonal Q_pp (theory, sampled ± MCSE)."""
    theory = summary.get("theory", {})
    section = theory.get("proportional_cnn")
    if not section:
        row = proportional_comparison.table_columns(summary)
        bound = theory.get("proportional", {}).get("test_error", {}).get("global_rescaling_bound")
        if row and bound is not None:
            row["err_global_bound"] = bound
        return row
    order = section["order_parameters"]
    row = {"alpha": order["alpha"], "Q_converged": order["converged"]}
    row.update(moment_columns(section))
    row["err_global"] = section["test_error"]["global_rescaling"]
    row["err_global_bound"] = section["test_error"]["global_rescaling_bound"]
    for p in range(order["num_patches"]):
        entry = order["entries"][f"Q[{p},{p}]"]
        row[f"Q{p}{p}_theory"] = entry["theory"]
        if "sampled" in entry:
            row[f"Q{p}{p}_sampled"] = entry["sampled"]
            row[f"Q{p}{p}_mcse"] = entry["mcse"]
    return row


def draw_test_errors(preset: str, key: str, table: list[dict], figures_dir) -> None:
    """Test error per network (one column per run): sampled ± 2 MCSE, the network's theory (local
    renormalization for cnn/lcn, Q̄ for fc), the global-rescaling saddle and bound (cnn/lcn) and
    the NNGP."""
    plt = pyplot()
    rows = [r for r in table if "err_theory" in r]
    if not rows:
        return
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 5.0, 3.6))
    ax.errorbar(x, [r["err_sampled"] for r in rows], yerr=[2 * r["err_mcse"] for r in rows],
                fmt="ko", capsize=4, label="sampled (± 2 MCSE)")
    ax.plot(x, [r["err_theory"] for r in rows], "rs", mfc="none", ms=9,
            label="theory (local Q for cnn/lcn, Q̄ for fc)")
    ax.plot(x, [r.get("err_global_bound", np.nan) for r in rows], "b_", ms=22, mew=2,
            label="best global rescaling q·K_GP (bound)")
    ax.plot(x, [r.get("err_global", np.nan) for r in rows], "c^", mfc="none",
            label="global rescaling saddle")
    ax.plot(x, [r["err_nngp"] for r in rows], "gx", ms=8, label="NNGP")
    ax.set_xticks(x, [str(r[key]) for r in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel("test error  mean (y* − f)²")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(figures_dir) / f"{preset}_test_error.png", dpi=120)
    plt.close(fig)
