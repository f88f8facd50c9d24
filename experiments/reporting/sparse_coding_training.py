"""Feature purification on the sparse-coding model over training (Z. Allen-Zhu, Y. Li,
"Feature purification: how adversarial training performs robust deep learning",
arXiv:2005.10190), the table and figure of the
`sparse_coding` preset.

Setting: data x = Mz + ξ, y = sign⟨w*, z⟩ (experiments.setup.sparse_coding_data: M orthonormal,
‖z‖₀ = round(√d), ξ ~ N(0, σ₀² I), σ₀ = `data.noise_std`, the swept key); a two-layer net
f(x) = Σ_i a_i φ(w_i·x) with the symmetric ReLU φ(h) = ReLU(h − 1) − ReLU(−h − 1)
(langevin.activations; Allen-Zhu & Li's threshold b_i is fixed to 1 here and the readout a_i is
trained, where they fix a_i = 1 and adapt b_i); trained at T = 0 by full-batch gradient
descent with an adaptive step on the logistic loss Σ_μ log(1 + e^{−y_μ f_μ}) alone
(`sampler.gd_weight_decay = false`), C chains = C independent initializations
w_i ~ N(0, σ_w²/d I).

Over training (from summary.json `classification`): the sign test error of single nets
(mean over chains) and of the ensemble f̄ at every recorded draw; the mean over chains of the
number of surely good neurons (`good_neurons`: normalized overlap with one atom M_j above
(c₁ + c₂) log d / d, with every other below (c₁ − c₂) log d / d, and the sign of w*_j) and of
atoms with at least one surely good neuron (`atoms_with_good_neuron`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.setup.plotting import pyplot

NOISE_STDS = (0.05, 0.2)


def table_columns(summary: dict) -> dict:
    """Final test errors (single nets ± SE, ensemble), final good-neuron and good-atom counts,
    and their curves over training (lists, for the figure)."""
    classification = summary.get("classification", {})
    ensemble = classification.get("ensemble")
    curves = classification.get("observables_over_training", {})
    if not ensemble or "good_neurons" not in curves:
        return {}
    last = ensemble["last_draw"]["sign_error"]
    final = classification["final_values"]
    row = {"test_error": last["single_chain_mean"], "test_error_se": last["single_chain_se"],
           "ensemble_test_error": last["ensemble"],
           "good_neurons": final["good_neurons"]["last_draw_mean"],
           "good_neurons_se": final["good_neurons"]["last_draw_se"],
           "atoms_with_good_neuron": final["atoms_with_good_neuron"]["last_draw_mean"],
           "num_atoms": summary["run"].get("input_dim"),
           "error_curve": ensemble["over_training"],
           "good_neuron_curve": curves["good_neurons"],
           "good_atom_curve": curves["atoms_with_good_neuron"]}
    return row


def draw(preset: str, key: str, table: list[dict], figures_dir: Path) -> None:
    """Test accuracy (single nets, ensemble) and good-neuron / good-atom counts against the
    training step, one colour per swept value."""
    plt = pyplot()
    table = [row for row in table if "error_curve" in row]
    if not table:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = plt.cm.viridis(np.linspace(0.0, 0.8, len(table)))
    for row, color in zip(table, colors):
        label = f"{key.split('.')[-1]} = {row[key]}"
        errors = row["error_curve"]
        axes[0].plot(errors["step"], 1.0 - np.asarray(errors["single_chain_mean"]), "-",
                     color=color, label=f"{label}: single nets")
        axes[0].plot(errors["step"], 1.0 - np.asarray(errors["ensemble"]), "--", color=color,
                     label=f"{label}: ensemble")
        neurons, atoms = row["good_neuron_curve"], row["good_atom_curve"]
        axes[1].plot(neurons["step"], neurons["mean"], "-", color=color,
                     label=f"{label}: good neurons")
        axes[1].plot(atoms["step"], atoms["mean"], ":", color=color,
                     label=f"{label}: atoms with a good neuron")
    axes[0].set_xlabel("gradient-descent step")
    axes[0].set_ylabel("test accuracy (sign)")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("gradient-descent step")
    axes[1].set_ylabel("count (mean over nets)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(figures_dir) / f"{preset}_over_training.png", dpi=110)
    plt.close(fig)
