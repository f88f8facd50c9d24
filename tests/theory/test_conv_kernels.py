"""Patch kernels of CNN/LCN networks: patch extraction, covariances, the CNN-GP without
pooling against Monte Carlo over random finite networks, exact reductions and invariants."""
import numpy as np
import pytest

from theory.conv_kernels import (
    cnn_gp_diag, cnn_gp_gram, extract_patches, patch_block_kernels, patch_covariances,
    patch_geometry,
)
from theory.hermite import ACTIVATION_FUNCTIONS
from theory.kernels import two_layer_gram

GEOMETRIES = [  # (input_shape, patch_size, stride)
    ((12,), 3, 3),
    ((10,), 4, 2),
    ((6, 6), 3, 3),
    ((6, 6), 4, 2),
    ((7, 6), (3, 2), (2, 2)),
]


def _inputs(n, shape, seed):
    return np.random.default_rng(seed).standard_normal((n, int(np.prod(shape))))


def _loop_patches(X, shape, patch, stride):
    g = patch_geometry(shape, patch, stride)
    image = X.reshape(X.shape[0], *shape)
    out = []
    if len(shape) == 1:
        for i in range(g.grid[0]):
            out.append(image[:, i * g.stride[0]:i * g.stride[0] + g.patch_size[0]])
    else:
        for i in range(g.grid[0]):
            for j in range(g.grid[1]):
                r, c = i * g.stride[0], j * g.stride[1]
                out.append(image[:, r:r + g.patch_size[0], c:c + g.patch_size[1]].reshape(len(X), -1))
    return np.stack(out, axis=1)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_patches_equal_explicit_slicing(geometry):
    shape, patch, stride = geometry
    X = _inputs(3, shape, 0)
    P = extract_patches(X, shape, patch, stride)
    np.testing.assert_array_equal(P, _loop_patches(X, shape, patch, stride))
    g = patch_geometry(shape, patch, stride)
    assert P.shape == (3, g.num_patches, g.patch_dim)


def test_patch_covariances_are_scaled_patch_inner_products():
    shape, patch, stride = (6, 6), 4, 2
    X1, X2 = _inputs(3, shape, 1), _inputs(4, shape, 2)
    C = patch_covariances(X1, X2, shape, patch, stride, sigma_w2=1.7, bias_variance=0.3)
    P1, P2 = _loop_patches(X1, shape, patch, stride), _loop_patches(X2, shape, patch, stride)
    for p in range(4):
        for q in range(4):
            np.testing.assert_allclose(C[p, q], 1.7 * P1[:, p] @ P2[:, q].T / 16 + 0.3,
                                       rtol=1e-12, atol=1e-14)
    S = patch_covariances(X1, None, shape, patch, stride, sigma_w2=1.7)
    np.testing.assert_array_equal(S, S.transpose(1, 0, 3, 2))


def _empirical_kernels(X, shape, patch, stride, phi, sigma_a2, sigma_w2, sigma_b2, shared,
                       num_networks, channels, rng):
    """Per network r: E_a[f(x)f(y) | w, b] = σ_a²/(M K) Σ_{p,c} φ(h_pc(x)) φ(h_pc(y)); (R, n, n)."""
    P = extract_patches(X, shape, patch, stride)  # (n, M, k)
    n, M, k = P.shape
    filters = (num_networks, channels, k) if shared else (num_networks, M, channels, k)
    w = rng.standard_normal(filters) * np.sqrt(sigma_w2 / k)
    b = rng.standard_normal(filters[:-1]) * np.sqrt(sigma_b2)
    if shared:
        h = np.einsum("npk,rck->rnpc", P, w) + b[:, None, None, :]
    else:
        h = np.einsum("npk,rpck->rnpc", P, w) + b[:, None, :, :]
    features = phi(h).reshape(num_networks, n, M * channels)
    return sigma_a2 * features @ features.transpose(0, 2, 1) / (M * channels)


@pytest.mark.parametrize("activation", ["erf", "relu"])
@pytest.mark.parametrize("geometry", [((6, 6), 3, 3), ((6, 6), 4, 2), ((10,), 4, 2)])
@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_cnn_gp_equals_monte_carlo_over_random_finite_networks(activation, geometry, shared):
    shape, patch, stride = geometry
    X = _inputs(5, shape, 3)
    rng = np.random.default_rng(4)
    samples = _empirical_kernels(X, shape, patch, stride, ACTIVATION_FUNCTIONS[activation],
                                 sigma_a2=1.5, sigma_w2=2.0, sigma_b2=0.2, shared=shared,
                                 num_networks=1000, channels=32, rng=rng)
    K = cnn_gp_gram(X, None, activation, 1.5, 2.0, input_shape=shape, patch_size=patch,
                    stride=stride, bias_variance=0.2)
    estimate = samples.mean(0)
    standard_error = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    z = np.abs(estimate - K) / standard_error
    assert np.all(z < 4), f"max z = {z.max():.2f}"


@pytest.mark.parametrize("activation", ["erf", "relu", "tanh", "quadratic", np.sin])
def test_one_patch_covering_the_input_is_the_two_layer_nngp(activation):
    for shape in [(9,), (3, 4)]:
        X1, X2 = _inputs(6, shape, 5), _inputs(4, shape, 6)
        for second in (None, X2):
            K = cnn_gp_gram(X1, second, activation, 0.8, 1.6, input_shape=shape,
                            patch_size=shape, stride=1, bias_variance=0.1)
            K_fc = two_layer_gram(X1, second, activation, sigma_a2=0.8, sigma_w2=1.6,
                                  bias_variance=0.1)
            np.testing.assert_allclose(K, K_fc, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["erf", "relu", "tanh"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_cnn_gp_is_symmetric_psd_and_its_diag_and_cross_blocks_agree(activation, geometry):
    shape, patch, stride = geometry
    X = _inputs(12 if activation == "tanh" else 30, shape, 7)  # tanh: quadrature, slower
    kwargs = dict(input_shape=shape, patch_size=patch, stride=stride, bias_variance=0.05)
    K = cnn_gp_gram(X, None, activation, 1.2, 0.9, **kwargs)
    np.testing.assert_array_equal(K, K.T)
    eigenvalues = np.linalg.eigvalsh(K)
    assert eigenvalues.min() > -1e-12 * eigenvalues.max()
    np.testing.assert_allclose(cnn_gp_diag(X, activation, 1.2, 0.9, **kwargs), np.diag(K),
                               rtol=1e-13)
    if activation != "tanh":  # tanh: Gauss–Hermite, not symmetric in (x, y) beyond its error
        cross = cnn_gp_gram(X[:7], X[7:], activation, 1.2, 0.9, **kwargs)
        np.testing.assert_allclose(cross, K[:7, 7:], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("activation", ["erf", "relu", "linear"])
@pytest.mark.parametrize("geometry", [((6, 6), 3, 3), ((10,), 4, 2)])
def test_diagonal_patch_blocks_average_to_the_cnn_gp(activation, geometry):
    shape, patch, stride = geometry
    X1, X2 = _inputs(6, shape, 8), _inputs(5, shape, 9)
    kwargs = dict(input_shape=shape, patch_size=patch, stride=stride, bias_variance=0.1)
    for second in (None, X2):
        blocks = patch_block_kernels(X1, second, activation, 1.3, **kwargs)
        M = blocks.shape[0]
        assert blocks.shape == (M, M, 6, 6 if second is None else 5)
        diagonal_mean = np.mean([blocks[p, p] for p in range(M)], axis=0)
        np.testing.assert_allclose(0.7 * diagonal_mean,
                                   cnn_gp_gram(X1, second, activation, 0.7, 1.3, **kwargs),
                                   rtol=1e-12, atol=1e-14)
    symmetric = patch_block_kernels(X1, None, activation, 1.3, **kwargs)
    np.testing.assert_array_equal(symmetric, symmetric.transpose(1, 0, 3, 2))


def test_linear_patch_blocks_are_the_patch_covariances():
    shape = (6, 6)
    X1, X2 = _inputs(4, shape, 10), _inputs(3, shape, 11)
    blocks = patch_block_kernels(X1, X2, "linear", 1.1, input_shape=shape, patch_size=2, stride=2)
    C = patch_covariances(X1, X2, shape, 2, 2, sigma_w2=1.1)
    np.testing.assert_allclose(blocks, C, rtol=1e-14)


@pytest.mark.parametrize("args, match", [
    (((8, 8), 3, 2), "do not tile"),
    (((8, 8), 9, 1), "exceeds"),
    (((8, 8, 1), 2, 2), "input_shape"),
    (((8,), 0, 1), "patch_size"),
    (((8, 8), 2, (1, 1, 1)), "stride"),
])
def test_bad_geometry_is_rejected(args, match):
    with pytest.raises(ValueError, match=match):
        patch_geometry(*args)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"X1 must have shape \(n, 64\)"):
        cnn_gp_gram(np.zeros((3, 63)), None, "erf", 1.0, 1.0, input_shape=(8, 8), patch_size=4,
                    stride=4)
    with pytest.raises(ValueError, match="activation"):
        cnn_gp_gram(np.zeros((3, 64)), None, "softplus", 1.0, 1.0, input_shape=(8, 8),
                    patch_size=4, stride=4)
    with pytest.raises(ValueError, match="sigma_a2"):
        cnn_gp_gram(np.zeros((3, 64)), None, "erf", -1.0, 1.0, input_shape=(8, 8),
                    patch_size=4, stride=4)
