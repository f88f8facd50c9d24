"""The `langevin` command line end to end."""
import json

import pytest
import torch
import xarray as xr

from experiments.cli import main
from langevin.checkpoint import load_checkpoint

RUN_FILES = ("config.toml", "meta.json", "data.npz", "samples.zarr", "checkpoint",
             "summary.json", "figures")


def _check_run_directory(run_dir):
    for name in RUN_FILES:
        assert (run_dir / name).exists(), name
    for figure in ("trace_rank.png", "q_histogram.png", "predictions.png"):
        assert (run_dir / "figures" / figure).is_file(), figure
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed"
    convention = meta["convention"]
    assert convention["temperature"] == pytest.approx(convention["noise_variance"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["thermometer"]) == {"w", "a"}
    ds = xr.open_zarr(run_dir / "samples.zarr", consolidated=False)
    assert ds["q"].dims == ("chain", "draw", "neuron")
    assert ds["f_test"].dims == ("chain", "draw", "test_point")
    return meta, summary, ds


def test_smoke_run_writes_every_file(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", "smoke", "--set", "sampler.progress=false", "--out", str(run_dir)]) == 0
    _, summary, ds = _check_run_directory(run_dir)
    assert ds.sizes["draw"] == 2000 // 10
    assert summary["run"]["num_chains"] == 4


def test_default_run_finishes_and_writes_every_file(tmp_path):
    run_dir = tmp_path / "default"
    assert main(["run", "--set", "sampler.progress=false", "--out", str(run_dir)]) == 0
    _, summary, _ = _check_run_directory(run_dir)
    # Long enough for the chains to agree on the training loss (Vehtari et al.: R-hat < 1.01).
    assert summary["diagnostics"]["train_loss"]["r_hat"] < 1.01


def test_divergence_names_step_size_and_layer_and_keeps_last_good_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["run", "smoke", "--set", "sampler.step_size=2.5", "--set", "sampler.burn_in=0",
                 "--set", "sampler.checkpoint_every=5", "--set", "sampler.progress=false",
                 "--out", str(run_dir)])
    assert code == 3
    err = capsys.readouterr().err
    assert "non-finite" in err and "step sizes" in err and ("'w'" in err or "'a'" in err)
    checkpoint = load_checkpoint(run_dir / "checkpoint")
    assert checkpoint is not None and checkpoint.step > 0
    for tensor in checkpoint.state["theta"].values():
        assert torch.isfinite(tensor).all()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"].startswith("failed")


def test_report_can_be_redrawn_from_disk(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", "smoke", "--set", "sampler.progress=false", "--out", str(run_dir)]) == 0
    first = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").unlink()
    for png in (run_dir / "figures").iterdir():
        png.unlink()
    assert main(["report", str(run_dir)]) == 0
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["diagnostics"] == first["diagnostics"]
    assert (run_dir / "figures" / "q_histogram.png").is_file()


def test_presets_lists_names(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "default" in out and "smoke" in out


def test_threads_setting_applies_to_the_run_only(tmp_path):
    before = torch.get_num_threads()
    assert main(["run", "smoke", "--set", "sampler.threads=1", "--set", "sampler.progress=false",
                 "--out", str(tmp_path / "run")]) == 0
    assert torch.get_num_threads() == before
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "threads = 1" in config


def test_a_toml_file_named_like_a_sweep_preset_is_one_run_of_its_own_contents(tmp_path):
    """The file's stem is the run name only: smoke_sweep.toml is not the smoke_sweep sweep."""
    source = tmp_path / "smoke_sweep.toml"
    source.write_text('[sampler]\nnum_chains = 2\nnum_steps = 200\nburn_in = 0\nthin = 10\n'
                      'checkpoint_every = 200\nprogress = false\n[model]\nwidth = 7\n'
                      '[data]\nd = 4\nn_train = 16\nn_test = 8\n'
                      '[diagnostics]\nbias_check = "off"\n')
    run_dir = tmp_path / "run"
    assert main(["run", str(source), "--out", str(run_dir)]) == 0
    config = (run_dir / "config.toml").read_text()
    assert "width = 7" in config and "num_chains = 2" in config
    assert not any(p.name.startswith("posterior.") for p in run_dir.iterdir())  # no sweep points
