"""A run on submitit's LocalExecutor is timed out three times (submitit's timeout signal,
USR2, sent to the job at moments when it is sampling), checkpointed and requeued each
time, and finishes with the draws of an uninterrupted run, bit for bit (CPU)."""
import os
import signal
import threading

import pytest

pytest.importorskip("submitit")

from experiments import cli, presets  # noqa: E402
from experiments.launch import records, status  # noqa: E402
from experiments.launch.executors import Job, submit_local  # noqa: E402
from tests.experiments.launch_helpers import (  # noqa: E402
    FAST, assert_same_draws, events, wait_for,
)

# Long enough that three interrupts land before the end; q on its own cadence, so the
# subgroup store is checked too.
SETTINGS = [*FAST, "sampler.num_steps=3000", "sampler.checkpoint_every=200", "observables.q_every=21",
            "sampler.thin=7"]
TIMEOUTS = 3


def _checkpointed_step(run_dir):
    progress = records.checkpoint_progress(run_dir)
    return None if progress is None else progress[0]


def test_timed_out_job_is_requeued_and_matches_an_uninterrupted_run(tmp_path):
    smoke = [presets.get_preset("smoke").overrides]
    reference, config = cli.start_run("smoke", smoke, SETTINGS, tmp_path / "reference")
    assert cli.execute(reference, config, "smoke", report=False) == 0

    run_dir, config = cli.start_run("smoke", smoke,
                                    [*SETTINGS, "launch.executor=local",
                                     "launch.max_parallel=1", "launch.max_requeues=5"],
                                    tmp_path / "launched")
    codes = []
    driver = threading.Thread(
        target=lambda: codes.extend(submit_local([Job(run_dir, "run", False)],
                                                 config["launch"], run_dir)))
    driver.start()
    interrupted_at = []
    try:
        for attempt in range(TIMEOUTS):
            start = wait_for(lambda: len(events(run_dir, "start")) > attempt
                             and events(run_dir, "start")[attempt], f"start {attempt}")
            begun = start["step"] or 0
            # the child samples: a checkpoint of this attempt beyond its first step
            wait_for(lambda: (_checkpointed_step(run_dir) or 0) > begun, "sampling")
            os.kill(start["pid"], signal.SIGUSR2)  # what submitit sends before a time limit
            requeue = wait_for(lambda: len(events(run_dir, "requeue")) > attempt
                               and events(run_dir, "requeue")[attempt], f"requeue {attempt}")
            interrupted_at.append(requeue["step"])
    finally:
        driver.join(timeout=300)
    assert codes == [0]
    assert len(events(run_dir, "requeue")) == TIMEOUTS
    assert len(events(run_dir, "start")) == TIMEOUTS + 1
    # each timeout checkpointed at the step it stopped, and the next attempt went on from it
    assert interrupted_at == sorted(interrupted_at) and len(set(interrupted_at)) == TIMEOUTS
    starts = [e["step"] for e in events(run_dir, "start")]
    assert starts[1:] == interrupted_at
    assert interrupted_at[-1] < 3200
    assert_same_draws(reference / "samples.zarr", run_dir / "samples.zarr",
                      groups=(None, "every_21"))
    row = status.job_status(run_dir, "run")
    assert (row.state, row.step, row.requeues) == ("done", 3200, TIMEOUTS)

