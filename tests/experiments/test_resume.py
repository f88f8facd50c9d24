"""A run killed mid-way (SIGKILL or SIGTERM) and resumed stores exactly the draws of an
uninterrupted run (CPU, bit for bit)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from langevin.checkpoint import load_checkpoint

SETTINGS = ["--set", "sampler.num_steps=6000", "--set", "sampler.burn_in=300",
            "--set", "sampler.checkpoint_every=400", "--set", "sampler.thin=7",
            "--set", "observables.q_every=21", "--set", "sampler.progress=false"]


def _cli(*args):
    return [sys.executable, "-m", "experiments.cli", *args]


def _run(args, cwd):
    return subprocess.run(_cli(*args), cwd=cwd, capture_output=True, text=True, timeout=300)


def _wait_for_checkpoint(run_dir: Path, process: subprocess.Popen, min_step: int) -> int:
    deadline = time.time() + 120
    while time.time() < deadline:
        assert process.poll() is None, "the run finished before it could be interrupted"
        try:
            checkpoint = load_checkpoint(run_dir / "checkpoint")
        except Exception:  # noqa: BLE001 - the file may be mid-rename; poll again
            checkpoint = None
        if checkpoint is not None and checkpoint.step >= min_step:
            return checkpoint.step
        time.sleep(0.02)
    raise TimeoutError("no checkpoint appeared")


def _assert_same_draws(a: Path, b: Path):
    for group in (None, "every_21"):
        left = xr.open_zarr(a / "samples.zarr", group=group, consolidated=False).load()
        right = xr.open_zarr(b / "samples.zarr", group=group, consolidated=False).load()
        assert set(left.data_vars) == set(right.data_vars)
        assert left.sizes == right.sizes
        np.testing.assert_array_equal(left["step"].values, right["step"].values)
        for name in left.data_vars:
            np.testing.assert_array_equal(left[name].values, right[name].values, err_msg=name)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    out = _run(["run", "smoke", *SETTINGS, "--out", str(root / "run")], cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    return root / "run"


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_draws(tmp_path, reference_run, how):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(_cli("run", "smoke", *SETTINGS, "--out", str(run_dir)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_after = _wait_for_checkpoint(run_dir, process, min_step=1200)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    if how == signal.SIGTERM:
        assert process.returncode == 130, stderr
        assert "langevin resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    interrupted_at = load_checkpoint(run_dir / "checkpoint").step
    assert killed_after <= interrupted_at < 6300
    resumed = _run(["resume", str(run_dir)], cwd=os.getcwd())
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run_dir / "checkpoint").step == 6300
    _assert_same_draws(reference_run, run_dir)


def test_resume_refuses_a_changed_config(tmp_path, reference_run):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(reference_run, run_dir)
    import re

    text = (run_dir / "config.toml").read_text()
    config = re.sub(r"^step_size = .*$", "step_size = 0.0123", text, flags=re.M)
    assert config != text
    (run_dir / "config.toml").write_text(config)
    out = _run(["resume", str(run_dir)], cwd=os.getcwd())
    assert out.returncode == 2
    assert "different configuration" in out.stderr
