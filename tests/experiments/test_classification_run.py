"""Classification observables in runs: config errors naming the key, unchanged hashes at the
defaults, the ensemble predictor's errors on a hand case, the input separation's basis
invariance through the run path, and tiny CLI runs with every observable on (sparse-coding
data; binary digits with PCA to 10 components) that report."""
import json

import numpy as np
import pytest
import torch

from experiments import presets
from experiments.cli import main
from experiments.reporting.classification_report import ensemble_errors
from experiments.setup import classification_keys
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data
from langevin.observables import evaluate
from langevin.run import initial_constants
from tests.experiments.config_hash_helpers import hash_without_keys, preset_sets_any

NEW_KEYS = {*(f"observables.{k}" for k in classification_keys.OBSERVABLE_KEYS),
            *(f"data.{k}" for k in classification_keys.SPARSE_CODING_KEYS)}
TINY = ["sampler.num_chains=3", "sampler.num_steps=200", "sampler.burn_in=0",
        "sampler.thin=10", "sampler.checkpoint_every=100", "sampler.progress=false",
        "diagnostics.bias_check=off", "model.width=6"]


@pytest.mark.parametrize("overrides, key", [
    ({"observables": {"ntk_every": 10}}, "observables.ntk_every"),
    ({"observables": {"dictionary_alignment": True}}, "observables.dictionary_alignment"),
    ({"observables": {"good_c1": 2.0}}, "observables.good_c1"),
    ({"data": {"source": "sparse_coding"},
      "observables": {"dictionary_alignment": True, "good_c2": 3.0}}, "observables.good_c2"),
    ({"data": {"noise_std": 0.5}}, "data.noise_std"),
    ({"data": {"source": "sparse_coding", "d": 4, "sparsity": 5}}, "data.sparsity"),
    ({"data": {"source": "sparse_coding", "d": 1}}, "data.d"),
    ({"model": {"architecture": "cnn", "input_shape": [4, 4], "patch_size": [2, 2],
                "stride": [2, 2]},
      "observables": {"separation": True}}, "observables.separation"),
])
def test_bad_classification_setting_names_the_key(overrides, key):
    with pytest.raises(cfg.ConfigError, match=key.replace(".", r"\.")):
        cfg.resolve([overrides])


def test_margin_and_separation_observables_refuse_regression_labels_before_writing(tmp_path,
                                                                                  capsys):
    for setting, key in (("observables.n_delta=true", "observables.n_delta"),
                         ("observables.separation=true", "observables.separation")):
        out = tmp_path / key
        assert main(["run", "smoke", "--set", setting, "--out", str(out)]) == 2
        assert key in capsys.readouterr().err
        assert not out.exists()


# presets that set the classification keys themselves (phase_diagram, ...) are new
@pytest.mark.parametrize("name", sorted(n for n in presets.PRESETS if not preset_sets_any(n, NEW_KEYS)))
def test_new_keys_at_their_defaults_leave_the_config_hash_unchanged(name):
    config, _ = cfg.resolve([presets.PRESETS[name].overrides])
    assert cfg.config_hash(config) == hash_without_keys(config, NEW_KEYS)
    on, _ = cfg.resolve([presets.PRESETS[name].overrides, {"observables": {"n_delta": True}}])
    assert cfg.config_hash(on) != cfg.config_hash(config)


def test_ensemble_errors_on_a_hand_case():
    y = np.array([1.0, -1.0, 1.0, -1.0])
    # 2 chains x 2 draws x 4 test points
    f = np.array([[[1.0, -1.0, -1.0, -1.0], [2.0, 1.0, 1.0, -1.0]],
                  [[1.0, 1.0, 1.0, -1.0], [0.0, -1.0, 1.0, -1.0]]])
    out = ensemble_errors(f, y, steps=np.array([10, 20]))
    assert out["task"] == "classification" and out["last_draw"]["step"] == 20
    # draw 1: chain errors 1/4 and 1/4 (f = 0 counts as an error); mean f = (1, 0, 1, −1):
    # 1/4; draw 0: chains 1/4, 1/4, mean (1, 0, 0, −1): 2/4
    last = out["last_draw"]["sign_error"]
    assert last["ensemble"] == 0.25 and last["single_chain_mean"] == 0.25
    assert last["single_chain_se"] == 0.0
    average = out["draw_average"]["sign_error"]
    assert average["ensemble"] == pytest.approx(0.375)
    assert average["single_chain_mean"] == pytest.approx(0.25)
    # MSE at the last draw: chain 0 (1 + 4 + 0 + 0)/4 = 1.25, chain 1 (1 + 0 + 0 + 0)/4 =
    # 0.25; mean f = (1, 0, 1, −1): (0 + 1 + 0 + 0)/4 = 0.25; SE = sd/√2 = 0.5
    mse = out["last_draw"]["mse"]
    assert mse["ensemble"] == pytest.approx(0.25)
    assert mse["single_chain_mean"] == pytest.approx(0.75)
    assert mse["single_chain_se"] == pytest.approx(0.5)
    regression = ensemble_errors(f, np.array([0.5, -1.0, 1.0, -1.0]))
    assert regression["task"] == "regression" and set(regression["last_draw"]) == {"mse"}


def test_input_separation_is_basis_invariant_through_the_run_path(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((24, 5))
    y = np.where(x[:, 0] + 0.5 * rng.standard_normal(24) > 0, 1.0, -1.0)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    values = []
    for name, inputs in (("plain", x), ("rotated", x @ rotation)):
        path = tmp_path / f"{name}.npz"
        np.savez(path, X=inputs, y=y, X_test=inputs[:4], y_test=y[:4])
        config, _ = cfg.resolve([{"data": {"source": "npz", "path": str(path)},
                                  "model": {"widths": [6, 4]},
                                  "sampler": {"num_chains": 2, "dtype": "float64"},
                                  "observables": {"separation": True}}])
        setup = build_run(config, make_data(config))
        state = setup.integrator.init(setup.initial_theta)
        values.append(evaluate(setup.observables["separation"], state)["separation"])
    assert values[0].shape == (2, 3)
    torch.testing.assert_close(values[1][:, 0], values[0][:, 0], rtol=1e-12, atol=0)


def _summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_tiny_sparse_coding_run_with_every_observable_reports(tmp_path, capsys):
    run_dir = tmp_path / "sparse"
    settings = [*TINY, "data.source='sparse_coding'", "data.d=9", "data.n_train=40",
                "data.n_test=20", "observables.ntk_points=4", "observables.ntk_every=20",
                "observables.n_delta=true", "observables.separation=true",
                "observables.dictionary_alignment=true", "observables.dictionary_every=50"]
    args = ["run", "smoke", "--out", str(run_dir)]
    for setting in settings:
        args += ["--set", setting]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Classification (ensemble of chains; final values)" in printed
    summary = _summary(run_dir)["classification"]
    assert summary["ensemble"]["task"] == "classification"
    assert summary["ensemble"]["num_chains"] == 3 and summary["ensemble"]["test_points"] == 20
    rows = summary["final_values"]
    assert {"n_delta", "ntk_relative_change", "good_neurons", "atoms_with_good_neuron",
            "separation[0]", "separation[1]"} <= set(rows)
    assert 0 <= rows["n_delta"]["last_draw_mean"] <= 40
    assert rows["ntk_relative_change"]["last_draw_mean"] > 0
    data = np.load(run_dir / "data.npz")
    np.testing.assert_allclose(data["dictionary"].T @ data["dictionary"], np.eye(9), atol=1e-12)
    assert set(np.unique(data["y_train"])) == {-1.0, 1.0}
    from langevin.store import SampleStore

    store = SampleStore(run_dir / "samples.zarr", 3)
    alignment = store.open("every_50").load()
    assert alignment["dictionary_overlap"].shape == (3, 4, 6, 9)
    np.testing.assert_allclose((alignment["dictionary_overlap"].values ** 2).sum(-1), 1.0,
                               rtol=1e-5)
    assert store.open("every_20").load()["ntk"].shape == (3, 10, 4, 4)
    assert main(["resume", str(run_dir)]) == 0  # complete: the hash matches, a no-op


def test_binary_digits_with_pca_to_10_components_has_pm1_labels_and_runs(tmp_path):
    run_dir = tmp_path / "digits"
    settings = [*TINY, "data.source='digits'", "data.pca_components=10",
                "data.digits_classes=[3, 8]", "data.digits_n_train=60", "model.widths=[6, 5]",
                "observables.ntk_points=3", "observables.n_delta=true",
                "observables.separation=true"]
    args = ["run", "smoke", "--out", str(run_dir)]
    for setting in settings:
        args += ["--set", setting]
    assert main(args) == 0
    data = np.load(run_dir / "data.npz")
    assert data["x_train"].shape == (60, 10)
    assert set(np.unique(data["y_train"])) == {-1.0, 1.0}
    rows = _summary(run_dir)["classification"]["final_values"]
    assert {"separation[0]", "separation[1]", "separation[2]", "n_delta",
            "ntk_relative_change"} <= set(rows)
    assert 0 <= rows["n_delta"]["last_draw_mean"] <= 60


def test_ntk_with_replica_exchange_keeps_its_initial_kernel_per_chain():
    config, _ = cfg.resolve([{"sampler": {"tempering": "noise_variance", "num_chains": 4,
                                          "ladder": [0.1, 0.2], "dtype": "float64"},
                              "model": {"width": 5}, "data": {"d": 3, "n_train": 8, "n_test": 6},
                              "observables": {"ntk_points": 3}}])
    setup = build_run(config, make_data(config))
    state = setup.integrator.init(setup.initial_theta)
    constants = initial_constants(setup.observables, state)
    assert set(constants) == {"ntk"}
    values = evaluate(setup.observables["ntk"], state, constants["ntk"])
    assert values["ntk"].shape == (4, 3, 3)
    torch.testing.assert_close(values["ntk_relative_change"], torch.zeros(4, dtype=torch.float64),
                               rtol=0, atol=0)


def test_preflight_counts_the_buffers_of_the_classification_observables():
    from experiments.setup import preflight

    base = {"data": {"source": "sparse_coding", "d": 9}, "model": {"width": 8},
            "sampler": {"num_chains": 2, "num_steps": 1000, "thin": 10, "checkpoint_every": 500}}
    off, _ = cfg.resolve([base])
    on, _ = cfg.resolve([base, {"observables": {"ntk_points": 4, "ntk_every": 50,
                                                "n_delta": True, "separation": True,
                                                "dictionary_alignment": True}}])
    data = make_data(off)
    # per chain: 51 draws at thin (n_delta 1 + separation 2), 11 NTK draws of 4² + 1,
    # 51 dictionary draws of 8·9 + 8 + 2·9 + 1
    expected = 2 * (51 * 3 + 11 * 17 + 51 * 99)
    assert preflight.buffer_elements(on, data) - preflight.buffer_elements(off, data) == expected


def test_output_fluctuation_and_curves_on_a_hand_case():
    y = np.array([1.0, -1.0])
    # 2 chains x 1 draw x 2 points: f̄ = (1, 0); chain deviations ±(1, 1): RMS 1 for both
    f = np.array([[[2.0, 1.0]], [[0.0, -1.0]]])
    out = ensemble_errors(f, y, steps=np.array([7]))
    assert out["output_fluctuation"]["mean"] == pytest.approx(1.0)
    assert out["output_fluctuation"]["se"] == pytest.approx(0.0)
    # sign errors: chain 0 (0 + 1)/2, chain 1 (1 + 0)/2 → mean 1/2; ensemble sign(1, 0): 1/2
    curves = out["over_training"]
    assert curves["step"] == [7] and curves["error_kind"] == "sign_error"
    assert curves["single_chain_mean"] == [0.5] and curves["ensemble"] == [0.5]
