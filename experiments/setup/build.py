"""From a validated config to the pieces of a run: physics, data, model, integrator,
observables, plan. The one place where the config's convention is translated into the
sampler's explicit arguments (docs/conventions.md)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from experiments.setup import run_mode_setup, tempering_setup
from experiments.setup.architectures import PATCH_ARCHITECTURES, LayerPrior, canonical_name, get_entry
from experiments.setup.classification_setup import classification_observables
from experiments.setup.data import DataSet, load_npz, relu_abs_target, single_index_data
from experiments.setup.digits import digits_from_config
from experiments.setup.sparse_coding_data import sparse_coding_from_config
from langevin import observables as obs
from langevin.activations import get_activation
from langevin.convention import (
    BayesianSpec, TrainingSpec, bayes_to_training, chi_for_scaling, layer_prior_numerator,
    layer_prior_variance, scaled_noise_variance, training_to_bayes, unscaled_noise_variance,
)
from langevin.integrators import Integrator, per_layer_step_sizes
from langevin.models import Model
from langevin.potential import make_potential
from langevin.run import RunPlan


class Physics(NamedTuple):
    """Both views of the posterior of one run, with the convention spelled out.

    sigma_w2 is one number for a single hidden weight layer (the meta.json of every run
    made before deeper nets existed) and a list σ_1², ..., σ_L² otherwise; sigma_b2 is None
    without biases. prior_variances / weight_decays are per layer of the model
    (langevin.models), related by γ_l = T / v_l.
    """

    view: str  # "bayesian" or "training": how the user stated it
    chi: float
    sigma_w2: float | list  # hidden weights ~ N(0, sigma_w2[l]/fan_in)
    sigma_a2: float  # a ~ N(0, sigma_a2/(chi N_L))
    noise_variance_tilde: float  # σ̃²; the likelihood variance is σ̃²/χ
    noise_variance: float  # σ² = σ̃²/χ = T (loss ½ SSE)
    prior_variances: dict  # per weight, per layer
    temperature: float
    weight_decays: dict
    sigma_b2: float | None = None  # biases ~ N(0, sigma_b2); None: no biases

    def as_metadata(self) -> dict:
        out = self._asdict()
        if out["sigma_b2"] is None:
            del out["sigma_b2"]
        out["convention"] = (
            "U = 1/2 sum (f - y)^2 + sum_l gamma_l/2 |theta_l|^2; dtheta = -grad U dt + "
            "sqrt(2T) dW; posterior exp(-U/T): prior variance T/gamma_l per weight, "
            "noise variance sigma^2 = T (1/2-SSE loss); hidden weights sigma_l^2/fan_in, "
            "readout prior sigma_a2/(chi N), biases sigma_b2, noise sigma~^2/chi"
        )
        return out


def _training_decay(training: dict, prior: LayerPrior) -> float:
    """γ of one layer from the training.* keys (validated by the config)."""
    if prior.role == "readout":
        return training["weight_decay_a"]
    if prior.role == "bias":
        return training["weight_decay_b"]
    hidden = training["weight_decays"] or [training["weight_decay_w"]]
    return hidden[prior.index]


def resolve_physics(config: dict, input_dim: int) -> Physics:
    """Per-layer prior variances and weight decays of either view, for any registered
    architecture: its entry gives each layer's role and fan-in, and
    `convention.layer_prior_variance` (the one place where χ enters the prior) and
    `convention.scaled_noise_variance` (σ² = σ̃²/χ) apply the convention."""
    entry = get_entry(config["model"]["architecture"])
    priors = entry.layer_priors(config, input_dim)
    model = config["model"]
    chi = model["chi"] if model["chi"] > 0 else chi_for_scaling(model["scaling"],
                                                                entry.readout_width(config, input_dim))
    num_hidden = sum(1 for p in priors if p.role == "weight")
    training = config["training"]
    if training["temperature"] > 0:
        spec = TrainingSpec(training["temperature"],
                            {p.layer: _training_decay(training, p) for p in priors})
        bayes = training_to_bayes(spec)
        numerators = {p.layer: layer_prior_numerator(p.role, bayes.prior_variances[p.layer],
                                                     p.fan_in, chi) for p in priors}
        sigma_w2 = [numerators[p.layer] for p in priors if p.role == "weight"]
        readout = next(p for p in priors if p.role == "readout")
        biases = [numerators[p.layer] for p in priors if p.role == "bias"]
        return Physics(
            view="training", chi=chi,
            sigma_w2=sigma_w2[0] if num_hidden == 1 else sigma_w2,
            sigma_a2=numerators[readout.layer],
            noise_variance_tilde=unscaled_noise_variance(bayes.noise_variance, chi),
            noise_variance=bayes.noise_variance,
            prior_variances=dict(bayes.prior_variances),
            temperature=spec.temperature, weight_decays=dict(spec.weight_decays),
            sigma_b2=biases[0] if biases else None,
        )
    post = config["posterior"]
    sigma_w2 = post["sigma_w2"] if isinstance(post["sigma_w2"], list) \
        else [post["sigma_w2"]] * num_hidden
    has_bias = any(p.role == "bias" for p in priors)
    numerator = {"readout": lambda p: post["sigma_a2"], "bias": lambda p: post["sigma_b2"],
                 "weight": lambda p: sigma_w2[p.index]}
    variances = {p.layer: layer_prior_variance(p.role, numerator[p.role](p), p.fan_in, chi)
                 for p in priors}
    noise_variance = scaled_noise_variance(post["noise_variance"], chi)
    spec = bayes_to_training(BayesianSpec(variances, noise_variance))
    return Physics(
        view="bayesian", chi=chi,
        sigma_w2=post["sigma_w2"] if num_hidden == 1 and not isinstance(post["sigma_w2"], list)
        else [float(v) for v in sigma_w2],
        sigma_a2=post["sigma_a2"],
        noise_variance_tilde=post["noise_variance"], noise_variance=noise_variance,
        prior_variances=variances, temperature=spec.temperature,
        weight_decays=dict(spec.weight_decays),
        sigma_b2=post["sigma_b2"] if has_bias else None,
    )


def make_data(config: dict) -> DataSet:
    data = config["data"]
    if data["source"] == "npz":
        return load_npz(data["path"])
    if data["source"] == "digits":
        return digits_from_config(config)
    if data["source"] == "sparse_coding":
        return sparse_coding_from_config(config)
    return single_index_data(
        d=data["d"], n_train=data["n_train"], n_test=data["n_test"],
        coefficients=data["hermite_coefficients"], seed=data["seed"],
        label_noise=data["label_noise"],
        num_control=config["observables"]["control_directions"],
        target=(lambda z: relu_abs_target(z, data["epsilon"])) if data["target"] == "relu_abs" else None,
    )


class RunSetup(NamedTuple):
    physics: Physics
    model: Model
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


def build_observables(config: dict, model: Model, data: DataSet, device, dtype) -> dict:
    """The observables of a run (module langevin.observables), from the [observables] keys.

    Per-layer squared norms and virial temperatures always; outputs on test/train points;
    teacher projections q and weight second moments when the data has a teacher and the
    architecture's first layer multiplies the raw input; per-layer pre-activation
    statistics (observables.probe_points > 0) and empirical kernels (observables.kernel_every
    > 0) on the first probe_points test points (training points when there are no test
    points)."""
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
    entry = get_entry(config["model"]["architecture"])
    if data.teacher_direction is not None and entry.first_layer_sees_input:
        every = spec["q_every"] or None
        control = None if data.control_directions is None else tensor(data.control_directions)
        out["teacher_projections"] = obs.teacher_projections(
            tensor(data.teacher_direction), control, every)
        out["weight_second_moments"] = obs.weight_second_moments(tensor(data.teacher_direction))
    if spec["first_layer_weights"]:  # W draws: Rao-Blackwellized readout, kernel ladder
        out["first_layer_weights"] = obs.first_layer_weights()
    if spec["hidden_kernel"]:  # K1 of the three-layer equations of state
        out["hidden_kernel"] = obs.hidden_preactivation_kernel(model.preactivations,
                                                               tensor(data.x_train))
    if spec["hermite_projections"]:  # exact E_x[f He_k(w*.x)] (experiments.staircase_study)
        _check_hermite_projections(config, model, data)
        out["hermite_projections"] = obs.erf_hermite_projections(tensor(data.teacher_direction))
    if canonical_name(config["model"]["architecture"]) in PATCH_ARCHITECTURES:
        out["readout_patch_gram"] = obs.readout_patch_gram()  # local order parameter Q_pq
    if spec["probe_points"] > 0:
        probe = tensor(probe_inputs(data, spec["probe_points"]))
        out["preactivation_statistics"] = obs.preactivation_statistics(
            model.preactivations, probe, spec["preactivation_every"] or None)
        if spec["kernel_every"] > 0:
            out["empirical_kernels"] = obs.empirical_kernels(
                model.preactivations, get_activation(config["model"]["activation"]).value,
                probe, spec["kernel_every"])
    out.update(classification_observables(config, model, data, device, dtype))
    return out


def _check_hermite_projections(config: dict, model: Model, data: DataSet) -> None:
    """observables.hermite_projections needs one hidden erf layer without bias and a teacher."""
    names = tuple(model.layer_names)
    if (config["model"]["activation"] != "erf" or names != ("w", "a")
            or data.teacher_direction is None):
        raise ValueError(
            "config key 'observables.hermite_projections' = true needs one hidden erf layer without "
            f"bias and single-index data; got model.activation = {config['model']['activation']!r}, "
            f"layers {list(names)}, teacher {'present' if data.teacher_direction is not None else 'absent'}")


def probe_inputs(data: DataSet, num_points: int) -> np.ndarray:
    """The fixed probe set: the first `num_points` test inputs (or training inputs)."""
    source = data.x_test if len(data.x_test) else data.x_train
    return source[:num_points]


def build_run(config: dict, data: DataSet) -> RunSetup:
    """Everything `langevin.run.run_chains` needs, from a validated config and its data."""
    sampler = config["sampler"]
    device = _device(sampler["device"])
    dtype = {"float32": torch.float32, "float64": torch.float64}[sampler["dtype"]]
    input_dim = data.x_train.shape[1]
    physics = resolve_physics(config, input_dim)
    entry = get_entry(config["model"]["architecture"])
    if (not entry.first_layer_sees_input and data.input_shape is not None
            and not config["model"]["input_shape"] and config["data"]["source"] == "npz"):
        raise ValueError(f"the inputs in data.path have shape {list(data.input_shape)}: set "
                         f"config key 'model.input_shape' = {list(data.input_shape)} for a "
                         f"{config['model']['architecture']} (it would read them as flat)")
    base_model = entry.build(config, input_dim, physics.prior_variances)
    run_mode_setup.check_labels(config, data.y_train, data.y_test)
    generator = torch.Generator(device=device).manual_seed(sampler["seed"])
    # Chains start from the prior (an independent, overdispersed start for R-hat), or with
    # every w·w* at ±sampler.init_q (experiments.setup.tempering_setup.initial_theta).
    initial_theta = tempering_setup.initial_theta(base_model, config, sampler["num_chains"],
                                                  generator, dtype, device, data.teacher_direction)
    # The likelihood, output scale and centring (experiments.setup.run_mode_setup).
    model = run_mode_setup.run_model(config, base_model, initial_theta)
    x = torch.as_tensor(data.x_train, dtype=dtype, device=device)
    y = torch.as_tensor(data.y_train, dtype=dtype, device=device)
    potential = make_potential(model, x, y, physics.weight_decays)
    step_sizes = per_layer_step_sizes(sampler["step_size"], physics.weight_decays,
                                      sampler["preconditioner"])
    integrator = run_mode_setup.make_integrator(config, model, x, y, physics, step_sizes,
                                                      potential)
    plan = RunPlan(burn_in=sampler["burn_in"], num_steps=sampler["num_steps"],
                   thin=sampler["thin"], checkpoint_every=sampler["checkpoint_every"])
    observables = build_observables(config, model, data, device, dtype)
    observables.update(run_mode_setup.extra_observables(config))
    if sampler["tempering"] != "none":  # replica exchange, stored by rung
        integrator, observables = tempering_setup.build_tempered(config, model, x, y, physics,
                                                                 observables)
    return RunSetup(physics, model, integrator, observables, plan, initial_theta, generator,
                    device, dtype)
