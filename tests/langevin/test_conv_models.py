"""Convolutional (cnn) and locally connected (lcn) patch networks, batched over chains:
forward and gradient against a per-chain torch.nn.Module + autograd, chain independence,
prior variances within 4 MCSE, input validation."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from langevin.models.conv import LocalPatchNetwork, patch_grid, patch_prior_variances
from tests.langevin.chain_averages import assert_within_4_se

# (input_shape, patch_size, stride): 1-D and 2-D, non-overlapping and overlapping patches.
GEOMETRIES = [
    ((12,), 3, 3),
    ((10,), 4, 2),
    ((8, 8), 4, 4),
    ((7, 6), (3, 2), (2, 2)),
]


def _model(geometry, shared, bias, channels=3, activation="erf", sigma_w2=1.3, sigma_a2=0.7,
           chi=1.0):
    shape, patch, stride = geometry
    patch_t, _, grid = patch_grid(shape, patch, stride)
    variances = patch_prior_variances(math.prod(patch_t), math.prod(grid), channels, sigma_w2,
                                      sigma_a2, chi, sigma_b2=0.4 if bias else None)
    return LocalPatchNetwork(shape, patch, stride, channels, activation, variances,
                             shared=shared, bias=bias)


class ConvReference(nn.Module):
    """One chain's cnn: torch's Conv1d/Conv2d (1 input channel), φ, dense readout."""

    def __init__(self, model: LocalPatchNetwork, theta: dict, chain: int):
        super().__init__()
        shape, K = model.input_shape, model.channels
        patch, stride = model._patch, model._stride
        conv_type = nn.Conv1d if len(shape) == 1 else nn.Conv2d
        self.conv = conv_type(1, K, patch, stride=stride, bias=model.bias).double()
        with torch.no_grad():
            self.conv.weight.copy_(theta["w"][chain].reshape(K, 1, *patch))
            if model.bias:
                self.conv.bias.copy_(theta["b"][chain])
        self.a = nn.Parameter(theta["a"][chain].clone())  # (M, K)
        self.model = model

    def forward(self, x):
        n = x.shape[0]
        out = self.conv(x.reshape(n, 1, *self.model.input_shape))  # (n, K, *grid)
        out = out.flatten(2).transpose(1, 2)  # (n, M, K), patches row-major
        return (self.model._phi.value(out) * self.a).sum((1, 2))

    def gradients(self):
        grads = {"w": self.conv.weight.grad.reshape(self.model.channels, -1), "a": self.a.grad}
        if self.model.bias:
            grads["b"] = self.conv.bias.grad
        return grads


class LocalReference(nn.Module):
    """One chain's lcn: explicit patches by slicing and one nn.Linear per patch."""

    def __init__(self, model: LocalPatchNetwork, theta: dict, chain: int):
        super().__init__()
        self.model = model
        self.linears = nn.ModuleList()
        for p in range(model.num_patches):
            linear = nn.Linear(model.patch_dim, model.channels, bias=model.bias).double()
            with torch.no_grad():
                linear.weight.copy_(theta["w"][chain, p])
                if model.bias:
                    linear.bias.copy_(theta["b"][chain, p])
            self.linears.append(linear)
        self.a = nn.Parameter(theta["a"][chain].clone())

    def _patch_slices(self, x):
        model, n = self.model, x.shape[0]
        image = x.reshape(n, *model.input_shape)
        if len(model.input_shape) == 1:
            (k,), (s,), (g,) = model._patch, model._stride, model._grid
            return [image[:, i * s:i * s + k] for i in range(g)]
        (kh, kw), (sh, sw), (gh, gw) = model._patch, model._stride, model._grid
        return [image[:, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, -1)
                for i in range(gh) for j in range(gw)]

    def forward(self, x):
        hidden = torch.stack([lin(patch) for lin, patch in zip(self.linears, self._patch_slices(x))],
                             dim=1)  # (n, M, K)
        return (self.model._phi.value(hidden) * self.a).sum((1, 2))

    def gradients(self):
        grads = {"w": torch.stack([lin.weight.grad for lin in self.linears]), "a": self.a.grad}
        if self.model.bias:
            grads["b"] = torch.stack([lin.bias.grad for lin in self.linears])
        return grads


def _problem(model, num_chains=3, n=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    theta = model.sample_prior(num_chains, generator, torch.float64)
    x = torch.randn(n, model.input_dim, generator=generator, dtype=torch.float64)
    y = torch.randn(n, generator=generator, dtype=torch.float64)
    return theta, x, y


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}-{g[1]}-{g[2]}")
@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_batched_forward_and_gradient_equal_a_per_chain_module(geometry, shared, bias):
    model = _model(geometry, shared, bias, activation="tanh")
    theta, x, y = _problem(model)
    f = model.predict(theta, x)
    loss, grads = model.loss_and_gradient(theta, x, y)
    assert f.shape == (3, 5) and loss.shape == (3,)
    for layer, shape in model.parameter_shapes().items():
        assert grads[layer].shape == (3, *shape)
    reference_type = ConvReference if shared else LocalReference
    for chain in range(3):
        reference = reference_type(model, theta, chain)
        f_ref = reference(x)
        loss_ref = 0.5 * ((f_ref - y) ** 2).sum()
        loss_ref.backward()
        torch.testing.assert_close(f[chain], f_ref.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(loss[chain], loss_ref.detach(), rtol=1e-12, atol=1e-12)
        for layer, grad in reference.gradients().items():
            torch.testing.assert_close(grads[layer][chain], grad.reshape(grads[layer][chain].shape),
                                       rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_preactivations_are_the_reference_hidden_layer(shared):
    model = _model(((7, 6), (3, 2), (2, 2)), shared, bias=True)
    theta, x, _ = _problem(model)
    (h,) = model.preactivations(theta, x)
    assert h.shape == (3, 5, model.hidden_units())
    for chain in range(3):
        if shared:
            ref = ConvReference(model, theta, chain).conv(x.reshape(5, 1, 7, 6))
            ref = ref.flatten(2).transpose(1, 2)
        else:
            local = LocalReference(model, theta, chain)
            ref = torch.stack([lin(p) for lin, p in zip(local.linears, local._patch_slices(x))], 1)
        torch.testing.assert_close(h[chain], ref.reshape(5, -1).detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_chain_independence_perturbing_chain_zero_leaves_the_others_bit_identical(shared):
    model = _model(((8, 8), 4, 2), shared, bias=True, activation="relu")
    theta, x, y = _problem(model, num_chains=4)
    loss, grads = model.loss_and_gradient(theta, x, y)
    f = model.predict(theta, x)
    perturbed = {k: v.clone() for k, v in theta.items()}
    for v in perturbed.values():
        v[0] += 0.3
    loss2, grads2 = model.loss_and_gradient(perturbed, x, y)
    f2 = model.predict(perturbed, x)
    assert not torch.equal(loss[0], loss2[0])
    assert torch.equal(loss[1:], loss2[1:]) and torch.equal(f[1:], f2[1:])
    for layer in model.layer_names:
        assert torch.equal(grads[layer][1:], grads2[layer][1:])


@pytest.mark.parametrize("shared", [True, False], ids=["cnn", "lcn"])
def test_prior_draws_have_the_stated_variances_within_4_mcse(shared):
    model = _model(((8, 8), 4, 4), shared, bias=True, channels=5, sigma_w2=2.0, sigma_a2=3.0,
                   chi=2.0)
    assert model.prior_variances["w"] == pytest.approx(2.0 / 16)
    assert model.prior_variances["a"] == pytest.approx(3.0 / (2.0 * 4 * 5))
    theta = model.sample_prior(400, torch.Generator().manual_seed(3), torch.float64)
    for layer, variance in model.prior_variances.items():
        values = theta[layer].reshape(400, -1).numpy()
        # Per-chain mean of squares: independent across chains, expectation = variance.
        assert_within_4_se((values ** 2).mean(1), np.array(variance))
        assert_within_4_se(values.mean(1), np.array(0.0))


def test_float32_forward_and_gradient_match_float64():
    model = _model(((8, 8), 4, 4), True, bias=False)
    theta, x, y = _problem(model)
    loss, grads = model.loss_and_gradient(theta, x, y)
    theta32 = {k: v.float() for k, v in theta.items()}
    loss32, grads32 = model.loss_and_gradient(theta32, x.float(), y.float())
    assert loss32.dtype == torch.float32 and grads32["w"].dtype == torch.float32
    torch.testing.assert_close(loss32.double(), loss, rtol=1e-5, atol=1e-5)
    for layer in model.layer_names:
        torch.testing.assert_close(grads32[layer].double(), grads[layer], rtol=1e-4, atol=1e-5)


def test_geometry_and_protocol():
    model = _model(((8, 8), 4, 2), shared=False, bias=True, channels=6)
    assert (model.num_patches, model.patch_dim, model.hidden_units()) == (9, 16, 54)
    assert model.layer_names == ("w", "a", "b")
    assert model.parameter_shapes() == {"w": (9, 6, 16), "a": (9, 6), "b": (9, 6)}
    assert model.fan_ins() == {"w": 16, "a": 54, "b": 1}
    cnn = _model(((10,), 4, 2), shared=True, bias=False, channels=6)
    assert cnn.parameter_shapes() == {"w": (6, 4), "a": (4, 6)}


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_shape=(8, 8), patch_size=3, stride=2), "do not tile"),
    (dict(input_shape=(8, 8), patch_size=9, stride=1), "exceeds"),
    (dict(input_shape=(8, 8, 2), patch_size=2, stride=2), "input_shape"),
    (dict(input_shape=(8, 8), patch_size=(2, 2, 2), stride=2), "patch_size"),
    (dict(input_shape=(8,), patch_size=2, stride=0), "stride"),
])
def test_bad_geometry_is_rejected_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LocalPatchNetwork(channels=2, activation="erf", prior_variances={"w": 1.0, "a": 1.0},
                          **kwargs)


def test_bad_prior_channels_and_inputs_are_rejected():
    base = dict(input_shape=(8,), patch_size=2, stride=2, activation="erf")
    with pytest.raises(ValueError, match="prior_variances"):
        LocalPatchNetwork(channels=2, prior_variances={"w": 1.0, "a": 1.0}, bias=True, **base)
    with pytest.raises(ValueError, match="prior_variances"):
        LocalPatchNetwork(channels=2, prior_variances={"w": 1.0, "a": -1.0}, **base)
    with pytest.raises(ValueError, match="channels"):
        LocalPatchNetwork(channels=0, prior_variances={"w": 1.0, "a": 1.0}, **base)
    model = LocalPatchNetwork(channels=2, prior_variances={"w": 1.0, "a": 1.0}, **base)
    theta = model.sample_prior(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 8\)"):
        model.predict(theta, torch.zeros(3, 9))
