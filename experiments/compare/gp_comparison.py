"""The Gaussian-process (NNGP) limit beside the sampled posterior of a run, for every
registered architecture (its entry's NNGP kernel, e.g. the deep fc recursion).

Applies to standard scaling (χ = 1), where the posterior tends to the NNGP posterior as
N → ∞ at fixed σ_a² with corrections O(1/N) (Naveh et al., PRE 2021). For every quantity the
sampled value comes with its MCSE (langevin.diagnostics) and the GP value beside it:

- posterior mean and variance of f on the test points;
- (one hidden layer without bias) per-Hermite learnabilities R_k = f·He_k / y·He_k on the test set (sampled: per draw,
  then averaged; GP: from the GP mean; continuum theory: the single-index spectrum with
  EK and the self-consistent κ);
- the second moments of the input weights along w* and orthogonal to it, which stay
  at the prior σ_w²/d in the GP limit.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from experiments.compare.theory_inputs import TwoLayerTheoryInputs
from experiments.rundirs.run_draws import chain_draw, mean_with_mcse
from experiments.setup.architectures import get_entry
from experiments.setup.data import DataSet
from langevin import diagnostics
from theory.gaussian_process import gp_posterior
from theory.hermite import hermite_he
from theory.network_prior import NetworkPrior
from theory.single_index_spectrum import predicted_learnabilities, single_index_spectrum


def gp_prediction(prior: NetworkPrior, data: DataSet):
    """GP posterior on the test points with the architecture's NNGP kernel and noise
    variance σ² = σ̃²/χ (theory.gaussian_process.gp_posterior)."""
    gram, diag = get_entry(prior.architecture).nngp(prior)
    K_train = gram(data.x_train, None)
    K_test_train = gram(data.x_test, data.x_train)
    K_test_diag = diag(data.x_test)
    return gp_posterior(K_train, K_test_train, K_test_diag, data.y_train, prior.noise_variance)


def mean_and_variance_gap(f: np.ndarray, gp_mean: np.ndarray, gp_variance: np.ndarray) -> dict:
    """Sampled test-output mean/variance vs the GP, with MCSEs and relative gaps.

    f: (chain, draw, test_point). The MCSE of the variance is that of the mean of the
    series (f − f̄)², a first-order estimate (f̄ itself is estimated).
    """
    mean = f.mean(axis=(0, 1))
    mean_mcse = diagnostics.mcse_mean(f)
    squared = (f - mean) ** 2
    variance = squared.mean(axis=(0, 1)) * f.shape[0] * f.shape[1] / (f.shape[0] * f.shape[1] - 1)
    variance_mcse = diagnostics.mcse_mean(squared)
    z_mean = (mean - gp_mean) / mean_mcse
    return {
        "test_mean": gp_mean, "test_variance": gp_variance,
        "sampled_mean": mean, "sampled_mean_mcse": mean_mcse,
        "sampled_variance": variance, "sampled_variance_mcse": variance_mcse,
        "relative_gap_mean": float(np.linalg.norm(mean - gp_mean) / np.linalg.norm(gp_mean)),
        "relative_gap_mean_mcse": float(np.linalg.norm(mean_mcse) / np.linalg.norm(gp_mean)),
        "relative_gap_variance": float(np.linalg.norm(variance - gp_variance)
                                       / np.linalg.norm(gp_variance)),
        "relative_gap_variance_mcse": float(np.linalg.norm(variance_mcse)
                                            / np.linalg.norm(gp_variance)),
        "fraction_of_means_within_4_mcse": float(np.mean(np.abs(z_mean) < 4)),
    }


def hermite_learnabilities(f: np.ndarray, gp_mean: np.ndarray, data: DataSet,
                           inputs: TwoLayerTheoryInputs) -> dict:
    """R_k = f·He_k(Xw*) / y·He_k(Xw*) on the test set, for every k ≥ 1 with c_k ≠ 0."""
    z = data.x_test @ data.teacher_direction
    spectrum = single_index_spectrum(inputs.activation, len(inputs.hermite_coefficients) - 1,
                                     inputs.input_dim, inputs.sigma_w2, inputs.gp_sigma_a2)
    continuum = predicted_learnabilities(inputs.normalized_hermite_coefficients,
                                         spectrum.eigenvalues, spectrum.multiplicities,
                                         inputs.n_train, inputs.noise_variance,
                                         tail_trace=spectrum.tail_trace)
    out = {}
    for k, c in enumerate(inputs.hermite_coefficients):
        if k == 0 or c == 0.0:
            continue
        he = hermite_he(k, z)
        denominator = float(data.y_test @ he)
        per_draw = np.einsum("cdt,t->cd", f, he) / denominator
        out[f"He{k}"] = {**mean_with_mcse(per_draw),
                         "gp": float(gp_mean @ he / denominator),
                         "continuum_ek": float(continuum.ek[k]),
                         "continuum_self_consistent": float(continuum.self_consistent[k]),
                         "eigenvalue": float(spectrum.eigenvalues[k])}
    return out


def compare_gp(prior: NetworkPrior, data: DataSet, ds: xr.Dataset,
               inputs: TwoLayerTheoryInputs | None = None) -> dict | None:
    """All GP-limit comparisons of a run, or None when the run is not in standard scaling.
    `inputs` (two-layer runs only) adds the single-index Hermite learnabilities."""
    if prior.chi != 1.0 or "f_test" not in ds or not len(data.y_test):
        return None
    gp = gp_prediction(prior, data)
    f = chain_draw(ds["f_test"], "test_point").astype(np.float64)
    out = mean_and_variance_gap(f, gp.mean, gp.variance)
    out["condition_number"] = gp.condition_number
    out["log_marginal_likelihood"] = gp.log_marginal_likelihood
    if inputs is not None and data.teacher_direction is not None and inputs.hermite_coefficients:
        out["hermite_learnabilities"] = hermite_learnabilities(f, gp.mean, data, inputs)
    first_layer = prior.weight_variances[0] / prior.input_dim  # w ~ N(0, σ_1²/d)
    for name in ("w_second_moment_parallel", "w_second_moment_perp"):
        if name in ds:
            values = chain_draw(ds[name]).astype(np.float64)
            out[name] = {**mean_with_mcse(values), "gp": first_layer}
    return out
