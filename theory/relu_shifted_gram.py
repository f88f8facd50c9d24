"""The ReLU Gram matrix of a Gaussian weight with a non-zero mean: K_μν = E[relu(w·x_μ) relu(w·x_ν)],
w ~ N(m, C) (the zero-mean case is the arc-cosine kernel of `theory.relu_covariance_gradient`).

A ReLU network has no w → −w symmetry (relu(−z) ≠ −relu(z)), so the posterior law of one neuron's
input weight may have a mean m ≠ 0, which the zero-mean Gaussian closure N(0, Σ) cannot
represent; this kernel puts the sampled mean and covariance in a Gaussian of the same two moments.

Reduction [DERIVED]. For a pair of inputs, u = w·x_μ ~ N(μ_u, s_u²) and v = w·x_ν, with
μ_u = m·x_μ, s_u² = x_μᵀCx_μ, c_uv = x_μᵀCx_ν; given u, v is Gaussian with

    M(u) = μ_v + (c_uv/s_u²)(u − μ_u),   S² = s_v² − c_uv²/s_u²,

and E[relu(v) | u] = M Φ(M/S) + S ϕ(M/S) (Φ, ϕ the standard normal cdf and density; relu(M) at
S = 0). Hence, with u = μ_u + s_u t,

    K_μν = ∫_{t₀}^∞ ϕ(t) (μ_u + s_u t) [M Φ(M/S) + S ϕ(M/S)] dt,   t₀ = −μ_u/s_u,

a smooth integrand on [t₀, ∞), integrated by Gauss–Legendre on [max(t₀, −T), T] with T = 12
(ϕ(12) ≈ 10⁻³²). The diagonal is closed: K_μμ = (μ² + s²)Φ(μ/s) + μ s ϕ(μ/s). At m = 0 the result
equals `relu_gram` to quadrature precision (tested). Shapes: X (n, d), m (d,), C (d, d) → (n, n);
the Gram is unscaled (no σ_a²), as `relu_gram`'s. Cost O(n² · nodes).
"""
from __future__ import annotations

import numpy as np
from scipy import special

from theory.erf_covariance_gradient import checked_inputs_and_covariance

__all__ = ["relu_gram_with_mean"]

TAIL = 12.0   # the Gaussian variable t is integrated over [max(t₀, −TAIL), TAIL]


def _normal_pdf(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def _relu_expectation(mean, std):
    """E[relu(v)] for v ~ N(mean, std²), std ≥ 0 (relu(mean) where std = 0)."""
    safe = np.where(std > 0, std, 1.0)
    z = mean / safe
    value = mean * special.ndtr(z) + safe * _normal_pdf(z)
    return np.where(std > 0, value, np.maximum(mean, 0.0))


def relu_gram_with_mean(X, mean, covariance, num_nodes: int = 200) -> np.ndarray:
    """K_μν = E_{w~N(m, C)}[relu(w·x_μ) relu(w·x_ν)] (n, n) by the reduction of the module docstring."""
    X, C = checked_inputs_and_covariance(X, covariance)
    m = np.asarray(mean, dtype=np.float64)
    if m.shape != (X.shape[1],) or not np.all(np.isfinite(m)):
        raise ValueError(f"mean must be a finite ({X.shape[1]},) array, got shape {m.shape}")
    if num_nodes < 2:
        raise ValueError(f"num_nodes must be at least 2, got {num_nodes!r}")
    mu = X @ m                                               # (n,)
    c = (X @ C) @ X.T
    c = 0.5 * (c + c.T)
    var = np.diagonal(c).copy()
    if np.any(var <= 0):
        raise ValueError("x_μᵀCx_μ must be > 0 for every input (C positive definite, no zero input)")
    s = np.sqrt(var)
    t0 = np.maximum(-mu / s, -TAIL)                           # (n,) lower limit per row μ
    nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
    # t = t0 + (TAIL − t0)(node + 1)/2 for each row μ: (n, nodes)
    half = 0.5 * (TAIL - t0)
    t = t0[:, None] + half[:, None] * (nodes[None, :] + 1.0)
    w_t = half[:, None] * weights[None, :] * _normal_pdf(t)   # (n, nodes)
    u = mu[:, None] + s[:, None] * t                           # (n, nodes), u ≥ 0 on the grid
    slope = c / var[:, None]                                   # c_uv / s_u²   (μ, ν)
    cond_mean = mu[None, :, None] + slope[:, :, None] * (u[:, None, :] - mu[:, None, None])  # (μ, ν, node)
    cond_var = np.maximum(var[None, :] - c * slope, 0.0)       # (μ, ν)
    inner = _relu_expectation(cond_mean, np.sqrt(cond_var)[:, :, None])
    gram = np.einsum("mk,mk,mnk->mn", w_t, u, inner)
    z = mu / s
    np.fill_diagonal(gram, (mu * mu + var) * special.ndtr(z) + mu * s * _normal_pdf(z))
    return 0.5 * (gram + gram.T)
