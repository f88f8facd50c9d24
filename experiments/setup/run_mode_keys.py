"""Config keys of classification and the zero-temperature run modes, and their rules;
merged into experiments.setup.config.SCHEMA (each hashed only when it differs from its
default, so every earlier run keeps its hash).

    posterior.likelihood        gaussian | logistic | hinge | quadratic_hinge
                                (langevin.likelihoods.LIKELIHOODS; non-Gaussian: labels ±1)
    model.output_scale          α: f = α f̃ and L = α⁻² Σ ℓ (langevin.output_model)
    model.center_at_init        f = α [f̃(θ) − f̃(θ⁰)], θ⁰ each chain's initialization
    sampler.integrator = "gradient_descent"   T = 0 adaptive-step gradient descent
                                (langevin.gradient_descent) with the keys
    sampler.gd_step_growth, sampler.gd_step_shrink, sampler.gd_max_step_multiplier,
    sampler.gd_min_step_multiplier, sampler.gd_loss_tolerance, sampler.gd_weight_decay
    sampler.anneal_final_temperature, sampler.anneal_steps   geometric T schedule
                                (langevin.annealing), in the units of the run's T
"""
from __future__ import annotations

import math

from experiments.setup.config_keys import ConfigError, Key, non_negative, one_of, positive

LIKELIHOOD_NAMES = ("gaussian", "logistic", "hinge", "quadratic_hinge")  # = LIKELIHOODS
BINARY_LIKELIHOODS = ("logistic", "hinge", "quadratic_hinge")
GRADIENT_DESCENT = "gradient_descent"  # = langevin.schemes.ZERO_TEMPERATURE


def _at_least_one(v):
    return None if math.isfinite(v) and v >= 1 else "must be a finite number >= 1"


def _open_unit(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


KEYS = {
    "posterior": {
        "likelihood": Key(str, "gaussian", one_of(*LIKELIHOOD_NAMES),
                          "data term: gaussian 1/2 sum (f - y)^2 (noise variance T), logistic "
                          "sum log(1 + e^{-y f}) (Bernoulli at T = 1), hinge sum max(0, 1 - y f), "
                          "quadratic_hinge 1/2 sum max(0, 1 - y f)^2; non-Gaussian: labels +-1"),
    },
    "model": {
        "output_scale": Key(float, 1.0, positive,
                            "alpha: f = alpha f~ and the loss is divided by alpha^2 (Geiger, Petrini & Wyart)"),
        "center_at_init": Key(bool, False, None,
                              "f = alpha [f~(theta) - f~(theta_0)], theta_0 the chain's start"),
    },
    "sampler": {
        "gd_step_growth": Key(float, 1.1, _at_least_one,
                              "gradient_descent: step multiplier factor after an accepted step"),
        "gd_step_shrink": Key(float, 0.5, _open_unit,
                              "gradient_descent: factor after a rejected (uphill) step"),
        "gd_max_step_multiplier": Key(float, 1e6, _at_least_one,
                                      "gradient_descent: cap of the step multiplier"),
        "gd_min_step_multiplier": Key(float, 1e-10, _open_unit,
                                      "gradient_descent: a chain whose step multiplier falls "
                                      "below this has stalled and stops (loss not reached)"),
        "gd_loss_tolerance": Key(float, 0.0, non_negative,
                                 "gradient_descent: a chain stops when its loss <= this (0 with "
                                 "a hinge loss: all margins y f >= 1, the jamming criterion)"),
        "gd_weight_decay": Key(bool, True, None,
                               "gradient_descent: descend U = L + prior term (true) or the loss "
                               "L alone (false; the prior then only draws the initialization)"),
        "anneal_final_temperature": Key(float, 0.0, non_negative,
                                        "geometric annealing of T from the run's T to this "
                                        "(0: no annealing)"),
        "anneal_steps": Key(int, 0, non_negative, "steps of the annealing schedule"),
    },
}
GD_KEYS = ("gd_step_growth", "gd_step_shrink", "gd_max_step_multiplier", "gd_min_step_multiplier",
           "gd_loss_tolerance", "gd_weight_decay")
HASHED_WHEN_NOT_DEFAULT = {(section, key) for section, keys in KEYS.items() for key in keys}


def is_annealed(config: dict) -> bool:
    return config["sampler"]["anneal_final_temperature"] > 0


def validate(config: dict, user_keys) -> None:
    """Cross-key rules, before any compute; errors name the key and value."""
    sampler, data = config["sampler"], config["data"]
    likelihood = config["posterior"]["likelihood"]
    if likelihood in BINARY_LIKELIHOODS and data["source"] == "single_index":
        raise ConfigError(f"config key 'posterior.likelihood' = {likelihood!r} needs labels +-1, "
                          "but data.source = 'single_index' gives real-valued targets: use "
                          "data.source = 'digits' (labels +-1) or an npz file with labels +-1")
    integrator = sampler["integrator"]
    if integrator != GRADIENT_DESCENT:
        stray = sorted(f"sampler.{k}" for k in GD_KEYS
                       if f"sampler.{k}" in user_keys and sampler[k] != KEYS["sampler"][k].default)
        if stray:
            raise ConfigError(f"config key {stray[0]!r} applies to sampler.integrator = "
                              f"'gradient_descent' only, got {integrator!r}")
    else:
        if sampler["burn_in"] != 0:
            raise ConfigError(f"config key 'sampler.burn_in' = {sampler['burn_in']} must be 0 for "
                              "sampler.integrator = 'gradient_descent' (nothing is recorded in "
                              "burn-in, and the run ends when every chain reaches zero loss)")
        if sampler["tempering"] != "none":
            raise ConfigError(f"config key 'sampler.tempering' = {sampler['tempering']!r} needs a "
                              "sampler at T > 0, not sampler.integrator = 'gradient_descent'")
        if sampler["shards"] > 1:
            raise ConfigError(f"config key 'sampler.shards' = {sampler['shards']} is not supported "
                              "with sampler.integrator = 'gradient_descent' (its report is per run)")
        if is_annealed(config):
            raise ConfigError("config key 'sampler.anneal_final_temperature' does not apply to "
                              "sampler.integrator = 'gradient_descent' (T = 0)")
    final, steps = sampler["anneal_final_temperature"], sampler["anneal_steps"]
    if final > 0 and steps == 0:
        raise ConfigError("config key 'sampler.anneal_steps' must be >= 1 when "
                          f"sampler.anneal_final_temperature = {final!r}")
    if final == 0 and steps > 0:
        raise ConfigError(f"config key 'sampler.anneal_steps' = {steps} needs "
                          "sampler.anneal_final_temperature > 0")
    if final > 0 and sampler["tempering"] != "none":
        raise ConfigError("config key 'sampler.anneal_final_temperature' cannot be combined with "
                          f"sampler.tempering = {sampler['tempering']!r}")
