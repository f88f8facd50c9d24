"""The grokking paper's cubic-teacher setting and its scale parameter β (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1), in
this repository's χ convention.

Paper (Rubin, Seroussi, Ringel, ICLR 2024, Sec. 3.1.1 / App. C): f(x) = Σ_i a_i
erf(w_i·x), w ~ N(0, σ_w²/d · I), a ~ N(0, σ_a²/N) with σ_a² = 8/N, measurement noise σ², target
y = He_1(w*·x) + ε He_3(w*·x): N = 700, n = 3000, d = 150, σ_w² = 0.5, ε = −0.3,
σ² ∈ {0.10, 0.15, 0.20, 0.25, 0.30}. Its σ_a² and σ² are *physical*: the readout variance is
σ_a²/N = 8/N² and σ² is the likelihood variance (check: u = n²σ_a²/(σ⁴dN) = 30.23 at σ² = 0.18,
the paper's u_c).

Repository convention (docs/conventions.md): a ~ N(0, σ̃_a²/(χN)), likelihood variance σ̃²/χ = T,
with `model.scaling = "mean_field"` ⇒ χ = N. Hence
    posterior.sigma_a2      = σ̃_a² = χ N · (σ_a²/N) = N σ_a²  (= 8 at β = 1),
    posterior.noise_variance = σ̃²  = χ σ²          = N σ²    (= 700 σ²  at β = 1),
and the run's physical noise (meta.json convention.noise_variance = T) is the paper's σ².

Scale parameter (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1): N → βN, d → √β d, σ_a² → σ_a²/√β, σ² → (α/β)σ², n → αn
(α² > β), which leaves u = n²σ_a²/(σ⁴dN) and r = nσ_a²/(σ²d) invariant [DERIVED]. With χ = N
(scaling as β, not as √β) the numerators transform as
σ̃_a² = N′σ_a²′ → √β σ̃_a² and σ̃² = N′σ²′ → α σ̃². The paper's runs use α = β, where σ² itself is
invariant: every β sweeps the same physical σ² values. Sizes are rounded to integers; σ_a²′ is
set from the exact 8/(700√β) and σ²′ from the exact (α/β)σ², so u and r move only by the
rounding of n, d, N (reported in each run's summary).
"""
from __future__ import annotations

import math

PAPER_WIDTH = 700
PAPER_NUM_SAMPLES = 3000
PAPER_INPUT_DIM = 150
PAPER_SIGMA_W2 = 0.5
PAPER_READOUT_NUMERATOR = 8.0  # N σ_a² at β = 1 (σ_a² = 8/N)
PAPER_EPSILON = -0.3
PAPER_NOISE_VARIANCES = (0.10, 0.15, 0.20, 0.25, 0.30)  # physical σ²
# The CPU version (grokking_cubic_small): N=88, d=53, n=375, ~2 min per point on 2 cores. At
# β = 1/16 (N=44, d=38, n=188) the q ≈ ±1 wells of GMFL-I are not seen at σ² = 0.1, where the
# finite-d theory predicts them: one neuron's kernel against the noise, κE[φ²]/N ∝ 1/√β, is 0.65
# there (0.46 at β = 1/8, 0.16 at β = 1), too large for the per-neuron theory.
SMALL_BETA = 1 / 8


def grokking_cubic_sizes(beta: float, alpha: float | None = None) -> dict:
    """Rounded (width, input_dim, n_train) and the physical σ_a², σ²-factor at scale (β, α=β)."""
    beta = float(beta)
    alpha = beta if alpha is None else float(alpha)
    if not (beta > 0 and alpha > 0 and math.isfinite(beta) and math.isfinite(alpha)):
        raise ValueError(f"beta and alpha must be positive and finite, got {beta!r}, {alpha!r}")
    return {
        "width": max(1, round(PAPER_WIDTH * beta)),
        "input_dim": max(2, round(PAPER_INPUT_DIM * math.sqrt(beta))),
        "n_train": max(1, round(PAPER_NUM_SAMPLES * alpha)),
        "readout_variance": PAPER_READOUT_NUMERATOR / (PAPER_WIDTH * math.sqrt(beta)),  # physical σ_a²
        "noise_factor": alpha / beta,  # σ² → (α/β) σ²
    }


def grokking_cubic_preset(beta: float, alpha: float | None = None,
                          noise_variances=PAPER_NOISE_VARIANCES) -> tuple[dict, dict]:
    """(config overrides, sweep) of the cubic-teacher setting at scale β in mean-field scaling.

    The sweep is over `posterior.noise_variance` = σ̃² = N′ (α/β) σ² for the paper's σ² values
    (rounded to 10 decimals so run directory names stay readable).
    """
    sizes = grokking_cubic_sizes(beta, alpha)
    width = sizes["width"]
    overrides = {
        "model": {"activation": "erf", "scaling": "mean_field", "width": width},
        "posterior": {"sigma_w2": PAPER_SIGMA_W2, "sigma_a2": width * sizes["readout_variance"]},
        "data": {"d": sizes["input_dim"], "n_train": sizes["n_train"],
                 "hermite_coefficients": [0.0, 1.0, 0.0, PAPER_EPSILON]},
    }
    sweep = {"posterior.noise_variance": [round(width * sizes["noise_factor"] * s2, 10)
                                          for s2 in noise_variances]}
    return overrides, sweep


def merged(*mappings: dict) -> dict:
    """Section-wise union of config override mappings (later ones win)."""
    out: dict = {}
    for mapping in mappings:
        for section, values in mapping.items():
            out.setdefault(section, {}).update(values)
    return out
