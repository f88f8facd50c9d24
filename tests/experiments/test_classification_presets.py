"""The classification presets (phase_diagram, data_separation, sparse_coding): every sweep
point validates; a two-point, smoke-size version of each runs through the CLI and its sweep
table and figure are written from the run directories; the full presets (slow) reproduce
the qualitative claims recorded in docs/results.md."""
import json
import math

import numpy as np
import pytest
import torch

from experiments import presets
from experiments.cli import main
from experiments.presets import Preset
from experiments.reporting import data_separation, phase_diagram
from experiments.rundirs import rundir
from experiments.setup import config as cfg
from langevin.separation import separation_fuzziness

NAMES = ("phase_diagram", "data_separation", "sparse_coding")
SMOKE = {"phase_diagram": ["sampler.num_chains=3", "sampler.num_steps=40", "sampler.thin=20",
                           "sampler.checkpoint_every=40", "observables.ntk_points=4"],
         "data_separation": ["sampler.num_chains=2", "sampler.num_steps=40", "sampler.thin=10",
                             "sampler.checkpoint_every=40", "model.widths=[6, 6, 6]"],
         "sparse_coding": ["sampler.num_chains=2", "sampler.num_steps=40", "sampler.thin=10",
                           "sampler.checkpoint_every=40", "model.width=8", "data.d=8",
                           "data.n_train=32", "data.n_test=64"]}


@pytest.mark.parametrize("name", NAMES)
def test_every_point_of_the_preset_validates(name):
    preset = presets.get_preset(name)
    (key, values), = preset.sweep.items()
    from experiments.sweep import assignments
    for value in values:
        config, _ = cfg.resolve([preset.overrides], assignments(key, value))
        assert config["posterior"]["likelihood"] in ("quadratic_hinge", "logistic")


def test_phase_diagram_grid_is_the_h_alpha_tilde_plane():
    points = phase_diagram.sweep_points()
    assert len(points) == len(phase_diagram.WIDTHS) * len(phase_diagram.ALPHA_TILDES)
    for widths, alpha, tolerance in points:
        h = widths[0]
        alpha_tilde = alpha * math.sqrt(h)
        assert min(abs(alpha_tilde / a - 1) for a in phase_diagram.ALPHA_TILDES) < 1e-5
        # the same unscaled loss ½ Σ max(0, Δ)² at every α
        assert tolerance * alpha**2 == pytest.approx(phase_diagram.UNSCALED_LOSS_TOLERANCE,
                                                     rel=1e-5)
    assert phase_diagram.num_parameters(10, [3, 3]) == 10 * 3 + 3 * 3 + 3


def test_spring_block_fit_recovers_an_affine_profile():
    # d_ℓ = F − (L + 1 − ℓ) Δμ with F = 0.5, Δμ = 0.1, L = 4: log D_ℓ = −Σ_{j ≤ ℓ} d_j
    layers = np.arange(1, 5)
    elongations = 0.5 - (5 - layers) * 0.1
    fit = data_separation.fit_spring_block(np.r_[0.0, -np.cumsum(elongations)])
    assert fit["load"] == pytest.approx(0.5) and fit["friction_asymmetry"] == pytest.approx(0.1)
    assert fit["predicted_elongations"] == pytest.approx(elongations.tolist())
    assert fit["measured_shape"] == "concave"


def _run_two_points(name, tmp_path, monkeypatch):
    preset = presets.PRESETS[name]
    (key, values), = preset.sweep.items()
    reduced = Preset(preset.description, preset.overrides, sweep={key: values[:2]})
    monkeypatch.setitem(presets.PRESETS, name, reduced)
    out = tmp_path / name
    assert main(["run", name, "--out", str(out), *sum((["--set", s] for s in SMOKE[name]), [])]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return out, summary["table"]


def test_phase_diagram_smoke_sweep_through_the_cli(tmp_path, monkeypatch):
    out, table = _run_two_points("phase_diagram", tmp_path, monkeypatch)
    assert [row["h"] for row in table] == [3, 5]
    for row in table:
        assert row["alpha_tilde"] == phase_diagram.ALPHA_TILDES[0]
        assert row["num_parameters"] == phase_diagram.num_parameters(10, [row["h"]] * 2)
        assert row["n_train"] == 100 and 0.0 <= row["jammed_fraction"] <= 1.0
        assert row["ntk_change"] > 0 and row["fluctuation"] > 0
        assert 0.0 <= row["ensemble_error"] <= 1.0
    for figure in ("phase_diagram_phase_map.png", "phase_diagram_width_cut.png"):
        assert (out / "figures" / figure).stat().st_size > 0


def test_data_separation_smoke_sweep_through_the_cli(tmp_path, monkeypatch):
    out, table = _run_two_points("data_separation", tmp_path, monkeypatch)
    run_dirs = sorted(p for p in out.iterdir() if p.name.startswith("activation="))
    data = rundir.read_run_data(run_dirs[0])  # the one data set of the sweep
    d0 = float(separation_fuzziness(torch.as_tensor(data.x_train, dtype=torch.float64)[None],
                                    torch.as_tensor(data.y_train))[0])
    for row in table:
        assert row["activation"] == "relu" and len(row["separation"]) == 4  # inputs + 3 layers
        # layer 0 is the input data's separation, the same for every chain and run
        assert row["separation"][0] == pytest.approx(d0, rel=1e-4)
        assert len(row["spring_log_separation"]) == 4
        assert row["profile_shape"] in ("concave", "linear", "convex")
    assert sorted(row["T"] for row in table) == [1e-4, 1e-2]
    assert (out / "figures" / "data_separation_separation_vs_depth.png").stat().st_size > 0


def test_sparse_coding_smoke_sweep_through_the_cli(tmp_path, monkeypatch):
    out, table = _run_two_points("sparse_coding", tmp_path, monkeypatch)
    for row in table:
        assert 0.0 <= row["test_error"] <= 1.0
        assert 0.0 <= row["good_neurons"] <= 8 and 0.0 <= row["atoms_with_good_neuron"] <= 8
        assert row["error_curve"]["step"] == [10, 20, 30, 40]
        assert len(row["good_neuron_curve"]["mean"]) == 4
    assert (out / "figures" / "sparse_coding_over_training.png").stat().st_size > 0


@pytest.mark.slow
def test_full_phase_diagram_jams_below_and_fits_above_and_its_ntk_change_falls_with_alpha(
        tmp_path):
    out = tmp_path / "phase_diagram"
    assert main(["run", "phase_diagram", "--out", str(out)]) == 0
    table = json.loads((out / "summary.json").read_text())["table"]
    by_point = {(row["h"], row["alpha_tilde"]): row for row in table}
    for alpha in phase_diagram.ALPHA_TILDES:
        assert by_point[(3, alpha)]["jammed_fraction"] == 1.0          # N = 42 < P = 100
        assert by_point[(32, alpha)]["jammed_fraction"] <= 0.1         # N = 1376 ≫ P
    for h in phase_diagram.WIDTHS:
        changes = [by_point[(h, a)]["ntk_change"] for a in phase_diagram.ALPHA_TILDES]
        assert all(a > b for a, b in zip(changes, changes[1:]))       # lazier at larger α̃
