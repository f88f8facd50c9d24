"""Observables against exact values."""
import numpy as np
import scipy.linalg
import torch

from langevin import observables as obs
from langevin.integrators import LangevinState, euler_maruyama
from langevin.models import LinearModel, TwoLayerNetwork
from langevin.potential import make_potential


def test_virial_temperature_equals_the_exact_discrete_chain_value():
    # For U = ½θᵀAθ − bᵀθ the ULA law is N(A⁻¹b, Σ_η) with Σ_η = MΣ_ηMᵀ + 2ηT I, so
    # E[θ·∇U]/P = E[θᵀ(Aθ − b)]/P = tr(AΣ_η)/P: T·(1 + O(η)), exactly computable.
    generator = torch.Generator().manual_seed(5)
    d, n, temperature, decay, eta = 4, 12, 0.2, 0.4, 0.02
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    model = LinearModel(d, temperature / decay)
    integrator = euler_maruyama(make_potential(model, x, y, {"theta": decay}), {"theta": eta},
                                temperature)
    X = x.numpy()
    A = X.T @ X + decay * np.eye(d)
    sigma = scipy.linalg.solve_discrete_lyapunov(np.eye(d) - eta * A, 2 * eta * temperature * np.eye(d))
    expected = np.trace(A @ sigma) / d
    assert abs(expected - temperature) > 0.01 * temperature  # the bias is visible here
    thermometer = obs.virial_temperature(("theta",)).fn
    num_chains, relaxation = 1024, int(10 / (eta * np.linalg.eigvalsh(A).min()))
    state = integrator.init(model.sample_prior(num_chains, generator, torch.float64))
    for _ in range(relaxation):
        state, _ = integrator.step(state, generator)
    total = torch.zeros(num_chains, dtype=torch.float64)
    for _ in range(2 * relaxation):
        state, _ = integrator.step(state, generator)
        total += thermometer(state)["virial_temperature_theta"]
    per_chain = (total / (2 * relaxation)).numpy()
    se = per_chain.std(ddof=1) / np.sqrt(num_chains)
    assert abs(per_chain.mean() - expected) < 4 * se


def _state(theta):
    zeros = torch.zeros(next(iter(theta.values())).shape[0])
    return LangevinState(theta, zeros, zeros, {k: torch.zeros_like(v) for k, v in theta.items()})


def test_projections_and_second_moments():
    generator = torch.Generator().manual_seed(2)
    d, width, num_chains = 10, 400, 50
    model = TwoLayerNetwork(d, width, "erf", {"w": 0.3 / d, "a": 1.0 / width})
    theta = model.sample_prior(num_chains, generator, torch.float64)
    teacher = torch.zeros(d, dtype=torch.float64)
    teacher[3] = 1.0
    control = torch.eye(d, dtype=torch.float64)[:2]
    out = obs.teacher_projections(teacher, control).fn(_state(theta))
    torch.testing.assert_close(out["q"], theta["w"][..., 3])
    torch.testing.assert_close(out["q_control"], theta["w"][..., :2])
    moments = obs.weight_second_moments(teacher).fn(_state(theta))
    # Under the prior both moments equal σ_w²/d; the per-chain averages are independent.
    for name in ("w_second_moment_parallel", "w_second_moment_perp"):
        values = moments[name].numpy()
        se = values.std(ddof=1) / np.sqrt(num_chains)
        assert abs(values.mean() - 0.3 / d) < 4 * se, name


def test_duplicate_variable_names_are_refused():
    import pytest

    with pytest.raises(ValueError, match="train_loss"):
        obs.check_unique_names({"one": obs.train_loss(), "two": obs.train_loss()})


def test_erf_hermite_projections_equal_gaussian_quadrature():
    """E_x[f He_k(w*·x)] of a two-layer erf net against a 2-D Gauss–Hermite quadrature of the exact law of
    (w_i·x, w*·x): h = q z + √(|w|² − q²) u with z, u independent standard normals."""
    from scipy.special import erf
    from theory.hermite import gauss_hermite_normal, hermite_he

    generator = torch.Generator().manual_seed(5)
    d, width, num_chains = 6, 5, 3
    model = TwoLayerNetwork(d, width, "erf", {"w": 1.5 / d, "a": 1.0})
    theta = model.sample_prior(num_chains, generator, torch.float64)
    teacher = torch.randn(d, generator=generator, dtype=torch.float64)
    teacher /= teacher.norm()
    got = obs.erf_hermite_projections(teacher).fn(_state(theta))["hermite_projection"].numpy()
    rule = gauss_hermite_normal(80)
    z, u = np.meshgrid(rule.nodes, rule.nodes, indexing="ij")
    weights = np.outer(rule.weights, rule.weights)
    w, a = theta["w"].numpy(), theta["a"].numpy()
    q = w @ teacher.numpy()
    r = np.sqrt((w * w).sum(-1) - q ** 2)
    for k, column in ((1, 0), (3, 1)):
        expected = np.einsum("cn,cnij,ij,ij->c", a, erf(q[..., None, None] * z + r[..., None, None] * u),
                             hermite_he(k, z), weights)
        np.testing.assert_allclose(got[:, column], expected, rtol=1e-10, atol=1e-12)
