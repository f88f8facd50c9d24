"""Named presets: plain dict of name -> Preset(description, overrides).

Each preset is a set of config overrides on top of the defaults of `config.SCHEMA`;
`langevin run NAME` runs it, `--set` adjusts it.
"""
from __future__ import annotations

from typing import NamedTuple

from experiments.compare import relu_learnability as relu_lr
from experiments.reporting import data_separation, phase_diagram, sparse_coding_training
from experiments.setup.scaling import SMALL_BETA, grokking_cubic_preset, grokking_cubic_sizes, merged


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
    # Chosen from the theory (experiments.compare.feature_learning_comparison): GFL gives b = 2.49 σ_w²/d
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
    # The grokking paper's cubic teacher (experiments.setup.scaling: χ = N, σ̃_a² = N σ_a², σ̃² = N σ²,
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

# The ReLU learnability ratios of Ringel et al. 2025 (experiments.compare.relu_learnability): mean-field ReLU network on
# y = z + ε(|z| − √(2/π)), N = 750β, d = 96β, n ∈ {2d, 3d, 4d}, swept jointly over (N, d, n).
_RELU_LEARNABILITY = {
    "model": {"activation": "relu", "scaling": "mean_field"},
    "posterior": {"sigma_w2": relu_lr.SIGMA_W2, "sigma_a2": relu_lr.READOUT_NUMERATOR,
                  "noise_variance": relu_lr.NOISE_NUMERATOR},
    "data": {"target": "relu_abs", "epsilon": relu_lr.EPSILON, "n_test": 1000},
    "observables": {"outputs_train": True},
}
PRESETS.update({
    "relu_learnability": Preset(
        "ReLU network, mean-field scaling, on z + (|z| - sqrt(2/pi)): R_1, R_2 against beta = 1/8, 1/4, 1/2 "
        "(N = 750 beta, d = 96 beta) at n = 2d, 3d, 4d, sampled vs the adaptive, scaling and GP "
        "predictions; 9 runs (a beta = 1/8 point took 4-5 min on a busy 2-core machine; beta = 1/2 more)",
        merged(_RELU_LEARNABILITY, {"sampler": {"num_chains": 16, "num_steps": 20_000, "burn_in": 10_000,
                                                "thin": 20, "step_size": 0.01, "threads": 1}}),
        sweep=relu_lr.talk_sweep(relu_lr.CPU_BETAS),
    ),
    "relu_learnability_talk": Preset(
        "relu_learnability at the scales of Ringel et al. 2025 beta = 1/2, 1, 2 (N up to 1500, d up to 192, n up to 768); "
        "GPU (sampler.device=cuda); the report's finite-data adaptive solve (Newton-Krylov for d > 48) is long",
        merged(_RELU_LEARNABILITY, {"sampler": {"num_chains": 32, "num_steps": 100_000, "burn_in": 50_000,
                                                "thin": 100, "step_size": 0.01, "device": "cuda",
                                                "checkpoint_every": 25_000}}),
        sweep=relu_lr.talk_sweep((0.5, 1.0, 2.0)),
    ),
})
# Replica exchange across the noise variance at β = 1/8 (experiments.setup.tempering_setup): the σ²
# range around the transition as ONE run. At these sizes theory.cubic_teacher puts the finite-d
# crossover at σ² ≈ 0.113 and the d → ∞ transition at 0.178. Rungs: a swap between τ and τ(1 + δ)
# is accepted at ≈ exp(−n δ²/2) (Var L ≈ n τ²/2), so n = 375 needs δ ≲ 0.07 (12 rungs over
# [0.08, 0.3] were accepted ~10 % of the time): 16 geometric rungs over [0.08, 0.2], re-placed
# toward equal rejection during the first half of the burn-in (a reduced run, 16 x 2 chains,
# 4000 + 4000 steps: acceptance 0.31-0.49 on every pair, but L decorrelates over ~10² steps, so
# replicas diffused only a few rungs and made no round trip: the full length is needed for
# mixing across the ladder; read the per-rung R-hat of q). Plain runs from the two sides
# for comparison: grokking_cubic_small (prior start, q ≈ 0) and the same with
# `--set sampler.init_q=1.0` (every neuron in a q ≈ ±1 well).
PRESETS["grokking_cubic_tempered"] = Preset(
    "grokking_cubic_small (beta = 1/8) as one replica-exchange run over the noise variance "
    "sigma^2 in [0.08, 0.2] (16 rungs x 3 replicas): per-rung well masses, -log p(q), He3 "
    "learnability; about 20-30 min on 2 CPU cores",
    merged(grokking_cubic_preset(SMALL_BETA)[0],
           {"sampler": {"tempering": "noise_variance", "ladder_min": 0.08, "ladder_max": 0.2,
                        "ladder_rungs": 16, "num_chains": 48, "swap_every": 10,
                        "num_steps": 20_000, "burn_in": 10_000, "thin": 50, "step_size": 0.02,
                        "checkpoint_every": 10_000},
            "posterior": {"noise_variance": round(grokking_cubic_sizes(SMALL_BETA)["width"]
                                                  * 0.1, 10)},
            "data": {"n_test": 1000}}),
)


# A sweep of seconds: the smoke preset over two noise variances (tests of the executors,
# and a first check of a cluster setup: `langevin run smoke_sweep --executor slurm ...`).
PRESETS["smoke_sweep"] = Preset(
    "a sweep of seconds: the smoke preset at noise_variance 0.1 and 0.2",
    PRESETS["smoke"].overrides,
    sweep={"posterior.noise_variance": [0.1, 0.2]},
)

# The proportional regime (Pacelli et al., Nat. Mach. Intell. 2023, experiments.compare.proportional_comparison): one hidden
# layer, standard scaling, α = P/N1 = 1 fixed while N1 = P grows, linear and erf, on
# y = 4 He_1(w*·x) (labels far above the NNGP prior's norm: Q̄ ≈ 2.2 for the linear net at
# N1 = 20, theory average test variance about twice the NNGP's). Step 0.005: its ULA bias on
# the test variance is ≈ 2 % (halving measured in tests/experiments/test_proportional.py). Each run's summary has
# theory.proportional; the sweep table puts sampled, Q̄ and NNGP side by side.
# Over T as well: the widths at T = σ² = 1, plus T = 0.25 and 4 at N1 = P = 20 (Q̄ falls towards
# 1 as T grows: the labels' excess over the NNGP prior, yᵀ(K + TI)⁻¹y against Tr(K(K + TI)⁻¹),
# shrinks). Step: ULA on p ∝ exp(−U/T) is θ' = θ + h∇log p + √(2h)ξ with h = η_l T =
# step_size·(prior variance of layer l), so its relative bias is of order
# step_size·(1 + prior variance·∇²L/T): the likelihood part grows like 1/T. Below T = 1 the step
# is scaled by T (the bias stays at the ~2 % measured at T = 1); above, it is kept.
PROPORTIONAL_FC_WIDTHS = (10, 20, 40)
PROPORTIONAL_FC_TEMPERATURES = (0.25, 4.0)
PROPORTIONAL_FC_STEP = 0.005
PRESETS["proportional_fc"] = Preset(
    "1HL linear and erf networks (standard scaling) at alpha = P/N1 = 1, N1 = P = 10, 20, "
    "40 at T = 1, and T = 0.25, 4 at N1 = P = 20, d = 30, on 4 He1: sampled test "
    "variance/error and readout-norm Q vs the Q-bar renormalized kernel and the NNGP; "
    "10 runs, about 80 min in all on 2 busy CPU cores",
    {"sampler": {"num_chains": 32, "num_steps": 30_000, "burn_in": 10_000, "thin": 20,
                 "step_size": PROPORTIONAL_FC_STEP, "dtype": "float64", "threads": 1},
     "model": {"scaling": "standard"},
     "posterior": {"sigma_w2": 1.0, "sigma_a2": 1.0, "noise_variance": 1.0},
     "data": {"d": 30, "n_test": 64, "hermite_coefficients": [0.0, 4.0]}},
    sweep={("model.activation", "model.width", "data.n_train", "posterior.noise_variance",
            "sampler.step_size"):
           [(activation, width, width, 1.0, PROPORTIONAL_FC_STEP)
            for activation in ("linear", "erf") for width in PROPORTIONAL_FC_WIDTHS]
           + [(activation, 20, 20, temperature, PROPORTIONAL_FC_STEP * min(1.0, temperature))
              for activation in ("linear", "erf") for temperature in PROPORTIONAL_FC_TEMPERATURES]},
)

# Deep fc in the proportional regime (Pacelli et al., Nat. Mach. Intell. 2023, experiments.compare.proportional_deep_comparison):
# L = 2 hidden layers of equal width N1 = N2 = P (α = 1), linear (nested form = BKR) and erf,
# same data and step as proportional_fc.
PRESETS["proportional_deep"] = Preset(
    "2-hidden-layer linear and erf networks (standard scaling) at alpha = P/N = 1, N = P = 10, 20, "
    "d = 30, on 4 He1: sampled test variance/error and weight-norm Q_l vs the nested form (BKR for "
    "linear) and the NNGP; 4 runs, about 30 min in all on 2 busy CPU cores",
    PRESETS["proportional_fc"].overrides,
    sweep={("model.activation", "model.widths", "data.n_train"):
           [(activation, [width, width], width) for activation in ("linear", "erf")
            for width in (10, 20)]},
)

# Local kernel renormalization of a shallow CNN (Aiudi et al., arXiv 2307.11807,
# experiments.compare.proportional_cnn_comparison): the CNN, the LCN (no weight sharing) and an fc net
# with the same readout fan-in (N = M·N_c = 64) on the digits 3 vs 8 (8x8 images, global
# standardization), P = 128 training images, N_c = 16 channels (the default), M = 4
# non-overlapping 4x4 patches, erf, standard scaling, σ² = T = 0.05. Chosen from the theory: here
# the CNN's local theory puts its test error (0.1547) below the best any global rescaling q·K of
# the CNN-GP kernel reaches (0.1603) and below the fc net's (0.1729); at T = 0.01 the gap is
# larger (0.111 against 0.1345) but the allowed step is 5x smaller (ULA diverged at
# step_size 5e-4 there) and |w|² decorrelates over ~3·10³ steps even at 2e-4.
# step_size 0.001: stable from the prior start; τ(squared_norm_a) ≈ 1.3·10³ steps. Sampled
# (docs/results.md): CNN 0.1430 ± 0.0006 and LCN 0.1433 ± 0.0006, both below the bound; the fc net
# 0.1085 ± 0.0009, far below its own Q̄ prediction (0.1729) on these data.
PRESETS["proportional_cnn"] = Preset(
    "CNN, LCN and fc (N = 64) erf networks on digits 3 vs 8 (P = 128, 16 channels, 4 patches of "
    "4x4, T = 0.05): sampled test error and readout Q_pq vs the local kernel renormalization, the "
    "global rescaling (and its best-case bound) and the NNGP; 3 runs of about 10 min on 2 busy CPU cores",
    {"sampler": {"num_chains": 16, "num_steps": 40_000, "burn_in": 10_000, "thin": 20,
                 "step_size": 0.001, "dtype": "float64", "threads": 1},
     "model": {"activation": "erf", "scaling": "standard", "width": 64},
     "posterior": {"sigma_w2": 1.0, "sigma_a2": 1.0, "noise_variance": 0.05},
     "data": {"source": "digits", "digits_classes": [3, 8], "digits_n_train": 128}},
    sweep={"model.architecture": ["cnn", "lcn", "fc"]},
)

# The three-layer teacher-student setting of Seroussi, Naveh & Ringel 2023 (`AdaptiveGPs` notebook) at CPU scale
# (experiments.compare.three_layer_comparison): an erf net with two hidden layers C1 = C2 = 16 on the
# single-index teacher He1 − 0.3 He3 (d = 8, n = 32), the notebook's σ_1² = σ_2² = 2, σ̃_a² = 1
# (a ~ N(0, 1/16)), σ² = T = 0.05. Sampled Σ along / across w* and the K1 spectrum (observable
# hidden_kernel, n² numbers a draw: thin 100, τ(|w|²) ≈ 800 steps at step_size 0.002) against
# the equations of state (both log-det signs) and the GP.
# There the two signs differ by far more than the GP shift's square (the second-order allowance
# of the sign test, tests/experiments/test_three_layer_comparison.py): Σ_perp·d 1.78 (s = −1)
# against 2.06 (s = +1), GP 2; Tr K1/n 1.032 against 1.147, GP 1.035.
PRESETS["adaptive_three_layer"] = Preset(
    "3-layer erf network (C1 = C2 = 16, d = 8, n = 32, sigma_w2 = [2, 2], T = 0.05) on He1 - 0.3 He3: "
    "sampled Sigma along/across the teacher and the K1 spectrum vs the adaptive-kernel equations of "
    "state (log-det sign -1 derived, +1 the notebook's) and the GP",
    {"sampler": {"num_chains": 16, "num_steps": 40_000, "burn_in": 10_000, "thin": 100,
                 "step_size": 0.002, "dtype": "float64", "threads": 1},
     "model": {"activation": "erf", "scaling": "standard", "widths": [16, 16]},
     "posterior": {"sigma_w2": [2.0, 2.0], "sigma_a2": 1.0, "noise_variance": 0.05},
     "data": {"d": 8, "n_train": 32, "n_test": 64, "hermite_coefficients": [0.0, 1.0, 0.0, -0.3]},
     "observables": {"hidden_kernel": True}},
)

# Classification at T = 0 (Geiger, Petrini & Wyart, Phys. Rep. 2021, experiments.reporting.phase_diagram): 2-hidden-layer relu nets on
# binary digits (odd/even, PCA 10, 100 training points) trained by adaptive-step gradient
# descent on the quadratic hinge, f = α[f̃(θ) − f̃(θ⁰)], over the (h, α̃ = √h α) plane; each
# chain is one net (16 initializations per point). The stop tolerance is scaled by α⁻² so
# that every point stops at the same unscaled loss ½ Σ max(0, Δ)² ≤ 1e-4.
PRESETS["phase_diagram"] = Preset(
    "2-hidden-layer relu nets on binary PCA-10 digits at T = 0 (gradient descent, quadratic "
    "hinge, 16 nets per point) over width h = 3..32 and alpha~ = sqrt(h) alpha = 0.1..100: "
    "ensemble vs single-net test error, jamming, NTK change, fluctuations; 24 runs, 3 min of CPU "
    "(10 min on a busy 2-core machine)",
    {"sampler": {"integrator": "gradient_descent", "burn_in": 0, "gd_weight_decay": False,
                 "num_chains": 16, "num_steps": 3000, "thin": 300, "checkpoint_every": 3000,
                 "threads": 1},
     "model": {"activation": "relu", "center_at_init": True},
     "posterior": {"likelihood": "quadratic_hinge"},
     "data": {"source": "digits", "digits_target": "odd_even", "pca_components": 10,
              "digits_n_train": 100},
     "observables": {"ntk_points": 16, "n_delta": True}},
    sweep={phase_diagram.SWEEP_KEY: phase_diagram.sweep_points()},
)

# The law of data separation (He & Su 2023; Shi, Pan & Dokmanić 2025, experiments.reporting.data_separation): 6 hidden tanh/relu/linear
# layers of width 24 on binary PCA-16 digits (200 training points), logistic likelihood,
# Langevin with a plain learning rate (0.002) for 2000 steps from the prior at T = 1e-4 and 1e-2.
PRESETS["data_separation"] = Preset(
    "deep fc classifier (6 hidden layers of 24) on binary PCA-16 digits, logistic likelihood, "
    "Langevin at T = 1e-4, 1e-2 for relu, tanh, linear: D_l per layer against depth beside the "
    "fitted spring-block profile; 6 runs, a few min",
    {"sampler": {"num_chains": 8, "num_steps": 2000, "burn_in": 0, "thin": 200,
                 "checkpoint_every": 2000, "step_size": 0.002, "preconditioner": "none",
                 "threads": 1},
     "model": {"widths": [24] * 6},
     "posterior": {"likelihood": "logistic"},
     "data": {"source": "digits", "digits_target": "odd_even", "pca_components": 16,
              "digits_n_train": 200},
     "observables": {"separation": True},
     "diagnostics": {"bias_check": "off"}},
    sweep={data_separation.SWEEP_KEY: data_separation.sweep_points()},
)

# Feature purification (Allen-Zhu & Li, experiments.reporting.sparse_coding_training): symmetric-ReLU two-layer
# net (width 64) on the sparse-coding model (d = 32, ‖z‖₀ = 6, 256 training points), T = 0
# gradient descent on the logistic loss at a fixed step (step multiplier capped at 1, halved
# on an increase; the adaptive growth fits the training set within ~100 steps), 16
# initializations; σ_w² = 4 puts the preactivation sd at init near 0.9, below the
# activation's threshold 1 for most inputs.
PRESETS["sparse_coding"] = Preset(
    "symmetric-ReLU two-layer net (m = 64) on the sparse-coding model x = Mz + xi (d = 32), "
    "T = 0 gradient descent on the logistic loss, 16 nets, noise sigma0 = 0.05, 0.2: test "
    "accuracy and good-neuron counts over training; 2 runs, about a minute",
    {"sampler": {"integrator": "gradient_descent", "burn_in": 0, "gd_weight_decay": False,
                 "gd_max_step_multiplier": 1.0, "step_size": 0.02,
                 "num_chains": 16, "num_steps": 1000, "thin": 20, "checkpoint_every": 1000,
                 "threads": 1},
     "model": {"width": 64, "activation": "symmetric_relu"},
     "posterior": {"likelihood": "logistic", "sigma_w2": 4.0},
     "data": {"source": "sparse_coding", "d": 32, "n_train": 256, "n_test": 1000},
     "observables": {"dictionary_alignment": True}},
    sweep={"data.noise_std": list(sparse_coding_training.NOISE_STDS)},
)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets are {sorted(PRESETS)} "
                         "(or give a path to a .toml config)")
    return PRESETS[name]
