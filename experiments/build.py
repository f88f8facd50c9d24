"""From a validated config to the pieces of a run: physics, data, model, integrator,
observables, plan. The one place where the config's convention is translated into the
sampler's explicit arguments (docs/conventions.md)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from experiments import tempering_setup
from experiments.data import DataSet, load_npz, single_index_data
from langevin import observables as obs
from langevin.convention import (
    BayesianSpec, TrainingSpec, bayes_to_training, chi_for_scaling, training_to_bayes,
    two_layer_prior_variances,
)
from langevin.integrators import Integrator, per_layer_step_sizes
from langevin.schemes import INTEGRATORS
from langevin.models import TwoLayerNetwork
from langevin.potential import make_potential
from langevin.run import RunPlan


class Physics(NamedTuple):
    """Both views of the posterior of one run, with the convention spelled out."""

    view: str  # "bayesian" or "training": how the user stated it
    chi: float
    sigma_w2: float  # w ~ N(0, sigma_w2/d)
    sigma_a2: float  # a ~ N(0, sigma_a2/(chi N))
    noise_variance_tilde: float  # σ̃²; the likelihood variance is σ̃²/χ
    noise_variance: float  # σ² = σ̃²/χ = T (loss ½ SSE)
    prior_variances: dict  # per weight, per layer
    temperature: float
    weight_decays: dict

    def as_metadata(self) -> dict:
        out = self._asdict()
        out["convention"] = (
            "U = 1/2 sum (f - y)^2 + sum_l gamma_l/2 |theta_l|^2; dtheta = -grad U dt + "
            "sqrt(2T) dW; posterior exp(-U/T): prior variance T/gamma_l per weight, "
            "noise variance sigma^2 = T (1/2-SSE loss); readout prior sigma_a2/(chi N), "
            "noise sigma~^2/chi"
        )
        return out


def resolve_physics(config: dict, input_dim: int) -> Physics:
    model = config["model"]
    width = model["width"]
    chi = model["chi"] if model["chi"] > 0 else chi_for_scaling(model["scaling"], width)
    training = config["training"]
    if training["temperature"] > 0:
        spec = TrainingSpec(training["temperature"],
                            {"w": training["weight_decay_w"], "a": training["weight_decay_a"]})
        bayes = training_to_bayes(spec)
        return Physics(
            view="training", chi=chi,
            sigma_w2=bayes.prior_variances["w"] * input_dim,
            sigma_a2=bayes.prior_variances["a"] * chi * width,
            noise_variance_tilde=bayes.noise_variance * chi,
            noise_variance=bayes.noise_variance,
            prior_variances=dict(bayes.prior_variances),
            temperature=spec.temperature, weight_decays=dict(spec.weight_decays),
        )
    post = config["posterior"]
    variances = two_layer_prior_variances(input_dim, width, post["sigma_w2"], post["sigma_a2"], chi)
    noise_variance = post["noise_variance"] / chi
    spec = bayes_to_training(BayesianSpec(variances, noise_variance))
    return Physics(
        view="bayesian", chi=chi, sigma_w2=post["sigma_w2"], sigma_a2=post["sigma_a2"],
        noise_variance_tilde=post["noise_variance"], noise_variance=noise_variance,
        prior_variances=variances, temperature=spec.temperature,
        weight_decays=dict(spec.weight_decays),
    )


def make_data(config: dict) -> DataSet:
    data = config["data"]
    if data["source"] == "npz":
        return load_npz(data["path"])
    return single_index_data(
        d=data["d"], n_train=data["n_train"], n_test=data["n_test"],
        coefficients=data["hermite_coefficients"], seed=data["seed"],
        label_noise=data["label_noise"],
        num_control=config["observables"]["control_directions"],
    )


class RunSetup(NamedTuple):
    physics: Physics
    model: TwoLayerNetwork
    integrator: Integrator
    observables: dict
    plan: RunPlan
    initial_theta: dict
    generator: torch.Generator
    device: torch.device
    dtype: torch.dtype


def _device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"config key 'sampler.device' = {name!r} but CUDA is not available "
                         "on this machine; use sampler.device = 'cpu'")
    return torch.device(name)


def build_observables(config: dict, model: TwoLayerNetwork, data: DataSet, device, dtype) -> dict:
    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    layers = model.layer_names
    out = {
        "train_loss": obs.train_loss(),
        "potential": obs.potential_energy(),
        "squared_norms": obs.squared_norms(layers),
        "virial_temperature": obs.virial_temperature(layers),
    }
    spec = config["observables"]
    if spec["outputs_test"] and len(data.x_test):
        out["outputs_test"] = obs.outputs(model.predict, tensor(data.x_test), "f_test", "test_point")
    if spec["outputs_train"]:
        out["outputs_train"] = obs.outputs(model.predict, tensor(data.x_train), "f_train",
                                           "train_point")
    if data.teacher_direction is not None:
        every = spec["q_every"] or None
        control = None if data.control_directions is None else tensor(data.control_directions)
        out["teacher_projections"] = obs.teacher_projections(
            tensor(data.teacher_direction), control, every)
        out["weight_second_moments"] = obs.weight_second_moments(tensor(data.teacher_direction))
    return out


def build_run(config: dict, data: DataSet) -> RunSetup:
    """Everything `langevin.run.run_chains` needs, from a validated config and its data."""
    sampler = config["sampler"]
    device = _device(sampler["device"])
    dtype = {"float32": torch.float32, "float64": torch.float64}[sampler["dtype"]]
    input_dim = data.x_train.shape[1]
    physics = resolve_physics(config, input_dim)
    model = TwoLayerNetwork(input_dim, config["model"]["width"], config["model"]["activation"],
                            physics.prior_variances)
    x = torch.as_tensor(data.x_train, dtype=dtype, device=device)
    y = torch.as_tensor(data.y_train, dtype=dtype, device=device)
    potential = make_potential(model, x, y, physics.weight_decays)
    step_sizes = per_layer_step_sizes(sampler["step_size"], physics.weight_decays,
                                      sampler["preconditioner"])
    options = {"friction": sampler["friction"]} if sampler["integrator"] == "baoab" else {}
    integrator = INTEGRATORS[sampler["integrator"]](potential, step_sizes, physics.temperature,
                                                    **options)
    generator = torch.Generator(device=device).manual_seed(sampler["seed"])
    # Chains start from the prior (an independent, overdispersed start for R-hat), or with
    # every w·w* at ±sampler.init_q (experiments.tempering_setup.initial_theta).
    initial_theta = tempering_setup.initial_theta(model, config, sampler["num_chains"], generator,
                                                  dtype, device, data.teacher_direction)
    plan = RunPlan(burn_in=sampler["burn_in"], num_steps=sampler["num_steps"],
                   thin=sampler["thin"], checkpoint_every=sampler["checkpoint_every"])
    observables = build_observables(config, model, data, device, dtype)
    if sampler["tempering"] != "none":  # replica exchange, stored by rung
        integrator, observables = tempering_setup.build_tempered(config, model, x, y, physics,
                                                                 observables)
    return RunSetup(physics, model, integrator, observables, plan, initial_theta, generator,
                    device, dtype)
