"""`langevin status`: job states, steps, rates and ETAs derived from a run directory's
files (meta.json, the checkpoint, launch/ records), written here by hand; the [launch]
keys and sampler.shards leave the config hash unchanged."""
import json
import os
import time

import torch

from experiments import presets
from experiments.launch import records, status
from experiments.setup.config import config_hash, dumps_toml, resolve
from langevin.checkpoint import Checkpoint, save_checkpoint


def _run_dir(tmp_path, meta_status="created", segments=()):
    run_dir = tmp_path / "run"
    (run_dir / "launch").mkdir(parents=True)
    config, _ = resolve([presets.get_preset("smoke").overrides])  # 500 + 2000 steps, 4 chains
    (run_dir / "config.toml").write_text(dumps_toml(config))
    (run_dir / "meta.json").write_text(json.dumps({"status": meta_status,
                                                   "segments": list(segments)}))
    return run_dir


def _checkpoint(run_dir, step):
    save_checkpoint(run_dir / "checkpoint", Checkpoint({"theta": torch.zeros(4, 3)},
                                                      torch.zeros(8, dtype=torch.uint8), step,
                                                      {"": step // 10}, "hash"))


def test_checkpoint_step_is_read_without_torch(tmp_path):
    run_dir = _run_dir(tmp_path)
    assert records.checkpoint_progress(run_dir) is None
    _checkpoint(run_dir, 1234)
    step, mtime = records.checkpoint_progress(run_dir)
    assert step == 1234 and abs(mtime - time.time()) < 60


def test_running_job_has_a_rate_and_an_eta(tmp_path):
    run_dir = _run_dir(tmp_path)
    records.record_submission(run_dir, "local", "77", None, time.time() - 30)
    started = time.time() - 20
    _checkpoint(run_dir, 1500)
    checkpointed = records.checkpoint_progress(run_dir)[1]
    with open(run_dir / "launch" / "events.jsonl", "w") as handle:
        for event in ({"event": "start", "time": started - 5, "pid": 1, "host": "elsewhere",
                       "step": 0},
                      {"event": "requeue", "time": started - 1, "step": 500},
                      {"event": "start", "time": started, "pid": os.getpid(),
                       "host": os.uname().nodename, "step": 500}):
            handle.write(json.dumps(event) + "\n")
    row = status.job_status(run_dir, "run")
    assert (row.state, row.step, row.total_steps, row.requeues, row.job_id) == (
        "running", 1500, 2500, 1, "77")
    rate = (1500 - 500) * 4 / (checkpointed - started)
    assert abs(row.rate - rate) < 1e-6 * rate
    assert abs(row.eta_seconds - (2500 - 1500) * 4 / rate) < 1e-6 * row.eta_seconds
    assert "running" in status.format_table([row])


def test_a_dead_job_is_interrupted_and_a_failed_one_shows_its_error(tmp_path):
    run_dir = _run_dir(tmp_path, segments=[{"chain_steps_per_second": 900.0}])
    _checkpoint(run_dir, 800)
    records.append_event(run_dir, "start", pid=2**22 + 12345, host=os.uname().nodename, step=0)
    row = status.job_status(run_dir, "run")
    assert (row.state, row.step, row.rate) == ("interrupted", 800, 900.0)
    (run_dir / "launch" / "job.log").write_text(
        "=== attempt 1\nerror: old\n=== attempt 2\nsampling ...\n"
        "error: config key 'sampler.step_size' ... lower sampler.step_size\n")
    records.append_event(run_dir, "end", exit_code=3,
                         error=records.last_error_line(run_dir))
    row = status.job_status(run_dir, "run")
    assert row.state == "failed"
    assert row.note == "error: config key 'sampler.step_size' ... lower sampler.step_size"


def test_done_and_queued(tmp_path):
    run_dir = _run_dir(tmp_path, meta_status="completed")
    row = status.job_status(run_dir, "run")
    assert (row.state, row.step) == ("done", 2500)
    other = _run_dir(tmp_path / "b")
    records.record_submission(other, "slurm", "4242_3", tmp_path, time.time())
    assert status.job_status(other, "x").state == "queued"


def test_launch_keys_do_not_change_the_config_hash():
    base, _ = resolve([presets.get_preset("smoke").overrides])
    launched, _ = resolve([presets.get_preset("smoke").overrides],
                          ["launch.executor=slurm", "launch.time_limit_min=30",
                           "launch.partition=gpu", "launch.cpus_per_job=4", "sampler.shards=2"])
    assert config_hash(base) == config_hash(launched)
