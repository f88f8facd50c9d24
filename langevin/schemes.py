"""Registry of the integration schemes: config name -> factory.

Every factory takes (potential_fn, step_sizes, temperature, **scheme_options) and returns
a `langevin.integrators.Integrator`; `tests/langevin/test_integrator_suite.py` runs every
entry through the same correctness suite.
"""
from langevin.integrators import euler_maruyama
from langevin.mala import mala
from langevin.underdamped import baoab

INTEGRATORS = {"euler_maruyama": euler_maruyama, "baoab": baoab, "mala": mala}

# T = 0 run modes: factories (potential_fn, step_sizes, **options) without a temperature;
# not samplers, so not in INTEGRATORS and not in its stationary-law suite.
from langevin.gradient_descent import gradient_descent  # noqa: E402

ZERO_TEMPERATURE = {"gradient_descent": gradient_descent}
