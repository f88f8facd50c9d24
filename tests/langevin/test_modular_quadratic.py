"""The P-output quadratic network and the sextic mode decay (langevin.models.modular_quadratic),
and the multi-output / extra-term path of langevin.potential.make_potential."""
import numpy as np
import pytest
import torch

from experiments.setup.modular_addition_data import modular_addition_data, mode_order_parameters
from langevin.models.modular_quadratic import (
    ModularQuadraticNetwork, sextic_mode_decay, sextic_mode_penalty, sextic_mode_penalty_gradient,
)
from langevin.models.protocol import autograd_loss_and_gradient
from langevin.potential import make_potential

P, N, C = 5, 4, 3


def _setup(dtype=torch.float64):
    model = ModularQuadraticNetwork(P, N, {"w": 1.0, "a": 0.3 / N})
    theta = model.sample_prior(C, torch.Generator().manual_seed(0), dtype)
    data = modular_addition_data(P, n_train=17, seed=2)
    x = torch.as_tensor(data.x_train, dtype=dtype)
    y = torch.as_tensor(data.y_train, dtype=dtype)
    return model, theta, x, y


def test_outputs_match_the_definition_per_chain():
    model, theta, x, _ = _setup()
    f = model.outputs(theta, x)
    assert f.shape == (C, len(x), P)
    w, a = theta["w"].numpy(), theta["a"].numpy()
    for c in range(C):  # f_p(x) = Σ_i a_pi (w_i·x)², written out
        expected = np.einsum("pi,mi->mp", a[c], (x.numpy() @ w[c].T) ** 2)
        np.testing.assert_allclose(f[c].numpy(), expected, rtol=1e-12)
    flat = model.predict(theta, x)
    assert flat.shape == (C, len(x) * P)
    np.testing.assert_array_equal(flat.reshape(C, len(x), P).numpy(), f.numpy())


def test_fused_gradient_equals_autograd():
    model, theta, x, y = _setup()
    loss, grads = model.loss_and_gradient(theta, x, y.reshape(-1))
    ref_loss, ref = autograd_loss_and_gradient(model, theta, x, y.reshape(-1))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0)
    for layer in ("w", "a"):
        assert grads[layer].shape == theta[layer].shape
        torch.testing.assert_close(grads[layer], ref[layer], rtol=1e-10, atol=1e-12)


def test_sextic_penalty_value_from_explicit_fourier_sums():
    w = torch.randn(2, 3, 2 * P, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gamma = 0.7
    modes = np.exp(-2j * np.pi * np.outer(np.arange(P), np.arange(P)) / P) / P  # u_k = Σ_n M_kn u_n
    W = w.numpy()
    u2 = np.abs(W[..., :P] @ modes.T) ** 2
    v2 = np.abs(W[..., P:] @ modes.T) ** 2
    expected = (P * gamma / 6.0) * (u2 ** 3 + v2 ** 3).sum((-1, -2))
    np.testing.assert_allclose(sextic_mode_penalty(w, P, gamma).numpy(), expected, rtol=1e-12)
    # the same modes as the data module's order parameters (k ≠ 0 there)
    np.testing.assert_allclose(mode_order_parameters(W, P)["u_squared"], u2[..., 1:], rtol=1e-12)


@pytest.mark.parametrize("modulus", [5, 6])  # odd and even P (rfft's Nyquist bin)
def test_sextic_penalty_gradient_equals_autograd(modulus):
    w = torch.randn(2, 3, 2 * modulus, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    leaf = w.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(sextic_mode_penalty(leaf, modulus, 0.4).sum(), leaf)
    torch.testing.assert_close(sextic_mode_penalty_gradient(w, modulus, 0.4), ref, rtol=1e-10, atol=1e-13)


def test_multi_output_potential_with_sextic_term_equals_autograd_of_u():
    model, theta, x, y = _setup()
    T, gamma = 0.2, 0.5
    decays = {"w": T / 1.0, "a": T * N / 0.3}
    potential = make_potential(model, x, y, decays, num_outputs=P,
                               extra_terms=(sextic_mode_decay(P, gamma, T),))
    value = potential(theta)
    with torch.enable_grad():
        leaves = {k: v.detach().requires_grad_(True) for k, v in theta.items()}
        f = model.outputs(leaves, x)
        U = 0.5 * ((f - y) ** 2).sum((-1, -2))
        U = U + 0.5 * sum(decays[k] * (leaves[k] ** 2).sum((-1, -2)) for k in leaves)
        U = U + T * sextic_mode_penalty(leaves["w"], P, gamma)
        grads = torch.autograd.grad(U.sum(), [leaves["w"], leaves["a"]])
    torch.testing.assert_close(value.potential, U.detach(), rtol=1e-12, atol=0)
    for layer, ref in zip(("w", "a"), grads):
        torch.testing.assert_close(value.gradient[layer], ref, rtol=1e-10, atol=1e-12)


def test_target_shapes_are_checked():
    model, theta, x, y = _setup()
    with pytest.raises(ValueError, match=r"y_train \(n, 5\)"):
        make_potential(model, x, y[:, :3], {"w": 1.0, "a": 1.0}, num_outputs=P)
    with pytest.raises(ValueError, match="y_train"):  # the scalar path refuses (n, P) targets
        make_potential(model, x, y, {"w": 1.0, "a": 1.0})
    with pytest.raises(ValueError, match="flattened"):
        model.loss_and_gradient(theta, x, y)
    with pytest.raises(ValueError, match="modulus"):
        ModularQuadraticNetwork(1, N, {"w": 1.0, "a": 1.0})
    with pytest.raises(ValueError, match="sextic"):
        sextic_mode_decay(P, -1.0, 0.2)


def test_mala_without_data_samples_the_sextic_mode_law():
    """No training pairs: each neuron's weights follow N(0, 1) × e^{−Γ}. For odd P a mode pair
    (k, −k) is one complex u_k, and ½|u|² + Γ = Σ_pairs [P X + (Pγ/3) X³] (X = |u_k|², uniform
    measure in X for a 2-d variable), so ⟨X⟩ = ∫ X e^{−PX − PγX³/3} dX / ∫ e^{−PX − PγX³/3} dX
    [DERIVED]. MALA (no step-size bias) must match that quadrature within 4 MCSE."""
    from scipy import integrate

    from langevin.diagnostics import mcse_mean
    from langevin.integrators import per_layer_step_sizes
    from langevin.models.modular_quadratic import mode_squared_amplitudes
    from langevin.schemes import INTEGRATORS

    modulus, width, chains, gamma, T = 5, 8, 16, 10.0, 0.5
    density = lambda X: np.exp(-modulus * X - modulus * gamma * X ** 3 / 3.0)  # noqa: E731
    truth = integrate.quad(lambda X: X * density(X), 0, np.inf)[0] / integrate.quad(density, 0, np.inf)[0]
    free = integrate.quad(lambda X: X * np.exp(-modulus * X), 0, np.inf)[0] / (1.0 / modulus)
    assert abs(truth - free) > 0.1 * free  # the sextic term matters at this γ
    model = ModularQuadraticNetwork(modulus, width, {"w": 1.0, "a": 1.0})
    x = torch.zeros((0, 2 * modulus), dtype=torch.float64)
    y = torch.zeros((0, modulus), dtype=torch.float64)
    decays = {"w": T, "a": T}
    potential = make_potential(model, x, y, decays, num_outputs=modulus,
                               extra_terms=(sextic_mode_decay(modulus, gamma, T),))
    integrator = INTEGRATORS["mala"](potential, per_layer_step_sizes(0.05, decays), T)
    generator = torch.Generator().manual_seed(7)
    state = integrator.init(model.sample_prior(chains, generator, torch.float64))
    draws = []
    for step in range(3000):
        state, _ = integrator.step(state, generator)
        if step >= 500 and step % 5 == 0:
            X, Y = mode_squared_amplitudes(state.theta["w"], modulus)
            draws.append(torch.cat([X[..., 1:], Y[..., 1:]], -1).mean((-1, -2)).numpy())
    draws = np.stack(draws, axis=1)  # (chain, draw)
    estimate, se = draws.mean(), float(mcse_mean(draws))
    assert abs(estimate - truth) < 4 * se, (estimate, truth, se)
