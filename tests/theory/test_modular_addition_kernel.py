"""The modular-addition theory's target eigenvalue λ = 4P²σ_a²⟨XY⟩ and action against random
finite networks (theory.modular_addition module docstring), and its GFL side against the NNGP."""
import math

import numpy as np
import pytest

from experiments.setup.modular_addition_data import gp_discrepancy, modular_addition_data, mode_order_parameters
from theory import modular_addition as ma


def _features(W, x):
    """φ_μi = (w_i·x_μ)²: W (..., N, 2P), x (P², 2P) → (..., P², N)."""
    return np.einsum("md,...nd->...mn", x, W) ** 2


def _target_projector(y):
    """Orthogonal projector onto the span of the targets y_p (P − 1 dimensional)."""
    q, r = np.linalg.qr(y)
    q = q[:, np.abs(np.diag(r)) > 1e-10 * np.abs(r).max()]
    return q @ q.T


def _networks(P, N, count, rng, wells=0):
    """Prior input weights (count, N, 2P), `wells` neurons of each with a planted mode k = 1 + i % (P−1)."""
    W = rng.normal(size=(count, N, 2 * P))
    n = np.arange(P)
    for i in range(wells):
        k = 1 + i % (P - 1)
        W[:, i, :P] += 3.0 * np.cos(2 * np.pi * k * n / P + 0.3)
        W[:, i, P:] += 2.0 * np.cos(2 * np.pi * k * n / P - 1.1)
    return W


@pytest.mark.parametrize("wells", [0, 3])
def test_target_eigenvalue_is_the_kernel_rayleigh_quotient_of_each_network(wells):
    # Exact per network: χ_k^* K χ_k / P² = 4P²σ_a² (1/N)Σ_i X_ik Y_ik, and the mean eigenvalue of
    # K on the target space, tr(ΠKΠ)/(P − 1), is λ = 4P²σ_a²⟨XY⟩ (mean over i and k ≠ 0).
    P, N, sa2 = 7, 9, 0.3
    data = modular_addition_data(P)
    W = _networks(P, N, 4, np.random.default_rng(2), wells)
    phi = _features(W, data.x_train)                                  # (4, P², N)
    K = sa2 / N * phi @ np.swapaxes(phi, -1, -2)
    proj = _target_projector(data.y_train)
    assert np.trace(proj) == pytest.approx(P - 1)
    product = mode_order_parameters(W, P)["product"]                  # (4, N, P − 1)
    n, m = data.pairs_train.T
    for c in range(4):
        mean_eigenvalue = np.trace(proj @ K[c] @ proj) / (P - 1)
        assert mean_eigenvalue == pytest.approx(ma.target_eigenvalue(product[c].mean(), P, sa2), rel=1e-11)
        for k in range(1, P):
            chi = np.exp(2j * np.pi * k * (n + m) / P)
            rayleigh = np.real(chi.conj() @ K[c] @ chi) / P ** 2
            assert rayleigh == pytest.approx(ma.target_eigenvalue(product[c, :, k - 1].mean(), P, sa2), rel=1e-11)


def test_prior_networks_average_to_the_nngp_eigenvalue():
    # Monte Carlo over independent prior networks: E[tr(ΠKΠ)]/(P − 1) = 4σ_a² (the NNGP), |est − 4σ_a²|
    # < 4 MCSE; and the order parameter's prior mean E[XY] = 1/P² (`zero_basin_moment`).
    P, N, sa2, count = 7, 4, 0.3, 4000
    data = modular_addition_data(P)
    W = _networks(P, N, count, np.random.default_rng(5))
    phi = _features(W, data.x_train)
    proj = _target_projector(data.y_train)
    pphi = proj @ phi                                                  # (count, P², N)
    per_network = sa2 / N * np.einsum("cmn,cmn->c", pphi, pphi) / (P - 1)
    mcse = per_network.std(ddof=1) / math.sqrt(count)
    assert abs(per_network.mean() - 4 * sa2) < 4 * mcse, (per_network.mean(), mcse)
    product = mode_order_parameters(W, P)["product"].mean((-1, -2))
    assert abs(product.mean() - ma.zero_basin_moment(P)) < 4 * product.std(ddof=1) / math.sqrt(count)


def test_action_is_the_readout_integrated_weight_action_in_the_same_normalization():
    # ½|w|² = Σ_k P·½(X_k + Y_k) (all k) and (σ_a²/(2N)) Σ_p (Σ_μ t̄_μp φ_μ)² with t̄ = (a/σ²) y equals
    # Σ_{k≠0} P u a² X_k Y_k: the paper's S_k with A = u a² in the modes u_k = (1/P) Σ_n u_n e^{−2πikn/P}.
    P, N, sa2, s2, a = 11, 50, 0.7, 0.3, -0.6
    data = modular_addition_data(P)
    w = _networks(P, 1, 1, np.random.default_rng(8), wells=1)[0, 0]
    U, V = np.fft.fft(w[:P]) / P, np.fft.fft(w[P:]) / P
    X, Y = np.abs(U) ** 2, np.abs(V) ** 2
    assert 0.5 * w @ w == pytest.approx(np.sum(0.5 * P * (X + Y)), rel=1e-12)
    overlap = data.y_train.T @ (data.x_train @ w) ** 2                # Σ_μ y_p(x_μ) φ_μ, (P,)
    gain = sa2 / (2 * N) * (a / s2) ** 2 * np.sum(overlap ** 2)
    u = ma.modular_effective_interaction(P, N, sa2, s2)
    assert gain == pytest.approx(np.sum(P * u * a * a * X[1:] * Y[1:]), rel=1e-11)


R5 = dict(modulus=401, width=1000, readout_variance=2e-6, weight_decay=1e-4)
SMALL = dict(modulus=13, width=64, readout_variance=0.05 ** 2 * 64 / 169, weight_decay=3.0)


def _saddle_onset(modulus, width, readout_variance, weight_decay):
    """σ² above which u a_GP² < √γ (no well saddle): 4σ_a² + σ² = √(2σ_a²P²/(N√γ))."""
    return math.sqrt(2 * readout_variance * modulus ** 2 / (width * math.sqrt(weight_decay))) - 4 * readout_variance


@pytest.mark.parametrize("params, factors", [(R5, (1.001, 1.05, 1.2, 4.0)), (SMALL, (1.2, 4.0))])
def test_gfl_side_is_the_nngp(params, factors):
    # Without a saddle (u a_GP² < √γ) λ = 4P²σ_a²/P² = 4σ_a² exactly, so a = a_GP to solver precision;
    # with a saddle but a negligible well weight (R5 between σ²_I and the saddle onset),
    # |a − a_GP| ≤ σ²Δλ/(4σ_a² + σ²)², Δλ = 4σ_a² p_w (P²W_+² − 1).
    sa2, P, gamma = params["readout_variance"], params["modulus"], params["weight_decay"]
    onset = _saddle_onset(**params)
    gfl1 = ma.phase_boundaries(**params).noise_variance_gmfl1
    for factor in factors:
        s2 = factor * (onset if factor > 1.1 else gfl1)
        sol = ma.solve_modular_addition(s2, **params)
        assert sol.converged and sol.phase == "GFL", sol
        a_gp = gp_discrepancy(s2, sa2)
        if s2 > onset:
            assert sol.coupling < math.sqrt(gamma)
            assert sol.eigenvalue == pytest.approx(4 * sa2, rel=1e-13)
            assert sol.a == pytest.approx(a_gp, abs=1e-12)
        else:
            bound = s2 * 4 * sa2 * sol.well_weight * (P * P * sol.well ** 2 - 1) / (4 * sa2 + s2) ** 2
            assert abs(sol.a - a_gp) <= bound + 1e-12


def test_small_size_has_no_root_across_the_well_jump():
    # P = 13, γ = 3: where the well appears (A² = γ) its weight jumps from 0 to 4e^{−2.5}/(1 + 4e^{−2.5})
    # ≈ 0.25 and λ from 4σ_a² to ≈ 0.056 ≫ σ², so between σ²_I and the saddle onset F(a) changes sign
    # only on the jump: the solver reports no self-consistent root.
    s2 = 0.5 * (ma.phase_boundaries(**SMALL).noise_variance_gmfl1 + _saddle_onset(**SMALL))
    sol = ma.solve_modular_addition(s2, **SMALL)
    assert not sol.converged and "no self-consistent root" in sol.message
    assert sol.coupling == pytest.approx(math.sqrt(SMALL["weight_decay"]), rel=1e-6)


def test_exact_mode_moment_matches_the_zero_basin_expansion():
    # Without a well (A² < γ): P²⟨XY⟩ = 1 + 6A/P − 12γ/P² + second order [module docstring, first
    # order in A and γ]; at P = 40, A = 0.004, γ = 1e-4 the second-order terms are O((6A/P)²) ≈ 4·10⁻⁷.
    P, gamma = 40, 1e-4
    for A in (0.0, 0.002, 0.004):
        g = ma.exact_mode_moment(A, gamma, P) * P * P - 1.0
        assert g == pytest.approx(6 * A / P - 12 * gamma / P ** 2, abs=2e-6), A
    with pytest.raises(ValueError, match="max_points"):
        ma.exact_mode_moment(0.0161, 1e-4, 401)


def test_exact_mode_average_has_a_root_across_the_jump():
    # The exact per-mode average is continuous in A: at P = 13 the self-consistency has a unique root
    # also where the mixture has none; a rises monotonically as σ² falls and stays between −1 and 0.
    sigma2 = (0.02, 0.035, 0.045, 0.08)
    values = []
    for s2 in sigma2:
        sol = ma.solve_modular_addition(s2, **SMALL, mode_average="exact")
        assert sol.converged, sol.message
        assert sol.eigenvalue == pytest.approx(-s2 * (1 + 1 / sol.a), rel=1e-9)
        values.append(sol.a)
    assert np.all(np.diff(values) < 0) and -1 < values[-1] < values[0] < 0
    with pytest.raises(ValueError, match="mode_average"):
        ma.solve_modular_addition(0.05, **SMALL, mode_average="saddle")
