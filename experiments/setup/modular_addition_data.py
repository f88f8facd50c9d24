"""Modular-addition data set of the grokking paper's second model (Rubin, Seroussi, Ringel, ICLR
2024, §3.2 and App. B), and the quantities its samples are compared on.

Data: P (the modulus; prime in the paper), all P² pairs (n, m) ∈ Z_P², row index μ = nP + m,
    x_nm ∈ R^{2P} two-hot: x_nm[n] = 1, x_nm[P + m] = 1, zero elsewhere;
    y_p(x_nm) = δ_{p, (n+m) mod P} − 1/P,   p = 0, …, P−1   (P outputs per input).
`modular_addition_data(P, n_train, seed)` returns the pairs, the inputs (n, 2P) and targets (n, P),
all pairs when n_train is None, else a random training subset (without replacement) and the rest
as the test set.

Fourier structure [DERIVED]. With Ŷ(k₁, k₂, k₃) = Σ_{n,m,p} y_p(x_nm) e^{−2πi(k₁n + k₂m + k₃p)/P},
    Ŷ = P² (δ_{k₁,−k₃} δ_{k₂,−k₃} − δ_{k₁,0} δ_{k₂,0} δ_{k₃,0}),
i.e. the target lives only on the diagonal modes k₁ = k₂ = −k₃ ≠ 0 (the 1/P shift removes k = 0).
Student f_p(x) = Σ_i a_pi (w_i·x)², prior w ~ N(0, I_{2P}), readout a ~ N(0, σ_a²/N): with
c(x, x') = x·x' = δ_nn' + δ_mm' the NNGP Gram is Q = σ_a² [c(x,x) c(x',x') + 2 c(x,x')²]
= σ_a² [4·11ᵀ + 2(A + B + 2I)], A = δ_nn', B = δ_mm' (on all P² pairs), whose eigenvalues are
σ_a²(4P² + 4P + 4) (the constant), σ_a²(2P + 4) (zero-mean functions of n alone or of m alone,
2(P − 1) of them) and 4σ_a² (the (P − 1)² rest) — three distinct values; every y_p lies in the
last eigenspace, so the GP posterior mean on all pairs is f̄ = 4σ_a²/(4σ_a² + σ²) y, i.e. the
discrepancy σ²t̄ = a y with a_GP = −σ²/(4σ_a² + σ²) (`gp_discrepancy`).

Per-mode order parameters. The input weights split as w_i = (u_i, v_i) ∈ R^P × R^P; their
Fourier modes are u_k = (1/P) Σ_n u_n e^{−2πikn/P} (so E|u_k|² = 1/P under the prior, the
normalization of the paper's action S_k = P[½(|w_k|² + |v_k|²) − …], `theory.modular_addition`).
`mode_order_parameters` returns |u_k|², |v_k|² and |u_k|²|v_k|² per neuron; the kernel eigenvalue
on the target in this normalization is λ = 4P²σ_a²⟨|u_k|²|v_k|²⟩ [DERIVED, exact for any finite
network: `theory.modular_addition.target_eigenvalue`; 4σ_a² at the prior], compared with the
theory's λ and a by `experiments.modular_addition_comparison`.

Sampled: `langevin.models.modular_quadratic` (the P-output quadratic model with the paper's
non-linear weight decay Γ = Σ_k (Pγ/6)((w_k w_{−k})³ + (v_k v_{−k})³)) and the σ² sweep
`experiments.modular_addition_comparison`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


__all__ = [
    "ModularAdditionData",
    "all_pairs",
    "gp_discrepancy",
    "modular_addition_data",
    "modular_addition_inputs",
    "modular_addition_targets",
    "mode_order_parameters",
    "sampled_discrepancy",
]


class ModularAdditionData(NamedTuple):
    """pairs_* (n, 2) int residues (n, m); x_* (n, 2P) two-hot; y_* (n, P) targets; modulus P."""

    pairs_train: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    pairs_test: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    modulus: int


def _modulus(modulus) -> int:
    if isinstance(modulus, bool) or not isinstance(modulus, (int, np.integer)) or modulus < 2:
        raise ValueError(f"data.modulus must be an integer ≥ 2, got {modulus!r}")
    return int(modulus)


def all_pairs(modulus: int) -> np.ndarray:
    """(P², 2) residue pairs in row order μ = nP + m."""
    P = _modulus(modulus)
    n, m = np.divmod(np.arange(P * P), P)
    return np.stack([n, m], axis=1)


def modular_addition_inputs(pairs, modulus) -> np.ndarray:
    """Two-hot inputs x_nm ∈ R^{2P}: ones at n and at P + m. pairs (n, 2) → (n, 2P) float64."""
    P = _modulus(modulus)
    pairs = np.asarray(pairs)
    X = np.zeros((len(pairs), 2 * P))
    rows = np.arange(len(pairs))
    X[rows, pairs[:, 0]] = 1.0
    X[rows, P + pairs[:, 1]] = 1.0
    return X


def modular_addition_targets(pairs, modulus) -> np.ndarray:
    """y_p = δ_{p,(n+m) mod P} − 1/P: (n, 2) pairs → (n, P) float64."""
    P = _modulus(modulus)
    pairs = np.asarray(pairs)
    Y = np.full((len(pairs), P), -1.0 / P)
    Y[np.arange(len(pairs)), (pairs[:, 0] + pairs[:, 1]) % P] += 1.0
    return Y


def modular_addition_data(modulus, n_train=None, seed: int = 1) -> ModularAdditionData:
    """All P² pairs (n_train None) or a random training subset of n_train pairs, the rest as test."""
    P = _modulus(modulus)
    pairs = all_pairs(P)
    if n_train is None:
        train, test = pairs, pairs[:0]
    else:
        if isinstance(n_train, bool) or int(n_train) != n_train or not 1 <= n_train <= P * P:
            raise ValueError(f"data.n_train must be an integer in [1, P² = {P * P}], got {n_train!r}")
        order = np.random.default_rng(seed).permutation(P * P)
        train, test = pairs[np.sort(order[: int(n_train)])], pairs[np.sort(order[int(n_train):])]
    return ModularAdditionData(train, modular_addition_inputs(train, P), modular_addition_targets(train, P),
                               test, modular_addition_inputs(test, P), modular_addition_targets(test, P), P)


def gp_discrepancy(noise_variance, readout_variance) -> float:
    """a_GP = −σ²/(4σ_a² + σ²): the NNGP discrepancy on all P² pairs (module docstring)."""
    return -float(noise_variance) / (4.0 * float(readout_variance) + float(noise_variance))


def sampled_discrepancy(mean_outputs, targets) -> float:
    """a = f̄·y/(y·y) − 1 from the posterior-mean outputs (n, P) on all pairs (σ²t̄ = a y ⇔ f̄ = (1+a) y)."""
    f = np.asarray(mean_outputs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if f.shape != y.shape:
        raise ValueError(f"mean_outputs and targets must have one shape, got {f.shape} and {y.shape}")
    return float(np.sum(f * y) / np.sum(y * y)) - 1.0


def mode_order_parameters(input_weights, modulus) -> dict:
    """|u_k|², |v_k|², |u_k|²|v_k|² for k = 1..P−1 from input weights (..., 2P) (module docstring)."""
    P = _modulus(modulus)
    W = np.asarray(input_weights, dtype=np.float64)
    if W.shape[-1] != 2 * P:
        raise ValueError(f"input_weights must end in 2P = {2 * P} input coordinates, got shape {W.shape}")
    u = np.fft.fft(W[..., :P], axis=-1)[..., 1:] / P
    v = np.fft.fft(W[..., P:], axis=-1)[..., 1:] / P
    u2, v2 = np.abs(u) ** 2, np.abs(v) ** 2
    return {"u_squared": u2, "v_squared": v2, "product": u2 * v2}
