"""Kernels of one-hidden-layer networks over local patches (CNN and LCN without pooling).

Network (the sampler's `langevin.models.conv.LocalPatchNetwork`):

    f(x) = Σ_{p=1}^{M} Σ_{c=1}^{K} a_{p,c} φ(w_{(p),c}·x^{(p)} + b_{(p),c}),
    w ~ N(0, σ_w²/k · I_k),  a ~ N(0, σ_a²/(M·K)),  b ~ N(0, σ_b²),

x^{(p)} the p-th patch (k entries) of the input; M patches; the readout fan-in is M·K
(mean-field users pass σ_a² = σ̃_a²/χ themselves, as in `theory.kernels`; the GP
posterior then has noise variance σ² = T = σ̃²/χ, U = ½Σ(f−y)² + Σ_l γ_l/2|θ_l|²). The filters are
shared across patches (CNN, w_{(p),c} = w_c) or not (LCN, w_{p,c}).

Patch-patch covariances of the pre-activations (Aiudi et al.,
arXiv 2307.11807; `deepbays` CONV_1HL with λ0 = k/σ_w²):

    C_pq(x, y) = σ_w² x^{(p)}·y^{(q)}/k + σ_b²,

and the patch-block kernels K_pq(x, y) = κ_φ(C_pp(x,x), C_pq(x,y), C_qq(y,y)) with
κ_φ(c_xx, c_xy, c_yy) = E[φ(u)φ(v)] (`theory.kernels.activation_kernel`; erf, relu, step,
linear, quadratic in closed form, tanh or any callable by Gauss–Hermite quadrature).
For the CNN, K_pq(x, y) = E_w[φ(w·x^{(p)} + b) φ(w·y^{(q)} + b)] with ONE shared filter.

NNGP (the CNN-GP without pooling), the same for CNN and LCN: the readout weights of
different (patch, channel) units are independent, so only p = q survives,

    K(x, y) = E[f(x)f(y)] = σ_a² (1/M) Σ_p K_pp(x, y),

exact at every K (the prior covariance of f; Gaussianity needs K → ∞). One patch covering
the whole input gives the two-layer fully connected NNGP (`theory.kernels.two_layer_gram`).
The local kernel renormalization of the proportional regime replaces (1/M) Σ_p K_pp by
(1/M) Σ_pq Q_pq K_pq with an M×M order parameter Q (Q = I at infinite width).

Patch geometry: inputs are given flat, X of shape (n, prod(input_shape)), row-major;
input_shape is (L,) or (H, W); patch_size and stride are an int (every dimension) or one
per dimension; the patches must tile the input exactly ((size − patch) divisible by the
stride). Patches are numbered row-major over their positions and flattened row-major
(the sampler's convention). Non-overlapping patches: stride = patch_size.

Float64 NumPy only. Shapes: Grams (n1, n2); patch tensors (n, M, k); covariances and
patch blocks (M, M, n1, n2) (memory M²·n1·n2 doubles: 4 patches and n = 1000 is 128 MB).
When the second input is None or the same object as the first, results are symmetrized
exactly and the variances C_pp(x, x) are put on the diagonal exactly.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence, Union

import numpy as np

from theory.kernels import KERNEL_ACTIVATIONS, activation_kernel, gauss_hermite_kernel
from theory.validation import check_nonnegative

__all__ = [
    "PatchGeometry",
    "cnn_gp_diag",
    "cnn_gp_gram",
    "extract_patches",
    "patch_block_kernels",
    "patch_covariances",
    "patch_geometry",
]

Activation = Union[str, Callable[[np.ndarray], np.ndarray]]
Size = Union[int, Sequence[int]]


class PatchGeometry(NamedTuple):
    input_shape: tuple[int, ...]
    patch_size: tuple[int, ...]
    stride: tuple[int, ...]
    grid: tuple[int, ...]  # patch positions per dimension
    num_patches: int  # M
    patch_dim: int  # k


def _per_dimension(value, ndim: int, name: str) -> tuple[int, ...]:
    values = (value,) * ndim if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != ndim or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or v < 1 for v in values):
        raise ValueError(f"{name} must be a positive integer or {ndim} positive integers, "
                         f"got {value!r}")
    return tuple(int(v) for v in values)


def patch_geometry(input_shape: Sequence[int], patch_size: Size, stride: Size) -> PatchGeometry:
    """Validate the geometry; patches per dimension are (size − patch)/stride + 1."""
    shape = tuple(input_shape)
    if len(shape) not in (1, 2) or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                                       or s < 1 for s in shape):
        raise ValueError(f"input_shape must be (L,) or (H, W) of positive integers, "
                         f"got {input_shape!r}")
    shape = tuple(int(s) for s in shape)
    patch = _per_dimension(patch_size, len(shape), "patch_size")
    step = _per_dimension(stride, len(shape), "stride")
    grid = []
    for size, k, s in zip(shape, patch, step):
        if k > size:
            raise ValueError(f"patch_size {patch_size!r} exceeds input_shape {shape!r}")
        if (size - k) % s:
            raise ValueError(f"patches of size {patch_size!r} with stride {stride!r} do not tile "
                             f"input_shape {shape!r}: (size − patch) must be divisible by the "
                             "stride in every dimension")
        grid.append((size - k) // s + 1)
    return PatchGeometry(shape, patch, step, tuple(grid), math.prod(grid), math.prod(patch))


def _as_inputs(X, name: str, geometry: PatchGeometry) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    dim = math.prod(geometry.input_shape)
    if X.ndim != 2 or X.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}) (flat inputs of shape "
                         f"{geometry.input_shape}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must be finite")
    return X


def _patches(X: np.ndarray, geometry: PatchGeometry) -> np.ndarray:
    n = X.shape[0]
    image = X.reshape(n, *geometry.input_shape)
    windows = np.lib.stride_tricks.sliding_window_view(image, geometry.patch_size,
                                                       axis=tuple(range(1, image.ndim)))
    index = (slice(None),) + tuple(slice(None, None, s) for s in geometry.stride)
    windows = windows[index]  # (n, *grid, *patch)
    return np.ascontiguousarray(windows).reshape(n, geometry.num_patches, geometry.patch_dim)


def extract_patches(X, input_shape: Sequence[int], patch_size: Size, stride: Size) -> np.ndarray:
    """x_μ^{(p)} for every input and patch: shape (n, M, k), from flat X (n, prod(input_shape)).

    Patch p = i·G_w + j (2-D, row-major over positions) covers rows i·s_h … i·s_h + k_h − 1 and
    columns j·s_w … j·s_w + k_w − 1, flattened row-major; 1-D: entries p·s … p·s + k − 1.
    """
    geometry = patch_geometry(input_shape, patch_size, stride)
    return _patches(_as_inputs(X, "X", geometry), geometry)


def _pair_expectation(activation: Activation, cxx, cxy, cyy) -> np.ndarray:
    if isinstance(activation, str):
        return activation_kernel(activation, cxx, cxy, cyy)
    if callable(activation):
        return gauss_hermite_kernel(activation, cxx, cxy, cyy)
    raise ValueError(f"activation must be one of {list(KERNEL_ACTIVATIONS)} or a callable, "
                     f"got {activation!r}")


def _prepare(X1, X2, input_shape, patch_size, stride):
    geometry = patch_geometry(input_shape, patch_size, stride)
    symmetric = X2 is None or X2 is X1
    X1 = _as_inputs(X1, "X1", geometry)
    P1 = _patches(X1, geometry)
    P2 = P1 if symmetric else _patches(_as_inputs(X2, "X2", geometry), geometry)
    return geometry, symmetric, P1, P2


def _patch_variances(P: np.ndarray, sigma_w2: float, bias_variance: float) -> np.ndarray:
    """C_pp(x_μ, x_μ) = σ_w²|x_μ^{(p)}|²/k + σ_b², shape (M, n)."""
    return sigma_w2 * np.einsum("npk,npk->pn", P, P) / P.shape[2] + bias_variance


def patch_covariances(X1, X2, input_shape: Sequence[int], patch_size: Size, stride: Size,
                      sigma_w2: float, bias_variance: float = 0.0) -> np.ndarray:
    """C_pq(x_μ, y_ν) = σ_w² x_μ^{(p)}·y_ν^{(q)}/k + σ_b², shape (M, M, n1, n2).

    X2 = None means X2 = X1: then C_pp(x_μ, x_μ) is exact and C[p, q, μ, ν] = C[q, p, ν, μ].
    """
    _, symmetric, P1, P2 = _prepare(X1, X2, input_shape, patch_size, stride)
    sigma_w2 = check_nonnegative(sigma_w2, "sigma_w2")
    bias_variance = check_nonnegative(bias_variance, "bias_variance")
    C = sigma_w2 * np.einsum("apk,bqk->pqab", P1, P2) / P1.shape[2] + bias_variance
    if symmetric:
        C = 0.5 * (C + C.transpose(1, 0, 3, 2))
        variances = _patch_variances(P1, sigma_w2, bias_variance)
        for p in range(C.shape[0]):
            np.fill_diagonal(C[p, p], variances[p])
    return C


def patch_block_kernels(X1, X2, activation: Activation, sigma_w2: float, *,
                        input_shape: Sequence[int], patch_size: Size, stride: Size,
                        bias_variance: float = 0.0) -> np.ndarray:
    """K_pq(x_μ, y_ν) = κ_φ(C_pp(x_μ,x_μ), C_pq(x_μ,y_ν), C_qq(y_ν,y_ν)), shape (M, M, n1, n2).

    The bare expectations (no σ_a², no 1/M): the CNN-GP is σ_a² (1/M) Σ_p K_pp and the locally
    renormalized kernel of Aiudi et al., arXiv 2307.11807 is σ_a² (1/M) Σ_pq Q_pq K_pq. The off-diagonal blocks
    are those of the shared-filter network (CNN, with a shared bias); in the LCN they do not
    enter the kernel. X2 = None means X2 = X1 (then K[p,q,μ,ν] = K[q,p,ν,μ] exactly).
    """
    _, symmetric, P1, P2 = _prepare(X1, X2, input_shape, patch_size, stride)
    sigma_w2 = check_nonnegative(sigma_w2, "sigma_w2")
    bias_variance = check_nonnegative(bias_variance, "bias_variance")
    C = patch_covariances(X1, X2, input_shape, patch_size, stride, sigma_w2, bias_variance)
    var1 = _patch_variances(P1, sigma_w2, bias_variance)  # (M, n1)
    var2 = var1 if symmetric else _patch_variances(P2, sigma_w2, bias_variance)
    K = _pair_expectation(activation, var1[:, None, :, None], C, var2[None, :, None, :])
    return 0.5 * (K + K.transpose(1, 0, 3, 2)) if symmetric else K


def cnn_gp_gram(X1, X2, activation: Activation, sigma_a2: float, sigma_w2: float, *,
                input_shape: Sequence[int], patch_size: Size, stride: Size,
                bias_variance: float = 0.0) -> np.ndarray:
    """CNN-GP without pooling, K(x, y) = σ_a² (1/M) Σ_p κ_φ(C_pp(x,x), C_pp(x,y), C_pp(y,y)).

    Shape (n1, n2); shared by the CNN and the LCN (module docstring). X2 = None means
    X2 = X1 (exactly symmetric Gram). Only the M diagonal patch blocks are formed
    (memory M·n1·n2). One patch covering the input equals
    `theory.kernels.two_layer_gram(X1, X2, activation, sigma_a2, sigma_w2, bias_variance=...)`.
    """
    _, symmetric, P1, P2 = _prepare(X1, X2, input_shape, patch_size, stride)
    sigma_a2 = check_nonnegative(sigma_a2, "sigma_a2")
    sigma_w2 = check_nonnegative(sigma_w2, "sigma_w2")
    bias_variance = check_nonnegative(bias_variance, "bias_variance")
    k = P1.shape[2]
    cross = sigma_w2 * np.einsum("apk,bpk->pab", P1, P2) / k + bias_variance  # (M, n1, n2)
    var1 = _patch_variances(P1, sigma_w2, bias_variance)
    var2 = var1 if symmetric else _patch_variances(P2, sigma_w2, bias_variance)
    if symmetric:
        cross = 0.5 * (cross + cross.transpose(0, 2, 1))
        for p in range(cross.shape[0]):
            np.fill_diagonal(cross[p], var1[p])
    K = sigma_a2 * _pair_expectation(activation, var1[:, :, None], cross,
                                     var2[:, None, :]).mean(0)
    return 0.5 * (K + K.T) if symmetric else K


def cnn_gp_diag(X, activation: Activation, sigma_a2: float, sigma_w2: float, *,
                input_shape: Sequence[int], patch_size: Size, stride: Size,
                bias_variance: float = 0.0) -> np.ndarray:
    """Diagonal K(x, x) = σ_a² (1/M) Σ_p κ_φ(C_pp(x,x)) of `cnn_gp_gram`, shape (n,)."""
    geometry = patch_geometry(input_shape, patch_size, stride)
    P = _patches(_as_inputs(X, "X", geometry), geometry)
    sigma_a2 = check_nonnegative(sigma_a2, "sigma_a2")
    c = _patch_variances(P, check_nonnegative(sigma_w2, "sigma_w2"),
                         check_nonnegative(bias_variance, "bias_variance"))
    return sigma_a2 * _pair_expectation(activation, c, c, c).mean(0)
