"""Run configuration: schema, TOML loading, `--set` overrides, validation, hashing.

A config is a two-level mapping `section.key`. Every key is declared in `SCHEMA` with
its type, default and check; an unknown key or a bad value raises `ConfigError`
naming the key and the value, before any compute starts.

The posterior can be stated in either of the two views of docs/conventions.md:
Bayesian (`posterior.sigma_w2`, `posterior.sigma_a2`, `posterior.noise_variance`, with
`model.chi`) or training (`training.temperature`, `training.weight_decay_w`,
`training.weight_decay_a`). Setting any `training.*` key selects the training view;
all three must then be given and no `posterior.*` key may be set.

Keys that only one architecture reads (e.g. `model.widths`, `model.bias`) are declared by
its entry in `experiments.setup.architectures.MODELS`, which also validates them; such a key set
under another architecture is an error. Deep fc nets state the training view with
`training.weight_decays` (one per hidden weight layer) instead of `training.weight_decay_w`.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

from experiments.setup import (
    architectures, classification_keys, digits_keys, launch_keys, recorded_observable_keys, run_mode_keys,
    step_options, tempering_config,
)
from experiments.setup.config_keys import NUMBER_OR_LIST, ConfigError, Key, non_negative, one_of, positive
from langevin.activations import ACTIVATIONS
from langevin.schemes import INTEGRATORS, SCHEME_OPTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib



def _device(v):
    return None if v == "cpu" or v == "cuda" or v.startswith("cuda:") else "must be 'cpu', 'cuda' or 'cuda:N'"


def _finite_list(v):
    return None if all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v) else "must be a list of finite numbers"


SEED_LIMIT = 2**62  # torch.manual_seed and numpy take any seed in [0, 2^62) (with offsets)


def _seed(v):
    return None if 0 <= v < SEED_LIMIT else "must be an integer in [0, 2**62)"


# The sampler's tables; theory's activations agree (tests/experiments/test_registries.py).
ACTIVATION_NAMES = tuple(ACTIVATIONS)
INTEGRATOR_NAMES = tuple(INTEGRATORS)

SCHEMA: dict[str, dict[str, Key]] = {
    "sampler": {
        "num_chains": Key(int, 16, positive, "independent chains, sampled in one batch"),
        "num_steps": Key(int, 20_000, positive, "sampling steps after burn-in"),
        "burn_in": Key(int, 5_000, non_negative, "steps before recording starts"),
        "thin": Key(int, 20, positive, "record observables every `thin` sampling steps"),
        "step_size": Key(float, 0.002, positive, "dimensionless step size (see preconditioner)"),
        "preconditioner": Key(str, "prior", one_of("prior", "none"),
                              "'prior': eta_l = step_size/gamma_l; 'none': eta_l = step_size"),
        "integrator": Key(str, "euler_maruyama",
                          one_of(*INTEGRATOR_NAMES, run_mode_keys.GRADIENT_DESCENT),
                          "euler_maruyama (ULA, O(step) bias), baoab (underdamped, time step "
                          "sqrt(2 eta_l)), mala (Metropolis-adjusted, unbiased); "
                          "gradient_descent (T = 0, adaptive step, stops at zero loss)"),
        "friction": Key(float, 1.0, positive,
                        "baoab only: friction zeta; momentum decay exp(-zeta sqrt(2 eta_l))"),
        "seed": Key(int, 0, _seed, "seed of the sampler's generator (initialization + noise)"),
        "device": Key(str, "cpu", _device),
        "dtype": Key(str, "float32", one_of("float32", "float64")),
        "checkpoint_every": Key(int, 5_000, positive, "steps between flush + checkpoint"),
        "progress": Key(bool, True, None, "show a progress bar"),
        "threads": Key(int, 0, non_negative,
                       "torch intra-op CPU threads for the run (0: automatic, experiments.setup.threads: "
                       "1 thread below 2e9 forward FLOPs per step, else torch's default)"),
        **tempering_config.schema_keys(Key, positive, non_negative, one_of, _finite_list),
    },
    "model": {
        "architecture": Key(str, "fc", one_of(*architectures.architecture_names()),
                            "network family (experiments.setup.architectures.MODELS); 'two_layer' "
                            "is an alias of 'fc'"),
        "width": Key(int, 64, positive, "hidden width N"),
        "activation": Key(str, "erf", one_of(*ACTIVATION_NAMES)),
        "scaling": Key(str, "standard", one_of("standard", "mean_field"),
                       "chi = 1 (standard) or chi = width (mean_field)"),
        "chi": Key(float, 0.0, non_negative, "explicit chi; 0 means: from model.scaling"),
    },
    "posterior": {
        "sigma_w2": Key(NUMBER_OR_LIST, 1.0, architectures.positive_number_or_list,
                        "input weights ~ N(0, sigma_w2/d); a list: one sigma_l^2 per hidden "
                        "weight layer (weights ~ N(0, sigma_l^2/fan_in))"),
        "sigma_a2": Key(float, 1.0, positive, "readout ~ N(0, sigma_a2/(chi N))"),
        "noise_variance": Key(float, 0.1, positive,
                              "noise variance sigma~^2; the likelihood variance is sigma~^2/chi"),
    },
    "training": {
        "temperature": Key(float, 0.0, non_negative, "Langevin temperature T (0: unset)"),
        "weight_decay_w": Key(float, 0.0, non_negative, "weight decay of w (0: unset)"),
        "weight_decay_a": Key(float, 0.0, non_negative, "weight decay of a (0: unset)"),
    },
    "data": {
        "source": Key(str, "single_index", one_of("single_index", "npz", "digits",
                                                   "sparse_coding"),
                      "single_index teacher, the user's npz file, scikit-learn's 8x8 digits, "
                      "or the sparse-coding model x = Mz + xi"),
        "path": Key(str, "", None, "the .npz file (X, y, optional X_test, y_test)"),
        "d": Key(int, 16, positive, "input dimension of the single-index teacher"),
        "n_train": Key(int, 128, positive),
        "n_test": Key(int, 256, positive),
        "seed": Key(int, 1, _seed, "seed of the data (separate from the sampler's)"),
        "hermite_coefficients": Key(list, [0.0, 1.0, 0.0, -0.3], _finite_list,
                                    "y = sum_k c_k He_k(w*.x), k = 0, 1, ..."),
        "label_noise": Key(float, 0.0, non_negative, "std of Gaussian noise added to y_train"),
        "target": Key(str, "hermite", one_of("hermite", "relu_abs"),
                      "single-index target: 'hermite' (data.hermite_coefficients) or 'relu_abs', "
                      "y = z + epsilon (|z| - sqrt(2/pi)), z = w*.x"),
        "epsilon": Key(float, 0.0, lambda v: None if math.isfinite(v) else "must be finite",
                       "epsilon of data.target = 'relu_abs'"),
    },
    "diagnostics": {
        "bias_check": Key(str, "auto", one_of("auto", "on", "off"),
                          "report: step-halving estimate of the step-size bias ('auto': when "
                          "cheap, see experiments.reporting.bias)"),
        "bias_check_steps": Key(int, 0, non_negative,
                                "steps K at step_size (2K at step_size/2); 0: automatic"),
    },
    "observables": {
        "outputs_train": Key(bool, False, None, "record f on the training inputs"),
        "outputs_test": Key(bool, True, None, "record f on the test inputs"),
        "control_directions": Key(int, 2, non_negative,
                                  "random unit directions (orthogonal to w*) for q_control"),
        "q_every": Key(int, 0, non_negative, "cadence of q, q_control (0: sampler.thin)"),
        "probe_points": Key(int, 0, non_negative,
                            "per-layer pre-activation statistics on the first P test points "
                            "(0: off)"),
        "preactivation_every": Key(int, 0, non_negative,
                                   "cadence of the pre-activation statistics (0: sampler.thin)"),
        "kernel_every": Key(int, 0, non_negative,
                            "cadence of the per-layer empirical kernels on the probe points "
                            "(0: off)"),
    },
}

# Architecture-specific keys are declared by their registry entry (experiments.setup.architectures).
for _dotted, _key in architectures.owned_keys().items():
    _section, _name = _dotted.split(".")
    SCHEMA[_section][_name] = _key

TRAINING_KEYS = tuple(SCHEMA["training"])  # the view is "training" when any of them is set


SCHEMA["data"].update(digits_keys.DIGITS_KEYS)

# Classification observables and the sparse-coding data (experiments.setup.classification_keys).
SCHEMA["observables"].update(classification_keys.OBSERVABLE_KEYS)
SCHEMA["data"].update(classification_keys.SPARSE_CODING_KEYS)


def default_config() -> dict[str, dict[str, Any]]:
    return {sec: {k: copy.deepcopy(key.default) for k, key in keys.items()}
            for sec, keys in SCHEMA.items()}


def _coerce(name: str, key: Key, value: Any) -> Any:
    if key.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {name!r} must be true or false, got {value!r}")
        return value
    if key.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"config key {name!r} must be an integer, got {value!r}")
        return value
    if key.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
        return float(value)
    if key.kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {name!r} must be a string, got {value!r}")
        return value
    if key.kind is list or key.kind == NUMBER_OR_LIST:
        if key.kind == NUMBER_OR_LIST and isinstance(value, (int, float)) \
                and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, list):
            raise ConfigError(f"config key {name!r} must be a list, got {value!r}")
        if key.element is int:
            return [int(x) if isinstance(x, float) and x.is_integer() else x for x in value]
        return [float(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in value]
    raise AssertionError(key.kind)


def set_key(config: dict, dotted: str, value: Any) -> None:
    """Set `section.key` to `value` after checking the key exists and the type fits."""
    section, _, name = dotted.partition(".")
    if section not in SCHEMA:
        raise ConfigError(f"unknown config section {section!r} (in key {dotted!r}); "
                          f"sections are {sorted(SCHEMA)}")
    if name not in SCHEMA[section]:
        raise ConfigError(f"unknown config key {dotted!r}; keys of [{section}] are "
                          f"{sorted(SCHEMA[section])}")
    config[section][name] = _coerce(dotted, SCHEMA[section][name], value)


def merge(config: dict, overrides: dict) -> dict:
    """Apply a nested {section: {key: value}} mapping to a copy of `config`."""
    out = copy.deepcopy(config)
    for section, values in overrides.items():
        if not isinstance(values, dict):
            raise ConfigError(f"config entry {section!r} must be a [section] table, got {values!r}")
        for name, value in values.items():
            set_key(out, f"{section}.{name}", value)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value`; the value is read as TOML, else taken as a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    dotted, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return dotted, value


def load_toml(path: str | Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {err}") from None


def validate(config: dict, user_keys: set[str] | frozenset = frozenset()) -> None:
    """Check every value and the cross-key rules. `user_keys`: keys the user set."""
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            value = config[section][name]
            if key.check is not None:
                problem = key.check(value)
                if problem:
                    raise ConfigError(f"config key '{section}.{name}' {problem}, got {value!r}")
    entry = architectures.get_entry(config["model"]["architecture"])
    _check_architecture_keys(config, entry, frozenset(user_keys))
    training = config["training"]
    if training["temperature"] > 0 or any(training[k] for k in TRAINING_KEYS):
        required = ["temperature", "weight_decay_a"]
        if not training.get("weight_decays"):
            required.insert(1, "weight_decay_w")
        missing = [k for k in required if not training[k] > 0]
        if missing:
            raise ConfigError(
                f"the training view needs all of training.{{{', '.join(required)}}}; "
                f"missing or zero: {['training.' + k for k in missing]}")
        clash = sorted(k for k in user_keys if k.startswith("posterior."))
        if clash:
            raise ConfigError(f"state the posterior in one view only: training.* is set and so "
                              f"is {clash}")
    sampler, data = config["sampler"], config["data"]
    if sampler["num_steps"] < sampler["thin"]:
        raise ConfigError(f"config key 'sampler.num_steps' ({sampler['num_steps']}) must be at "
                          f"least sampler.thin ({sampler['thin']})")
    for (_, option), owner in _INTEGRATOR_KEYS.items():
        if f"sampler.{option}" in user_keys and sampler["integrator"] != owner:
            raise ConfigError(f"config key 'sampler.{option}' applies to sampler.integrator = "
                              f"{owner!r} only, got integrator {sampler['integrator']!r}")
    observables = config["observables"]
    for key in ("kernel_every", "preactivation_every"):
        if observables[key] > 0 and observables["probe_points"] == 0:
            raise ConfigError(f"config key 'observables.{key}' needs observables.probe_points > 0 "
                              "(the probe set of the per-layer observables)")
    tempering_config.validate(config, user_keys, ConfigError)
    run_mode_keys.validate(config, user_keys)
    if data["source"] == "npz" and not data["path"]:
        raise ConfigError("config key 'data.path' must name an .npz file when data.source = 'npz'")
    digits_keys.validate_digits(config, user_keys)
    classification_keys.validate(config, user_keys)
    if data["source"] == "single_index" and not data["hermite_coefficients"]:
        raise ConfigError("config key 'data.hermite_coefficients' must not be empty")
    readout_width = entry.readout_width(config, None)
    if (readout_width is not None and config["model"]["scaling"] == "mean_field"
            and config["model"]["chi"] not in (0.0, float(readout_width))):
        raise ConfigError(f"config key 'model.chi' = {config['model']['chi']!r} contradicts "
                          f"model.scaling = 'mean_field' (chi = readout width = {readout_width})")
    launch_keys.validate_launch(config)
    step_options.validate(config)
    _check_first_layer_keys(config, entry)


def _check_first_layer_keys(config: dict, entry) -> None:
    """observables.first_layer_weights needs an input layer theta['w'] (C, N, d)."""
    observables = config["observables"]
    if observables["first_layer_weights"] and not entry.first_layer_sees_input:
        raise ConfigError(f"config key 'observables.first_layer_weights' needs an input layer "
                          f"that multiplies the raw input (fc), got model.architecture = "
                          f"{config['model']['architecture']!r}")


def _check_architecture_keys(config: dict, entry, user_keys: frozenset) -> None:
    """Keys of another architecture must stay unset; then the entry's own rules."""
    name = config["model"]["architecture"]
    for dotted, key in architectures.owned_keys().items():
        if dotted in entry.config_keys:
            continue
        section, key_name = dotted.split(".")
        if dotted in user_keys or config[section][key_name] != key.default:
            raise ConfigError(f"config key {dotted!r} does not apply to model.architecture = "
                              f"{name!r}")
    problem = entry.check(config, user_keys)
    if problem:
        raise ConfigError(problem)


def resolve(overrides: list[dict], set_args: list[str] = ()) -> tuple[dict, set[str]]:
    """Defaults, then each override mapping in order, then `--set` strings; validated."""
    config = default_config()
    user_keys: set[str] = set()
    for mapping in overrides:
        config = merge(config, mapping)
        user_keys |= {f"{s}.{k}" for s, v in mapping.items() for k in v}
    for text in set_args:
        dotted, value = parse_override(text)
        set_key(config, dotted, value)
        user_keys.add(dotted)
    validate(config, user_keys)
    return config, user_keys


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def dumps_toml(config: dict) -> str:
    """TOML text of a two-level config (the subset of TOML that configs use)."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


# Keys that do not change a single stored number: they may differ on resume.
_NOT_HASHED = {("sampler", "progress"), ("sampler", "device"), ("sampler", "checkpoint_every"),
               ("sampler", "threads"),
               ("diagnostics", "bias_check"), ("diagnostics", "bias_check_steps")}
# Keys read by one integrator only: hashed only for it (so the hash of a run of another
# integrator is the same as before the key existed, and such runs stay resumable).
_INTEGRATOR_KEYS = {("sampler", option): name
                    for name, options in SCHEME_OPTIONS.items() for option in options}
# Keys read by one data source only: hashed only for it (runs of other sources keep their hash).
_DATA_SOURCE_KEYS = {("data", key): "digits" for key in digits_keys.DIGITS_KEYS}
_DATA_SOURCE_KEYS |= {("data", key): "sparse_coding"
                      for key in classification_keys.SPARSE_CODING_KEYS}


# Keys added after runs existed: hashed only when they differ from their default, so the
# hash of every earlier run (and its resumability) is unchanged.
_HASHED_WHEN_NOT_DEFAULT = {("model", "architecture"), ("data", "target"), ("data", "epsilon"),
                            ("observables", "probe_points"),
                            ("observables", "preactivation_every"),
                            ("observables", "kernel_every"),
                            *(tuple(k.split(".")) for k in architectures.owned_keys())}


_HASHED_WHEN_NOT_DEFAULT |= {("observables", key) for key in classification_keys.OBSERVABLE_KEYS}


# The replica-exchange keys too are hashed only when they differ from their default.
_HASHED_WHEN_NOT_DEFAULT |= {("sampler", k) for k in tempering_config.TEMPERING_KEYS}


def _hashed(section: str, key: str, config: dict) -> bool:
    if (section, key) in _NOT_HASHED:
        return False
    source = _DATA_SOURCE_KEYS.get((section, key))
    if source is not None and config["data"]["source"] != source:
        return False
    if (section, key) in _HASHED_WHEN_NOT_DEFAULT:
        value = config[section][key]
        if (section, key) == ("model", "architecture"):
            value = architectures.canonical_name(value)
        return value != SCHEMA[section][key].default
    scheme = _INTEGRATOR_KEYS.get((section, key))
    return scheme is None or config["sampler"]["integrator"] == scheme


def config_hash(config: dict) -> str:
    """SHA-256 (16 hex digits) of the settings that determine the draws."""
    hashed = {s: {k: (architectures.canonical_name(v) if (s, k) == ("model", "architecture")
                      else v)
                  for k, v in vals.items() if _hashed(s, k, config)}
              for s, vals in config.items()}
    hashed = {s: vals for s, vals in hashed.items() if vals}  # e.g. [diagnostics]
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]


# [launch] and sampler.shards (experiments.setup.launch_keys): where a run executes and how its
# chains are split; none of these keys changes a stored number, so none is hashed.
SCHEMA["sampler"]["shards"] = launch_keys.SHARDS_KEY
SCHEMA["launch"] = dict(launch_keys.LAUNCH_KEYS)
_NOT_HASHED |= {("launch", key) for key in SCHEMA["launch"]} | {("sampler", "shards")}
LAUNCH_EXECUTORS = launch_keys.LAUNCH_EXECUTORS


# Classification and the zero-temperature run modes (experiments.setup.run_mode_keys):
# likelihood, output scale, gradient descent, annealing; hashed only when not default.
for _section, _keys in run_mode_keys.KEYS.items():
    SCHEMA[_section].update(_keys)
_HASHED_WHEN_NOT_DEFAULT |= run_mode_keys.HASHED_WHEN_NOT_DEFAULT

# sampler.compile and sampler.matmul_precision (experiments.setup.step_options): they change the
# floats of a run (not its law), so they are hashed when not at their default; runs made
# before them keep their hash.
SCHEMA["sampler"].update(step_options.STEP_KEYS)
_HASHED_WHEN_NOT_DEFAULT |= {("sampler", key) for key in step_options.STEP_KEYS}

# Opt-in recorded observables added after runs existed (experiments.setup.recorded_observable_keys:
# hidden_kernel, hermite_projections, first_layer_weights): hashed only away from their default.
SCHEMA["observables"].update(recorded_observable_keys.RECORDED_OBSERVABLE_KEYS)
_HASHED_WHEN_NOT_DEFAULT |= {("observables", key) for key in recorded_observable_keys.RECORDED_OBSERVABLE_KEYS}
