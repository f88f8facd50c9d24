"""A run stopped between any two writes of its flush/checkpoint sequence (or of the
truncation at resume) resumes to exactly the draws of an uninterrupted run.

In-process: `run_chains(fault_hook=...)` raises at the chosen point, which leaves the
files exactly as a SIGKILL there would (nothing is written on the way out). In
subprocesses: a real SIGKILL of `langevin run` and then of `langevin resume` at chosen
points (experiments.rundirs.faults, LANGEVIN_FAULT_AT)."""
import os
import signal
import subprocess

import pytest

from experiments.rundirs import rundir
from experiments.rundirs.faults import FAULT_AT_VARIABLE
from langevin.checkpoint import load_checkpoint
from tests.experiments.crash_settings import (
    CHECKPOINT_EVERY, CLI_SETTINGS, TOTAL_STEPS, Crash, assert_same_draws, cli, crash_at, sample)

ROOT_VARIABLES = ("train_loss", "potential", "squared_norm_w", "squared_norm_a",
                  "virial_temperature_w", "virial_temperature_a", "f_test",
                  "w_second_moment_parallel", "w_second_moment_perp", "step")
SUBGROUP_VARIABLES = ("q", "q_control", "step")
FLUSH_POINTS = ("flush", "create:root", "create:every_20",
                *(f"append:root:{v}" for v in ROOT_VARIABLES),
                *(f"append:every_20:{v}" for v in SUBGROUP_VARIABLES),
                "checkpoint", "checkpoint:replace", "committed")


def test_the_hook_sees_every_point_of_the_sequence(crash_reference):
    _, points = crash_reference
    assert set(points) == set(FLUSH_POINTS)
    assert points.count("committed") == TOTAL_STEPS // CHECKPOINT_EVERY
    second = points.index("append:root:train_loss")  # the second flush: appends
    assert (points.index("flush", 1) < second < points.index("append:every_20:step", second)
            < points.index("checkpoint", second) < points.index("checkpoint:replace", second)
            < points.index("committed", second))


# The first flush creates the groups (no checkpoint yet); the second appends to them
# (occurrence 1 of an append point, 2 of the others): the first, a middle and the last
# array of each group, and every point of the commit.
CASES = [("create:root", 1), ("create:every_20", 1), ("checkpoint:replace", 1),
         ("flush", 2), ("append:root:train_loss", 1), ("append:root:f_test", 1),
         ("append:every_20:step", 1), ("checkpoint:replace", 2), ("committed", 2)]


@pytest.mark.parametrize("point, occurrence", CASES, ids=[f"{p}#{n}" for p, n in CASES])
def test_stopped_between_two_writes_resumes_to_identical_draws(tmp_path, crash_reference,
                                                                point, occurrence):
    run_dir = tmp_path / "run"
    with pytest.raises(Crash):
        sample(run_dir, crash_at(point, occurrence))
    assert sample(run_dir).step == TOTAL_STEPS
    assert_same_draws(crash_reference[0], run_dir)


@pytest.mark.parametrize("resume_point", ["truncate:root:f_test", "truncate:every_20:q"])
def test_a_resume_stopped_again_resumes_to_identical_draws(tmp_path, crash_reference,
                                                           resume_point):
    run_dir = tmp_path / "run"
    with pytest.raises(Crash):  # every array one flush longer than the checkpoint
        sample(run_dir, crash_at("checkpoint", 2))
    with pytest.raises(Crash):  # stopped while cutting them back
        sample(run_dir, crash_at(resume_point, 1))
    with pytest.raises(Crash):  # and again in its own flush
        sample(run_dir, crash_at("append:root:potential", 1))
    assert sample(run_dir).step == TOTAL_STEPS
    assert_same_draws(crash_reference[0], run_dir)


def _killed(args, point):
    env = {**os.environ, FAULT_AT_VARIABLE: point}
    out = subprocess.run(cli(*args), capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == -signal.SIGKILL, out.stderr
    return out


# SIGKILL: the run at the first point, its resume at the second, then a last resume.
KILL_SEQUENCES = [("append:root:f_test#1", "truncate:root:train_loss#1"),
                  ("checkpoint:replace#2", "append:every_20:q_control#1")]


@pytest.mark.parametrize("run_point, resume_point", KILL_SEQUENCES)
def test_sigkilled_run_and_resume_recover_identical_draws(tmp_path, crash_reference, run_point,
                                                         resume_point):
    run_dir = tmp_path / "run"
    _killed(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)], run_point)
    assert load_checkpoint(run_dir / "checkpoint").step == CHECKPOINT_EVERY
    _killed(["resume", str(run_dir)], resume_point)
    assert sample(run_dir).step == TOTAL_STEPS  # the lock died with its holder
    assert_same_draws(crash_reference[0], run_dir)


def test_sigkill_during_start_up_leaves_no_run_directory(tmp_path):
    """Start-up files are staged beside the target and renamed into place; a staging
    directory left by a kill is removed by the next start-up of the same name."""
    run_dir = tmp_path / "run"
    _killed(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)], "startup:meta#1")
    assert not run_dir.exists()
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".run.starting-")]
    assert len(stale) == 1 and (stale[0] / "config.toml").is_file()
    fresh = rundir.make_staging_dir(run_dir)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".run.starting-")] == [fresh]
