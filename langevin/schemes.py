"""Registry of the integration schemes: config name -> factory.

Every factory takes (potential_fn, step_sizes, temperature, **scheme_options) and returns
a `langevin.integrators.Integrator`; `tests/langevin/test_integrator_suite.py` runs every
entry through the same correctness suite. `SCHEME_OPTIONS` names the keyword options each
factory owns (the friction γ of BAOAB): the one place that says which scheme reads which
option (the config validates and hashes `sampler.<option>` for its owner only).
"""
from typing import Mapping

from langevin.gradient_descent import gradient_descent
from langevin.integrators import euler_maruyama
from langevin.mala import mala
from langevin.underdamped import baoab

INTEGRATORS = {"euler_maruyama": euler_maruyama, "baoab": baoab, "mala": mala}

# T = 0 run modes: factories (potential_fn, step_sizes, **options) without a temperature;
# not samplers, so not in INTEGRATORS and not in its stationary-law suite.
ZERO_TEMPERATURE = {"gradient_descent": gradient_descent}

SCHEME_OPTIONS: dict[str, tuple[str, ...]] = {"euler_maruyama": (), "baoab": ("friction",),
                                              "mala": ()}


def scheme_options(name: str, values: Mapping) -> dict:
    """The keyword options of scheme `name`, taken from `values` (e.g. the sampler section)."""
    return {option: values[option] for option in SCHEME_OPTIONS[name]}
