"""One registry per concept: the config, the build and the theory side read the same names.

Activations: the sampler's table (langevin.activations.ACTIVATIONS) is what the config
accepts; the theory side (NumPy, it may not import langevin) has its own table
(theory.hermite.ACTIVATION_FUNCTIONS), which must hold every sampler activation with the
same function. Integrators: the config's names and the options each scheme owns are those
of langevin.schemes; every option is a keyword of its factory and a sampler config key.
"""
import inspect

import numpy as np
import pytest
import torch

from experiments.setup import config as cfg
from experiments.setup import resources
from langevin.activations import ACTIVATIONS
from langevin.schemes import INTEGRATORS, SCHEME_OPTIONS
from theory.hermite import ACTIVATION_FUNCTIONS


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_sampler_activation_has_the_same_theory_function(name):
    grid = np.linspace(-4.0, 4.0, 801)
    sampled = ACTIVATIONS[name].value(torch.as_tensor(grid, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ACTIVATION_FUNCTIONS[name](grid), sampled, rtol=1e-14, atol=1e-15)
    assert name in cfg.ACTIVATION_NAMES


def test_integrators_and_their_options_come_from_one_table():
    assert set(cfg.INTEGRATOR_NAMES) == set(INTEGRATORS) == set(SCHEME_OPTIONS)
    assert set(resources.STATE_COPIES) == set(INTEGRATORS)
    sampler_keys = set(cfg.default_config()["sampler"])
    for name, options in SCHEME_OPTIONS.items():
        keywords = inspect.signature(INTEGRATORS[name]).parameters
        for option in options:
            assert option in keywords and option in sampler_keys
