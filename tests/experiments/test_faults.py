"""The machine says no: a full disk (injected, and a real small tmpfs where this
machine lets the test mount one), a read-only disk, a second process on the same run
directory. Each ends in one clear message, no traceback, the last checkpoint intact
and the run resumable to the draws of an uninterrupted run."""
import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from experiments.cli import main
from experiments.rundirs import faults
from experiments.rundirs.faults import FAULT_AT_VARIABLE, FAULT_KIND_VARIABLE
from langevin.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tests.experiments.crash_settings import (
    CHECKPOINT_EVERY, CLI_SETTINGS, TOTAL_STEPS, assert_same_draws, cli, sample)


def _files(directory: Path) -> dict:
    """Every file with its time, but the lock (rewritten by each taker)."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file() and p.name != ".lock"}


def test_disk_full_during_an_append_keeps_the_checkpoint_and_resumes(
        tmp_path, crash_reference, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    monkeypatch.setenv(FAULT_AT_VARIABLE, "append:root:f_test#1")
    monkeypatch.setenv(FAULT_KIND_VARIABLE, "enospc")
    assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)]) == 5
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "the disk is full" in err and f"step {CHECKPOINT_EVERY}" in err
    assert f"langevin resume {run_dir}" in err
    assert load_checkpoint(run_dir / "checkpoint").step == CHECKPOINT_EVERY
    assert not list(run_dir.rglob("*.tmp")) and not list(run_dir.rglob("*.partial"))
    monkeypatch.delenv(FAULT_AT_VARIABLE)
    assert sample(run_dir).step == TOTAL_STEPS
    assert_same_draws(crash_reference[0], run_dir)


def test_a_failed_checkpoint_write_leaves_the_previous_one_and_no_temporary(tmp_path,
                                                                         monkeypatch):
    first = Checkpoint({"theta": {"w": torch.ones(2)}}, torch.zeros(4, dtype=torch.uint8), 5,
                       {"": 1}, "hash")
    save_checkpoint(tmp_path, first)

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, first._replace(step=10))
    assert load_checkpoint(tmp_path).step == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True)
    return out.returncode == 0


def test_small_tmpfs_disk_full_then_read_only(tmp_path, crash_reference, capsys):
    mount = tmp_path / "disk"
    if not _mount_tmpfs(mount, "160k"):
        pytest.skip("mounting a tmpfs needs root and a machine that allows it")
    try:
        run_dir = mount / "run"
        code = main(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)])
        err = capsys.readouterr().err
        assert code == 5, err
        assert "Traceback" not in err and "the disk is full" in err, err
        started = run_dir.exists()
        if started:  # full while sampling: the checkpoint is intact, nothing torn is kept
            assert f"langevin resume {run_dir}" in err
            assert not list(run_dir.rglob("*.tmp"))
        else:  # full at start-up: nothing was written
            assert "nothing was written" in err
            assert not list(mount.iterdir()) or all(
                p.name.startswith(".run.starting-") is False for p in mount.iterdir())
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        if started:
            assert sample(run_dir).step == TOTAL_STEPS
            assert_same_draws(crash_reference[0], run_dir)
        else:
            assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)]) == 0
            assert_same_draws(crash_reference[0], run_dir)
            capsys.readouterr()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = _files(run_dir)
        for command in (["report", str(run_dir)], ["resume", str(run_dir)],
                        ["run", "smoke", *CLI_SETTINGS, "--out", str(mount / "other")]):
            assert main(command) == 5
            err = capsys.readouterr().err
            assert "Traceback" not in err and "read-only" in err, err
        assert _files(run_dir) == before
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def _wait_until_stopped(pid: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    raise TimeoutError("the first process did not reach its stop point")


def test_a_second_resume_is_refused_and_the_store_stays_intact(tmp_path, crash_reference,
                                                               capsys):
    run_dir = tmp_path / "run"
    env = {**os.environ, FAULT_AT_VARIABLE: "append:root:f_test#1", FAULT_KIND_VARIABLE: "stop"}
    first = subprocess.Popen(cli("run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_until_stopped(first.pid)  # in the middle of a flush, holding the lock
        before = _files(run_dir)
        assert main(["resume", str(run_dir)]) == 4
        err = capsys.readouterr().err
        assert f"in use by process {first.pid}" in err and "Traceback" not in err, err
        assert main(["report", str(run_dir)]) == 4
        assert _files(run_dir) == before
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the holder dies mid-flush: its lock goes too
        first.communicate(timeout=60)
    assert sample(run_dir).step == TOTAL_STEPS
    assert_same_draws(crash_reference[0], run_dir)


def test_a_second_ctrl_c_during_a_flush_leaves_a_resumable_run(tmp_path, crash_reference,
                                                              monkeypatch, capsys):
    def interrupt_in_the_flush(point):
        if point == "append:root:f_test":
            raise KeyboardInterrupt  # what the second SIGINT raises in the handler

    monkeypatch.setattr(faults, "hook_from_environment", lambda: interrupt_in_the_flush)
    run_dir = tmp_path / "run"
    assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"checkpoint (step {CHECKPOINT_EVERY}) is intact" in err
    assert f"langevin resume {run_dir}" in err
    assert sample(run_dir).step == TOTAL_STEPS
    assert_same_draws(crash_reference[0], run_dir)
