"""Invalid configs and data give a clear error naming the key and the value, before any
compute starts (no run directory is created)."""
import math

import numpy as np
import pytest

from experiments.cli import main
from experiments.setup import config as cfg


@pytest.mark.parametrize("setting, message", [
    ("training.temperature=-1", "training.temperature"),
    ("model.activation=sigmoid", "model.activation"),
    ("model.width=0", "model.width"),
    ("sampler.num_chains=-3", "sampler.num_chains"),
    ("sampler.step_size=0", "sampler.step_size"),
    ("sampler.dtype=float16", "sampler.dtype"),
    ("sampler.device=tpu", "sampler.device"),
    ("posterior.noise_variance=-0.1", "posterior.noise_variance"),
    ("model.widht=3", "model.widht"),
    ("modle.width=3", "modle"),
    ("sampler.num_chains=2.5", "sampler.num_chains"),
    ("sampler.progress=3", "sampler.progress"),
    ("data.hermite_coefficients=[1, nan]", "data.hermite_coefficients"),
])
def test_bad_setting_is_named_and_nothing_is_written(tmp_path, capsys, setting, message):
    out_dir = tmp_path / "run"
    assert main(["run", "smoke", "--set", setting, "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not out_dir.exists()


def test_unknown_key_in_toml_file(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[sampler]\nnum_chains = 4\nnum_chainz = 5\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "sampler.num_chainz" in capsys.readouterr().err


def test_training_view_needs_all_keys_and_excludes_posterior_keys():
    with pytest.raises(cfg.ConfigError, match="training.weight_decay_a"):
        cfg.resolve([{"training": {"temperature": 0.1, "weight_decay_w": 1.0}}])
    with pytest.raises(cfg.ConfigError, match="posterior.noise_variance"):
        cfg.resolve([{"training": {"temperature": 0.1, "weight_decay_w": 1.0,
                                   "weight_decay_a": 2.0},
                      "posterior": {"noise_variance": 0.1}}])


def test_training_and_bayesian_views_give_the_same_physics():
    from experiments.setup.build import resolve_physics

    bayes, _ = cfg.resolve([{"model": {"scaling": "mean_field", "width": 32},
                             "posterior": {"sigma_w2": 0.5, "sigma_a2": 2.0,
                                           "noise_variance": 0.3}}])
    p = resolve_physics(bayes, input_dim=8)
    training, _ = cfg.resolve([{"model": {"scaling": "mean_field", "width": 32},
                                "training": {"temperature": p.temperature,
                                             "weight_decay_w": p.weight_decays["w"],
                                             "weight_decay_a": p.weight_decays["a"]}}])
    q = resolve_physics(training, input_dim=8)
    for field in ("chi", "sigma_w2", "sigma_a2", "noise_variance_tilde", "noise_variance",
                  "temperature"):
        assert getattr(q, field) == pytest.approx(getattr(p, field), rel=1e-12), field
    assert p.chi == 32 and p.temperature == pytest.approx(0.3 / 32)
    assert p.weight_decays["w"] == pytest.approx(p.temperature * 8 / 0.5)


def test_resolved_config_round_trips_through_toml():
    config, _ = cfg.resolve([], ["sampler.num_chains=8", "data.hermite_coefficients=[0, 1.5]"])
    text = cfg.dumps_toml(config)
    again = cfg.merge(cfg.default_config(), cfg.tomllib.loads(text))
    assert again == config
    assert cfg.config_hash(again) == cfg.config_hash(config)


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.ones((5, 3)), y=np.ones(4)), "'X' has 5 rows but 'y' has 4"),
    (dict(X=np.ones((5, 3)), y=np.array([1, 2, math.nan, 4, 5.0])), "'y' has 1 non-finite"),
    (dict(X=np.ones(5), y=np.ones(5)), "'X' must have 2 dimension"),
    (dict(X=np.ones((5, 3)), y=np.ones(5), X_test=np.ones((2, 4)), y_test=np.ones(2)),
     "'X_test' has 4 columns"),
    (dict(X=np.ones((5, 3)), y=np.ones(5), X_test=np.ones((2, 3))), "both 'X_test' and 'y_test'"),
    (dict(X=np.array([["a", "b"]]), y=np.ones(1)), "'X' must be real numbers"),
    (dict(y=np.ones(5)), "needs arrays 'X' and 'y'"),
])
def test_bad_user_data_is_named(tmp_path, capsys, arrays, message):
    path = _write_npz(tmp_path / "data.npz", **arrays)
    out_dir = tmp_path / "run"
    code = main(["run", "smoke", "--set", "data.source='npz'", "--set", f"data.path='{path}'",
                 "--out", str(out_dir)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out_dir.exists()


def test_user_data_runs(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3))
    path = _write_npz(tmp_path / "data.npz", X=x, y=x[:, 0], X_test=x[:4], y_test=x[:4, 0])
    code = main(["run", "smoke", "--set", "data.source='npz'", "--set", f"data.path='{path}'",
                 "--set", "sampler.progress=false", "--out", str(tmp_path / "run")])
    assert code == 0
    assert (tmp_path / "run" / "summary.json").is_file()


def test_existing_run_directory_is_never_overwritten(tmp_path, capsys):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("mine")
    assert main(["run", "smoke", "--out", str(out_dir)]) == 2
    assert "langevin resume" in capsys.readouterr().err
    assert (out_dir / "notes.txt").read_text() == "mine"
