"""Config of the architectures: clear errors naming the key before compute, both views of the
posterior for deep nets, unchanged hashes of existing configs, and run directories written
before the architecture keys existed still report and resume."""
import json

import numpy as np
import pytest

from experiments import presets
from experiments.cli import main, start_run
from experiments.rundirs.rundir import CONFIG_FILE
from experiments.setup import architectures
from experiments.setup import config as cfg
from experiments.setup.build import resolve_physics
from tests.experiments.config_hash_helpers import hash_without_keys, preset_sets_any

NEW_KEYS = {"model.architecture", "observables.probe_points", "observables.preactivation_every",
            "observables.kernel_every", *architectures.owned_keys()}


@pytest.mark.parametrize("setting, message", [
    ("model.widths=[8, 0]", "model.widths"),
    ("model.widths=[8, 2.5]", "model.widths"),
    ("model.architecture='resnet'", "model.architecture"),
    ("posterior.sigma_w2=[1.0, 2.0]", "posterior.sigma_w2"),
    ("posterior.sigma_w2=[1.0, -2.0]", "posterior.sigma_w2"),
    ("posterior.sigma_b2=0.5", "posterior.sigma_b2"),
    ("training.weight_decay_b=0.5", "training.weight_decay_b"),
    ("observables.kernel_every=10", "observables.kernel_every"),
])
def test_bad_architecture_setting_is_named_and_nothing_is_written(tmp_path, capsys, setting,
                                                                  message):
    out_dir = tmp_path / "run"
    assert main(["run", "smoke", "--set", setting, "--out", str(out_dir)]) == 2
    assert message in capsys.readouterr().err
    assert not out_dir.exists()


def test_sigma_list_of_the_right_length_is_accepted_and_per_layer():
    config, _ = cfg.resolve([{"model": {"widths": [6, 5]},
                              "posterior": {"sigma_w2": [2.0, 0.5], "sigma_a2": 3.0}}])
    physics = resolve_physics(config, input_dim=4)
    assert physics.prior_variances == pytest.approx({"w": 2.0 / 4, "w2": 0.5 / 6, "a": 3.0 / 5})


def test_deep_training_view_needs_one_decay_per_hidden_layer():
    base = {"model": {"widths": [6, 5], "bias": True}}
    with pytest.raises(cfg.ConfigError, match="training.weight_decays"):
        cfg.resolve([base, {"training": {"temperature": 0.1, "weight_decay_w": 1.0,
                                         "weight_decay_a": 1.0, "weight_decay_b": 1.0}}])
    with pytest.raises(cfg.ConfigError, match="training.weight_decays"):
        cfg.resolve([base, {"training": {"temperature": 0.1, "weight_decays": [1.0],
                                         "weight_decay_a": 1.0, "weight_decay_b": 1.0}}])
    with pytest.raises(cfg.ConfigError, match="training.weight_decay_b"):
        cfg.resolve([base, {"training": {"temperature": 0.1, "weight_decays": [1.0, 2.0],
                                         "weight_decay_a": 1.0}}])


@pytest.mark.parametrize("scaling", ["standard", "mean_field"])
def test_training_and_bayesian_views_agree_for_a_deep_net_with_biases(scaling):
    model = {"widths": [6, 5], "bias": True, "scaling": scaling}
    bayes, _ = cfg.resolve([{"model": model,
                             "posterior": {"sigma_w2": [0.5, 1.5], "sigma_a2": 2.0,
                                           "sigma_b2": 0.2, "noise_variance": 0.3}}])
    p = resolve_physics(bayes, input_dim=4)
    decays = p.weight_decays
    training, _ = cfg.resolve([{"model": model, "training": {
        "temperature": p.temperature, "weight_decays": [decays["w"], decays["w2"]],
        "weight_decay_a": decays["a"], "weight_decay_b": decays["b1"]}}])
    q = resolve_physics(training, input_dim=4)
    assert q.view == "training" and p.view == "bayesian"
    chi = 5.0 if scaling == "mean_field" else 1.0
    assert p.chi == q.chi == chi and p.noise_variance == pytest.approx(0.3 / chi)
    assert q.sigma_w2 == pytest.approx([0.5, 1.5]) and q.sigma_b2 == pytest.approx(0.2)
    for field in ("sigma_a2", "noise_variance_tilde", "noise_variance", "temperature"):
        assert getattr(q, field) == pytest.approx(getattr(p, field), rel=1e-12), field
    assert q.prior_variances == pytest.approx(p.prior_variances, rel=1e-12)
    assert p.prior_variances["b1"] == p.prior_variances["b2"] == pytest.approx(0.2)
    assert p.prior_variances["a"] == pytest.approx(2.0 / (chi * 5))
    assert decays["w2"] == pytest.approx(p.temperature * 6 / 1.5)


@pytest.mark.parametrize("name", [n for n in sorted(presets.PRESETS) if not preset_sets_any(n, NEW_KEYS)])
def test_new_keys_at_their_defaults_leave_the_config_hash_unchanged(name):
    config, _ = cfg.resolve([presets.PRESETS[name].overrides])
    assert cfg.config_hash(config) == hash_without_keys(config, NEW_KEYS)
    alias, _ = cfg.resolve([presets.PRESETS[name].overrides,
                            {"model": {"architecture": "two_layer"}}])
    assert cfg.config_hash(alias) == cfg.config_hash(config)
    deep, _ = cfg.resolve([presets.PRESETS[name].overrides, {"model": {"widths": [8, 8]}}])
    assert cfg.config_hash(deep) != cfg.config_hash(config)


def _strip_new_keys(run_dir):
    """Rewrite config.toml as a run made before the architecture keys existed wrote it."""
    stored = cfg.load_toml(run_dir / CONFIG_FILE)
    old = {s: {k: v for k, v in values.items() if f"{s}.{k}" not in NEW_KEYS}
           for s, values in stored.items()}
    (run_dir / CONFIG_FILE).write_text(cfg.dumps_toml(old))


def test_a_run_directory_without_the_new_keys_reports_and_resumes(tmp_path):
    settings = ["sampler.num_steps=400", "sampler.burn_in=0", "sampler.checkpoint_every=200",
                "sampler.progress=false"]
    run_dir, config = start_run("smoke", [presets.get_preset("smoke").overrides], settings,
                                tmp_path / "old")
    _strip_new_keys(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert "sigma_b2" not in meta["convention"] and isinstance(meta["convention"]["sigma_w2"], float)
    assert main(["resume", str(run_dir)]) == 0  # samples from scratch under the old config
    assert main(["report", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "gp" in summary["theory"]
    assert np.isfinite(summary["theory"]["gp"]["relative_gap_mean"])
    assert main(["resume", str(run_dir)]) == 0  # the hash still matches: a no-op
