"""The law of data separation across the layers of a deep classifier, beside the spring-block
model (H. He, W. Su, "A law of data separation in deep learning", PNAS 120,
e2221704120 (2023); C. Shi, L. Pan, I. Dokmanić, "Spring-block theory of feature
learning in deep neural networks", Phys. Rev. Lett. 134, 257301 (2025)).

Setting (the `data_separation` preset): a fully connected net with L hidden layers of equal
width on binary digits (odd vs even, PCA), logistic likelihood, sampled by Langevin dynamics
with a plain learning rate (`sampler.preconditioner = "none"`: dθ = −η∇U + √(2ηT) ξ, U = Σ_μ
log(1 + e^{−y_μ f_μ}) + Σ_l γ_l/2 |θ_l|², prior variance T/γ_l = σ_l²/fan_in) from the prior,
for a fixed training time, at a few temperatures T (the noise of training) and activations
(the nonlinearity). Per layer ℓ = 0 (inputs) … L the separation fuzziness
D_ℓ = Tr(Σ_w Σ_b⁺) of φ(h^ℓ) on the training set (`observables.separation`,
langevin.separation) at the last draw, averaged over chains (± SE over chains).

Spring-block comparison (theory.spring_block): the elongation of spring ℓ is the separation
gained by layer ℓ, d_ℓ = log D_{ℓ−1} − log D_ℓ, ℓ = 1 … L. The noise-dominated profile of the
model (limit 3 of theory.spring_block), k d_ℓ = F − (L + 1 − ℓ)(μ₊ − μ₋)/2, is affine in ℓ;
with k = 1 its two parameters, the load F and the friction asymmetry Δμ = (μ₊ − μ₋)/2, are
FITTED to the measured d_ℓ by least squares (the model fixes only the shape, not the units),
and `theory.spring_block.large_noise_elongations` gives the predicted profile, drawn as
log D_0 − Σ_{j ≤ ℓ} d_j. The fitted Δμ is the model's reading of the nonlinearity (0 for a
linear net: equiseparation), and `elongation_slope` / `profile_shape` (tolerance
`SHAPE_TOLERANCE`) classify the measured profile as concave, linear or convex.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.setup.plotting import pyplot

from theory import spring_block

ACTIVATIONS = ("relu", "tanh", "linear")
TEMPERATURES = (1e-4, 1e-2)
SWEEP_KEY = ("model.activation", "posterior.noise_variance")
SHAPE_TOLERANCE = 0.1  # |slope of d_ℓ| / mean d_ℓ below which the profile counts as linear


def sweep_points() -> list[tuple]:
    return [(activation, temperature) for activation in ACTIVATIONS
            for temperature in TEMPERATURES]


def fit_spring_block(log_d: np.ndarray) -> dict:
    """Least-squares fit of the noise-dominated spring-block profile (k = 1) to the measured
    elongations d_ℓ = log D_{ℓ−1} − log D_ℓ; log_d: (L + 1,) = log D_0 … log D_L."""
    log_d = np.asarray(log_d, dtype=np.float64)
    elongations = -np.diff(log_d)
    num_layers = elongations.size
    layers = np.arange(1, num_layers + 1, dtype=np.float64)
    # d_ℓ = F − (L + 1 − ℓ) Δμ: linear in (F, Δμ)
    design = np.stack([np.ones(num_layers), -(num_layers + 1 - layers)], axis=1)
    (load, asymmetry), *_ = np.linalg.lstsq(design, elongations, rcond=None)
    params = spring_block.SpringBlockParameters(
        num_layers=num_layers, load=float(load), friction_forward=max(float(asymmetry), 0.0) * 2,
        friction_backward=max(-float(asymmetry), 0.0) * 2)
    predicted = spring_block.large_noise_elongations(params)
    return {"load": float(load), "friction_asymmetry": float(asymmetry),
            "predicted_elongations": predicted.tolist(),
            "predicted_log_separation": (log_d[0] - np.cumsum(np.r_[0.0, predicted])).tolist(),
            "measured_slope": spring_block.elongation_slope(elongations),
            "measured_shape": spring_block.profile_shape(elongations, SHAPE_TOLERANCE)}


def table_columns(summary: dict) -> dict:
    """activation, T, D_L/D_0, the mean gain per layer log(D_0/D_L)/L, the fitted spring-block
    load and friction asymmetry, the profile shape; D_ℓ (± SE) as a list for the figure."""
    final = summary.get("classification", {}).get("final_values", {})
    depths = sorted(int(name[11:-1]) for name in final if name.startswith("separation["))
    if not depths:
        return {}
    values = np.array([final[f"separation[{d}]"]["last_draw_mean"] for d in depths])
    errors = np.array([final[f"separation[{d}]"]["last_draw_se"] for d in depths])
    log_d = np.log(values)
    fit = fit_spring_block(log_d)
    num_layers = len(depths) - 1
    ensemble = summary.get("classification", {}).get("ensemble", {}).get("last_draw", {})
    return {"activation": summary["run"].get("activation"),
            "T": summary["convention"]["temperature"],
            "D_ratio_last_first": float(values[-1] / values[0]),
            "gain_per_layer": float((log_d[0] - log_d[-1]) / num_layers),
            "spring_load": fit["load"], "spring_friction_asymmetry": fit["friction_asymmetry"],
            "profile_slope": fit["measured_slope"], "profile_shape": fit["measured_shape"],
            "test_error": ensemble.get("sign_error", {}).get("single_chain_mean"),
            "separation": values.tolist(), "separation_se": errors.tolist(),
            "spring_log_separation": fit["predicted_log_separation"]}


def draw(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """log D_ℓ against ℓ, one panel per activation, one colour per T, measured (± SE over
    chains, as error bars of log D) with the fitted spring-block profile (dashed)."""
    plt = pyplot()
    table = [row for row in table if "separation" in row]
    if not table:
        return
    activations = list(dict.fromkeys(row["activation"] for row in table))
    temperatures = sorted({row["T"] for row in table})
    colors = dict(zip(temperatures, plt.cm.coolwarm(np.linspace(0.0, 1.0, len(temperatures)))))
    fig, axes = plt.subplots(1, len(activations), figsize=(3.6 * len(activations), 3.6),
                             squeeze=False, sharey=True)
    for ax, activation in zip(axes[0], activations):
        for row in (r for r in table if r["activation"] == activation):
            values = np.array(row["separation"])
            errors = np.array(row["separation_se"]) / values  # SE of log D (delta method)
            depth = np.arange(values.size)
            ax.errorbar(depth, values, yerr=values * errors, fmt="o-", color=colors[row["T"]],
                        capsize=2, label=f"T = {row['T']:g} ({row['profile_shape']})")
            ax.plot(depth, np.exp(row["spring_log_separation"]), "--", color=colors[row["T"]],
                    lw=0.9)
        ax.set_yscale("log")
        ax.set_title(activation, fontsize=9)
        ax.set_xlabel("layer ℓ (0: inputs)")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("D_ℓ = Tr(Σ_w Σ_b⁺)  (dashed: spring-block fit)")
    fig.tight_layout()
    fig.savefig(Path(figures_dir) / f"{preset}_separation_vs_depth.png", dpi=110)
    plt.close(fig)

