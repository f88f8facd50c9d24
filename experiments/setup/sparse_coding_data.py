"""The sparse-coding model of feature purification (Z. Allen-Zhu, Y. Li,
"Feature purification: how adversarial training performs robust deep learning",
arXiv:2005.10190), and the dictionary-alignment measures
of a trained two-layer network.

Data (Allen-Zhu & Li, "Sparse Coding Model"):

    x = M z + ξ,    y = sign(⟨w*, z⟩),

- M = (M_1, …, M_d) ∈ R^{d×d} orthonormal (the dictionary; atom j is column M_j), drawn
  from the Haar measure (QR of a Gaussian matrix with the signs of R's diagonal fixed);
- z ∈ {−1, 0, +1}^d sparse: a uniformly random support of exactly k = `sparsity` coordinates
  (default k = round(√d), their ‖z‖₀ = Θ(√d)), independent uniform signs on it;
- ξ ~ N(0, σ₀² I_d) (Allen-Zhu & Li write N(0, σ₀ I); here σ₀ = `noise_std` is a standard
  deviation);
- w* "balanced", |w*_j| = Θ(1): w*_j = s_j u_j with s_j = ±1 uniform and u_j ~ U[1, 2]
  (continuous, so ⟨w*, z⟩ = 0 has probability zero and y = ±1 always).

Exact statistics (tested): MᵀM = I; every z has exactly k non-zeros, each ±1, so
(1/n) Σ_μ Σ_j z_{μj}² = k and E[z zᵀ] = (k/d) I; z → −z maps the law to itself and flips y,
so P(y = +1) = ½ exactly; Mᵀ(x − ξ) = z.

Alignment with the dictionary (Allen-Zhu & Li, "Good Property Sets"), for neuron weights w_i and
overlaps O_ij = ⟨w_i, M_j⟩, with log d the natural logarithm and σ₃ a scale (Allen-Zhu & Li's
σ₃^{(t)}, a tuned, possibly time-dependent scale; at initialization w_i ~ N(0, σ₁² I) gives
O_ij ~ N(0, σ₁²), so σ₁ is the natural choice there):

    surely good for atom j:      O_ij² ≥ (c₁ + c₂) σ₃² log d,
                                 O_ij'² < (c₁ − c₂) σ₃² log d for every j' ≠ j,
                                 O_ij w*_j > 0;
    potentially good for atom j: O_ij² ≥ (c₁ − c₂) σ₃² log d.

Everything here is NumPy float64, seeded by an integer (`numpy.random.default_rng`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from experiments.setup.data import DataSet


class SparseCodingData(NamedTuple):
    x_train: np.ndarray  # (n_train, d)
    y_train: np.ndarray  # (n_train,) ±1
    x_test: np.ndarray  # (n_test, d)
    y_test: np.ndarray  # (n_test,) ±1
    z_train: np.ndarray  # (n_train, d) sparse codes
    z_test: np.ndarray  # (n_test, d)
    dictionary: np.ndarray  # (d, d) orthonormal, atom j = column j
    label_weights: np.ndarray  # (d,) w*
    sparsity: int  # k = ‖z‖₀


class GoodNeurons(NamedTuple):
    """Boolean masks (..., m, d): neuron i is surely / potentially good for atom j; and the
    number of surely good neurons per atom, (..., d)."""

    surely_good: np.ndarray
    potentially_good: np.ndarray
    surely_good_count: np.ndarray


def haar_orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed d × d orthogonal matrix (Mezzadri 2007: QR with sign-fixed R)."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _sparse_codes(n: int, d: int, sparsity: int, rng: np.random.Generator) -> np.ndarray:
    # A uniform random k-subset per row: the k smallest of d i.i.d. uniforms.
    support = np.argsort(rng.random((n, d)), axis=1)[:, :sparsity]
    codes = np.zeros((n, d))
    signs = np.where(rng.random((n, sparsity)) < 0.5, -1.0, 1.0)
    np.put_along_axis(codes, support, signs, axis=1)
    return codes


def sparse_coding_data(d: int, n_train: int, n_test: int, seed: int, noise_std: float,
                       sparsity: int | None = None) -> SparseCodingData:
    """Draw M, w* and the train/test sets of the sparse-coding model (module docstring)."""
    if int(d) < 2:
        raise ValueError(f"data.d must be an integer ≥ 2, got {d!r}")
    for name, value in (("data.n_train", n_train), ("data.n_test", n_test)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not noise_std >= 0:
        raise ValueError(f"data.noise_std must be non-negative, got {noise_std!r}")
    k = int(round(math.sqrt(d))) if sparsity is None else int(sparsity)
    if not 1 <= k <= d:
        raise ValueError(f"data.sparsity must be in [1, d = {d}], got {sparsity!r}")
    rng = np.random.default_rng(seed)
    dictionary = haar_orthogonal(int(d), rng)
    label_weights = np.where(rng.random(d) < 0.5, -1.0, 1.0) * rng.uniform(1.0, 2.0, d)

    def draw(n):
        z = _sparse_codes(int(n), int(d), k, rng)
        x = z @ dictionary.T + noise_std * rng.standard_normal((int(n), int(d)))  # x = Mz + ξ
        return x, np.sign(z @ label_weights), z

    x_train, y_train, z_train = draw(n_train)
    x_test, y_test, z_test = draw(n_test)
    return SparseCodingData(x_train, y_train, x_test, y_test, z_train, z_test, dictionary,
                            label_weights, k)


def dictionary_overlaps(weights: np.ndarray, dictionary: np.ndarray) -> np.ndarray:
    """O_ij = ⟨w_i, M_j⟩: weights (..., m, d) (e.g. (C, N, d) of every chain), dictionary
    (d, d) with atoms as columns -> (..., m, d)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape[-1] != dictionary.shape[0]:
        raise ValueError(f"weights have input dimension {weights.shape[-1]}, the dictionary "
                         f"{dictionary.shape[0]}")
    return weights @ dictionary


def good_neurons(overlaps: np.ndarray, label_weights: np.ndarray, scale: float,
                 c1: float, c2: float) -> GoodNeurons:
    """Allen-Zhu & Li's surely / potentially good neuron sets (module docstring) from the overlaps
    O (..., m, d) = `dictionary_overlaps(w, M)`; needs c₁ > c₂ ≥ 0 and scale σ₃ > 0."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if not c1 > c2 >= 0:
        raise ValueError(f"need c1 > c2 ≥ 0, got c1 = {c1!r}, c2 = {c2!r}")
    overlaps = np.asarray(overlaps, dtype=np.float64)
    num_atoms = overlaps.shape[-1]
    if label_weights.shape != (num_atoms,):
        raise ValueError(f"label_weights must have shape ({num_atoms},), got "
                         f"{label_weights.shape}")
    unit = scale ** 2 * math.log(num_atoms)
    squared = overlaps ** 2
    large = squared >= (c1 + c2) * unit
    small = squared < (c1 - c2) * unit
    # every other atom small: count the atoms that are not small, excluding j itself
    not_small = (~small).sum(-1, keepdims=True) - (~small)
    surely = large & (not_small == 0) & (overlaps * label_weights > 0)
    potentially = squared >= (c1 - c2) * unit
    return GoodNeurons(surely, potentially, surely.sum(-2))


def sparse_coding_from_config(config: dict) -> DataSet:
    """The run's DataSet (experiments.setup.data) of data.source = "sparse_coding" from the [data]
    keys of a validated config: d, n_train, n_test, seed, noise_std (σ₀), sparsity (k; 0:
    round(√d)); the dictionary M and w* travel with it (data.npz of the run)."""
    data = config["data"]
    drawn = sparse_coding_data(data["d"], data["n_train"], data["n_test"], data["seed"],
                               data["noise_std"], data["sparsity"] or None)
    return DataSet(drawn.x_train, drawn.y_train, drawn.x_test, drawn.y_test, None, None, None,
                   drawn.dictionary, drawn.label_weights)
