"""The proportional-regime presets: every sweep point is a valid config, and the sweep figures
draw from a table (experiments.presets, experiments.compare.proportional_comparison)."""
import pytest

from experiments import presets
from experiments.compare.proportional_comparison import draw_width_and_temperature
from experiments.setup import config as cfg
from experiments.sweep import assignments


@pytest.mark.parametrize("name", ["proportional_fc", "proportional_cnn"])
def test_every_sweep_point_resolves(name):
    preset = presets.get_preset(name)
    (key, values), = preset.sweep.items()
    for value in values:
        config, _ = cfg.resolve([preset.overrides], assignments(key, value))
        assert config["model"]["activation"] in ("linear", "erf")


def test_proportional_fc_sweeps_temperature_with_the_step_scaled_below_one():
    (key, values), = presets.get_preset("proportional_fc").sweep.items()
    points = [dict(zip(key, v)) for v in values]
    temperatures = {p["posterior.noise_variance"] for p in points}
    assert temperatures == {0.25, 1.0, 4.0}
    for p in points:  # h/T constant below T = 1 (presets.py comment)
        assert p["sampler.step_size"] == pytest.approx(0.005 * min(1.0, p["posterior.noise_variance"]))


def test_width_and_temperature_figures_are_drawn(tmp_path):
    key = "model.activation+model.width+data.n_train+posterior.noise_variance+sampler.step_size"
    table = []
    for activation in ("linear", "erf"):
        for width, T in ((10, 1.0), (20, 1.0), (20, 0.25), (20, 4.0)):
            table.append({key: [activation, width, width, T, 0.005], "temperature": T,
                          **{f"{p}_{s}": 1.0 + T for p in ("var", "err")
                             for s in ("sampled", "theory", "nngp")},
                          "var_mcse": 0.01, "err_mcse": 0.01})
    draw_width_and_temperature("proportional_fc", key, table, tmp_path)
    assert (tmp_path / "proportional_fc_variance_vs_width.png").stat().st_size > 0
    assert (tmp_path / "proportional_fc_variance_vs_temperature.png").stat().st_size > 0


def test_hidden_kernel_key_at_its_default_leaves_the_config_hash_unchanged():
    config, _ = cfg.resolve([presets.get_preset("smoke").overrides])
    before = {s: {k: v for k, v in values.items() if (s, k) != ("observables", "hidden_kernel")}
              for s, values in config.items()}
    assert cfg.config_hash(config) == cfg.config_hash(before)
    recorded, _ = cfg.resolve([presets.get_preset("smoke").overrides],
                              ["observables.hidden_kernel=true"])
    assert cfg.config_hash(recorded) != cfg.config_hash(config)
