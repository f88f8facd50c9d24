"""The architecture registry: config name -> everything the experiments need of a model.

`MODELS` is a plain dict; an entry (`ModelEntry`) owns
  * its config keys (declared here, merged into experiments.setup.config.SCHEMA) and their
    validation (`check`, a clear message naming the key, before any compute);
  * its prior rule (`layer_priors`: every layer's role and fan-in; the variance of one
    weight is σ_l²/fan_in, the readout's σ̃_a²/(χ fan_in), a bias's σ_b²:
    `langevin.convention.layer_prior_variance`);
  * its builder (config, input dimension, prior variances -> a `langevin.models` Model);
  * its NNGP kernel from `theory/` (`nngp`: network prior -> (Gram, diagonal) functions),
    so the GP comparison of a report works for every architecture;
  * `examples`: small configurations the conformance suite (tests/langevin/
    test_model_conformance.py) runs, so a new entry is tested automatically.
Adding an architecture = one module in langevin/models/ + one entry here.

Names: "fc" (fully connected, any depth). "two_layer" is an alias of "fc" (one hidden
layer of width model.width: the network of every run made before deeper nets existed).
"cnn" and "lcn": one hidden layer over local patches (langevin.models.conv), filters
shared across patches (cnn) or one filter bank per patch (lcn); both have the CNN-GP
without pooling as their NNGP (theory.conv_kernels).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

from experiments.setup.config_keys import Key
from experiments.setup.native_kernel import load_two_layer_kernel
from langevin.models.conv import LocalPatchNetwork, patch_grid
from langevin.models.fc import FullyConnectedNetwork, bias_name, weight_name
from theory.conv_kernels import cnn_gp_diag, cnn_gp_gram
from theory.kernels import deep_fc_diag, deep_fc_gram
from theory.network_prior import NetworkPrior


class LayerPrior(NamedTuple):
    """Prior rule of one layer: role "weight" (σ_l²/fan_in with σ_l² =
    posterior.sigma_w2[index]), "readout" (σ̃_a²/(χ fan_in)) or "bias" (σ_b²)."""

    layer: str
    role: str
    fan_in: int
    index: int = 0  # which hidden weight layer (0-based), for role "weight"


KernelFn = Callable[[Any, Any], Any]  # (X1 (n1, d), X2 (n2, d) | None) -> (n1, n2)
DiagFn = Callable[[Any], Any]  # X (n, d) -> (n,)


@dataclass(frozen=True)
class ModelEntry:
    description: str
    config_keys: Mapping[str, Key]  # dotted name -> Key: the keys only this family reads
    check: Callable[[dict, frozenset], str | None]  # (config, user keys) -> problem or None
    layer_priors: Callable[[dict, int], tuple[LayerPrior, ...]]  # (config, input_dim)
    # fan-in of the readout (χ = it in mean field), from the config and the input dimension
    # (None where the config alone does not fix it: then the chi check waits for the data)
    readout_width: Callable[[dict, int | None], int | None]
    build: Callable[[dict, int, Mapping[str, float]], Any]  # (config, input_dim, variances)
    nngp: Callable[[NetworkPrior], tuple[KernelFn, DiagFn]]
    geometry: Callable[[dict, int], Any]  # (config, input_dim) -> NetworkPrior.geometry
    first_layer_sees_input: bool  # theta["w"] (C, N, d) multiplies the raw input x
    examples: tuple[dict, ...]


ALIASES = {"two_layer": "fc"}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


# ---------------------------------------------------------------- fully connected (fc)

def _positive_integers(values) -> str | None:
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    return "must be a list of positive integers"


def _finite_positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and math.isfinite(v)


def positive_number_or_list(value) -> str | None:
    values = value if isinstance(value, list) else [value]
    if values and all(_finite_positive(v) for v in values):
        return None
    return "must be a positive number or a non-empty list of positive numbers"


def _non_negative(v) -> str | None:
    return None if v >= 0 and math.isfinite(v) else "must be non-negative and finite"


def _positive_list(values) -> str | None:
    return None if all(_finite_positive(v) for v in values) else "must be a list of positive numbers"


FC_KEYS = {
    "model.widths": Key(list, [], _positive_integers,
                        "hidden widths [N_1, ..., N_L] of an fc net (replaces model.width); [] means [model.width]",
                        element=int),
    "model.bias": Key(bool, False, None, "biases on every hidden layer, prior N(0, sigma_b2)"),
    "posterior.sigma_b2": Key(float, 1.0, lambda v: None if v > 0 and math.isfinite(v)
                              else "must be positive and finite",
                              "bias prior variance (model.bias = true)"),
    "training.weight_decays": Key(list, [], _positive_list,
                                  "weight decays of the hidden weight layers w, w2, ..., wL "
                                  "(training view; or training.weight_decay_w for one layer)"),
    "training.weight_decay_b": Key(float, 0.0, _non_negative,
                                   "weight decay of the biases (training view, model.bias)"),
}


def fc_widths(config: dict) -> tuple[int, ...]:
    model = config["model"]
    return tuple(int(n) for n in model["widths"]) or (int(model["width"]),)


def _set(config: dict, user_keys: frozenset, dotted: str) -> bool:
    """Whether the user set `dotted` (or it differs from its default)."""
    section, name = dotted.split(".")
    return dotted in user_keys or config[section][name] != FC_KEYS[dotted].default


def _fc_check(config: dict, user_keys: frozenset) -> str | None:
    widths = fc_widths(config)
    model, post, training = config["model"], config["posterior"], config["training"]
    sigma = post["sigma_w2"]
    if isinstance(sigma, list) and len(sigma) != len(widths):
        return (f"config key 'posterior.sigma_w2' = {sigma!r} has {len(sigma)} entries but the "
                f"network has {len(widths)} hidden weight layer(s) (widths {list(widths)}): "
                "give one number, or one per hidden layer")
    if not model["bias"]:
        for key in ("posterior.sigma_b2", "training.weight_decay_b"):
            if _set(config, user_keys, key):
                return f"config key {key!r} applies only with model.bias = true"
    decays = training["weight_decays"]
    if decays and len(decays) != len(widths):
        return (f"config key 'training.weight_decays' = {decays!r} has {len(decays)} entries but "
                f"the network has {len(widths)} hidden weight layer(s) (widths {list(widths)})")
    if decays and training["weight_decay_w"] > 0:
        return ("config keys 'training.weight_decay_w' and 'training.weight_decays' both set: "
                "give the hidden-layer weight decays once")
    if training["temperature"] > 0:  # the training view
        if len(widths) > 1 and not decays:
            return ("the training view of a deep fc net needs config key "
                    f"'training.weight_decays' (one per hidden layer, {len(widths)} here)")
        if model["bias"] and not training["weight_decay_b"] > 0:
            return ("the training view with model.bias = true needs config key "
                    "'training.weight_decay_b' > 0")
    return None


def _fc_layer_priors(config: dict, input_dim: int) -> tuple[LayerPrior, ...]:
    priors, fan_in = [], int(input_dim)
    for index, width in enumerate(fc_widths(config)):
        priors.append(LayerPrior(weight_name(index + 1), "weight", fan_in, index))
        if config["model"]["bias"]:
            priors.append(LayerPrior(bias_name(index + 1), "bias", 1))
        fan_in = width
    priors.append(LayerPrior("a", "readout", fan_in))
    return tuple(priors)


def _fc_build(config: dict, input_dim: int, prior_variances: Mapping[str, float]):
    native = config["sampler"]["cpu_kernel"] == "native"
    return FullyConnectedNetwork(int(input_dim), fc_widths(config), config["model"]["activation"],
                                 dict(prior_variances), bias=config["model"]["bias"],
                                 gradient="native" if native else "auto",
                                 native_kernel=load_two_layer_kernel() if native else None)


def _fc_nngp(prior: NetworkPrior) -> tuple[KernelFn, DiagFn]:
    """Deep NNGP recursion (theory.kernels.deep_fc_gram; the NNGP recursion of Lee et al., ICLR 2018), weight variances
    (σ_1², ..., σ_L², σ̃_a²/χ) and bias variance σ_b² on every hidden layer."""
    kernel = dict(activation=prior.activation,
                  weight_variances=(*prior.weight_variances, prior.readout_variance),
                  bias_variance=prior.bias_variance)
    return functools.partial(deep_fc_gram, **kernel), functools.partial(deep_fc_diag, **kernel)


FC = ModelEntry(
    description="fully connected: L hidden layers (model.widths), any activation, optional "
                "biases (model.bias), standard or mean-field readout",
    config_keys=FC_KEYS, check=_fc_check, layer_priors=_fc_layer_priors,
    readout_width=lambda config, input_dim=None: fc_widths(config)[-1], build=_fc_build,
    nngp=_fc_nngp, geometry=lambda config, input_dim: None,
    first_layer_sees_input=True,
    examples=(
        {"model": {"width": 5}},
        {"model": {"width": 4, "bias": True, "activation": "relu"}},
        {"model": {"widths": [5, 4], "activation": "erf"}, "posterior": {"sigma_w2": [1.5, 0.7]}},
        {"model": {"widths": [4, 3, 5], "bias": True, "activation": "tanh"},
         "posterior": {"sigma_b2": 0.3}},
    ),
)


# ---------------------------------------------------- local patches (cnn, lcn)

def _positive_int_list(values) -> str | None:
    if values and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    return "must be a non-empty list of positive integers (one entry, or one per input dimension)"


CONV_KEYS = {
    "model.channels": Key(int, 16, lambda v: None if v > 0 else "must be a positive integer",
                          "filters per patch position K (cnn, lcn)"),
    "model.patch_size": Key(list, [4, 4], _positive_int_list,
                            "patch size: [k] (1-D, or the same in both dimensions) or [kh, kw]",
                            element=int),
    "model.stride": Key(list, [4, 4], _positive_int_list,
                        "patch stride, like model.patch_size (stride = patch size: the "
                        "non-overlapping patches of the proportional theory)", element=int),
    "model.input_shape": Key(list, [], lambda v: None if not v else _positive_int_list(v),
                             "shape of one input, [L] or [H, W]; [] means: from the data "
                             "(digits without PCA: [8, 8]; otherwise the flat [d])",
                             element=int),
}


def conv_input_shape(config: dict, input_dim: int | None) -> tuple[int, ...] | None:
    """The input shape of a patch network: model.input_shape, else the digits images (8, 8)
    when they are not PCA-reduced, else the flat (d,); None when not known yet."""
    explicit = config["model"]["input_shape"]
    if explicit:
        return tuple(int(v) for v in explicit)
    data = config["data"]
    if data["source"] == "digits" and data["pca_components"] == 0:
        return (8, 8)
    if data["source"] == "single_index":
        return (int(data["d"]),)
    return None if input_dim is None else (int(input_dim),)


def _conv_geometry(config: dict, input_dim: int | None):
    """(input_shape, patch, stride, grid) or None; raises ValueError on a bad geometry."""
    shape = conv_input_shape(config, input_dim)
    if shape is None:
        return None
    model = config["model"]

    def per_dimension(values):
        return int(values[0]) if len(values) == 1 else tuple(int(v) for v in values)

    patch, stride, grid = patch_grid(shape, per_dimension(model["patch_size"]),
                                     per_dimension(model["stride"]))
    return shape, patch, stride, grid


def _config_input_dim(config: dict) -> int | None:
    data = config["data"]
    if data["source"] == "single_index":
        return int(data["d"])
    if data["source"] == "digits":
        return int(data["pca_components"]) or 64
    return None


def _conv_check(config: dict, user_keys: frozenset) -> str | None:
    model = config["model"]
    if model["widths"]:
        return (f"config key 'model.widths' applies to model.architecture = 'fc' only; a "
                f"{model['architecture']} has one hidden layer of model.channels filters")
    shape = conv_input_shape(config, _config_input_dim(config))
    if shape is not None:
        for key in ("patch_size", "stride"):
            if len(model[key]) not in (1, len(shape)):
                return (f"config key 'model.{key}' = {model[key]!r} needs 1 or {len(shape)} "
                        f"entries for inputs of shape {list(shape)}")
        try:
            _conv_geometry(config, _config_input_dim(config))
        except ValueError as err:
            return (f"config keys 'model.patch_size' = {model['patch_size']!r} and "
                    f"'model.stride' = {model['stride']!r} do not fit inputs of shape "
                    f"{list(shape)}: {err}")
    if isinstance(config["posterior"]["sigma_w2"], list) and len(config["posterior"]["sigma_w2"]) != 1:
        return ("config key 'posterior.sigma_w2' must be one number for a "
                f"{model['architecture']} (one hidden layer), got {config['posterior']['sigma_w2']!r}")
    if config["training"]["weight_decays"]:
        return ("config key 'training.weight_decays' is for deep fc nets; a patch network uses "
                "training.weight_decay_w")
    if not model["bias"] and _set(config, user_keys, "posterior.sigma_b2"):
        return "config key 'posterior.sigma_b2' applies only with model.bias = true"
    return None


def _conv_geometry_or_error(config: dict, input_dim: int):
    geometry = _conv_geometry(config, input_dim)
    if math.prod(geometry[0]) != int(input_dim):
        raise ValueError(f"config key 'model.input_shape' = {list(geometry[0])} has "
                         f"{math.prod(geometry[0])} entries but the data have {input_dim} inputs")
    return geometry


def _conv_layer_priors(config: dict, input_dim: int) -> tuple[LayerPrior, ...]:
    _, patch, _, grid = _conv_geometry_or_error(config, input_dim)
    priors = [LayerPrior("w", "weight", math.prod(patch), 0),
              LayerPrior("a", "readout", math.prod(grid) * config["model"]["channels"])]
    if config["model"]["bias"]:
        priors.append(LayerPrior("b", "bias", 1))
    return tuple(priors)


def _conv_readout_width(config: dict, input_dim: int | None = None) -> int | None:
    geometry = _conv_geometry(config, input_dim if input_dim is not None
                              else _config_input_dim(config))
    return None if geometry is None else math.prod(geometry[3]) * config["model"]["channels"]


def _conv_builder(shared: bool):
    def build(config: dict, input_dim: int, prior_variances: Mapping[str, float]):
        shape, patch, stride, _ = _conv_geometry_or_error(config, input_dim)
        model = config["model"]
        return LocalPatchNetwork(shape, patch, stride, int(model["channels"]),
                                 model["activation"], dict(prior_variances), shared=shared,
                                 bias=model["bias"])
    return build


def _conv_nngp(prior: NetworkPrior) -> tuple[KernelFn, DiagFn]:
    """CNN-GP without pooling (theory.conv_kernels, the same for cnn and lcn):
    K(x, y) = (σ̃_a²/χ) (1/M) Σ_p κ_φ(C_pp), C_pq = σ_w² x^(p)·y^(q)/k + σ_b²."""
    shape, patch, stride = prior.geometry
    kernel = dict(activation=prior.activation, sigma_a2=prior.readout_variance,
                  sigma_w2=prior.weight_variances[0], input_shape=shape, patch_size=patch,
                  stride=stride, bias_variance=prior.bias_variance)
    return functools.partial(cnn_gp_gram, **kernel), functools.partial(cnn_gp_diag, **kernel)


def _conv_nngp_geometry(config: dict, input_dim: int):
    shape, patch, stride, _ = _conv_geometry_or_error(config, input_dim)
    return shape, patch, stride


CONV_EXAMPLES = (
    {"model": {"input_shape": [4], "patch_size": [2], "stride": [1], "channels": 3}},
    {"model": {"input_shape": [2, 2], "patch_size": [1], "stride": [1], "channels": 2,
               "bias": True, "activation": "relu"}, "posterior": {"sigma_b2": 0.5}},
    {"model": {"input_shape": [4], "patch_size": [2], "stride": [2], "channels": 4,
               "activation": "tanh"}},
)


def _conv_entry(shared: bool) -> ModelEntry:
    return ModelEntry(
        description=("one hidden layer over local patches (model.patch_size, model.stride), "
                     "model.channels filters " + ("shared across patches" if shared else
                                                  "per patch (no weight sharing)")
                     + ", dense readout over (patch, channel); NNGP: the CNN-GP without pooling"),
        config_keys={**CONV_KEYS, "model.bias": FC_KEYS["model.bias"],
                     "posterior.sigma_b2": FC_KEYS["posterior.sigma_b2"],
                     "training.weight_decay_b": FC_KEYS["training.weight_decay_b"]},
        check=_conv_check, layer_priors=_conv_layer_priors, readout_width=_conv_readout_width,
        build=_conv_builder(shared), nngp=_conv_nngp, geometry=_conv_nngp_geometry,
        first_layer_sees_input=False, examples=CONV_EXAMPLES,
    )


MODELS: dict[str, ModelEntry] = {
    "fc": FC,
    "cnn": _conv_entry(shared=True),
    "lcn": _conv_entry(shared=False),
}
# The entries whose readout a is (C, M, K) over (patch, channel) (langevin.models.conv).
PATCH_ARCHITECTURES = ("cnn", "lcn")


def get_entry(name: str) -> ModelEntry:
    """The entry of `model.architecture` (aliases resolved)."""
    canonical = canonical_name(name)
    if canonical not in MODELS:
        raise ValueError(f"model.architecture must be one of "
                         f"{sorted([*MODELS, *ALIASES])}, got {name!r}")
    return MODELS[canonical]


def architecture_names() -> tuple[str, ...]:
    return (*MODELS, *ALIASES)


def owned_keys() -> dict[str, Key]:
    """Every architecture-specific key (union over entries; a key two entries both own must
    be declared identically)."""
    out: dict[str, Key] = {}
    for name, entry in MODELS.items():
        for dotted, key in entry.config_keys.items():
            if dotted in out and out[dotted] != key:
                raise AssertionError(f"config key {dotted!r} declared differently by {name!r}")
            out[dotted] = key
    return out


__all__ = ["ALIASES", "LayerPrior", "MODELS", "ModelEntry", "PATCH_ARCHITECTURES",
           "architecture_names", "canonical_name", "get_entry", "owned_keys",
           "positive_number_or_list"]
