"""Checks before compute: does the run fit in memory, and are its data representable
in the sampling dtype? Called by `langevin run` before the run directory is written and
by `langevin resume` before anything is allocated.

- Memory: `experiments.setup.resources.estimate_memory` from plain numbers of the config
  (chains, per-layer parameter counts of `model.parameter_shapes()`, hidden units per
  example, data sizes, the observable buffer) against the device's free memory.
- The native kernel (`sampler.cpu_kernel = "native"`): it must build and load here
  (`experiments.setup.native_kernel`; compiled once per CPU and compiler).
- Data in `sampler.dtype`: every array cast to the sampling dtype must stay finite, and
  below √(largest finite number of the dtype) in magnitude, so that squares (the loss,
  |θ|², w·x) do not overflow; data are generated and checked in float64, so a value
  like 1e39 passes float64 and becomes inf in float32.
"""
from __future__ import annotations

import math

import numpy as np

from experiments.setup import classification_setup, resources
from experiments.setup.architectures import fc_widths, get_entry
from experiments.setup.build import resolve_physics
from experiments.setup.config_keys import ConfigError
from experiments.setup.data import DataError, DataSet
from experiments.setup.native_kernel import two_layer_kernel_unavailable
from langevin.run import RunPlan, buffer_capacity

DTYPE_BYTES = {"float32": 4, "float64": 8}
NPZ_NAMES = {"x_train": "X", "y_train": "y", "x_test": "X_test", "y_test": "y_test"}
SCALARS_PER_DRAW = 8  # train_loss, potential, 2 squared norms, 2 virial temperatures, 2 moments


def _model(config: dict, input_dim: int):
    """The run's model from its registry entry (no tensor is allocated)."""
    physics = resolve_physics(config, input_dim)
    return get_entry(config["model"]["architecture"]).build(config, input_dim,
                                                            physics.prior_variances)


def hidden_units_per_example(config: dict, input_dim: int) -> int:
    """Hidden units one example activates in the forward pass (Σ_l N_l of the model)."""
    return int(_model(config, input_dim).hidden_units())


def parameter_counts(config: dict, input_dim: int) -> dict[str, int]:
    """Parameters of one chain per layer, from the model's `parameter_shapes()`."""
    return {layer: math.prod(shape)
            for layer, shape in _model(config, input_dim).parameter_shapes().items()}


def buffer_elements(config: dict, data: DataSet) -> int:
    """Numbers held by the device-side observable buffers between two flushes."""
    sampler, spec = config["sampler"], config["observables"]
    plan = RunPlan(sampler["burn_in"], sampler["num_steps"], sampler["thin"],
                   sampler["checkpoint_every"])
    input_dim = data.x_train.shape[1]
    entry = get_entry(config["model"]["architecture"])
    model = _model(config, input_dim)
    # teacher projections q: one per first-layer neuron (fc) and direction
    width = fc_widths(config)[0] if entry.first_layer_sees_input else 0
    per_draw = SCALARS_PER_DRAW + 2 * len(model.layer_names)
    if spec["outputs_test"]:
        per_draw += len(data.x_test)
    if spec["outputs_train"]:
        per_draw += len(data.x_train)
    main = buffer_capacity(plan, sampler["thin"]) * per_draw
    projections = 0
    if data.teacher_direction is not None:
        directions = 0 if data.control_directions is None else len(data.control_directions)
        projections = (buffer_capacity(plan, spec["q_every"] or sampler["thin"])
                       * width * (1 + directions))
    classification = classification_setup.buffer_elements(
        config, fc_widths(config) if entry.first_layer_sees_input else (), data)
    return sampler["num_chains"] * (main + projections + classification)


def memory_estimate(config: dict, data: DataSet) -> resources.MemoryEstimate:
    input_dim = data.x_train.shape[1]
    return resources.estimate_memory(
        num_chains=config["sampler"]["num_chains"],
        parameter_counts=parameter_counts(config, input_dim),
        hidden_units_per_example=hidden_units_per_example(config, input_dim),
        n_train=len(data.x_train), n_test=len(data.x_test),
        buffer_elements=buffer_elements(config, data),
        dtype_bytes=DTYPE_BYTES[config["sampler"]["dtype"]], input_dim=input_dim,
        integrator=config["sampler"]["integrator"])


def check_memory(config: dict, data: DataSet) -> str | None:
    """Raise ResourceError if the run cannot fit; a warning text if it is tight."""
    device = config["sampler"]["device"]
    estimate = memory_estimate(config, data)
    return resources.check_memory(estimate, resources.available_memory_bytes(device), device)


def check_data_dtype(data: DataSet, dtype: str, source: str) -> None:
    """Every data array is finite and squarable in the sampling dtype (module doc)."""
    limit = math.sqrt(float(np.finfo(dtype).max))
    for name, array in data._asdict().items():
        if not isinstance(array, np.ndarray) or array.size == 0:  # None, input_shape
            continue
        with np.errstate(over="ignore"):
            cast = np.asarray(array).astype(dtype)
        largest = float(np.abs(array).max())
        if not np.isfinite(cast).all() or largest > limit:
            raise DataError(
                f"{source}: array {NPZ_NAMES.get(name, name)!r} has values up to {largest:.3g} in magnitude, beyond "
                f"what sampler.dtype = {dtype!r} can square ({limit:.3g}): rescale the data "
                "or use sampler.dtype = 'float64'")


def check_native_kernel(config: dict) -> None:
    """ConfigError naming sampler.cpu_kernel when "native" cannot be built or loaded here."""
    if config["sampler"]["cpu_kernel"] != "native":
        return
    reason = two_layer_kernel_unavailable()
    if reason is not None:
        raise ConfigError(f"config key 'sampler.cpu_kernel' = 'native': the kernel cannot be "
                          f"built or loaded here ({reason}); use 'torch'")


def check_before_compute(config: dict, data: DataSet) -> str | None:
    """All checks of the module; returns a warning text (or None) for a tight fit."""
    check_native_kernel(config)
    source = (f"data.path {config['data']['path']!r}" if config["data"]["source"] == "npz"
              else "data (single_index)")
    check_data_dtype(data, config["sampler"]["dtype"], source)
    return check_memory(config, data)
