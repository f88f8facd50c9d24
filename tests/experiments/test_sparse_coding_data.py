"""Sparse-coding generator: exact statistics (orthonormal dictionary, exact sparsity, label
symmetry, noise variance within 4 standard errors), seeding, and the overlap / good-neuron
sets on constructed weights."""
import math

import numpy as np
import pytest

from experiments.setup.sparse_coding_data import (
    dictionary_overlaps, good_neurons, haar_orthogonal, sparse_coding_data)


def test_generator_statistics():
    d, n, noise_std = 16, 4000, 0.3
    data = sparse_coding_data(d, n_train=n, n_test=500, seed=0, noise_std=noise_std)
    m = data.dictionary
    np.testing.assert_allclose(m.T @ m, np.eye(d), atol=1e-12)
    assert data.sparsity == 4  # round(√16)
    for z in (data.z_train, data.z_test):
        assert np.all((z != 0).sum(1) == 4)
        assert set(np.unique(z)) == {-1.0, 0.0, 1.0}
    # E[z zᵀ] = (k/d) I: the diagonal average is exactly k/d (k non-zeros ±1 per row)
    assert (data.z_train ** 2).mean() == 4 / 16
    # labels: y = sign⟨w*, z⟩ ∈ {±1}; P(y = +1) = ½ exactly (z → −z symmetry): Binomial(n, ½)
    np.testing.assert_array_equal(data.y_train, np.sign(data.z_train @ data.label_weights))
    assert set(np.unique(data.y_train)) == {-1.0, 1.0}
    fraction = (data.y_train > 0).mean()
    assert abs(fraction - 0.5) < 4 * math.sqrt(0.25 / n), fraction
    # the code is recovered from the noiseless part, and the noise has variance σ₀²
    noise = data.x_train - data.z_train @ m.T
    np.testing.assert_allclose((data.x_train - noise) @ m, data.z_train, atol=1e-12)
    variance = (noise ** 2).mean()  # n·d i.i.d. N(0, σ₀²): sd of the mean of ξ² is σ₀²√(2/(nd))
    assert abs(variance - noise_std ** 2) < 4 * noise_std ** 2 * math.sqrt(2 / (n * d))
    assert np.all((np.abs(data.label_weights) >= 1) & (np.abs(data.label_weights) <= 2))
    # seeded: the same seed gives the same data, another seed other data
    again = sparse_coding_data(d, n_train=n, n_test=500, seed=0, noise_std=noise_std)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    other = sparse_coding_data(d, n_train=n, n_test=500, seed=1, noise_std=noise_std)
    assert not np.array_equal(other.dictionary, data.dictionary)


def test_custom_sparsity_and_bad_input():
    data = sparse_coding_data(9, n_train=20, n_test=5, seed=2, noise_std=0.0, sparsity=2)
    assert np.all((data.z_train != 0).sum(1) == 2)
    np.testing.assert_allclose(data.x_train @ data.dictionary, data.z_train, atol=1e-12)
    with pytest.raises(ValueError, match="data.sparsity"):
        sparse_coding_data(9, 20, 5, seed=0, noise_std=0.1, sparsity=10)
    with pytest.raises(ValueError, match="data.noise_std"):
        sparse_coding_data(9, 20, 5, seed=0, noise_std=-0.1)
    with pytest.raises(ValueError, match="data.n_train"):
        sparse_coding_data(9, 0, 5, seed=0, noise_std=0.1)


def test_overlaps_and_good_neurons_on_constructed_weights():
    """d = 9, σ₃ = 1, c₁ = 1, c₂ = 0.5: 'large' is O² ≥ 1.5 log 9 = 3.30 (|O| ≥ 1.82),
    'small' is O² < 0.5 log 9 = 1.10 (|O| < 1.05)."""
    d = 9
    m = haar_orthogonal(d, np.random.default_rng(3))
    w_star = np.array([1.5, -1.2, 1.0, -1.8, 1.1, 1.3, -1.4, 1.9, -1.0])
    prescribed = np.full((2, 4, d), 0.5)  # (C, m, d): every neuron starts with small overlaps
    prescribed[0, 0, 3] = -2.0  # aligned with atom 3 with the sign of w*_3 < 0: surely good
    prescribed[0, 1, 3] = +2.0  # wrong sign: only potentially good
    prescribed[0, 2, 1] = -2.0  # right sign for atom 1 but a second overlap 1.2 is not small
    prescribed[0, 2, 4] = 1.2
    prescribed[1, 3, 7] = 1.9  # chain 1: one surely good neuron for atom 7
    weights = prescribed @ m.T  # w_i = Σ_j O_ij M_j
    overlaps = dictionary_overlaps(weights, m)
    np.testing.assert_allclose(overlaps, prescribed, atol=1e-12)
    sets = good_neurons(overlaps, w_star, scale=1.0, c1=1.0, c2=0.5)
    surely = np.zeros((2, 4, d), dtype=bool)
    surely[0, 0, 3] = surely[1, 3, 7] = True
    np.testing.assert_array_equal(sets.surely_good, surely)
    potentially = np.zeros((2, 4, d), dtype=bool)
    potentially[0, 0, 3] = potentially[0, 1, 3] = potentially[0, 2, 1] = True
    potentially[0, 2, 4] = potentially[1, 3, 7] = True
    np.testing.assert_array_equal(sets.potentially_good, potentially)
    np.testing.assert_array_equal(sets.surely_good_count, surely.sum(1))
    # surely good ⊂ potentially good always
    assert np.all(sets.potentially_good[sets.surely_good])
    with pytest.raises(ValueError, match="c1 > c2"):
        good_neurons(overlaps, w_star, scale=1.0, c1=0.5, c2=0.5)
    with pytest.raises(ValueError, match="label_weights"):
        good_neurons(overlaps, w_star[:3], scale=1.0, c1=1.0, c2=0.5)
