"""Local kernel renormalization of a shallow CNN and the LCN (theory.proportional_cnn, Aiudi et al., arXiv 2307.11807)."""
import math

import numpy as np
import pytest

from theory import proportional_cnn as pc
from theory import proportional_one_layer as p1
from theory.kernels import activation_kernel, two_layer_gram


def _patch_blocks(X1, X2, M, sigma_w2=1.0, sigma_a2=1.0, activation="erf"):
    """K_pq(μ,ν) = σ_a² κ_φ(C_pp(μ,μ), C_pq(μ,ν), C_qq(ν,ν)), C_pq(μ,ν) = σ_w² x_μ^(p)·x_ν^(q)/s,
    for inputs cut into M contiguous non-overlapping patches of size s. Shapes (M, M, n1, n2) and the
    diagonal (M, M, n1) of X1 against itself."""
    s = X1.shape[1] // M
    P1 = X1.reshape(len(X1), M, s)
    P2 = X2.reshape(len(X2), M, s)
    C = sigma_w2 * np.einsum("ips,jqs->pqij", P1, P2) / s
    v1 = sigma_w2 * np.einsum("ips,ips->pi", P1, P1) / s
    v2 = sigma_w2 * np.einsum("jqs,jqs->qj", P2, P2) / s
    blocks = sigma_a2 * activation_kernel(activation, v1[:, None, :, None], C, v2[None, :, None, :])
    C11 = sigma_w2 * np.einsum("ips,iqs->pqi", P1, P1) / s
    diag = sigma_a2 * activation_kernel(activation, v1[:, None, :], C11, v1[None, :, :])
    return blocks, diag


def _problem(P=24, M=3, s=4, m=6, seed=0):
    rng = np.random.default_rng(seed)
    X, X_test = rng.normal(size=(P, M * s)), rng.normal(size=(m, M * s))
    w = rng.normal(size=s)
    target = lambda Z: np.tanh(Z.reshape(len(Z), M, s) @ w).prod(axis=1) + 0.5 * np.tanh(Z[:, 0])
    B, _ = _patch_blocks(X, X, M)
    B_test, D_test = _patch_blocks(X_test, X, M)[0], _patch_blocks(X_test, X_test, M)[1]
    return B, B_test, D_test, target(X), target(X_test)


def test_patch_helper_matches_theory_kernels_on_one_patch():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 5))
    B, D = _patch_blocks(X, X, 1, sigma_w2=1.3, sigma_a2=0.7)
    assert np.allclose(B[0, 0], two_layer_gram(X, None, "erf", 0.7, sigma_w2=1.3), atol=1e-14)
    assert np.allclose(D[0, 0], np.diag(B[0, 0]))


def test_gradient_matches_finite_differences():
    B, *_, y, _ = _problem()
    kwargs = dict(channels=8.0, noise_variance=0.05)
    rng = np.random.default_rng(2)
    A = rng.normal(size=(3, 3))
    Q = np.eye(3) + 0.1 * (A + A.T)
    G = pc.cnn_action_gradient(Q, B, y, **kwargs)
    for _ in range(3):
        E = rng.normal(size=(3, 3))
        E = E + E.T
        h = 1e-5
        numeric = (pc.cnn_action(Q + h * E, B, y, **kwargs) - pc.cnn_action(Q - h * E, B, y, **kwargs)) / (2 * h)
        assert np.sum(G * E) == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_minimizer_converges_with_off_diagonal_coupling():
    B, B_test, D_test, y, y_test = _problem()
    sol = pc.solve_cnn(B, y, channels=8.0, noise_variance=0.05)
    assert sol.converged, sol.message
    assert sol.residual < 1e-9
    off = sol.order_parameters - np.diag(np.diag(sol.order_parameters))
    assert np.abs(off).max() > 1e-3            # the local renormalization mixes patches
    assert np.all(np.linalg.eigvalsh(sol.order_parameters) > 0)
    pred = pc.cnn_prediction(sol.order_parameters, B, B_test, D_test, y, noise_variance=0.05, y_test=y_test)
    assert np.all(pred.variance_test > 0) and pred.test_error > 0


def test_infinite_channels_give_the_identity_and_the_approach_is_one_over_channels():
    B, *_, y, _ = _problem()
    assert np.array_equal(pc.solve_cnn(B, y, channels=math.inf, noise_variance=0.05).order_parameters, np.eye(3))
    deviations = []
    for channels in (1e3, 1e4):
        sol = pc.solve_cnn(B, y, channels=channels, noise_variance=0.05)
        assert sol.converged, sol.message
        deviations.append(np.abs(sol.order_parameters - np.eye(3)).max())
    assert deviations[0] / deviations[1] == pytest.approx(10.0, rel=0.05)


def test_one_patch_is_the_fully_connected_scalar():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 6))
    y = np.tanh(X[:, 0] - X[:, 1])
    B, _ = _patch_blocks(X, X, 1, sigma_w2=1.2, sigma_a2=0.8)
    sol = pc.solve_cnn(B, y, channels=7.0, noise_variance=0.02)
    fc = p1.solve_one_layer(two_layer_gram(X, None, "erf", 0.8, sigma_w2=1.2), y, width=7.0, noise_variance=0.02)
    assert sol.converged and fc.converged
    assert sol.order_parameters[0, 0] == pytest.approx(fc.order_parameter, rel=1e-8)


def test_identical_patches_reduce_to_the_fc_scalar_along_the_uniform_direction():
    # All patches equal ⇒ K_pq = K for all p, q and K_R = (1ᵀQ1/M) K. Minimizing Tr Q − log det Q at
    # fixed uᵀQu = s (u = 1/√M) gives Q = I + (s − 1)uuᵀ and S = (M − 1) + s − log s + g(s)/N_c:
    # s is the FC Q̄ at width N_c.
    rng = np.random.default_rng(4)
    patch = rng.normal(size=(18, 4))
    X = np.tile(patch, (1, 3))
    y = np.tanh(patch[:, 0] + patch[:, 2])
    B, _ = _patch_blocks(X, X, 3)
    sol = pc.solve_cnn(B, y, channels=5.0, noise_variance=0.05)
    fc = p1.solve_one_layer(B[0, 0], y, width=5.0, noise_variance=0.05)
    assert sol.converged and fc.converged
    u = np.ones(3) / math.sqrt(3)
    expected = np.eye(3) + (fc.order_parameter - 1) * np.outer(u, u)
    assert np.allclose(sol.order_parameters, expected, atol=1e-7)
    assert sol.action == pytest.approx(2 + fc.action, rel=1e-10)


def test_lcn_is_diagonal_uses_only_diagonal_blocks_and_is_stationary():
    B, B_test, D_test, y, y_test = _problem()
    lcn = pc.solve_lcn(B, y, channels=8.0, noise_variance=0.05)
    assert lcn.converged, lcn.message
    Q = lcn.order_parameters
    assert np.array_equal(Q, np.diag(np.diag(Q)))
    # independent of the off-diagonal blocks (they are absent without weight sharing)
    B_scrambled = B.copy()
    B_scrambled[0, 1] *= 0.3
    B_scrambled[1, 0] *= 0.3
    again = pc.solve_lcn(B_scrambled, y, channels=8.0, noise_variance=0.05)
    assert np.allclose(again.order_parameters, Q, atol=1e-10)
    # stationary along the diagonal of the full CNN action evaluated on diagonal-only blocks
    diagonal_blocks = np.zeros_like(B)
    for p in range(3):
        diagonal_blocks[p, p] = B[p, p]
    G = pc.cnn_action_gradient(Q, diagonal_blocks, y, channels=8.0, noise_variance=0.05)
    assert np.abs(np.diag(G)).max() < 1e-9
    # ... and then the full CNN minimizer on those blocks is the LCN one (no drive off the diagonal)
    cnn = pc.solve_cnn(diagonal_blocks, y, channels=8.0, noise_variance=0.05)
    assert np.allclose(cnn.order_parameters, Q, atol=1e-7)
    # with the cross-patch blocks present the CNN differs from the LCN
    full = pc.solve_cnn(B, y, channels=8.0, noise_variance=0.05)
    assert np.abs(full.order_parameters - Q).max() > 1e-3


def test_readout_estimator_and_bad_input():
    R = np.array([[0.2, 0.05], [0.05, 0.3]])
    assert np.allclose(pc.order_parameters_from_readout(R, 0.8, chi=2.0), R * 2 * 2 / 0.8)
    B, *_, y, _ = _problem()
    with pytest.raises(ValueError, match="channels"):
        pc.solve_cnn(B, y, channels=0, noise_variance=0.1)
    with pytest.raises(ValueError, match="train_blocks"):
        pc.solve_cnn(B[0], y, channels=4, noise_variance=0.1)
