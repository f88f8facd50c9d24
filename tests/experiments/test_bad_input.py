"""Bad input, table-driven: each case ends with its exit code, one message naming the
config key or the file, no traceback, and nothing written (no run directory for
`run`; the run directory unchanged for `resume` and `report`)."""
import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from experiments import runner
from experiments.cli import main
from tests.experiments.crash_settings import CLI_SETTINGS

RNG = np.random.default_rng(0)


def _npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _x(n=16, d=4):
    return RNG.standard_normal((n, d))


NPZ_CASES = {
    "zero teacher": (lambda p: _npz(p, X=_x(), y=np.ones(16), teacher_direction=np.zeros(4)),
                     ["teacher_direction"]),
    "X beyond float32": (lambda p: _npz(p, X=_x() * 1e39, y=np.ones(16)),
                         ["'X'", "sampler.dtype"]),
    "no rows": (lambda p: _npz(p, X=np.zeros((0, 4)), y=np.zeros(0)), ["'X'", "row"]),
    "constant inputs": (lambda p: _npz(p, X=np.ones((16, 4)), y=RNG.standard_normal(16)),
                        ["'X'", "same input"]),
    "text file": (lambda p: (p.write_text("1 2 3\n4 5 6\n"), str(p))[1],
                  ["data.path", "not a readable .npz"]),
    "truncated npz": (lambda p: (_npz(p, X=_x(), y=np.ones(16)),
                                 p.write_bytes(p.read_bytes()[:300]), str(p))[2],
                      ["data.path", "not a readable .npz"]),
}

SET_CASES = [
    ("data.seed=-1", 2, ["data.seed"]),
    ("sampler.seed=1e20", 2, ["sampler.seed"]),
    ("data.hermite_coefficients=[true,false]", 2, ["data.hermite_coefficients"]),
    ("model.width=1000000000", 5, ["model.width", "free"]),
    ("sampler.num_chains=1000000000", 5, ["sampler.num_chains", "free"]),
]


def _assert_one_clear_message(capsys, must_name):
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in must_name:
        assert text in err, (text, err)
    return err


@pytest.mark.parametrize("setting, code, must_name", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_bad_setting(tmp_path, capsys, setting, code, must_name):
    out = tmp_path / "run"
    assert main(["run", "smoke", *CLI_SETTINGS, "--set", setting, "--out", str(out)]) == code
    _assert_one_clear_message(capsys, must_name)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", list(NPZ_CASES))
def test_bad_data_file(tmp_path, capsys, case):
    make, must_name = NPZ_CASES[case]
    path = make(tmp_path / "data.npz")
    out = tmp_path / "run"
    assert main(["run", "smoke", *CLI_SETTINGS, "--set", "data.source='npz'",
                 "--set", f"data.path='{path}'", "--out", str(out)]) == 2
    err = _assert_one_clear_message(capsys, must_name)
    assert path in err
    assert not out.exists()


def test_out_naming_a_file(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(target)]) == 2
    _assert_one_clear_message(capsys, [str(target), "is a file"])
    assert target.read_text() == "mine"


def test_a_huge_checkpoint_interval_is_capped_by_num_steps():
    from experiments.setup import preflight
    from experiments.setup.build import make_data
    from tests.experiments.crash_settings import config

    base = config()
    huge = {**base, "sampler": {**base["sampler"], "checkpoint_every": 10**9}}
    every = {**base, "sampler": {**base["sampler"], "checkpoint_every": 150}}
    data = make_data(base)
    assert preflight.buffer_elements(huge, data) == preflight.buffer_elements(every, data)


def test_interrupt_during_start_up_writes_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(_config):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "make_data", interrupted)
    out = tmp_path / "run"
    assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(out)]) == 130
    _assert_one_clear_message(capsys, ["interrupted", "nothing was written"])
    assert list(tmp_path.iterdir()) == []


def _files(directory: Path) -> dict:
    """Every file with its time and size, but the lock (rewritten by each taker)."""
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in directory.rglob("*") if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished_run_and_output(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["run", "smoke", *CLI_SETTINGS, "--out", str(run_dir)]) == 0
    return run_dir, printed.getvalue()


@pytest.fixture
def finished_run(finished_run_and_output):
    return finished_run_and_output[0]


def _truncate(path: Path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:keep])


RUN_DIR_CASES = {
    "corrupt meta.json": (lambda d: _truncate(d / "meta.json"), ["meta.json"]),
    "truncated checkpoint": (lambda d: _truncate(d / "checkpoint" / "state.pt", 100),
                             ["state.pt", "truncated or corrupt"]),
    "truncated data.npz": (lambda d: _truncate(d / "data.npz", 100), ["data.npz"]),
    "no meta.json (old partial start-up)": (lambda d: (d / "meta.json").unlink(),
                                            ["incomplete", "meta.json", "rm -r"]),
    "not a run directory": (lambda d: (d / "config.toml").unlink(), ["config.toml"]),
}


@pytest.mark.parametrize("case", list(RUN_DIR_CASES))
def test_damaged_run_directory_is_refused_on_resume(tmp_path, capsys, finished_run, case):
    damage, must_name = RUN_DIR_CASES[case]
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    damage(run_dir)
    before = _files(run_dir)
    assert main(["resume", str(run_dir)]) == 2
    _assert_one_clear_message(capsys, must_name)
    assert _files(run_dir) == before


def test_interrupted_report_leaves_the_summary(tmp_path, capsys, finished_run, monkeypatch):
    from experiments.reporting import report

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    summary = (run_dir / "summary.json").read_text()

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "thermometer", interrupted)
    assert main(["report", str(run_dir)]) == 130
    _assert_one_clear_message(capsys, ["report interrupted", "summary.json"])
    assert (run_dir / "summary.json").read_text() == summary


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["run", "smoke", "--set", "data.seed=-1", "--debug",
                 "--out", str(tmp_path / "run")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_run_prints_the_report_as_tables_ending_with_the_warnings(finished_run_and_output):
    _, out = finished_run_and_output
    for heading in ("Observables", "Thermometer", "Step-size bias", "Theory comparisons"):
        assert heading in out
    assert "train_loss" in out and "R-hat" in out and "±" in out
    report = out.rsplit("run directory:", 1)[0].rstrip()
    last_section = report.rsplit("\n\n", 1)[-1]
    assert last_section.startswith(("Warnings", "No warnings")), last_section
