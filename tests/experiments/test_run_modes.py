"""Classification and the zero-temperature run modes from a config: errors named before
any compute, unchanged hashes of earlier runs, gradients of the built potential against
autograd, a crash-and-resume of a gradient-descent run through build_run (the kill-point
helpers), and CLI runs (hinge gradient descent; a logistic run whose theory comparisons
are skipped with their reason)."""
import json

import numpy as np
import pytest
import torch

from experiments.cli import main, start_run
from experiments.setup import config as cfg
from experiments.setup.build import build_run, make_data
from experiments.setup.config_keys import ConfigError
from langevin.run import run_chains
from langevin.store import SampleStore
from tests.experiments.crash_settings import Crash, crash_at

DIGITS = ["data.source=digits", "data.pca_components=10", "data.digits_target=odd_even",
          "data.digits_n_train=60", "model.width=32", "sampler.num_chains=4",
          "sampler.progress=false", "diagnostics.bias_check=off"]
GD = [*DIGITS, "posterior.likelihood=hinge", "sampler.integrator=gradient_descent",
      "sampler.burn_in=0", "sampler.num_steps=2000", "sampler.thin=10",
      "sampler.checkpoint_every=100", "sampler.gd_weight_decay=false", "sampler.step_size=0.01",
      "sampler.dtype=float64"]


def _resolve(*set_args):
    return cfg.resolve([], list(set_args))[0]


@pytest.mark.parametrize("set_args, key", [
    (["posterior.likelihood=logistic"], "posterior.likelihood"),  # single_index: real targets
    (["posterior.likelihood=probit"], "posterior.likelihood"),
    (["sampler.gd_step_growth=1.2"], "sampler.gd_step_growth"),  # without gradient descent
    ([*DIGITS, "sampler.integrator=gradient_descent"], "sampler.burn_in"),
    ([*GD, "sampler.anneal_final_temperature=0.01", "sampler.anneal_steps=5"],
     "sampler.anneal_final_temperature"),
    (["sampler.anneal_final_temperature=0.01"], "sampler.anneal_steps"),
    (["sampler.anneal_steps=10"], "sampler.anneal_steps"),
    (["model.output_scale=0"], "model.output_scale"),
    ([*GD, "sampler.gd_step_shrink=1.5"], "sampler.gd_step_shrink"),
    ([*GD, "sampler.shards=2"], "sampler.shards"),
])
def test_bad_settings_name_the_key(set_args, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _resolve(*set_args)


def test_npz_labels_must_be_plus_minus_one_before_anything_is_written(tmp_path):
    path = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.normal(size=(8, 3)), y=np.array([1, -1, 1, 0.5, 1, -1, 1, -1.0]))
    overrides = [{"data": {"source": "npz", "path": str(path)},
                  "posterior": {"likelihood": "hinge"}, "sampler": {"progress": False}}]
    with pytest.raises(ConfigError, match="posterior.likelihood.*data.path.*0.5"):
        start_run("x", overrides, [], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_new_keys_at_their_defaults_leave_the_hash_unchanged():
    config = _resolve()
    stripped = {section: {k: v for k, v in values.items()
                          if (section, k) not in cfg.run_mode_keys.HASHED_WHEN_NOT_DEFAULT}
                for section, values in config.items()}
    assert cfg.config_hash(stripped) == cfg.config_hash(config)
    assert cfg.config_hash(_resolve("model.output_scale=2")) != cfg.config_hash(config)


@pytest.mark.parametrize("likelihood", ["logistic", "hinge", "quadratic_hinge"])
@pytest.mark.parametrize("scale, center", [(1.0, False), (0.1, True)])
def test_built_potential_gradient_matches_autograd(likelihood, scale, center):
    config = _resolve(*DIGITS, f"posterior.likelihood={likelihood}", "sampler.dtype=float64",
                      f"model.output_scale={scale}", f"model.center_at_init={str(center).lower()}")
    data = make_data(config)
    setup = build_run(config, data)
    base = setup.model.model
    generator = torch.Generator().manual_seed(2)
    theta = {k: v + 0.5 * torch.randn(v.shape, generator=generator, dtype=v.dtype)
             for k, v in setup.initial_theta.items()}
    state = setup.integrator.init(theta)
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    leaves = {k: v.clone().requires_grad_(True) for k, v in theta.items()}
    raw = base.predict(leaves, x) - (base.predict(setup.initial_theta, x) if center else 0.0)
    margin = y * scale * raw
    per_point = {"logistic": torch.nn.functional.softplus(-margin),
                 "hinge": torch.clamp(1 - margin, min=0),
                 "quadratic_hinge": 0.5 * torch.clamp(1 - margin, min=0) ** 2}[likelihood]
    decays = setup.physics.weight_decays
    potential = per_point.sum(-1) / scale ** 2 + sum(
        0.5 * decays[k] * (p * p).sum(tuple(range(1, p.ndim))) for k, p in leaves.items())
    grads = torch.autograd.grad(potential.sum(), list(leaves.values()))
    torch.testing.assert_close(state.potential, potential.detach(), rtol=1e-12, atol=1e-10)
    for layer, reference in zip(leaves, grads):
        torch.testing.assert_close(state.gradient[layer], reference, rtol=1e-9, atol=1e-10)


def _sample(run_dir, config, hook=None):
    setup = build_run(config, make_data(config))
    return run_chains(integrator=setup.integrator, initial_theta=setup.initial_theta,
                      generator=setup.generator, observables=setup.observables, plan=setup.plan,
                      store=SampleStore(run_dir / "samples.zarr", 4),
                      checkpoint_dir=run_dir / "checkpoint", config_hash=cfg.config_hash(config),
                      fault_hook=hook)


def test_gradient_descent_run_crashed_between_writes_resumes_bitwise(tmp_path):
    """300 steps, before any chain stops (the early end is covered in
    tests/langevin/test_gradient_descent.py): the adaptive step state is restored."""
    config = _resolve(*GD, "sampler.num_steps=300")
    whole = _sample(tmp_path / "whole", config)
    assert whole.step == 300 and not bool(whole.state.stopped.any())
    assert len(set(whole.state.step_multiplier.tolist())) > 1  # per-chain step sizes differ
    for point, occurrence in (("append:root:train_loss", 2), ("checkpoint:replace", 2)):
        run_dir = tmp_path / point
        with pytest.raises(Crash):
            _sample(run_dir, config, crash_at(point, occurrence))
        resumed = _sample(run_dir, config)
        assert resumed.step == whole.step
        assert torch.equal(resumed.state.step_multiplier, whole.state.step_multiplier)
        left = SampleStore(tmp_path / "whole" / "samples.zarr", 4).open().load()
        right = SampleStore(run_dir / "samples.zarr", 4).open().load()
        assert left.sizes == right.sizes
        for name in left.data_vars:
            np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=name)


def test_cli_hinge_gradient_descent_run(tmp_path, capsys):
    run_dir = tmp_path / "gd"
    args = [a for s in GD for a in ("--set", s)]
    assert main(["run", *args, "--set", "data.digits_target=pair", "--set",
                 "observables.n_delta=true", "--out", str(run_dir)]) == 0
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["likelihood"]["name"] == "hinge" and meta["status"] == "completed"
    result = meta["gradient_descent_result"]
    assert result["all_stopped"] and len(result["stop_step"]) == 4
    summary = json.loads((run_dir / "summary.json").read_text())
    gd = summary["gradient_descent"]
    reached = np.asarray(gd["reached_loss_tolerance"])
    assert np.all(np.asarray(gd["final_loss"])[reached] == 0.0)
    ensemble = summary["classification"]["ensemble"]["last_draw"]
    assert ensemble["step"] == max(result["stop_step"])  # the trained nets' final draw
    assert 0.0 <= ensemble["sign_error"]["ensemble"] <= 1.0
    if reached.all():  # zero hinge loss: no margin below 1 (N_Δ = 0) in any chain
        assert summary["classification"]["final_values"]["n_delta"]["last_draw_mean"] == 0.0
    assert "gradient descent (hinge loss, T = 0)" in capsys.readouterr().out


def test_cli_logistic_run_skips_gaussian_theory_with_its_reason(tmp_path):
    run_dir = tmp_path / "logistic"
    sets = [*DIGITS, "posterior.likelihood=logistic", "sampler.num_steps=80",
            "sampler.burn_in=20", "sampler.thin=10", "sampler.anneal_final_temperature=0.05",
            "sampler.anneal_steps=20"]
    assert main(["run", *[a for s in sets for a in ("--set", s)], "--out", str(run_dir)]) == 0
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["likelihood"]["name"] == "logistic"
    assert meta["annealing"]["final_temperature"] == 0.05 and meta["annealing_step"] == 100
    theory = json.loads((run_dir / "summary.json").read_text())["theory"]
    assert "posterior.likelihood = 'logistic'" in theory["skipped"]
