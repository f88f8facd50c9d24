"""Wiring of the classification keys (experiments.setup.run_mode_keys) into a run: the
likelihood / output-scale model, the T = 0 gradient-descent integrator, the annealed
temperature, their observables and their meta.json records."""
from __future__ import annotations

import numpy as np
import torch

from experiments.setup.config_keys import ConfigError
from experiments.setup.run_mode_keys import GD_KEYS, GRADIENT_DESCENT, is_annealed
from langevin.annealing import annealed, geometric_schedule
from langevin.gradient_descent import gradient_descent_observables
from langevin.likelihoods import LIKELIHOODS
from langevin.output_model import OutputModel
from langevin.potential import make_potential
from langevin.schemes import INTEGRATORS, ZERO_TEMPERATURE, scheme_options


def check_labels(config: dict, y_train: np.ndarray, y_test: np.ndarray) -> None:
    """A non-Gaussian likelihood needs every label (training and test) exactly ±1."""
    name = config["posterior"]["likelihood"]
    if not LIKELIHOODS[name].binary_labels:
        return
    labels = np.concatenate([np.asarray(y_train).ravel(), np.asarray(y_test).ravel()])
    bad = labels[(labels != 1) & (labels != -1)]
    if bad.size:
        where = (f"data.path = {config['data']['path']!r}" if config["data"]["source"] == "npz"
                 else f"data.source = {config['data']['source']!r}")
        raise ConfigError(f"config key 'posterior.likelihood' = {name!r} needs labels +-1, but "
                          f"{where} has labels such as {sorted(set(bad[:5].tolist()))}")


def is_plain(config: dict) -> bool:
    """The Gaussian likelihood at α = 1 without centring: the model is used as it is."""
    model = config["model"]
    return (config["posterior"]["likelihood"] == "gaussian" and model["output_scale"] == 1.0
            and not model["center_at_init"])


def theory_skip_reason(config: dict) -> str | None:
    """Why the Gaussian-likelihood theory comparisons do not apply, or None."""
    reasons = []
    if config["posterior"]["likelihood"] != "gaussian":
        reasons.append(f"posterior.likelihood = {config['posterior']['likelihood']!r}")
    if config["model"]["output_scale"] != 1.0:
        reasons.append(f"model.output_scale = {config['model']['output_scale']!r}")
    if config["model"]["center_at_init"]:
        reasons.append("model.center_at_init = true")
    if config["sampler"]["integrator"] == GRADIENT_DESCENT:
        reasons.append("sampler.integrator = 'gradient_descent' (T = 0, no posterior)")
    if is_annealed(config):
        reasons.append("annealed temperature (sampler.anneal_final_temperature)")
    if not reasons:
        return None
    return ("skipped: the theory comparisons (GP, proportional, feature learning) assume "
            "the Gaussian likelihood 1/2 sum (f - y)^2 of the network output at a fixed T; "
            "this run has " + ", ".join(reasons))


def run_model(config: dict, base_model, initial_theta: dict):
    """The model of the potential and the observables: `base_model` itself, or an
    `OutputModel` with the likelihood, α and (model.center_at_init) θ⁰ = initial_theta."""
    if is_plain(config):
        return base_model
    reference = ({k: v.detach().clone() for k, v in initial_theta.items()}
                 if config["model"]["center_at_init"] else None)
    return OutputModel(base_model, config["posterior"]["likelihood"],
                       config["model"]["output_scale"], reference)


def make_integrator(config: dict, model, x: torch.Tensor, y: torch.Tensor, physics,
                    step_sizes: dict, potential):
    """The run's integrator: gradient descent (T = 0), an annealed scheme, or the plain
    scheme at physics.temperature."""
    sampler = config["sampler"]
    name = sampler["integrator"]
    if name == GRADIENT_DESCENT:
        if not sampler["gd_weight_decay"]:  # U = L: the prior only drew the start
            potential = make_potential(model, x, y, {layer: 0.0 for layer in model.layer_names})
        return ZERO_TEMPERATURE[name](
            potential, step_sizes, growth=sampler["gd_step_growth"],
            shrink=sampler["gd_step_shrink"], loss_tolerance=sampler["gd_loss_tolerance"],
            max_multiplier=sampler["gd_max_step_multiplier"],
            min_multiplier=sampler["gd_min_step_multiplier"])
    options = scheme_options(name, sampler)  # e.g. baoab's friction
    if is_annealed(config):
        schedule = geometric_schedule(physics.temperature, sampler["anneal_final_temperature"],
                                      sampler["anneal_steps"])
        return annealed(INTEGRATORS[name], potential, step_sizes, schedule, **options)
    return INTEGRATORS[name](potential, step_sizes, physics.temperature, **options)


def extra_observables(config: dict) -> dict:
    if config["sampler"]["integrator"] == GRADIENT_DESCENT:
        return {"gradient_descent": gradient_descent_observables()}
    return {}


def start_metadata(config: dict) -> dict:
    """meta.json entries written at the start: the likelihood, α, centring, the run mode."""
    name = config["posterior"]["likelihood"]
    out = {"likelihood": {
        "name": name, "description": LIKELIHOODS[name].description,
        "output_scale": config["model"]["output_scale"],
        "center_at_init": config["model"]["center_at_init"],
        "potential": ("U = alpha^-2 sum_mu l(f_mu, y_mu) + sum_l gamma_l/2 |theta_l|^2, "
                      "f = alpha f~ (centred: alpha [f~(theta) - f~(theta_0)]); "
                      "density exp(-U/T) (docs/conventions.md)")}}
    sampler = config["sampler"]
    if sampler["integrator"] == GRADIENT_DESCENT:
        out["gradient_descent"] = {k: sampler[k] for k in GD_KEYS}
    if is_annealed(config):
        out["annealing"] = {"schedule": "geometric: T(k) = T0 (T1/T0)^(min(k, K)/K)",
                            "final_temperature": sampler["anneal_final_temperature"],
                            "steps": sampler["anneal_steps"]}
    return out


def run_metadata(config: dict, state) -> dict:
    """meta.json entries written at the end of a segment: gradient descent's per-chain
    stop steps, zero-loss flags and final losses; the annealing step reached."""
    out = {}
    if config["sampler"]["integrator"] == GRADIENT_DESCENT:
        out["gradient_descent_result"] = {
            "iterations": state.iterations.cpu().tolist(),
            "stopped": state.stopped.cpu().tolist(),
            "reached_loss_tolerance": state.reached.cpu().tolist(),
            "stop_step": state.stop_step.cpu().tolist(),
            "final_loss": state.loss.cpu().tolist(),
            "step_multiplier": state.step_multiplier.cpu().tolist(),
            "all_stopped": bool(state.stopped.all()),
        }
    if is_annealed(config):
        out["annealing_step"] = int(state.anneal_step)
    return out
