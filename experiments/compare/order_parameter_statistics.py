"""Sampled statistics of the order parameter q = w·w* (one value per neuron, chain and draw),
each with its Monte Carlo standard error, and their comparison with a predicted density p(q).

Neurons of one network are exchangeable, so every statistic is first computed per draw over the
N neurons of a chain, giving a (chain, draw) series whose posterior mean and MCSE come from
`langevin.diagnostics.mcse_mean` (ESS-based, so the autocorrelation along the draws and the
correlation of the neurons of one network are both accounted for):

    m_2(c, t) = mean_i q_i²,   m_4(c, t) = mean_i q_i⁴,   h_j(c, t) = #{i: q_i ∈ bin j}/(N Δ_j).

- second moment E[q²] = ⟨m_2⟩ (= Var q: the posterior is symmetric under (a, w) → (−a, −w) for an
  odd activation, so E[q] = 0);
- kurtosis ratio R = E[q⁴]/(3 E[q²]²) = ⟨m_4⟩/(3⟨m_2⟩²) (1 for a Gaussian), a ratio estimator
  whose MCSE is that of the linearized series m_4/(3B²) − 2A m_2/(3B³), A = ⟨m_4⟩, B = ⟨m_2⟩
  (delta method);
- histogram density ⟨h_j⟩ per bin with its MCSE, and −log of it (error δp/p).

A predicted density is compared bin by bin through its bin average (1/Δ_j)∫_{bin j} p(q) dq
(midpoint rule on `SUBDIVISIONS` points per bin), not its value at the bin centre.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from langevin import diagnostics

# Histogram bins over [−max|q|, max|q|]; odd so that one bin is centred on q = 0.
NUM_BINS = 41
# Midpoints per bin for the bin average of a predicted density (relative error ~ (Δ/SUB)² p''/p).
SUBDIVISIONS = 16
# A bin enters the comparison only with at least this many sampled neurons (its MCSE needs some).
MIN_COUNT_PER_BIN = 20


def moment_statistics(q: np.ndarray) -> dict:
    """E[q²] and the kurtosis ratio E[q⁴]/(3E[q²]²) with MCSEs; q: (chain, draw, neuron)."""
    m2 = np.mean(q ** 2, axis=-1)
    m4 = np.mean(q ** 4, axis=-1)
    second, fourth = float(m2.mean()), float(m4.mean())
    ratio = fourth / (3.0 * second ** 2)
    linearized = m4 / (3.0 * second ** 2) - 2.0 * fourth * m2 / (3.0 * second ** 3)
    return {
        "second_moment": {"sampled": second, "mcse": float(diagnostics.mcse_mean(m2))},
        "kurtosis_ratio": {"sampled": ratio, "mcse": float(diagnostics.mcse_mean(linearized))},
    }


def histogram_edges(q: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    top = float(np.max(np.abs(q))) * (1.0 + 1e-9) or 1.0
    return np.linspace(-top, top, num_bins + 1)


def per_draw_histogram(q: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Density of the neurons of each (chain, draw) in each bin: (chain, draw, bin)."""
    chains, draws, neurons = q.shape
    bins = len(edges) - 1
    index = np.clip(np.searchsorted(edges, q, side="right") - 1, 0, bins - 1)
    rows = np.arange(chains * draws).reshape(chains, draws, 1)
    counts = np.bincount((rows * bins + index).ravel(), minlength=chains * draws * bins)
    return counts.reshape(chains, draws, bins) / (neurons * np.diff(edges))


def bin_averaged_density(density: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> np.ndarray:
    """(1/Δ_j) ∫_{bin j} p(q) dq by the midpoint rule with SUBDIVISIONS points per bin."""
    fractions = (np.arange(SUBDIVISIONS) + 0.5) / SUBDIVISIONS
    points = edges[:-1, None] + np.diff(edges)[:, None] * fractions[None, :]
    return density(points.ravel()).reshape(points.shape).mean(axis=1)


def _negative_log(values: np.ndarray) -> list:
    """−log of a density, None where it is not positive (JSON has no inf)."""
    out = np.full(values.shape, np.nan)
    positive = values > 0
    out[positive] = -np.log(values[positive])
    return [None if not np.isfinite(v) else float(v) for v in out]


def density_comparison(q: np.ndarray, densities: dict[str, Callable[[np.ndarray], np.ndarray]],
                       num_bins: int = NUM_BINS) -> dict:
    """The sampled histogram of q with per-bin MCSE beside each predicted density.

    Returns JSON-ready lists: bin `edges`, `centers`, `sampled_density`, its `sampled_mcse`,
    `sampled_neg_log` (None for empty bins) and its error `sampled_neg_log_error` = MCSE/p; per
    theory name: `<name>_density` (bin averages), `<name>_neg_log`, and a scalar
    `<name>_fraction_of_bins_within_4_mcse` over the bins holding at least MIN_COUNT_PER_BIN
    sampled neurons (`compared_bins` of them).
    """
    edges = histogram_edges(q, num_bins)
    per_draw = per_draw_histogram(q, edges)
    sampled = per_draw.mean(axis=(0, 1))
    mcse = np.asarray(diagnostics.mcse_mean(per_draw), dtype=np.float64)
    counts = np.histogram(q, bins=edges)[0]
    compared = (counts >= MIN_COUNT_PER_BIN) & (mcse > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_log_error = np.where(sampled > 0, mcse / sampled, np.nan)
    out = {
        "edges": edges.tolist(), "centers": (0.5 * (edges[1:] + edges[:-1])).tolist(),
        "sampled_density": sampled.tolist(), "sampled_mcse": mcse.tolist(),
        "sampled_neg_log": _negative_log(sampled),
        "sampled_neg_log_error": [None if not np.isfinite(v) else float(v) for v in neg_log_error],
        "compared_bins": int(compared.sum()),
    }
    for name, density in densities.items():
        predicted = bin_averaged_density(density, edges)
        out[f"{name}_density"] = predicted.tolist()
        out[f"{name}_neg_log"] = _negative_log(predicted)
        z = np.abs(sampled - predicted)[compared] / mcse[compared]
        out[f"{name}_fraction_of_bins_within_4_mcse"] = float(np.mean(z < 4)) if z.size else None
    return out


def gaussian_density(variance: float) -> Callable[[np.ndarray], np.ndarray]:
    """q ↦ N(q; 0, variance)."""
    return lambda q: np.exp(-np.square(q) / (2.0 * variance)) / np.sqrt(2.0 * np.pi * variance)
