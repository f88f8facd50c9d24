"""Hermite calculus under the standard Gaussian measure, and Stein projections of activations.

Conventions (Rubin, Seroussi & Ringel 2024, App. A):

* Probabilists' Hermite polynomials He_k, orthogonal under N(0, 1):
  E[He_j(z) He_k(z)] = k! δ_jk, with He_0 = 1, He_1 = z, He_{k+1} = z He_k − k He_{k−1}.
* Normalized Hermite polynomials Ĥe_k = He_k / √(k!), orthonormal under N(0, 1).
* Hermite coefficients of f: f = Σ_k c_k Ĥe_k with c_k = E[f(z) Ĥe_k(z)] ("normalized"),
  equivalently f = Σ_k a_k He_k with a_k = E[f(z) He_k(z)] / k! = c_k / √(k!) ("unnormalized").
* Gaussian derivative means m_k(s) = E[φ^{(k)}(h)], h ~ N(0, s). By Gaussian integration by
  parts m_k(s) = E[φ(√s z) He_k(z)] / s^{k/2}, z ~ N(0, 1), which needs no derivative of φ.
* Single-index projection (Stein's lemma): for x ~ N(0, I_d), z* = w*·x with |w*| = 1,
  h = w·x, q = w·w*, s = |w|²:  E[He_k(z*) φ(h)] = q^k m_k(s).

Closed forms of m_k(s) [DERIVED here from E[φ(μ + h)] by differentiating in μ at μ = 0]:

* erf:  E[erf(μ + h)] = erf(μ/√(1+2s))  ⇒  m_k = (1+2s)^{−k/2} erf^{(k)}(0), with
  erf^{(k)}(0) = (2/√π) (−1)^{k−1} H_{k−1}(0) (physicists' H) for k ≥ 1, erf(0) = 0.
  k = 1: 2/√(π(1+2s));  k = 3: −4/(√π (1+2s)^{3/2})  (Rubin, Seroussi & Ringel 2024, App. A.3).
* relu: m_0 = √(s/(2π)), m_1 = 1/2, and for k ≥ 2 (relu'' = δ)
  m_k = E[δ^{(k−2)}(h)] = s^{−(k−1)/2} He_{k−2}(0)/√(2π).   k = 2: 1/√(2πs).
* step (Θ, with Θ(0) = 1/2): m_0 = 1/2, m_k = s^{−k/2} He_{k−1}(0)/√(2π) for k ≥ 1.
* linear: m_1 = 1, all others 0.   quadratic (z²): m_0 = s, m_2 = 2, all others 0.
* tanh and any callable: Gauss–Hermite quadrature of E[φ(√s z) He_k(z)] / s^{k/2}.

He_m(0) = 0 for odd m and (−1)^{m/2} (m−1)!! for even m; H_m(0) = (−1)^{m/2} m!/(m/2)!.

This module is the base of `theory`: it imports nothing else from the package.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Union

import numpy as np
from scipy import special

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "GaussHermiteRule",
    "HermiteCoefficients",
    "gauss_hermite_normal",
    "gaussian_derivative_mean",
    "hermite_coefficients",
    "hermite_he",
    "normalized_hermite",
    "normalized_hermite_table",
    "single_index_projection",
]

Activation = Union[str, Callable[[np.ndarray], np.ndarray]]

# Pointwise activations φ(z) by name (the registry shared with `theory.kernels`).
# The step function uses Θ(0) = 1/2, which is what the arc-cosine degree-0 kernel assumes
# when a variance is zero.
ACTIVATION_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "erf": special.erf,
    "relu": lambda z: np.maximum(z, 0.0),
    "step": lambda z: np.heaviside(z, 0.5),
    "linear": lambda z: np.asarray(z, dtype=np.float64),
    "quadratic": lambda z: np.square(z),
    "tanh": np.tanh,
    # ReLU(z − 1) − ReLU(−z − 1) (langevin.activations.SYMMETRIC_RELU_THRESHOLD = 1)
    "symmetric_relu": lambda z: np.sign(z) * np.maximum(np.abs(z) - 1.0, 0.0),
}

DEFAULT_QUADRATURE_ORDER = 96
DERIVATIVE_MEAN_QUADRATURE_ORDER = 300
_TAIL_CUT = 14.0  # |z| beyond which the standard normal mass (≈3e-44) is dropped


class GaussHermiteRule(NamedTuple):
    """Quadrature for the standard normal: E[f(z)] ≈ Σ_i weights[i] f(nodes[i]).

    Exact for polynomials of degree ≤ 2·order − 1; weights sum to 1.
    """

    nodes: np.ndarray
    weights: np.ndarray


class HermiteCoefficients(NamedTuple):
    """Coefficients of f under N(0, 1), degrees 0..degree (shape (degree+1,)).

    normalized[k] = E[f Ĥe_k] (f = Σ c_k Ĥe_k); unnormalized[k] = E[f He_k]/k! (f = Σ a_k He_k).
    """

    normalized: np.ndarray
    unnormalized: np.ndarray


def _check_degree(degree, name: str = "degree") -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {degree!r}")
    return int(degree)


def hermite_he(degree: int, z) -> np.ndarray:
    """Probabilists' Hermite polynomial He_degree(z), elementwise.

    Three-term recurrence He_{k+1} = z He_k − k He_{k−1} (exact integer arithmetic on
    integer z up to float64 range). Shape of z is preserved.
    """
    degree = _check_degree(degree)
    z = np.asarray(z, dtype=np.float64)
    previous, current = np.zeros_like(z), np.ones_like(z)
    for k in range(degree):
        previous, current = current, z * current - k * previous
    return current


def normalized_hermite_table(max_degree: int, z) -> np.ndarray:
    """All normalized Hermite polynomials Ĥe_0..Ĥe_max_degree at z: shape (max_degree+1, *z.shape).

    Normalized recurrence Ĥe_{k+1} = (z Ĥe_k − √k Ĥe_{k−1})/√(k+1), which avoids the k!
    growth of He_k and stays accurate to high degree.
    """
    max_degree = _check_degree(max_degree, "max_degree")
    z = np.asarray(z, dtype=np.float64)
    table = np.empty((max_degree + 1,) + z.shape)
    table[0] = 1.0
    if max_degree >= 1:
        table[1] = z
    for k in range(1, max_degree):
        table[k + 1] = (z * table[k] - math.sqrt(k) * table[k - 1]) / math.sqrt(k + 1)
    return table


def normalized_hermite(degree: int, z) -> np.ndarray:
    """Normalized Hermite polynomial Ĥe_degree(z) = He_degree(z)/√(degree!), elementwise."""
    return normalized_hermite_table(degree, z)[-1]


@functools.lru_cache(maxsize=32)
def _cached_rule(order: int) -> GaussHermiteRule:
    # roots_hermitenorm integrates against exp(−z²/2) (asymptotic nodes for large orders);
    # dividing by √(2π) gives the N(0,1) measure.
    nodes, weights = special.roots_hermitenorm(order)
    weights = weights / math.sqrt(2.0 * math.pi)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return GaussHermiteRule(nodes, weights)


def gauss_hermite_normal(order: int) -> GaussHermiteRule:
    """Gauss–Hermite nodes and weights for the standard normal measure (read-only arrays).

    E[f(z)], z ~ N(0,1), ≈ Σ_i w_i f(z_i); exact for polynomials of degree ≤ 2·order − 1.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    return _cached_rule(int(order))


def _piecewise_legendre_rule(breakpoints, order: int) -> GaussHermiteRule:
    """N(0,1) quadrature from Gauss–Legendre panels on [−_TAIL_CUT, _TAIL_CUT] split at breakpoints.

    Each panel carries `order` nodes; weights are Legendre weights × the Gaussian density.
    The mass beyond |z| = _TAIL_CUT (2·Φ(−14) ≈ 3e-44) is dropped.
    """
    cuts = np.unique(np.clip(np.asarray(breakpoints, dtype=np.float64).ravel(), -_TAIL_CUT, _TAIL_CUT))
    edges = np.concatenate(([-_TAIL_CUT], cuts[(cuts > -_TAIL_CUT) & (cuts < _TAIL_CUT)], [_TAIL_CUT]))
    unit_nodes, unit_weights = special.roots_legendre(order)
    lower, upper = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (upper - lower) * unit_nodes + 0.5 * (upper + lower)).ravel()
    weights = (0.5 * (upper - lower) * unit_weights).ravel()
    return GaussHermiteRule(nodes, weights * np.exp(-0.5 * nodes * nodes) / math.sqrt(2.0 * math.pi))


def hermite_coefficients(f: Callable[[np.ndarray], np.ndarray], degree: int,
                         order: int | None = None, breakpoints=None) -> HermiteCoefficients:
    """Hermite coefficients of a 1-D function f under N(0, 1), degrees 0..degree.

    c_k = E[f(z) Ĥe_k(z)], a_k = c_k/√(k!) (see HermiteCoefficients). Two quadratures:

    * breakpoints=None: Gauss–Hermite of the given order (default max(96, degree + 32)); exact
      for polynomial f of degree < 2·order − degree, geometric convergence for analytic f.
      A kink makes it converge only like 1/order (|z| at order 96: error ~3e-3).
    * breakpoints=(b_1, ...): the points where f is not smooth (e.g. (0,) for |z| or relu);
      Gauss–Legendre panels of `order` nodes (default 96) on [−14, 14] split there, so
      piecewise-smooth f converges geometrically again (|z|: ~1e-15).

    `f` must be vectorized (it is called once on the array of nodes).
    """
    degree = _check_degree(degree)
    if not callable(f):
        raise ValueError(f"f must be a callable, got {type(f).__name__}")
    if breakpoints is None:
        rule = gauss_hermite_normal(max(DEFAULT_QUADRATURE_ORDER, degree + 32) if order is None else order)
    else:
        panel_order = max(DEFAULT_QUADRATURE_ORDER, degree + 32) if order is None else order
        if isinstance(panel_order, bool) or not isinstance(panel_order, (int, np.integer)) or panel_order < 1:
            raise ValueError(f"order must be a positive integer, got {order!r}")
        rule = _piecewise_legendre_rule(breakpoints, int(panel_order))
    values = np.asarray(f(rule.nodes), dtype=np.float64)
    if values.shape != rule.nodes.shape:
        raise ValueError(f"f must map an array of shape {rule.nodes.shape} to the same shape, "
                         f"got {values.shape}")
    normalized = normalized_hermite_table(degree, rule.nodes) @ (rule.weights * values)
    log_factorial = special.gammaln(np.arange(degree + 1) + 1.0)
    return HermiteCoefficients(normalized, normalized * np.exp(-0.5 * log_factorial))


def _he_at_zero(m: int) -> float:
    """He_m(0) = 0 (odd m), (−1)^{m/2} (m−1)!! (even m)."""
    if m % 2:
        return 0.0
    return (-1.0) ** (m // 2) * float(special.factorial2(m - 1, exact=True)) if m else 1.0


def _erf_derivative_at_zero(k: int) -> float:
    """erf^{(k)}(0) = (2/√π)(−1)^{k−1} H_{k−1}(0), with H_m(0) = (−1)^{m/2} m!/(m/2)! (even m)."""
    if k == 0:
        return 0.0
    m = k - 1
    if m % 2:
        return 0.0
    physicists_at_zero = (-1.0) ** (m // 2) * math.factorial(m) / math.factorial(m // 2)
    return 2.0 / math.sqrt(math.pi) * (-1.0) ** m * physicists_at_zero


def _check_variance(variance, name: str) -> np.ndarray:
    variance = np.asarray(variance, dtype=np.float64)
    if not np.all(np.isfinite(variance)) or np.any(variance < 0):
        raise ValueError(f"{name} must be finite and non-negative, got {variance!r}")
    return variance


def gaussian_derivative_mean(activation: Activation, degree: int, variance,
                             order: int = DERIVATIVE_MEAN_QUADRATURE_ORDER) -> np.ndarray:
    """m_k(s) = E[φ^{(k)}(h)], h ~ N(0, s), elementwise in s = `variance` (Rubin, Seroussi & Ringel 2024, App. A).

    Closed forms for "erf", "relu", "step", "linear", "quadratic" (module docstring,
    [DERIVED]); "tanh" or a callable φ use Gauss–Hermite quadrature of
    E[φ(√s z) He_k(z)]/s^{k/2}, which needs s > 0 for k ≥ 1 (tanh at the default order 300,
    k ≤ 6: error < 1e-13 for s ≤ 2.5, ~1e-8 at s = 10 — poles of tanh(√s z) near the axis). For relu (k ≥ 2) and step
    (k ≥ 1) m_k diverges as s → 0: s = 0 returns ±inf or nan there, never a finite guess.
    `m_0(s) = E[φ(h)]` is the activation mean.
    """
    k = _check_degree(degree)
    s = _check_variance(variance, "variance")
    with np.errstate(divide="ignore", invalid="ignore"):
        if activation == "erf":
            return _erf_derivative_at_zero(k) * (1.0 + 2.0 * s) ** (-0.5 * k)
        if activation == "relu":
            if k == 0:
                return np.sqrt(s / (2.0 * math.pi))
            if k == 1:
                return np.full_like(s, 0.5)
            return _he_at_zero(k - 2) / math.sqrt(2.0 * math.pi) * s ** (-0.5 * (k - 1))
        if activation == "step":
            if k == 0:
                return np.full_like(s, 0.5)
            return _he_at_zero(k - 1) / math.sqrt(2.0 * math.pi) * s ** (-0.5 * k)
        if activation == "linear":
            return np.full_like(s, 1.0 if k == 1 else 0.0)
        if activation == "quadratic":
            return s.copy() if k == 0 else np.full_like(s, 2.0 if k == 2 else 0.0)
    if isinstance(activation, str):
        if activation not in ACTIVATION_FUNCTIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATION_FUNCTIONS)} or a "
                             f"callable, got {activation!r}")
        phi = ACTIVATION_FUNCTIONS[activation]
    elif callable(activation):
        phi = activation
    else:
        raise ValueError(f"activation must be a name or a callable, got {activation!r}")
    if k >= 1 and np.any(s == 0):
        raise ValueError(f"variance must be > 0 for quadrature derivative means (degree={k}), "
                         f"got {variance!r}")
    rule = gauss_hermite_normal(max(order, k + 32))
    root_s = np.sqrt(s)[..., None]
    values = phi(root_s * rule.nodes)  # φ(√s z_i), shape (*s.shape, order)
    projection = values @ (rule.weights * hermite_he(k, rule.nodes))
    with np.errstate(divide="ignore", invalid="ignore"):
        return projection / s ** (0.5 * k) if k else projection


def single_index_projection(activation: Activation, degree: int, overlap, squared_norm,
                            normalized: bool = False) -> np.ndarray:
    """E_x[He_k(w*·x) φ(w·x)] for x ~ N(0, I_d), |w*| = 1 (Rubin, Seroussi & Ringel 2024, App. A, Stein's lemma).

    = q^k m_k(s) with q = w·w* (`overlap`), s = |w|² (`squared_norm`); elementwise and
    broadcast over q and s. With normalized=True the polynomial is Ĥe_k = He_k/√(k!).
    Requires q² ≤ s (Cauchy–Schwarz). Examples (derived in this module; checked against Rubin, Seroussi & Ringel 2024, App. A):
    erf k=1: 2q/√(π(1+2s)); erf k=3: −4q³/(√π(1+2s)^{3/2}); relu k=1: q/2;
    relu k=2: q²/(√(2π)√s).
    """
    k = _check_degree(degree)
    q = np.asarray(overlap, dtype=np.float64)
    s = _check_variance(squared_norm, "squared_norm")
    if np.any(q * q > s * (1.0 + 1e-12) + 1e-300):
        raise ValueError(f"overlap and squared_norm must satisfy overlap² ≤ squared_norm "
                         f"(|w*| = 1), got overlap={overlap!r}, squared_norm={squared_norm!r}")
    projection = q ** k * gaussian_derivative_mean(activation, k, s)
    return projection / math.sqrt(math.factorial(k)) if normalized else projection
