"""Conformance suite over every entry of the architecture registry (experiments.setup.architectures
.MODELS): each entry's `examples` are built from a config and must give

* a batched forward pass and gradient equal to a per-chain torch.nn.Module + autograd;
* the generic batched-autograd gradient (one backward pass of Σ_c L_c) equal to the model's;
* chain independence: perturbing chain 0 leaves every other chain bit-identical;
* prior draws with the stated per-layer variances (σ_l²/fan_in, readout σ̃_a²/(χ fan_in),
  bias σ_b²) within 4 standard errors;
* pre-activations of every hidden layer with the stated widths;
* a bitwise resume of a tiny run interrupted after a checkpoint.

A new entry needs one reference module in REFERENCE_MODULES (the test of that fails until
it is there)."""
from __future__ import annotations

import math

import pytest
import torch

from experiments.setup import config as cfg
from experiments.setup.architectures import MODELS, fc_widths, get_entry
from experiments.setup.build import build_run, make_data, resolve_physics
from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.models import autograd_loss_and_gradient
from langevin.activations import get_activation
from langevin.models.fc import bias_name, weight_name
from langevin.potential import make_potential
from langevin.run import run_chains
from langevin.store import SampleStore
from tests.langevin.test_conv_models import ConvReference, LocalReference

NUM_CHAINS, DIM, N = 3, 4, 7
CASES = [(name, index) for name, entry in MODELS.items() for index in range(len(entry.examples))]
IDS = [f"{name}-{index}" for name, index in CASES]


class _FullyConnected(torch.nn.Module):
    """One fc network written with torch.nn.Linear layers (no batching over chains)."""

    def __init__(self, model, theta: dict, chain: int):
        super().__init__()
        self.phi = get_activation(model.activation).value
        self.hidden = torch.nn.ModuleList()
        self.names = []
        fan_in = model.input_dim
        for layer, width in enumerate(model.widths, start=1):
            linear = torch.nn.Linear(fan_in, width, bias=model.bias, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(theta[weight_name(layer)][chain])
                if model.bias:
                    linear.bias.copy_(theta[bias_name(layer)][chain])
            self.hidden.append(linear)
            self.names += [weight_name(layer)] + ([bias_name(layer)] if model.bias else [])
            fan_in = width
        self.readout = torch.nn.Linear(fan_in, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.readout.weight.copy_(theta["a"][chain].unsqueeze(0))
        self.names.append("a")

    def forward(self, x):
        for linear in self.hidden:
            x = self.phi(linear(x))
        return self.readout(x).squeeze(-1)

    def gradients(self) -> dict:
        params = [p for linear in self.hidden for p in linear.parameters()] + [self.readout.weight]
        return {name: p.grad.reshape(p.shape[1:] if name == "a" else p.shape)
                for name, p in zip(self.names, params)}


REFERENCE_MODULES = {"fc": _FullyConnected, "cnn": ConvReference, "lcn": LocalReference}


def _config(name: str, index: int, extra: dict | None = None) -> dict:
    overrides = [{"model": {"architecture": name}}, MODELS[name].examples[index]]
    config, _ = cfg.resolve(overrides + ([extra] if extra else []))
    return config


def _model(config: dict):
    physics = resolve_physics(config, DIM)
    model = get_entry(config["model"]["architecture"]).build(config, DIM, physics.prior_variances)
    return model, physics


def _problem(config: dict, seed: int = 0):
    model, physics = _model(config)
    generator = torch.Generator().manual_seed(seed)
    theta = model.sample_prior(NUM_CHAINS, generator, torch.float64)
    x = torch.randn(N, DIM, generator=generator, dtype=torch.float64)
    y = torch.randn(N, generator=generator, dtype=torch.float64)
    return model, physics, theta, x, y


def test_every_entry_has_a_reference_module_and_examples():
    assert set(REFERENCE_MODULES) == set(MODELS)
    assert all(entry.examples for entry in MODELS.values())


@pytest.mark.parametrize("name, index", CASES, ids=IDS)
def test_batched_forward_and_gradient_equal_per_chain_module(name, index):
    model, _, theta, x, y = _problem(_config(name, index))
    loss, gradient = model.loss_and_gradient(theta, x, y)
    prediction = model.predict(theta, x)
    for chain in range(NUM_CHAINS):
        module = REFERENCE_MODULES[name](model, theta, chain)
        f = module(x)
        reference_loss = 0.5 * ((f - y) ** 2).sum()
        reference_loss.backward()
        torch.testing.assert_close(prediction[chain], f.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(loss[chain], reference_loss.detach(), rtol=1e-12, atol=1e-12)
        for layer, grad in module.gradients().items():
            torch.testing.assert_close(gradient[layer][chain], grad, rtol=1e-10, atol=1e-12)
    assert set(gradient) == set(model.layer_names)


@pytest.mark.parametrize("name, index", CASES, ids=IDS)
def test_model_gradient_equals_generic_batched_autograd(name, index):
    model, _, theta, x, y = _problem(_config(name, index))
    loss, gradient = model.loss_and_gradient(theta, x, y)
    generic_loss, generic = autograd_loss_and_gradient(model, theta, x, y)
    torch.testing.assert_close(loss, generic_loss, rtol=1e-12, atol=1e-12)
    for layer in model.layer_names:
        torch.testing.assert_close(gradient[layer], generic[layer], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, index", CASES, ids=IDS)
def test_perturbing_chain_0_leaves_the_other_chains_bit_identical(name, index, dtype):
    model, physics, theta, x, y = _problem(_config(name, index))
    theta = {k: v.to(dtype) for k, v in theta.items()}
    x, y = x.to(dtype), y.to(dtype)
    decays = physics.weight_decays
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                per_layer_step_sizes(0.01, decays), physics.temperature)
    perturbed = {k: v.clone() for k, v in theta.items()}
    for value in perturbed.values():
        value[0] += 0.3
    runs = []
    for start in (theta, perturbed):
        generator = torch.Generator().manual_seed(5)
        state = integrator.init(start)
        for _ in range(20):
            state, _ = integrator.step(state, generator)
        runs.append(state)
    for layer in model.layer_names:
        assert torch.equal(runs[0].theta[layer][1:], runs[1].theta[layer][1:]), layer
        assert not torch.equal(runs[0].theta[layer][0], runs[1].theta[layer][0]), layer


def _stated_variance(config: dict, prior, chi: float) -> float:
    """The prior rule written out from the config keys (docs/conventions.md)."""
    post = config["posterior"]
    if prior.role == "bias":
        return post["sigma_b2"]
    if prior.role == "readout":
        return post["sigma_a2"] / (chi * prior.fan_in)
    sigma = post["sigma_w2"]
    return (sigma[prior.index] if isinstance(sigma, list) else sigma) / prior.fan_in


@pytest.mark.parametrize("scaling", ["standard", "mean_field"])
@pytest.mark.parametrize("name, index", CASES, ids=IDS)
def test_prior_draws_have_the_stated_per_layer_variances(name, index, scaling):
    config = _config(name, index, {"model": {"scaling": scaling}})
    model, physics = _model(config)
    entry = get_entry(name)
    chi = float(entry.readout_width(config)) if scaling == "mean_field" else 1.0
    assert physics.chi == chi
    priors = entry.layer_priors(config, DIM)
    assert [p.layer for p in priors] == list(model.layer_names)
    theta = model.sample_prior(400, torch.Generator().manual_seed(2), torch.float64)
    for prior in priors:
        stated = _stated_variance(config, prior, chi)
        assert model.prior_variances[prior.layer] == pytest.approx(stated, rel=1e-12)
        values = theta[prior.layer].flatten()
        # Independent Gaussian draws: the sample variance has standard error v √(2/(m−1)).
        standard_error = stated * math.sqrt(2 / (values.numel() - 1))
        assert abs(values.var().item() - stated) < 4 * standard_error, prior.layer
        assert abs(values.mean().item()) < 4 * math.sqrt(stated / values.numel()), prior.layer


@pytest.mark.parametrize("name, index", CASES, ids=IDS)
def test_preactivations_of_every_hidden_layer(name, index):
    config = _config(name, index)
    model, _, theta, x, _ = _problem(config)
    hidden = model.preactivations(theta, x)
    assert sum(h.shape[-1] for h in hidden) == model.hidden_units()
    assert all(h.shape[:2] == (NUM_CHAINS, N) for h in hidden)
    if name == "fc":
        assert [h.shape[-1] for h in hidden] == list(fc_widths(config))


def _tiny_run(config: dict, directory, stop_after: int | None = None):
    data = make_data(config)
    setup = build_run(config, data)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return stop_after is not None and calls["n"] == stop_after

    return run_chains(integrator=setup.integrator, initial_theta=setup.initial_theta,
                      generator=setup.generator, observables=setup.observables,
                      plan=setup.plan, store=SampleStore(directory / "samples.zarr",
                                                         config["sampler"]["num_chains"]),
                      checkpoint_dir=directory / "checkpoint", config_hash=cfg.config_hash(config),
                      stop_requested=stop)


# One case per entry (its last example, the one with the most features): run I/O dominates.
RESUME_CASES = [(name, len(entry.examples) - 1) for name, entry in MODELS.items()]


@pytest.mark.parametrize("name, index", RESUME_CASES, ids=[n for n, _ in RESUME_CASES])
def test_an_interrupted_run_resumes_bit_identically(name, index, tmp_path):
    config = _config(name, index, {
        "sampler": {"num_chains": 2, "num_steps": 60, "burn_in": 10, "thin": 5,
                    "checkpoint_every": 20, "progress": False},
        "data": {"d": DIM, "n_train": 8, "n_test": 4},
        "observables": {"probe_points": 3, "kernel_every": 10}})
    whole = _tiny_run(config, tmp_path / "whole")
    first = _tiny_run(config, tmp_path / "split", stop_after=33)
    assert first.status == "interrupted"
    second = _tiny_run(config, tmp_path / "split")
    assert second.status == "completed" and second.step == whole.step
    for layer, value in whole.state.theta.items():
        assert torch.equal(value, second.state.theta[layer]), layer
    for group in ("", "every_10"):
        left = SampleStore(tmp_path / "whole" / "samples.zarr", 2).open(group).load()
        right = SampleStore(tmp_path / "split" / "samples.zarr", 2).open(group).load()
        assert set(left.data_vars) == set(right.data_vars) and left.sizes == right.sizes
        for variable in left.data_vars:
            assert (left[variable].values == right[variable].values).all(), variable
