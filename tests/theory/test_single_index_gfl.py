"""Symmetric reduction Σ = a P_⊥ + b w*w*ᵀ of the adaptive-kernel (VGA) equations for a
single-index target (theory.single_index_gfl, Ringel et al. 2025)."""
import math
from dataclasses import replace

import numpy as np
import pytest

from theory import cubic_teacher as ct
from theory import single_index_gfl as sg
from theory.hermite import gauss_hermite_normal
from theory.network_prior import NetworkPrior

N_SAMPLES = 400
BASE = NetworkPrior(activation="erf", input_dim=8, widths=(10,), weight_variances=(1.0,),
                    readout_variance_tilde=1.0, noise_variance_tilde=1.0)
R4 = NetworkPrior(activation="erf", input_dim=150, widths=(700,), weight_variances=(0.5,),
                  readout_variance_tilde=8 / 700, noise_variance_tilde=0.25)


def _base(width, noise_variance, chi=1.0):
    return replace(BASE, widths=(width,), noise_variance_tilde=noise_variance, chi=chi)


def test_nngp_limit_standard_scaling():
    d, sw2, sa2, s2, n = 8, 1.0, 1.0, 0.5, 400
    sol = sg.solve_single_index_gfl(_base(1e13, s2), num_samples=N_SAMPLES, target_coefficients=(1.0, 0.0))
    assert sol.converged
    assert sol.sigma_perp == pytest.approx(sw2 / d, rel=1e-10)
    assert sol.sigma_parallel == pytest.approx(sw2 / d, rel=1e-10)
    # GP/EK: τ̂ = (I + κ E_prior[v vᵀ])⁻¹ [1, 0] with the 2×2 prior moments by brute force
    # (q ~ N(0, σ_w²/d) by Gauss–Hermite, |w_⊥|² ~ (σ_w²/d) χ²_{d−1} by Monte Carlo).
    rule = gauss_hermite_normal(60)
    q = math.sqrt(sw2 / d) * rule.nodes[:, None]
    t = 2 * np.random.default_rng(0).gamma((d - 1) / 2, size=200000)[None, :]   # χ²_{d−1}
    g = 1 + 2 * (sw2 / d * t + q * q)
    v = np.stack([2 * q / np.sqrt(math.pi * g), -4 * q ** 3 / (np.sqrt(6 * math.pi) * g ** 1.5)])
    moment = np.array([[np.mean(rule.weights @ (v[i] * v[j])) for j in range(2)] for i in range(2)])
    kappa = n * sa2 / s2
    tau = np.linalg.solve(np.eye(2) + kappa * moment, [1.0, 0.0])
    assert sol.scaled_kernel == pytest.approx(kappa * moment, rel=2e-3)
    assert sol.learnabilities[0] == pytest.approx(1 - tau[0], rel=1e-3)
    # Leading order in 1/d: λ_1 = σ_a² E[v_1²] ≈ 4σ_a²σ_w²/(π d (1 + 2σ_w²)) (Rubin, Seroussi & Ringel 2024, App. A).
    assert sa2 * moment[0, 0] == pytest.approx(4 * sa2 * sw2 / (math.pi * d * (1 + 2 * sw2)), rel=0.1)


def test_stationarity_of_the_variational_free_energy():
    # The (a, b) equations are ∂F/∂a = ∂F/∂b = 0 of F = KL-like prior terms − (κ_2/2) J(a, b) at
    # fixed τ (module docstring): check with finite differences of F built from the same averages.
    n, N, s2, d, sw2 = 400, 50.0, 0.4, 8, 1.0
    sol = sg.solve_single_index_gfl(_base(N, s2 * N, chi=N), num_samples=N_SAMPLES, target_coefficients=(1.0, -0.4))
    assert sol.converged
    sa2, sigma2 = 1.0 / N, s2
    kappa2 = sa2 * n * n / (N * sigma2 ** 2)
    tau = sol.discrepancy * np.array([1.0, math.sqrt(6)])
    rule = gauss_hermite_normal(48)
    nodes, weights = sg._perpendicular_rule(d, "exact", 48)

    def F(a, b):
        J = sg._averages(a, b, tau, nodes, weights, rule).interaction
        return (d / (2 * sw2)) * ((d - 1) * a + b) - 0.5 * ((d - 1) * math.log(a) + math.log(b)) - 0.5 * kappa2 * J

    a, b = sol.sigma_perp, sol.sigma_parallel
    assert b > 2 * a                                           # strong feature learning here
    for name, da, db, scale in (("a", 1e-6 * a, 0.0, (d - 1) / a), ("b", 0.0, 1e-6 * b, 1 / b)):
        derivative = (F(a + da, b + db) - F(a - da, b - db)) / (2 * (da + db))
        assert abs(derivative) < 1e-6 * scale, name


def test_spike_grows_with_effective_data_in_mean_field_scaling():
    # MF scaling (χ = N = 100): lowering σ̃² (more effective data n/σ̃²) from the GP-like side
    # drives the spike b above the bulk a and raises the linear learnability.
    noise = [1e5, 1e4, 1e3, 300, 100, 50, 30]
    path = sg.scan_single_index_gfl(lambda v: _base(100, v, chi=100), noise, num_samples=N_SAMPLES,
                                    target_coefficients=(1.0, 0.0))
    assert path.converged
    a = np.array([s.sigma_perp for s in path.solutions])
    b = np.array([s.sigma_parallel for s in path.solutions])
    L1 = np.array([s.learnabilities[0] for s in path.solutions])
    print("\nMF scaling, sigma~2 / a·d / b·d / L1:", *(f"{x:g}/{p:.3f}/{q:.3f}/{r:.3f}" for x, p, q, r in
                                                       zip(noise, a * 8, b * 8, L1)))
    assert np.all(b > a) and np.all(np.diff(b) > 0) and np.all(np.diff(L1) > 0)
    assert b[-1] > 3 * a[-1] and np.all(a <= 1.0 / 8 * (1 + 1e-12))
    assert b[0] == pytest.approx(1 / 8, rel=1e-3)              # GP side


def test_mean_field_solution_is_width_independent_and_standard_scaling_anneals():
    # χ = N with fixed numerators: κ_2 = χ σ̃_a² n²/(N σ̃⁴) and κ = n σ̃_a²/σ̃² do not depend on N.
    mf = [sg.solve_single_index_gfl(_base(N, 1e3, chi=N), num_samples=N_SAMPLES, target_coefficients=(1.0, 0.0))
          for N in (30, 3000)]
    assert mf[0].sigma_parallel == pytest.approx(mf[1].sigma_parallel, rel=1e-10)
    # Standard scaling (χ = 1): annealing the width down from the GP side grows the spike.
    path = sg.scan_single_index_gfl(lambda N: _base(N, 10.0), [1e6, 1e4, 1e3, 300, 100],
                                    num_samples=N_SAMPLES, target_coefficients=(1.0, 0.0))
    b = np.array([s.sigma_parallel for s in path.solutions])
    assert path.converged and b[0] == pytest.approx(1 / 8, rel=1e-4) and np.all(np.diff(b) > 0)


def test_perpendicular_concentration_at_large_d():
    kwargs = dict(num_samples=3000, target_coefficients=(1.0, -0.3))
    exact = sg.solve_single_index_gfl(R4, perpendicular="exact", **kwargs)
    concentrated = sg.solve_single_index_gfl(R4, perpendicular="concentrated", **kwargs)
    assert exact.converged and concentrated.converged
    assert concentrated.sigma_parallel == pytest.approx(exact.sigma_parallel, rel=5e-3)
    assert concentrated.discrepancy == pytest.approx(exact.discrepancy, rel=5e-3)


@pytest.mark.parametrize("noise_variance", [0.3, 0.25, 0.18])
def test_gaussian_closure_matches_exact_quadrature_in_gfl(noise_variance):
    # R4 parameters, GFL side: the Gaussian (VGA) closure and the finite-d Landau theory with exact
    # 1-D quadrature over q are independent approximations of the same per-neuron problem; p(q) is
    # nearly Gaussian in GFL, so their discrepancies agree to ~1 % (measured ≤ 1 %; they differ by non-Gaussian
    # corrections and by |w_⊥|² = σ_w² (Landau) vs its χ² distribution (here)).
    prior = replace(R4, noise_variance_tilde=noise_variance)
    vga = sg.solve_single_index_gfl(prior, num_samples=3000, target_coefficients=(1.0, -0.3))
    landau = ct.solve_cubic_teacher(prior, num_samples=3000, epsilon=-0.3)
    assert vga.converged and landau.converged and landau.phase == "GFL"
    assert vga.discrepancy[0] == pytest.approx(landau.b, rel=0.015)
    assert vga.discrepancy[1] == pytest.approx(landau.c, rel=0.015)


def test_free_energy_gradient_in_tau_is_the_discrepancy_equation():
    sol = sg.solve_single_index_gfl(_base(50, 0.4 * 50, chi=50), num_samples=N_SAMPLES,
                                    target_coefficients=(1.0, -0.4))
    kappa = sol.kernel_strength
    tau = sol.discrepancy * np.array([1.0, math.sqrt(6)])
    y_hat = np.array([1.0, -0.4 * math.sqrt(6)])
    assert np.allclose(tau + sol.scaled_kernel @ tau, y_hat, atol=1e-10)
    assert np.allclose(sol.scaled_kernel, sol.scaled_kernel.T) and kappa > 0
    assert np.all(np.linalg.eigvalsh(sol.scaled_kernel) >= -1e-12)   # κ E[v vᵀ] is PSD
    assert sol.mean_coefficients == pytest.approx(np.array([1.0, -0.4]) - sol.discrepancy)


def test_validation():
    with pytest.raises(ValueError, match="input_dim"):
        sg.solve_single_index_gfl(replace(BASE, input_dim=1), num_samples=10)
    with pytest.raises(ValueError, match="perpendicular"):
        sg.solve_single_index_gfl(BASE, num_samples=N_SAMPLES, perpendicular="mean")
    with pytest.raises(ValueError, match="target_coefficients"):
        sg.solve_single_index_gfl(BASE, num_samples=N_SAMPLES, target_coefficients=(1.0,))
    with pytest.raises(ValueError, match="NetworkPrior.activation"):
        sg.solve_single_index_gfl(replace(BASE, activation="tanh"), num_samples=N_SAMPLES)
    with pytest.raises(ValueError, match="NetworkPrior.widths"):
        sg.solve_single_index_gfl(replace(BASE, widths=(10, 10), weight_variances=(1.0, 1.0)),
                                  num_samples=N_SAMPLES)
    with pytest.raises(ValueError, match="num_samples"):
        sg.scan_single_index_gfl_in_samples(BASE, [0.0])
    with pytest.raises(ValueError, match="initial_guess"):
        sg.solve_single_index_gfl(BASE, num_samples=N_SAMPLES, initial_guess=(-1, 1, 0, 0))
