"""Empirical NTK: against a per-chain explicit autograd Jacobian, against the closed form of
the two-layer network, invariants (symmetry, PSD, chain independence), and the lazy limit
(relative NTK change ∝ 1/α under the output scaling f = α(f̃ − f̃_0), derivation in
langevin/ntk.py)."""
import numpy as np
import pytest
import torch

from langevin.activations import get_activation
from langevin.likelihoods import get_likelihood, loss_and_parameter_gradient
from langevin.models import TwoLayerNetwork
from langevin.ntk import chain_jacobians, empirical_ntk, relative_ntk_change


def _setup(seed=0, num_chains=3, activation="erf"):
    generator = torch.Generator().manual_seed(seed)
    model = TwoLayerNetwork(input_dim=3, width=5, activation=activation,
                            prior_variances={"w": 1 / 3, "a": 1 / 5})
    theta = model.sample_prior(num_chains, generator, dtype=torch.float64)
    x = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    return model, theta, x


def test_ntk_equals_a_per_chain_explicit_autograd_jacobian():
    model, theta, x = _setup()
    ntk = empirical_ntk(model.predict, theta, x)
    assert ntk.shape == (3, 4, 4)
    for c in range(3):
        leaves = {k: v[c:c + 1].clone().requires_grad_(True) for k, v in theta.items()}
        f = model.predict(leaves, x)[0]
        rows = []
        for mu in range(x.shape[0]):
            grads = torch.autograd.grad(f[mu], list(leaves.values()), retain_graph=True)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        jacobian = torch.stack(rows)  # (p, P)
        torch.testing.assert_close(ntk[c], jacobian @ jacobian.T, rtol=1e-12, atol=1e-12)


def test_ntk_equals_the_two_layer_closed_form_per_layer():
    # f = Σ_i a_i φ(w_i·x): ∂f/∂a_i = φ(h_i), ∂f/∂w_i = a_i φ'(h_i) x, so
    # Θ_a(x, x') = Σ_i φ(h_i)φ(h_i'),  Θ_w(x, x') = (x·x') Σ_i a_i² φ'(h_i)φ'(h_i').
    model, theta, x = _setup(activation="tanh")
    phi = get_activation("tanh")
    (h,) = model.preactivations(theta, x)  # the one hidden layer, (C, p, N)
    kernel_a = phi.value(h) @ phi.value(h).transpose(-1, -2)
    weighted = phi.derivative(h) * theta["a"].unsqueeze(-2)
    kernel_w = (weighted @ weighted.transpose(-1, -2)) * (x @ x.T)
    torch.testing.assert_close(empirical_ntk(model.predict, theta, x, layers=["a"]), kernel_a)
    torch.testing.assert_close(empirical_ntk(model.predict, theta, x, layers=["w"]), kernel_w)
    torch.testing.assert_close(empirical_ntk(model.predict, theta, x), kernel_a + kernel_w)
    jacobians = chain_jacobians(model.predict, theta, x)
    assert jacobians["w"].shape == (3, 4, 5, 3) and jacobians["a"].shape == (3, 4, 5)


def test_ntk_is_symmetric_psd_and_chains_are_independent():
    model, theta, x = _setup(num_chains=4)
    ntk = empirical_ntk(model.predict, theta, x)
    torch.testing.assert_close(ntk, ntk.transpose(-1, -2), rtol=0, atol=0)
    assert torch.linalg.eigvalsh(ntk).min() > -1e-12
    perturbed = {k: v.clone() for k, v in theta.items()}
    perturbed["w"][0] += 0.5
    ntk2 = empirical_ntk(model.predict, perturbed, x)
    assert torch.equal(ntk[1:], ntk2[1:]) and not torch.equal(ntk[0], ntk2[0])
    assert torch.equal(relative_ntk_change(ntk, ntk), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="not parameters"):
        empirical_ntk(model.predict, theta, x, layers=["b"])
    with pytest.raises(ValueError, match="same shape"):
        relative_ntk_change(ntk, ntk[:2])


def test_relative_ntk_change_falls_like_one_over_alpha_in_the_lazy_limit():
    """Gradient descent (T = 0) of f = α(f̃_θ − f̃_θ(0)) on L/α², L = ½Σ(f − y)², from the same
    θ(0) for every α (one chain per α), each chain stopped when L ≤ 2 % of L(f = 0).

    Derivation (langevin/ntk.py): r = (c/α)(1 + b/α + O(1/α²)), so the log-slope between α and
    2α is −1 − b/(2α ln 2) + O(1/α²): it tends to −1 and its deviation from −1 halves at every
    doubling of α. Both are checked, on α = 8 … 128."""
    generator = torch.Generator().manual_seed(0)
    d, width, n = 2, 32, 6
    model = TwoLayerNetwork(d, width, "erf", {"w": 1 / d, "a": 1 / width})
    alphas = torch.tensor([8.0, 16.0, 32.0, 64.0, 128.0], dtype=torch.float64)
    one = model.sample_prior(1, generator, dtype=torch.float64)
    theta = {k: v.expand(len(alphas), *v.shape[1:]).clone() for k, v in one.items()}
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = torch.sin(2 * x[:, 0]) + x[:, 1]
    f_initial = model.predict(theta, x)
    scale = alphas[:, None]

    def scaled_predict(params, inputs):
        return scale * (model.predict(params, inputs) - f_initial)

    ntk_initial = empirical_ntk(model.predict, theta, x)
    # f̃ moves as f ← f − η Θ̃ (f − y): η λ_max(Θ̃) = 0.05, far inside the stable range (< 2)
    step_size = 0.05 / torch.linalg.eigvalsh(ntk_initial[0])[-1].item()
    target = 0.02 * 0.5 * float((y * y).sum())
    gaussian = get_likelihood("gaussian")
    active = torch.ones(len(alphas), dtype=torch.bool)
    for _ in range(5000):
        loss, gradient = loss_and_parameter_gradient(gaussian, scaled_predict, theta, x, y)
        active = active & (loss > target)
        if not active.any():
            break
        for layer in theta:
            shape = (-1,) + (1,) * (theta[layer].ndim - 1)
            factor = (step_size * active / alphas ** 2).reshape(shape)  # ∇(L/α²)
            theta[layer] = theta[layer] - factor * gradient[layer]
    assert not active.any(), "gradient descent did not reach the loss target"
    change = relative_ntk_change(empirical_ntk(model.predict, theta, x), ntk_initial).numpy()
    slopes = np.diff(np.log(change)) / np.diff(np.log(alphas.numpy()))
    assert np.all(np.abs(slopes + 1) < 0.1), slopes
    deviation_ratios = (slopes[1:] + 1) / (slopes[:-1] + 1)
    assert np.all(np.abs(deviation_ratios - 0.5) < 0.1), (slopes, deviation_ratios)
