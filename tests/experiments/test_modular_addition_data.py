"""Modular-addition data (experiments.setup.modular_addition_data): targets, the residues' Fourier
structure and the NNGP spectrum, checked exactly."""
import numpy as np
import pytest

from experiments.setup import modular_addition_data as mad
from theory.kernels import two_layer_gram


@pytest.mark.parametrize("P", [5, 7])
def test_inputs_and_targets(P):
    data = mad.modular_addition_data(P)
    assert data.x_train.shape == (P * P, 2 * P) and data.y_train.shape == (P * P, P)
    assert np.all(data.x_train.sum(axis=1) == 2) and np.all(data.x_train[:, :P].sum(axis=1) == 1)
    n, m = data.pairs_train.T
    assert np.array_equal(np.argmax(data.x_train[:, :P], axis=1), n)
    assert np.array_equal(np.argmax(data.x_train[:, P:], axis=1), m)
    assert np.array_equal(np.argmax(data.y_train, axis=1), (n + m) % P)
    assert np.allclose(data.y_train.sum(axis=1), 0.0, atol=1e-15)            # the −1/P shift
    assert np.all(np.isin(data.y_train, [1 - 1 / P, -1 / P]))


@pytest.mark.parametrize("P", [5, 7])
def test_target_lives_on_the_diagonal_fourier_modes(P):
    Y = mad.modular_addition_targets(mad.all_pairs(P), P).reshape(P, P, P)   # (n, m, p)
    spectrum = np.fft.fftn(Y)
    k1, k2, k3 = np.meshgrid(*(np.arange(P),) * 3, indexing="ij")
    expected = P ** 2 * (((k1 + k3) % P == 0) & ((k2 + k3) % P == 0) & (k1 != 0))
    assert np.allclose(spectrum, expected, atol=1e-10 * P ** 2)


@pytest.mark.parametrize("P", [5, 7])
def test_quadratic_nngp_has_three_eigenvalues_and_the_target_is_one_eigenspace(P):
    data = mad.modular_addition_data(P)
    sa2 = 0.3
    Q = two_layer_gram(data.x_train, None, "quadratic", sa2, Sigma=np.eye(2 * P))
    values = np.unique(np.round(np.linalg.eigvalsh(Q), 9))
    assert np.allclose(values, sa2 * np.array([4.0, 2 * P + 4, 4 * P * P + 4 * P + 4]), rtol=1e-12)
    assert np.allclose(Q @ data.y_train, 4 * sa2 * data.y_train, atol=1e-12)
    noise = 0.7
    mean = Q @ np.linalg.solve(Q + noise * np.eye(P * P), data.y_train)
    assert mad.sampled_discrepancy(mean, data.y_train) == pytest.approx(mad.gp_discrepancy(noise, sa2), rel=1e-12)


def test_fourier_mode_order_parameters():
    P = 7
    rng = np.random.default_rng(0)
    W = np.zeros((3, 2 * P))
    W[:, :P] = np.cos(2 * np.pi * 2 * np.arange(P) / P)                      # a pure k = ±2 mode in u
    modes = mad.mode_order_parameters(W, P)
    assert modes["u_squared"].shape == (3, P - 1)
    assert modes["u_squared"][0, 1] == pytest.approx(0.25) and modes["u_squared"][0, P - 3] == pytest.approx(0.25)
    assert np.allclose(np.delete(modes["u_squared"][0], [1, P - 3]), 0, atol=1e-28)
    # Prior w ~ N(0, I): E|u_k|² = 1/P (the normalization of the theory's mode action).
    prior = mad.mode_order_parameters(rng.normal(size=(20000, 2 * P)), P)
    assert prior["u_squared"].mean() == pytest.approx(1 / P, rel=0.02)


def test_train_split_and_validation():
    data = mad.modular_addition_data(5, n_train=10, seed=3)
    assert len(data.pairs_train) == 10 and len(data.pairs_test) == 15
    together = np.concatenate([data.pairs_train, data.pairs_test])
    assert len({tuple(p) for p in together}) == 25
    with pytest.raises(ValueError, match="data.modulus"):
        mad.modular_addition_data(1)
    with pytest.raises(ValueError, match="data.n_train"):
        mad.modular_addition_data(5, n_train=26)
