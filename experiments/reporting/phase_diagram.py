"""The phase diagram of deep learning in the plane of width h and rescaled output scale
α̃ = √h·α (M. Geiger, L. Petrini, M. Wyart, "Landscape and training regimes in deep
learning", Phys. Rep. 924 (2021), Figs. 4, 5 and 7D), at a CPU scale.

Setting (the `phase_diagram` preset): a fully connected net with two hidden layers of width
h (weights ~ N(0, σ_l²/fan_in), readout ~ N(0, σ_a²/h), standard scaling), output
f = α [f̃(θ) − f̃(θ⁰)] (`model.output_scale = α = α̃/√h`, `model.center_at_init = true`), trained
at T = 0 by full-batch gradient descent with an adaptive step (`sampler.integrator =
"gradient_descent"`, the loss alone: `sampler.gd_weight_decay = false`) on the quadratic hinge

    L̃ = α⁻² · ½ Σ_μ max(0, Δ_μ)²,   Δ_μ = 1 − y_μ f(x_μ),

Geiger, Petrini & Wyart's choice for their phase diagram (§4: "U corresponds to a quadratic hinge loss"), on
binary digits (odd vs even, PCA to 10 components). A chain stops when ½ Σ max(0, Δ)² ≤
`UNSCALED_LOSS_TOLERANCE`, i.e. at `sampler.gd_loss_tolerance = UNSCALED_LOSS_TOLERANCE/α²`,
so the criterion is the same for every α (quadratic-hinge descent approaches zero loss only
asymptotically, so an exact zero is not a usable stop).

Quantities of one point (from the run's summary.json; C chains = nets with distinct
initializations):
    N                 parameters, d·h + h·h + h (no biases)
    jammed_fraction   1 − fraction of chains that reached the tolerance (the jamming line:
                      below it, in their "black region", the loss does not reach zero)
    n_delta_over_n    N_Δ/N at the end, N_Δ = #{μ: Δ_μ > 0} (mean over chains)
    ntk_change        ‖Θ(t_end) − Θ(0)‖_F / ‖Θ(0)‖_F on the NTK probe points (mean over chains);
                      the lazy / feature-learning cross-over is where it equals 1
    ensemble_error    sign test error of f̄ = (1/C) Σ_c f_c at the end
    single_error      mean over chains of each net's sign test error (± SE over chains)
    fluctuation       mean over chains of ‖f_c − f̄‖ (RMS over test points); Geiger et al. §5:
                      ‖f_N − ⟨f_N⟩‖ ~ N^{-1/4} past jamming
Figures: Fig. 4 style map of the ensemble test error over (h, α̃) with the jamming points and
the contour ntk_change = 1 (dashed: 0.5 and 2), and a Fig. 5 style cut in h at each α̃ (test
error of single nets and of the ensemble; fluctuation against N with a N^{-1/4} reference line).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from experiments.setup.plotting import pyplot

WIDTHS = (3, 5, 8, 12, 20, 32)
ALPHA_TILDES = (0.1, 1.0, 10.0, 100.0)
UNSCALED_LOSS_TOLERANCE = 1e-4  # ½ Σ max(0, Δ)² at which a chain counts as fitted


def sweep_points(widths=WIDTHS, alpha_tildes=ALPHA_TILDES) -> list[tuple]:
    """((h, h), α = α̃/√h, gd_loss_tolerance = UNSCALED_LOSS_TOLERANCE/α²) per grid point,
    the values of the sweep key ("model.widths", "model.output_scale",
    "sampler.gd_loss_tolerance")."""
    points = []
    for alpha_tilde in alpha_tildes:
        for h in widths:
            alpha = float(f"{alpha_tilde / math.sqrt(h):.6g}")
            points.append(([h, h], alpha, float(f"{UNSCALED_LOSS_TOLERANCE / alpha**2:.6g}")))
    return points


SWEEP_KEY = ("model.widths", "model.output_scale", "sampler.gd_loss_tolerance")


def num_parameters(input_dim: int, hidden_widths: list[int]) -> int:
    """Weights of an fc net without biases: d·h_1 + Σ_l h_l h_{l+1} + h_L (readout)."""
    sizes = [int(input_dim), *map(int, hidden_widths), 1]
    return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))


def table_columns(summary: dict) -> dict:
    """The module docstring's columns of one point (empty without a gradient-descent run)."""
    run, gd = summary.get("run", {}), summary.get("gradient_descent")
    classification = summary.get("classification", {})
    if gd is None or "hidden_widths" not in run:
        return {}
    h = int(run["hidden_widths"][0])
    n = num_parameters(run["input_dim"], run["hidden_widths"])
    # α = α̃/√h was rounded to 6 digits in the sweep: 4 digits recover the grid's α̃
    row = {"h": h, "alpha_tilde": float(f"{run['output_scale'] * math.sqrt(h):.4g}"),
           "num_parameters": n, "n_train": run["n_train"],
           "jammed_fraction": 1.0 - gd["fraction_reached_tolerance"]}
    final = classification.get("final_values", {})
    if "n_delta" in final:
        row["n_delta_over_n"] = final["n_delta"]["last_draw_mean"] / n
    if "ntk_relative_change" in final:
        row["ntk_change"] = final["ntk_relative_change"]["last_draw_mean"]
        row["ntk_change_se"] = final["ntk_relative_change"]["last_draw_se"]
    ensemble = classification.get("ensemble")
    if ensemble and "sign_error" in ensemble["last_draw"]:
        last = ensemble["last_draw"]["sign_error"]
        row.update(ensemble_error=last["ensemble"], single_error=last["single_chain_mean"],
                   single_error_se=last["single_chain_se"],
                   fluctuation=ensemble["output_fluctuation"]["mean"],
                   fluctuation_se=ensemble["output_fluctuation"]["se"])
    return row


def _grid(table: list[dict], name: str, hs: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    grid = np.full((alphas.size, hs.size), np.nan)
    for row in table:
        if row.get(name) is not None:
            grid[np.searchsorted(alphas, row["alpha_tilde"]), np.searchsorted(hs, row["h"])] = \
                row[name]
    return grid


def draw(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Both figures (module docstring) from the sweep's table."""
    table = [row for row in table if "h" in row and "ensemble_error" in row]
    if not table:
        return
    draw_phase_map(preset, table, Path(figures_dir))
    draw_width_cut(preset, table, Path(figures_dir))


def draw_phase_map(preset: str, table: list[dict], figures_dir: Path) -> None:
    plt = pyplot()
    hs = np.unique([row["h"] for row in table]).astype(float)
    alphas = np.unique([row["alpha_tilde"] for row in table]).astype(float)
    error = _grid(table, "ensemble_error", hs, alphas)
    jammed = _grid(table, "jammed_fraction", hs, alphas)
    ntk = _grid(table, "ntk_change", hs, alphas)
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    mesh = ax.pcolormesh(_edges(hs), _edges(alphas), error, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="ensemble test error (sign)")
    hh, aa = np.meshgrid(hs, alphas)
    black = jammed >= 0.5
    ax.scatter(hh[black], aa[black], marker="s", s=120, c="k",
               label="jammed: loss > 0 in ≥ half the nets")
    if np.isfinite(ntk).sum() >= 4 and np.nanmin(ntk) < 1 < np.nanmax(ntk):
        log_ntk = np.log10(ntk)
        contours = ax.contour(hh, aa, log_ntk, levels=[np.log10(0.5), 0.0, np.log10(2.0)],
                              colors="w", linestyles=["--", "-", "--"])
        ax.clabel(contours, fmt={np.log10(0.5): "0.5", 0.0: "1", np.log10(2.0): "2"},
                  fontsize=7)
    ax.plot([], [], "w-", label="‖ΔΘ‖/‖Θ₀‖ = 1 (dashed 0.5, 2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(hs, [f"{h:g}" for h in hs], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_xlabel("width h")
    ax.set_ylabel("α̃ = √h α")
    ax.set_title("feature learning (small α̃) vs lazy (large α̃)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", facecolor="0.8")
    fig.tight_layout()
    fig.savefig(figures_dir / f"{preset}_phase_map.png", dpi=110)
    plt.close(fig)


def _edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges of log-spaced centers (geometric midpoints)."""
    logs = np.log(centers)
    if logs.size == 1:
        return np.exp(np.array([logs[0] - 0.5, logs[0] + 0.5]))
    mids = 0.5 * (logs[1:] + logs[:-1])
    return np.exp(np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]]))


def draw_width_cut(preset: str, table: list[dict], figures_dir: Path) -> None:
    plt = pyplot()
    alphas = sorted({row["alpha_tilde"] for row in table})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colors = plt.cm.plasma(np.linspace(0.0, 0.85, len(alphas)))
    for alpha, color in zip(alphas, colors):
        rows = sorted((r for r in table if r["alpha_tilde"] == alpha), key=lambda r: r["h"])
        h = np.array([r["h"] for r in rows], dtype=float)
        n = np.array([r["num_parameters"] for r in rows], dtype=float)
        axes[0].errorbar(h, [r["single_error"] for r in rows],
                         yerr=[r["single_error_se"] for r in rows], fmt="o-", color=color,
                         capsize=2, label=f"α̃ = {alpha:g}: single nets")
        axes[0].plot(h, [r["ensemble_error"] for r in rows], "s--", color=color,
                     label=f"α̃ = {alpha:g}: ensemble")
        jammed = [r["h"] for r in rows if r["jammed_fraction"] >= 0.5]
        if jammed:
            axes[0].axvline(max(jammed), color=color, lw=0.6, ls=":")
        fit = np.array([r["jammed_fraction"] < 0.5 for r in rows])
        axes[1].errorbar(n, [r["fluctuation"] for r in rows],
                         yerr=[r["fluctuation_se"] for r in rows], fmt="o-", color=color,
                         capsize=2, mfc="none", label=f"α̃ = {alpha:g}")
        if fit.any():
            axes[1].plot(n[fit], np.array([r["fluctuation"] for r in rows])[fit], "o",
                         color=color)
    all_n = np.array(sorted({r["num_parameters"] for r in table}), dtype=float)
    reference = np.nanmedian([r["fluctuation"] for r in table if r["num_parameters"] == all_n[-1]])
    axes[1].plot(all_n, reference * (all_n / all_n[-1]) ** -0.25, "k:", label="∝ N^(-1/4)")
    axes[0].set_xscale("log")
    widths = sorted({r["h"] for r in table})
    axes[0].set_xticks(widths, [str(h) for h in widths], minor=False)
    axes[0].set_xticks([], minor=True)
    axes[0].set_xlabel("width h (dotted: widest jammed point)")
    axes[0].set_ylabel("test error (sign)")
    axes[0].legend(fontsize=6)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("number of parameters N (filled: past jamming)")
    axes[1].set_ylabel("‖f − ⟨f⟩‖ (RMS over test points)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figures_dir / f"{preset}_width_cut.png", dpi=110)
    plt.close(fig)
