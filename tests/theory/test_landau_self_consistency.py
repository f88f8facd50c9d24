"""Finite-d self-consistent Landau theory of the cubic teacher (theory.cubic_teacher) and the
peaked-density quadrature it relies on (theory.order_parameter_quadrature)."""
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate

from theory import cubic_teacher as ct
from theory import landau
from theory.network_prior import NetworkPrior
from theory.order_parameter_quadrature import folded_quadrature

R4_PRIOR = NetworkPrior(activation="erf", input_dim=150, widths=(700,), weight_variances=(0.5,),
                        readout_variance_tilde=8 / 700, noise_variance_tilde=0.18)
R4 = dict(num_samples=3000, epsilon=-0.3)  # the data side of R4


def _noise(value):
    return replace(R4_PRIOR, noise_variance_tilde=value)


def _reference_moments(u, b, c, sw2, d, points):
    """Z and ⟨q²/g⟩, ⟨q⁶/g³⟩ by adaptive QUADPACK on the half line, split at stationary points."""
    s_min = min(landau.landau_action(points, u, b, c, sw2, d))
    f = lambda q, m: math.exp(-(landau.landau_action(q, u, b, c, sw2, d) - s_min)) * m(q)
    edges = list(points) + [points[-1] + 3.0]
    moments = []
    for m in (lambda q: 1.0, lambda q: q * q / (1 + 2 * (sw2 + q * q)),
              lambda q: q ** 6 / (1 + 2 * (sw2 + q * q)) ** 3):
        moments.append(sum(integrate.quad(f, lo, hi, args=(m,), epsabs=0, epsrel=1e-13, limit=200)[0]
                           for lo, hi in zip(edges[:-1], edges[1:])))
    return math.log(2 * moments[0]) - s_min, moments[1] / moments[0], moments[2] / moments[0]


@pytest.mark.parametrize("u,b,c", [(30.2, 0.28, -0.29), (58.0, 0.186, -0.27), (120.0, 0.2, -0.25)])
def test_folded_quadrature_matches_quadpack(u, b, c):
    sw2, d = 0.5, 150.0
    points = landau.stationary_points(u, b, c, sw2).positions
    action = lambda q: landau.landau_action(q, u, b, c, sw2, d)
    rule = folded_quadrature(action, points)
    log_z, m2, m6 = _reference_moments(u, b, c, sw2, d, points)
    g = 1 + 2 * (sw2 + rule.nodes ** 2)
    assert rule.weights.sum() == pytest.approx(1.0, abs=1e-14)
    assert rule.log_normalizer == pytest.approx(log_z, abs=1e-11)
    assert rule.weights @ (rule.nodes ** 2 / g) == pytest.approx(m2, rel=1e-10)
    assert rule.weights @ (rule.nodes ** 6 / g ** 3) == pytest.approx(m6, rel=1e-9)
    # Doubling the Gauss–Legendre order changes nothing at the 1e-12 level.
    fine = folded_quadrature(action, points, order=48)
    assert fine.log_normalizer == pytest.approx(rule.log_normalizer, abs=1e-12)


def test_folded_quadrature_exact_for_a_gaussian():
    variance = 1e-4
    rule = folded_quadrature(lambda q: q * q / (2 * variance), [0.0])
    assert rule.log_normalizer == pytest.approx(0.5 * math.log(2 * math.pi * variance), abs=1e-13)
    assert rule.weights @ rule.nodes ** 2 == pytest.approx(variance, rel=1e-12)
    assert rule.weights @ rule.nodes ** 4 == pytest.approx(3 * variance ** 2, rel=1e-12)


def test_solution_is_the_minimizer_of_the_convex_potential():
    sol = ct.solve_cubic_teacher(_noise(0.13), **R4)
    assert sol.converged and sol.residual < 1e-12
    assert sol.phase == "GMFL-I" and sol.well_mass > 0
    # Ψ(τ) is convex with gradient (I + κ⟨M⟩)τ − y: perturbing (b, c) in any direction raises it.
    sqrt6 = math.sqrt(6)
    target = np.array([1.0, sqrt6 * R4["epsilon"]])
    sw2, d = R4_PRIOR.input_variance, R4_PRIOR.input_dim

    def potential(b, c):
        tau = np.array([b, sqrt6 * c])
        rule = folded_quadrature(lambda q: landau.landau_action(q, sol.u, b, c, sw2, d),
                                 landau.stationary_points(sol.u, b, c, sw2).positions)
        return (0.5 * tau @ tau - tau @ target
                + sol.kernel_strength / (sol.u * d) * (rule.log_normalizer - 0.5 * math.log(2 * math.pi * sw2 / d)))

    assert potential(sol.b, sol.c) == pytest.approx(sol.free_energy, abs=1e-12)
    for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        db, dc = 1e-3 * np.cos(angle), 1e-3 * np.sin(angle)
        assert potential(sol.b + db, sol.c + dc) > sol.free_energy
    # The finite-difference gradient of Ψ at a point off the solution equals the equations.
    b0, c0, h = 0.25, -0.2, 1e-6
    grad_b = (potential(b0 + h, c0) - potential(b0 - h, c0)) / (2 * h)
    tau0 = np.array([b0, sqrt6 * c0])
    moment = ct._moments(sol.u, b0, c0, sw2, d)[3]
    equations = tau0 + sol.kernel_strength * moment @ tau0 - target
    assert grad_b == pytest.approx(equations[0], rel=1e-6)


def test_r4_noise_scan_gfl_to_gmfl():
    values = np.round(np.arange(0.30, 0.0999, -0.02), 3)
    path = ct.scan_cubic_teacher(_noise, values, **R4)
    assert path.converged
    sols = path.solutions
    phases = [s.phase for s in sols]
    print("\nfinite-d (d=150) cubic teacher, sigma2 / b / c / L1 / L3 / wells' share of <v1^2> / phase:")
    for v, s in zip(values, sols):
        print(f"  {v:.2f} {s.b:.5f} {s.c:.5f} {s.learnability_linear:.4f} {s.learnability_cubic:.4f} "
              f"{s.well_kernel_fraction:.3f} {s.phase} (residual {s.residual:.1e})")
    assert phases[0] == "GFL" and phases[-1] == "GMFL-I"
    assert phases == sorted(phases, key=["GFL", "GMFL-I", "GMFL-II"].index)
    cubic = np.array([s.learnability_cubic for s in sols])
    linear = np.array([s.learnability_linear for s in sols])
    assert np.all(np.diff(cubic) > 0) and np.all(np.diff(linear) > 0)
    assert cubic[0] < 0.02 and cubic[-1] > 0.15
    # A4 < 0 < A6 at the finite-d self-consistent (b, c) at σ² = 0.18 (R4).
    s018 = ct.solve_cubic_teacher(_noise(0.18), **R4)
    a = landau.landau_coefficients(s018.u, s018.b, s018.c, R4_PRIOR.input_variance)
    print(f"R4 at sigma2=0.18 (finite d, exact quadrature): b = {s018.b:.5f}, c = {s018.c:.5f}, "
          f"A2/A4/A6 = {a.a2:.5f}/{a.a4:.5f}/{a.a6:.5f}")
    assert s018.converged and a.a4 < 0 < a.a6


def test_finite_d_crossover_and_scaling_limit():
    # The finite-d crossover (wells' share of ⟨v_1²⟩ = 1/2) lies below the d → ∞ transition; as d
    # grows at fixed u and r (d → λd, n → λn, N → λN) the GFL-side solution approaches the
    # scaling-limit branch b(u, r), c = ε with an O(1/d) gap.
    crossing = ct.find_cubic_teacher_crossover(_noise, np.arange(0.20, 0.0999, -0.02), **R4)
    print(f"\nfinite-d crossover (wells' share of <v1^2> = 1/2): sigma2 = {crossing.value:.4f}, "
          f"u = {crossing.solution.u:.2f}")
    assert crossing.converged and 0.1 < crossing.value < 0.1787
    u, kappa = landau.effective_interaction(_noise(0.25), 3000), landau.kernel_strength(_noise(0.25), 3000)
    limit = landau.gfl_branch_scaling_limit(u, kappa / 150, 0.5, -0.3)
    gaps = []
    for scale in (1, 4, 16):
        s = ct.solve_cubic_teacher(replace(_noise(0.25), widths=(700 * scale,), input_dim=150 * scale),
                                   num_samples=3000 * scale, epsilon=-0.3)
        assert s.u == pytest.approx(u) and s.converged
        gaps.append(abs(s.b - limit.b) + abs(s.c - limit.c))
    assert gaps[1] < gaps[0] / 3 and gaps[2] < gaps[1] / 3


def test_density_is_normalized_and_matches_the_action():
    sol = ct.solve_cubic_teacher(_noise(0.12), **R4)
    q = np.linspace(-3, 3, 200001)
    density, neg_log = ct.order_parameter_density(sol, q)
    assert np.trapezoid(density, q) == pytest.approx(1.0, abs=1e-9)
    visible = density > 1e-300  # far tails underflow (−log p is still returned there)
    assert np.allclose(neg_log[visible], -np.log(density[visible]))
    # Bimodal on each side: a peak at 0 and one near the non-zero minimum of S.
    well = sol.stationary_points.positions[-1]
    assert sol.stationary_points.is_minimum[-1] and 0.5 < well < 1.2
    barrier = sol.stationary_points.positions[1]
    side = np.argmin(np.abs(q - well))
    assert density[side] > density[np.argmin(np.abs(q - barrier))]


def test_validation():
    with pytest.raises(ValueError, match="initial_guess"):
        ct.solve_cubic_teacher(_noise(0.2), initial_guess=(0.3,), **R4)
    with pytest.raises(ValueError, match="threshold"):
        ct.classify_phase(0.1, 0.9, threshold=0.7)
    with pytest.raises(ValueError, match="indicator"):
        ct.find_cubic_teacher_crossover(_noise, [0.2, 0.1], indicator="temperature", **R4)
    with pytest.raises(ValueError, match="NetworkPrior.bias_variance"):
        ct.solve_cubic_teacher(replace(_noise(0.2), bias_variance=1.0), **R4)
    with pytest.raises(ValueError, match="order"):
        folded_quadrature(lambda q: q * q, [0.0], order=1)
