"""The classification potential U = α⁻² Σ_μ ℓ(f_μ, y_μ) + Σ_l (γ_l/2)|θ_l|² with
f = α f̃ or α [f̃(θ) − f̃(θ⁰)]: loss and gradient against autograd of the same formula
written directly, for every likelihood × output scale × centring, through
make_potential, on the fused two-layer network and a deep fc network."""
import pytest
import torch

from langevin.likelihoods import LIKELIHOODS
from langevin.models import FullyConnectedNetwork
from langevin.output_model import OutputModel
from langevin.potential import make_potential
from tests.langevin.reference_losses import reference_loss

DECAYS = {"w": 0.7, "w2": 1.3, "a": 2.0}


def _network(widths):
    layers = ("w", *(f"w{l + 1}" for l in range(1, len(widths))), "a")
    variances = {layer: 1.0 / 3 if layer == "w" else 1.0 / 6 for layer in layers}
    return FullyConnectedNetwork(3, widths, "tanh", variances)


@pytest.mark.parametrize("widths", [(6,), (6, 5)], ids=["fused_two_layer", "deep_fc"])
@pytest.mark.parametrize("alpha", [1.0, 0.3, 4.0])
@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_potential_gradient_matches_autograd(name, center, alpha, widths):
    generator = torch.Generator().manual_seed(3)
    base = _network(widths)
    x = torch.randn(11, 3, generator=generator, dtype=torch.float64)
    y = torch.where(torch.rand(11, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
    y = y.to(torch.float64)
    theta0 = base.sample_prior(4, generator, torch.float64)
    # θ away from θ⁰ so that centred outputs are non-zero and some margins are violated
    theta = {k: v + 0.8 * torch.randn(v.shape, generator=generator, dtype=torch.float64)
             for k, v in theta0.items()}
    decays = {layer: DECAYS[layer] for layer in base.layer_names}
    model = OutputModel(base, name, alpha, theta0 if center else None)
    value = make_potential(model, x, y, decays)(theta)

    leaves = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
    f = alpha * (base.predict(leaves, x) - (base.predict(theta0, x) if center else 0.0))
    loss = reference_loss(name, f, y) / alpha ** 2
    potential = loss + sum(0.5 * decays[k] * (p * p).sum(tuple(range(1, p.ndim)))
                           for k, p in leaves.items())
    grads = torch.autograd.grad(potential.sum(), list(leaves.values()))
    torch.testing.assert_close(value.loss, loss.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(value.potential, potential.detach(), rtol=1e-12, atol=1e-12)
    for layer, reference in zip(leaves, grads):
        torch.testing.assert_close(value.gradient[layer], reference, rtol=1e-10, atol=1e-12,
                                   msg=layer)
    if center:  # f ≡ 0 at the start of every chain
        assert torch.equal(model.predict(theta0, x), torch.zeros(4, 11, dtype=torch.float64))


def test_gaussian_at_unit_scale_equals_the_fused_backward_pass():
    """α = 1, no centring, Gaussian: the same loss and gradient as the analytic two-layer
    backward (so such runs may keep the plain model)."""
    generator = torch.Generator().manual_seed(5)
    base = _network((6,))
    x = torch.randn(9, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(9, generator=generator, dtype=torch.float64)
    theta = base.sample_prior(3, generator, torch.float64)
    loss, gradient = OutputModel(base).loss_and_gradient(theta, x, y)
    fused_loss, fused_gradient = base.loss_and_gradient(theta, x, y)
    torch.testing.assert_close(loss, fused_loss, rtol=1e-13, atol=1e-13)
    for layer in base.layer_names:
        torch.testing.assert_close(gradient[layer], fused_gradient[layer], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf")])
def test_output_scale_is_validated(alpha):
    with pytest.raises(ValueError, match="output_scale"):
        OutputModel(_network((4,)), "hinge", alpha)
