"""NNGP kernels: two-point Gaussian expectations of activations and the Gram matrices built on them.

The basic object (Williams 1997; Cho & Saul 2009) is, for (u, v) ~ N(0, [[c_xx, c_xy], [c_xy, c_yy]]),

    κ_φ(c_xx, c_xy, c_yy) = E[φ(u) φ(v)],

with closed forms for
* "erf"  (Williams 1997): (2/π) arcsin(2c_xy / √((1+2c_xx)(1+2c_yy)));
* "relu" (Cho & Saul arc-cosine, degree 1): √(c_xx c_yy)[sin θ + (π − θ) cos θ]/(2π), θ = arccos ρ,
  ρ = c_xy/√(c_xx c_yy) (equivalently ρ(π − arccos ρ) + √(1−ρ²));
* "step" (arc-cosine degree 0, Θ(0) = 1/2): (π − arccos ρ)/(2π);
* "linear": c_xy;   "quadratic" (φ(z) = z², Isserlis): c_xx c_yy + 2 c_xy²;
and "tanh", "symmetric_relu" (φ(z) = ReLU(z − 1) − ReLU(−z − 1); its kinks at |z| = 1 limit
the quadrature to a relative error of about 2·10⁻³ at the default order, against the exact
diagonal E φ(u)² = 2[(c + 1) Q(1/√c) − √c ϕ(1/√c)]) (or any callable φ) by two-dimensional Gauss–Hermite quadrature through the Cholesky
factor u = a z₁, v = b z₁ + c z₂ (z₁, z₂ iid N(0,1); a = √c_xx, b = c_xy/a, c = √(c_yy − b²)).
Where a variance is 0 the correlation ρ is taken as 0, which is exact for relu (the factor
√(c_xx c_yy) vanishes) and for step with Θ(0) = 1/2.

Gram matrices (the NNGP recursion of Lee et al., ICLR 2018), fan-in prior convention (w ~ N(0, σ_w²/d · I_d), readout
a_c ~ N(0, σ_a²/N)); mean-field users pass σ_a² = σ̃_a²/χ themselves:
* two-layer: K(x, y) = σ_a² E_{w~N(0,Σ)}[φ(w·x + b) φ(w·y + b)], b ~ N(0, σ_b²), i.e.
  κ_φ with c_xy = xᵀΣy + σ_b²; Σ = σ_w²/d · I by default or a full d×d matrix.
* deep fully connected: K⁰(x,y) = σ_0² x·y/d + σ_b²,
  K^{l+1}(x,y) = σ_{l+1}² κ_φ(K^l(x,x), K^l(x,y), K^l(y,y)) + σ_b² for the hidden layers, and the
  output kernel is σ_L² κ_φ(K^{L−1}) with no readout bias (so one hidden layer reproduces the
  two-layer Gram exactly, bias included).

Shapes: inputs X are (n, d) float64; Grams are (n1, n2). When the second argument is None or the
same array object as the first, the Gram is symmetrized exactly (it is symmetric in exact
arithmetic; this removes rounding asymmetry of the matrix product and of the quadrature).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from theory.hermite import ACTIVATION_FUNCTIONS, gauss_hermite_normal, gaussian_derivative_mean
from theory.validation import check_nonnegative as _check_nonnegative

__all__ = [
    "GramBlocks",
    "KERNEL_ACTIVATIONS",
    "activation_kernel",
    "activation_mean",
    "deep_fc_diag",
    "deep_fc_gram",
    "gauss_hermite_kernel",
    "gram_blocks",
    "two_layer_diag",
    "two_layer_gram",
]

Activation = Union[str, Callable[[np.ndarray], np.ndarray]]

KERNEL_QUADRATURE_ORDER = 64
# Elements of the (points, order, order) quadrature tensor evaluated at once (bounds memory).
_QUADRATURE_BLOCK_ELEMENTS = 1 << 22
# Relative slack allowed in the Cauchy–Schwarz check c_xy² ≤ c_xx c_yy (rounding of X Σ Yᵀ).
_CORRELATION_SLACK = 1e-8


def _correlation(cxx, cxy, cyy):
    """ρ = c_xy/√(c_xx c_yy), clipped to [−1, 1]; 0 where a variance vanishes."""
    norm = np.sqrt(cxx * cyy)
    positive = norm > 0
    rho = np.divide(cxy, norm, out=np.zeros_like(norm), where=positive)
    return norm, np.clip(rho, -1.0, 1.0)


def _erf_kernel(cxx, cxy, cyy):
    argument = 2.0 * cxy / np.sqrt((1.0 + 2.0 * cxx) * (1.0 + 2.0 * cyy))
    return (2.0 / math.pi) * np.arcsin(np.clip(argument, -1.0, 1.0))


def _relu_kernel(cxx, cxy, cyy):
    norm, rho = _correlation(cxx, cxy, cyy)
    theta = np.arccos(rho)
    return norm * (np.sin(theta) + (math.pi - theta) * rho) / (2.0 * math.pi)


def _step_kernel(cxx, cxy, cyy):
    _, rho = _correlation(cxx, cxy, cyy)
    return (math.pi - np.arccos(rho)) / (2.0 * math.pi)


def _linear_kernel(cxx, cxy, cyy):
    return np.array(cxy, dtype=np.float64, copy=True)


def _quadratic_kernel(cxx, cxy, cyy):
    return cxx * cyy + 2.0 * cxy * cxy


def _tanh_kernel(cxx, cxy, cyy):
    return gauss_hermite_kernel(np.tanh, cxx, cxy, cyy)


def _symmetric_relu_kernel(cxx, cxy, cyy):
    return gauss_hermite_kernel(ACTIVATION_FUNCTIONS["symmetric_relu"], cxx, cxy, cyy)


_KERNELS = {
    "erf": _erf_kernel,
    "relu": _relu_kernel,
    "step": _step_kernel,
    "linear": _linear_kernel,
    "quadratic": _quadratic_kernel,
    "tanh": _tanh_kernel,
    "symmetric_relu": _symmetric_relu_kernel,
}
KERNEL_ACTIVATIONS = tuple(_KERNELS)


def _covariance_arrays(cxx, cxy, cyy):
    """Broadcast to float64 arrays and check that [[c_xx, c_xy], [c_xy, c_yy]] is a covariance."""
    cxx, cxy, cyy = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (cxx, cxy, cyy)))
    for name, value in (("cxx", cxx), ("cxy", cxy), ("cyy", cyy)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite, got non-finite entries in {name}")
    for name, value in (("cxx", cxx), ("cyy", cyy)):
        if np.any(value < 0):
            raise ValueError(f"{name} must be non-negative (a variance), min is {value.min()!r}")
    if np.any(cxy * cxy > cxx * cyy * (1.0 + _CORRELATION_SLACK) + 1e-300):
        raise ValueError("cxy must satisfy cxy² ≤ cxx·cyy (a valid 2×2 covariance); "
                         "violated by more than rounding")
    return cxx, cxy, cyy


def _check_activation_name(activation) -> None:
    if not isinstance(activation, str) or activation not in _KERNELS:
        raise ValueError(f"activation must be one of {list(KERNEL_ACTIVATIONS)}, got {activation!r}")


def activation_kernel(activation: str, cxx, cxy, cyy) -> np.ndarray:
    """E[φ(u)φ(v)] for (u,v) ~ N(0, [[cxx, cxy], [cxy, cyy]]), elementwise with broadcasting.

    `activation` is one of KERNEL_ACTIVATIONS; closed forms as in the module docstring
    (Williams 1997; Cho & Saul 2009), "tanh" by Gauss–Hermite quadrature of order KERNEL_QUADRATURE_ORDER
    (absolute error measured at ρ = 0.7: < 1e-13 for variances ≤ 0.5, ~2e-10 at 1, ~1e-7 at 2,
    ~6e-6 at 4; use `gauss_hermite_kernel(np.tanh, ..., order=...)` for more). Returns a float64
    array of the broadcast shape.
    """
    _check_activation_name(activation)
    cxx, cxy, cyy = _covariance_arrays(cxx, cxy, cyy)
    return _KERNELS[activation](cxx, cxy, cyy)


def gauss_hermite_kernel(phi: Callable[[np.ndarray], np.ndarray], cxx, cxy, cyy,
                         order: int = KERNEL_QUADRATURE_ORDER) -> np.ndarray:
    """E[φ(u)φ(v)] by tensor Gauss–Hermite quadrature, for any vectorized activation φ.

    (u, v) = (a z₁, b z₁ + c z₂), a = √cxx, b = cxy/a, c = √(cyy − b²) (Cholesky factor of
    the covariance; a = 0 gives b = 0, c = √cyy). E ≈ Σ_ij w_i w_j φ(a z_i) φ(b z_i + c z_j).
    Exact for polynomial φ of degree < order; converges geometrically for analytic φ, more
    slowly the larger the variance (tanh, order 64: ~2e-10 at variance 1, ~6e-6 at 4; order
    128: ~4e-8 at 4), and only algebraically for a kink (relu: relative error ~4e-3 at order 64,
    decaying roughly like 1/order; use the closed forms). Cost: n_pairs · order² evaluations of φ;
    memory is bounded by evaluating blocks of points.
    """
    if not callable(phi):
        raise ValueError(f"phi must be a callable activation, got {phi!r}")
    cxx, cxy, cyy = _covariance_arrays(cxx, cxy, cyy)
    rule = gauss_hermite_normal(order)
    shape = cxx.shape
    a = np.sqrt(cxx).ravel()
    b = np.divide(cxy, np.sqrt(cxx), out=np.zeros(shape), where=cxx > 0).ravel()
    c = np.sqrt(np.maximum(cyy.ravel() - b * b, 0.0))
    nodes, weights = rule.nodes, rule.weights
    out = np.empty(a.shape)
    block = max(1, _QUADRATURE_BLOCK_ELEMENTS // (order * order))
    for start in range(0, a.size, block):  # loop over memory blocks, not over points
        sl = slice(start, start + block)
        first = phi(a[sl, None] * nodes)  # φ(u_i): (block, order)
        second = phi((b[sl, None, None] * nodes[:, None]) + c[sl, None, None] * nodes)  # (block, i, j)
        inner = second @ weights  # Σ_j w_j φ(b z_i + c z_j): (block, order)
        out[sl] = (first * inner) @ weights
    return out.reshape(shape)


def activation_mean(activation: Activation, c) -> np.ndarray:
    """E[φ(u)], u ~ N(0, c), elementwise: erf/linear/tanh 0, relu √(c/(2π)), step 1/2, quadratic c."""
    if isinstance(activation, str) and activation not in ACTIVATION_FUNCTIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_FUNCTIONS)} or a callable, "
                         f"got {activation!r}")
    return gaussian_derivative_mean(activation, 0, c)


def _pair_expectation(activation: Activation, cxx, cxy, cyy) -> np.ndarray:
    if isinstance(activation, str):
        return activation_kernel(activation, cxx, cxy, cyy)
    if callable(activation):
        return gauss_hermite_kernel(activation, cxx, cxy, cyy)
    raise ValueError(f"activation must be one of {list(KERNEL_ACTIVATIONS)} or a callable, "
                     f"got {activation!r}")


def _as_inputs(X, name: str, dim: Optional[int] = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {X.shape}")
    if dim is not None and X.shape[1] != dim:
        raise ValueError(f"{name} must have d = {dim} columns like X1, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must be finite")
    return X


def _weight_covariance(d: int, sigma_w2, Sigma) -> np.ndarray:
    if (sigma_w2 is None) == (Sigma is None):
        raise ValueError("give exactly one of sigma_w2 (Σ = sigma_w2/d · I) and Sigma (full d×d); "
                         f"got sigma_w2={sigma_w2!r} and Sigma={'None' if Sigma is None else 'array'}")
    if Sigma is None:
        return _check_nonnegative(sigma_w2, "sigma_w2") / d * np.eye(d)
    Sigma = np.asarray(Sigma, dtype=np.float64)
    if Sigma.shape != (d, d):
        raise ValueError(f"Sigma must have shape ({d}, {d}) to match the inputs, got {Sigma.shape}")
    scale = max(np.abs(Sigma).max(), 1e-300)
    if not np.all(np.isfinite(Sigma)) or np.abs(Sigma - Sigma.T).max() > 1e-12 * scale:
        raise ValueError("Sigma must be a finite symmetric matrix")
    if np.linalg.eigvalsh(Sigma).min() < -1e-12 * scale:
        raise ValueError("Sigma must be positive semi-definite")
    return 0.5 * (Sigma + Sigma.T)


def _symmetrize(K: np.ndarray) -> np.ndarray:
    return 0.5 * (K + K.T)


def _with_exact_diagonal(C: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """Symmetrize a square covariance and put the separately computed diagonal on it.

    In exact arithmetic C_ii = diagonal_i, i.e. ρ = 1; a rounding deficit δ in ρ would become
    an error √(2δ) ~ 1e-8 through arccos (step, and deep recursions), hence the exact diagonal.
    """
    C = _symmetrize(C)
    np.fill_diagonal(C, diagonal)
    return C


def two_layer_gram(X1, X2, activation: Activation, sigma_a2: float, sigma_w2: Optional[float] = None,
                   Sigma=None, bias_variance: float = 0.0) -> np.ndarray:
    """Two-layer NNGP Gram K(x,y) = σ_a² E_{w~N(0,Σ), b~N(0,σ_b²)}[φ(w·x+b)φ(w·y+b)], shape (n1, n2).

    Williams 1997; Cho & Saul 2009; the NNGP recursion of Lee et al., ICLR 2018.
    Σ = sigma_w2/d · I (fan-in prior) or the full d×d `Sigma` (exactly one
    of the two); c_xy = xᵀΣy + bias_variance. `activation` is a name in KERNEL_ACTIVATIONS or a
    vectorized callable (Gauss–Hermite quadrature). X2 = None means X2 = X1 (symmetric Gram).
    Vectorized: one matrix product plus elementwise closed forms.
    """
    symmetric = X2 is None or X2 is X1
    X1 = _as_inputs(X1, "X1")
    X2 = X1 if symmetric else _as_inputs(X2, "X2", X1.shape[1])
    sigma_a2 = _check_nonnegative(sigma_a2, "sigma_a2")
    bias_variance = _check_nonnegative(bias_variance, "bias_variance")
    covariance = _weight_covariance(X1.shape[1], sigma_w2, Sigma)
    projected1 = X1 @ covariance
    cxx = np.einsum("ij,ij->i", projected1, X1) + bias_variance
    cyy = cxx if symmetric else np.einsum("ij,ij->i", X2 @ covariance, X2) + bias_variance
    cxy = projected1 @ X2.T + bias_variance
    if symmetric:
        cxy = _with_exact_diagonal(cxy, cxx)
    K = sigma_a2 * _pair_expectation(activation, cxx[:, None], cxy, cyy[None, :])
    return _symmetrize(K) if symmetric else K


def two_layer_diag(X, activation: Activation, sigma_a2: float, sigma_w2: Optional[float] = None,
                   Sigma=None, bias_variance: float = 0.0) -> np.ndarray:
    """Diagonal K(x, x) of `two_layer_gram`, shape (n,), without forming the (n, n) matrix."""
    X = _as_inputs(X, "X")
    sigma_a2 = _check_nonnegative(sigma_a2, "sigma_a2")
    bias_variance = _check_nonnegative(bias_variance, "bias_variance")
    covariance = _weight_covariance(X.shape[1], sigma_w2, Sigma)
    c = np.einsum("ij,ij->i", X @ covariance, X) + bias_variance
    return sigma_a2 * _pair_expectation(activation, c, c, c)


def _check_weight_variances(weight_variances) -> np.ndarray:
    variances = np.asarray(weight_variances, dtype=np.float64)
    if variances.ndim != 1 or variances.size < 2:
        raise ValueError("weight_variances must be a sequence (σ_0², ..., σ_L²) with at least the "
                         f"input layer and the readout, got {weight_variances!r}")
    if not np.all(np.isfinite(variances)) or np.any(variances < 0):
        raise ValueError(f"weight_variances must be finite and non-negative, got {weight_variances!r}")
    return variances


def deep_fc_gram(X1, X2, activation: Activation, weight_variances: Sequence[float],
                 bias_variance: float = 0.0) -> np.ndarray:
    """Deep fully connected NNGP Gram (the NNGP recursion of Lee et al., ICLR 2018), shape (n1, n2).

    weight_variances = (σ_0², σ_1², ..., σ_L²): layer l has weights ~ N(0, σ_l²/fan_in), the last
    entry is the readout, so there are L = len − 1 hidden layers. Recursion:
    K⁰ = σ_0² x·y/d + σ_b²;  K^l = σ_l² κ_φ(K^{l−1}) + σ_b² (l < L);  output σ_L² κ_φ(K^{L−1})
    (no readout bias). L = 1 equals `two_layer_gram(..., sigma_a2=σ_1², sigma_w2=σ_0²)`.
    X2 = None means X2 = X1 (symmetric Gram).
    """
    symmetric = X2 is None or X2 is X1
    X1 = _as_inputs(X1, "X1")
    X2 = X1 if symmetric else _as_inputs(X2, "X2", X1.shape[1])
    variances = _check_weight_variances(weight_variances)
    bias_variance = _check_nonnegative(bias_variance, "bias_variance")
    d = X1.shape[1]
    diag1 = variances[0] * np.einsum("ij,ij->i", X1, X1) / d + bias_variance
    diag2 = diag1 if symmetric else variances[0] * np.einsum("ij,ij->i", X2, X2) / d + bias_variance
    cross = variances[0] * (X1 @ X2.T) / d + bias_variance
    for layer, variance in enumerate(variances[1:], start=1):
        if symmetric:
            cross = _with_exact_diagonal(cross, diag1)
        bias = bias_variance if layer < variances.size - 1 else 0.0
        cross = variance * _pair_expectation(activation, diag1[:, None], cross, diag2[None, :]) + bias
        new_diag1 = variance * _pair_expectation(activation, diag1, diag1, diag1) + bias
        diag2 = new_diag1 if symmetric else (
            variance * _pair_expectation(activation, diag2, diag2, diag2) + bias)
        diag1 = new_diag1
    return _with_exact_diagonal(cross, diag1) if symmetric else cross


def deep_fc_diag(X, activation: Activation, weight_variances: Sequence[float],
                 bias_variance: float = 0.0) -> np.ndarray:
    """Diagonal K(x, x) of `deep_fc_gram`, shape (n,), without forming the (n, n) matrix."""
    X = _as_inputs(X, "X")
    variances = _check_weight_variances(weight_variances)
    bias_variance = _check_nonnegative(bias_variance, "bias_variance")
    diag = variances[0] * np.einsum("ij,ij->i", X, X) / X.shape[1] + bias_variance
    for layer, variance in enumerate(variances[1:], start=1):
        bias = bias_variance if layer < variances.size - 1 else 0.0
        diag = variance * _pair_expectation(activation, diag, diag, diag) + bias
    return diag


class GramBlocks(NamedTuple):
    """Kernel blocks for GP regression: train (n, n), test_train (n_test, n), test_diag (n_test,)."""

    train: np.ndarray
    test_train: np.ndarray
    test_diag: np.ndarray


def gram_blocks(X_train, X_test, kernel_fn: Callable, diag_fn: Optional[Callable] = None) -> GramBlocks:
    """Evaluate the blocks GP regression needs with one kernel, consistently.

    kernel_fn(X1, X2) -> (n1, n2) Gram (e.g. functools.partial(two_layer_gram, activation="erf",
    sigma_a2=1.0, sigma_w2=1.0)); diag_fn(X) -> (n,) diagonal (e.g. the matching
    `two_layer_diag`). Without diag_fn the test diagonal is read off kernel_fn(X_test, X_test).
    The train block is computed as kernel_fn(X_train, X_train) with the same object twice, so
    the Gram functions of this module return it exactly symmetric.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if X_train.ndim != 2 or X_test.ndim != 2 or X_train.shape[1] != X_test.shape[1]:
        raise ValueError("X_train and X_test must be 2-D with the same number of columns, got "
                         f"shapes {X_train.shape} and {X_test.shape}")
    train = kernel_fn(X_train, X_train)
    test_train = kernel_fn(X_test, X_train)
    test_diag = np.diag(kernel_fn(X_test, X_test)).copy() if diag_fn is None else diag_fn(X_test)
    return GramBlocks(np.asarray(train), np.asarray(test_train), np.asarray(test_diag))
