"""Named presets: plain dict of name -> Preset(description, overrides).

Each preset is a set of config overrides on top of the defaults of `config.SCHEMA`;
`langevin run NAME` runs it, `--set` adjusts it.
"""
from __future__ import annotations

from typing import NamedTuple

from experiments.scaling import SMALL_BETA, grokking_cubic_preset, merged


class Preset(NamedTuple):
    """Config overrides; with `sweep` = {"section.key": [values]} a preset is a sweep:
    one run per value, in subdirectories of the sweep directory."""

    description: str
    overrides: dict
    sweep: dict | None = None


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "erf network (N=64, standard scaling) on the cubic teacher He1 - 0.3 He3, d=16, "
        "n=128; about two minutes on a 2-core CPU",
        {},
    ),
    "smoke": Preset(
        "a few seconds: 4 chains, 2000 steps (for tests and first checks)",
        {"sampler": {"num_chains": 4, "num_steps": 2000, "burn_in": 500, "thin": 10,
                     "checkpoint_every": 500},
         "model": {"width": 16}, "data": {"d": 4, "n_train": 16, "n_test": 32}},
    ),
    "gp_limit": Preset(
        "erf network, standard scaling, widths 16..1024 against the NNGP posterior: the gap "
        "of the posterior mean and variance falls like 1/width (about 15 min on 2 CPU cores)",
        {"sampler": {"num_chains": 32, "num_steps": 40_000, "burn_in": 5_000, "thin": 20,
                     "step_size": 0.01},
         "model": {"activation": "erf", "scaling": "standard"},
         "posterior": {"sigma_w2": 1.0, "sigma_a2": 1.0, "noise_variance": 0.05},
         "data": {"d": 4, "n_train": 16, "n_test": 32, "hermite_coefficients": [0.0, 1.0, 0.0, -0.3]}},
        sweep={"model.width": [16, 64, 256, 1024]},
    ),
    # Mean-field GFL: χ = N, σ_w² = 1, σ̃_a² = 4, σ̃² = 16 (T = σ̃²/N = 0.125) on He1 − 0.05 He3.
    # Chosen from the theory (experiments.feature_learning_comparison): GFL gives b = 2.49 σ_w²/d
    # against a = 0.94 σ_w²/d (b/a = 2.6) and learnabilities (0.65, 0.47) vs the GP's (0.45, 0.00);
    # the finite-d Landau p(q) is still single-welled (A2 > 0, phase GFL), so the Gaussian closure
    # applies (its E[q²] is 3% from the exact quadrature's). σ̃² = 8 already enters GMFL-II.
    "gfl_single_index": Preset(
        "erf network in mean-field scaling (N=128, d=16, n=128) on He1 - 0.05 He3 against the "
        "GFL kernel-adaptation theory (b > a) and the Landau p(q); about 2 min on 2 CPU cores",
        {"sampler": {"num_chains": 16, "num_steps": 20_000, "burn_in": 5_000, "thin": 20,
                     "step_size": 0.01},
         "model": {"activation": "erf", "scaling": "mean_field", "width": 128},
         "posterior": {"sigma_w2": 1.0, "sigma_a2": 4.0, "noise_variance": 16.0},
         "data": {"d": 16, "n_train": 128, "n_test": 256,
                  "hermite_coefficients": [0.0, 1.0, 0.0, -0.05]}},
    ),
    # The grokking paper's cubic teacher (experiments.scaling: χ = N, σ̃_a² = N σ_a², σ̃² = N σ²,
    # so the swept posterior.noise_variance is 700 × the paper's σ² ∈ {0.10, ..., 0.30}).
    # Not run here (no GPU): at β = 1/8 a neuron crosses between the q ≈ 0 and q ≈ ±1 wells about
    # every 7·10³ steps at step_size 0.02; the barrier grows ∝ d, so at d = 150 crossings are far
    # rarer and the GMFL-I well populations (σ² ≲ 0.15) may not equilibrate in 4·10⁵ steps: read
    # R-hat/ESS of the kurtosis and the equilibration summary before trusting those points.
    "grokking_cubic": Preset(
        "the grokking paper's cubic teacher (N=700, n=3000, d=150, sigma_a2=8/N, eps=-0.3) swept "
        "over the paper's noise 0.10..0.30; GPU (sampler.device=cuda)",
        merged(grokking_cubic_preset(1.0)[0],
               {"sampler": {"num_chains": 32, "num_steps": 300_000, "burn_in": 100_000,
                            "thin": 500, "step_size": 0.02, "device": "cuda",
                            "checkpoint_every": 50_000},
                "data": {"n_test": 3000}}),
        sweep=grokking_cubic_preset(1.0)[1],
    ),
    # β = SMALL_BETA = 1/8 (α = β): N=88, d=53, n=375; the paper's σ² values are invariant.
    "grokking_cubic_small": Preset(
        "grokking_cubic scaled by beta = 1/8 (N=88, d=53, n=375): the same noise sweep in about "
        "2-3 min per point on 2 CPU cores",
        merged(grokking_cubic_preset(SMALL_BETA)[0],
               {"sampler": {"num_chains": 8, "num_steps": 20_000, "burn_in": 10_000,
                            "thin": 50, "step_size": 0.02, "checkpoint_every": 10_000},
                "data": {"n_test": 1000}}),
        sweep=grokking_cubic_preset(SMALL_BETA)[1],
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)} "
                         "(or give a path to a .toml config)")
    return PRESETS[name]

# A sweep of seconds: the smoke preset over two noise variances (tests of the executors,
# and a first check of a cluster setup: `langevin run smoke_sweep --executor slurm ...`).
PRESETS["smoke_sweep"] = Preset(
    "a sweep of seconds: the smoke preset at noise_variance 0.1 and 0.2",
    PRESETS["smoke"].overrides,
    sweep={"posterior.noise_variance": [0.1, 0.2]},
)
