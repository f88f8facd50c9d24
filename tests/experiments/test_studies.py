"""Studies on the command line (experiments.studies): the registry and its interface, --set
validation, a tiny modular_addition study end to end through `experiments.cli.main`, its
resume (finished points reused), report (rebuilt without sampling), study.json, the lock, and a
crash at several points of its sequence (the fault seam) followed by `langevin resume`."""
import importlib
import inspect
import json
import os
import shutil
import signal
import types

import numpy as np
import pytest

from experiments import modular_addition_comparison as mac
from experiments import presets, runner, studies
from experiments.cli import main
from experiments.launch import records
from experiments.rundirs import stop
from experiments.rundirs.faults import FAULT_AT_VARIABLE, FAULT_KIND_VARIABLE
from experiments.rundirs.lock import RunDirectoryLock
from langevin.store import SampleStore

TINY = {"modulus": 5, "width": 6, "num_chains": 4, "burn_in": 40, "num_steps": 80, "thin": 10,
        "checkpoint_every": 40, "noise_variances": [0.06, 0.08]}
POINTS = ("noise_variance=0.06", "noise_variance=0.08")


def _set_args(params: dict) -> list[str]:
    return [a for key, value in params.items() for a in ("--set", f"{key}={json.dumps(value)}")]


def _sampled(summary: dict) -> list[dict]:
    """The sampled statistics of every point (the draws' content; not timings)."""
    return [{"noise_variance": pt["noise_variance"], "sampled": pt["sampled"],
             "mode_product_by_k": pt["mode_product_by_k"]} for pt in summary["points"]]


def _read(path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """One uninterrupted tiny study, through the command line."""
    out = tmp_path_factory.mktemp("study") / "modular"
    assert main(["run", "modular_addition", *_set_args(TINY), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", sorted(studies.STUDIES))
def test_every_study_provides_the_interface(name, tmp_path):
    study = studies.STUDIES[name]
    module = study.module
    assert isinstance(study.description, str) and study.description
    assert name not in presets.PRESETS
    assert isinstance(module.DEFAULTS, dict) and module.DEFAULTS
    for function, parameters in (("check_parameters", ["params"]), ("run_study", ["out", "params"]),
                                 ("write_study_report", ["out", "params"])):
        assert list(inspect.signature(vars(module)[function]).parameters) == parameters, function
    merged = module.check_parameters({})
    assert merged == module.check_parameters(dict(module.DEFAULTS))
    assert set(merged) == set(module.DEFAULTS)
    with pytest.raises(ValueError, match="no_such_key"):
        module.check_parameters({"no_such_key": 1})
    if study.progress is not None:  # optional: `langevin status` on an empty study directory
        points = study.progress(tmp_path, merged)
        assert points and all(set(pt) == {"label", "finished", "step", "total_steps"} for pt in points)
        assert not any(pt["finished"] for pt in points) and all(pt["step"] is None for pt in points)


def test_registry_check_refuses_a_missing_name_and_a_preset_name():
    with pytest.raises(TypeError, match="run_study"):
        studies.check_registry({"x": studies.Study("x", types.ModuleType("empty"))}, {})
    with pytest.raises(ValueError, match="smoke"):
        studies.check_registry({"smoke": studies.Study("clash", mac)}, presets.PRESETS)


def test_a_study_named_like_a_run_preset_fails_at_import(monkeypatch):
    try:
        with monkeypatch.context() as patch:
            patch.setitem(presets.PRESETS, "modular_addition", presets.PRESETS["smoke"])
            with pytest.raises(ValueError, match="modular_addition"):
                importlib.reload(studies)
    finally:
        importlib.reload(studies)  # the registry as it is without the clash
    assert "modular_addition" in studies.STUDIES


@pytest.mark.parametrize("setting, named", [
    ("bogus=3", ["'bogus'", "bogus=3"]),
    ("modulus=1.5", ["'modulus'", "1.5"]),
    ("noise_variances=0.05", ["'noise_variances'", "0.05"]),
    ("init=cold", ["'init'", "'cold'"]),
    ("integrator=[1]", ["'integrator'", "[1]"]),
    ("seed=-1", ["'seed'", "-1"]),
    ("noise_variances=[0.05,0.0500000001]", ["'noise_variances'", "0.0500000001"]),
])
def test_bad_set_names_key_and_value_before_anything_is_written(tmp_path, capsys, setting, named):
    out = tmp_path / "study"
    code = main(["run", "modular_addition", "--set", setting, "--out", str(out)])
    config_error = main(["run", "smoke", "--set", "sampler.bogus=1", "--out", str(tmp_path / "run")])
    assert code == config_error == 2
    message = capsys.readouterr().err.splitlines()[0]
    assert message.startswith("error: ") and all(part in message for part in named), message
    assert not out.exists() and not (tmp_path / "run").exists()


def test_an_executor_other_than_inline_is_refused(tmp_path, capsys):
    assert main(["run", "modular_addition", "--executor", "local", "--out", str(tmp_path / "s")]) == 2
    assert "not supported for studies" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_tiny_study_end_to_end_and_study_json_round_trip(tiny_study, capsys):
    name, params = studies.read_study_file(tiny_study)
    assert name == "modular_addition" and params == mac.check_parameters(TINY)
    record = _read(tiny_study / studies.STUDY_FILE)
    assert set(record) == {"name", "params", "version", "git_commit"}
    summary = _read(tiny_study / "summary.json")
    assert [pt["noise_variance"] for pt in summary["points"]] == [0.06, 0.08]
    assert summary["unfinished"] == [] and summary["parameters"] == params
    for pt in summary["points"]:
        d = pt["discrepancy"]
        assert d["sampled_mcse"] > 0
        assert d["gp"] == pytest.approx(-pt["noise_variance"]
                                        / (4 * params["readout_variance"] + pt["noise_variance"]))
    for point in POINTS:
        assert (tiny_study / point / "summary.json").is_file()
    assert (tiny_study / "figures" / "modular_addition.png").stat().st_size > 0
    assert main(["presets"]) == 0
    assert "modular_addition" in capsys.readouterr().out.split("[study]")[0].splitlines()[-1]
    assert main(["run", "modular_addition", "--out", str(tiny_study)]) == 2  # exists: resume it


def test_resume_reuses_finished_points_and_resumes_the_other(tiny_study, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    (out / POINTS[1] / "summary.json").unlink()  # its finished marker
    kept = (out / POINTS[0] / "summary.json").read_bytes()
    calls = []
    real = mac.run_point

    def counting(params, noise_variance, directory, fault_hook=None):
        calls.append(noise_variance)
        return real(params, noise_variance, directory, fault_hook)

    monkeypatch.setattr(mac, "run_point", counting)
    assert main(["resume", str(out)]) == 0
    assert calls == [0.08]
    assert (out / POINTS[0] / "summary.json").read_bytes() == kept
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))


def test_report_rebuilds_summary_without_sampling(tiny_study, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    (out / "summary.json").unlink()
    (out / "figures" / "modular_addition.png").unlink()

    def no_sampling(**_kwargs):
        raise AssertionError("report sampled")

    monkeypatch.setattr(mac, "run_chains", no_sampling)
    assert main(["report", str(out)]) == 0
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))
    assert (out / "figures" / "modular_addition.png").is_file()
    (out / POINTS[0] / "summary.json").unlink()  # an unfinished point is listed, not sampled
    assert main(["report", str(out)]) == 0
    rebuilt = _read(out / "summary.json")
    assert rebuilt["unfinished"] == [0.06] and [pt["noise_variance"] for pt in rebuilt["points"]] == [0.08]


def test_run_resume_and_report_hold_the_directory_lock(tiny_study, capsys):
    with RunDirectoryLock(tiny_study, "run"):
        assert main(["resume", str(tiny_study)]) == 4
        assert main(["report", str(tiny_study)]) == 4
    assert "in use by process" in capsys.readouterr().err


@pytest.mark.parametrize("fault", [
    "study:point_finished#1",  # the first point sampled to its end, its marker not yet written
    "committed#5",             # the second point between its checkpoints (the first finished)
    "study:point_finished#2",  # both sampled, the second's marker not yet written
    "study:summary#1",         # every point finished, summary.json not yet written
])
def test_a_crash_loses_no_finished_point_and_resume_ends_as_an_uninterrupted_study(
        tiny_study, tmp_path, monkeypatch, capsys, fault):
    """The fault seam raises at that write point (a full disk there leaves the files as a SIGKILL
    would: nothing is written on the way out); `langevin resume` then finishes the study with the
    draws of the uninterrupted one, and no marker written before the crash changes."""
    out = tmp_path / "study"
    monkeypatch.setenv(FAULT_AT_VARIABLE, fault)
    monkeypatch.setenv(FAULT_KIND_VARIABLE, "enospc")
    assert main(["run", "modular_addition", *_set_args(TINY), "--out", str(out)]) == 5
    assert f"langevin resume {out}" in capsys.readouterr().err
    assert not (out / "summary.json").exists()
    markers = {point: (out / point / "summary.json").read_bytes()
               for point in POINTS if (out / point / "summary.json").is_file()}
    assert len(markers) == {"study:point_finished#1": 0, "committed#5": 1,
                            "study:point_finished#2": 1, "study:summary#1": 2}[fault]
    monkeypatch.delenv(FAULT_AT_VARIABLE)
    assert main(["resume", str(out)]) == 0
    for point, content in markers.items():
        assert (out / point / "summary.json").read_bytes() == content
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))


def test_ctrl_c_says_how_to_continue_and_resume_finishes(tiny_study, tmp_path, monkeypatch, capsys):
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    (out / POINTS[1] / "summary.json").unlink()
    real = mac.run_point

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mac, "run_point", interrupted)
    assert main(["resume", str(out)]) == 130
    assert "interrupted; the finished points are kept" in capsys.readouterr().err
    monkeypatch.setattr(mac, "run_point", real)
    assert main(["resume", str(out)]) == 0
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))


def test_a_point_written_with_other_parameters_is_refused(tiny_study, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    record = _read(out / studies.STUDY_FILE)
    record["params"]["seed"] = 7
    (out / studies.STUDY_FILE).write_text(json.dumps(record))
    assert main(["resume", str(out)]) == 2
    assert "noise_variance=0.06" in capsys.readouterr().err


# Stopping a study like a run (experiments.rundirs.stop), `langevin status` on a study directory,
# the module's own entry point, and `resume --no-report`.

def _draws(point_dir) -> dict:
    """Every stored array of a point (data variables and coordinates), for bitwise comparison."""
    ds = SampleStore(point_dir / "samples.zarr", TINY["num_chains"]).open()
    return {name: ds[name].values for name in [*ds.data_vars, *ds.coords]}


def test_stop_flags_nest_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    assert not stop.requested()
    with stop.stop_on_signals() as outer:
        assert not stop.nested()
        with stop.stop_on_signals() as inner:  # a run inside a study shares the study's flag
            assert inner is outer and stop.nested()
            os.kill(os.getpid(), signal.SIGTERM)
            assert outer() and stop.requested()
        assert signal.getsignal(signal.SIGTERM) is not before  # the outer one still holds them
    assert signal.getsignal(signal.SIGTERM) is before and not stop.requested()


@pytest.mark.parametrize("kind, fault, step, entry", [
    ("sigterm", "committed#4", 41, "langevin run"),  # the second point after its first checkpoint
    ("sigint", "committed#2", 81, "python -m"),      # the first point between its checkpoints
])
def test_a_stop_request_checkpoints_the_point_and_resume_is_bitwise(
        tiny_study, tmp_path, monkeypatch, capsys, kind, fault, step, entry):
    """The signal arrives at that commit point (the fault seam sends it to this process); the
    point stops at its next step with a checkpoint, exit code 130 and one line saying how to
    continue; `langevin status` shows it; `langevin resume` ends with the draws of the
    uninterrupted study, bit for bit."""
    out = tmp_path / "study"
    monkeypatch.setenv(FAULT_AT_VARIABLE, fault)
    monkeypatch.setenv(FAULT_KIND_VARIABLE, kind)
    if entry == "langevin run":
        code = main(["run", "modular_addition", *_set_args(TINY), "--out", str(out)])
    else:
        code = mac.main(["--out", str(out), *_set_args(TINY)])
    monkeypatch.delenv(FAULT_AT_VARIABLE)
    point = POINTS[0] if step == 81 else POINTS[1]
    err = capsys.readouterr().err
    assert code == 130
    assert f"received {kind.upper()}: checkpointing and stopping" in err
    assert f"interrupted at step {step} of point {point}; continue with: langevin resume {out}" in err
    assert studies.read_study_file(out) == ("modular_addition", mac.check_parameters(TINY))
    assert records.checkpoint_progress(out / point, "state.pt")[0] == step
    assert not (out / point / "summary.json").exists() and not (out / "summary.json").exists()

    assert main(["status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["name"], status["state"], status["points_total"]) == ("modular_addition", "stopped", 2)
    assert status["points_finished"] == (1 if point == POINTS[1] else 0)
    assert status["in_progress"] == {"label": point, "finished": False, "step": step, "total_steps": 120}
    assert status["params"] == mac.check_parameters(TINY)
    assert main(["status", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"point in progress: {point} (last checkpoint at step {step}/120)" in text
    assert f"continue with: langevin resume {out}" in text

    assert main(["resume", str(out)]) == 0
    for name in POINTS:
        reference, resumed = _draws(tiny_study / name), _draws(out / name)
        assert reference.keys() == resumed.keys()
        for key in reference:
            assert np.array_equal(reference[key], resumed[key]), (name, key)
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))


def test_status_of_a_finished_and_of_a_running_study(tiny_study, tmp_path, capsys):
    assert main(["status", str(tiny_study)]) == 0
    text = capsys.readouterr().out
    assert "study modular_addition" in text and ": done" in text and "points finished: 2/2" in text
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    (out / POINTS[1] / "summary.json").unlink()
    with RunDirectoryLock(out, "run"):  # status reads the files; it takes no lock
        assert main(["status", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "running" and status["lock_holder"]["pid"] == os.getpid()
    assert status["points_finished"] == 1 and status["in_progress"]["label"] == POINTS[1]
    assert status["in_progress"]["step"] == 120  # sampled to its end, the marker not written


def test_the_module_entry_point_writes_a_study_directory(tiny_study, tmp_path, capsys):
    """`python -m experiments.modular_addition_comparison` is `langevin run modular_addition`: the lock;
    a rerun with its parameters continues it, other parameters are refused (a new directory with
    its study.json, stopped and resumed by `langevin resume`: the stop test above)."""
    out = tmp_path / "copy"
    shutil.copytree(tiny_study, out)
    (out / POINTS[1] / "summary.json").unlink()
    with RunDirectoryLock(out, "run"):
        assert mac.main(["--out", str(out), *_set_args(TINY)]) == 4
    assert mac.main(["--out", str(out), *_set_args(TINY)]) == 0
    assert _sampled(_read(out / "summary.json")) == _sampled(_read(tiny_study / "summary.json"))
    assert mac.main(["--out", str(out), *_set_args({**TINY, "seed": 3})]) == 2
    assert "with other parameters" in capsys.readouterr().err


def test_resume_no_report_is_refused_on_a_study(tiny_study, capsys):
    before = (tiny_study / "summary.json").read_bytes()
    assert main(["resume", "--no-report", str(tiny_study)]) == 2
    assert "--no-report is not supported for the study directory" in capsys.readouterr().err
    assert (tiny_study / "summary.json").read_bytes() == before


def test_a_run_inside_a_study_stops_the_study(tmp_path, monkeypatch):
    """A study whose points are ordinary runs (experiments.runner.execute) shares the stop flag:
    the run checkpoints and raises stop.Interrupted instead of returning 130; it resumes to its end."""
    run_dir, config = runner.start_run("smoke", [presets.get_preset("smoke").overrides], [
        "sampler.burn_in=20", "sampler.num_steps=40", "sampler.checkpoint_every=20",
        "sampler.progress=false"], tmp_path / "run")
    monkeypatch.setenv(FAULT_AT_VARIABLE, "committed#1")
    monkeypatch.setenv(FAULT_KIND_VARIABLE, "sigterm")
    with stop.stop_on_signals(), pytest.raises(stop.Interrupted) as stopped:
        runner.execute(run_dir, config, "smoke", report=False)
    monkeypatch.delenv(FAULT_AT_VARIABLE)
    assert (stopped.value.where, stopped.value.step) == ("run run", 21)
    assert _read(run_dir / "meta.json")["status"] == "interrupted"
    assert runner.resume_run(run_dir, report=False) == 0
    assert _read(run_dir / "meta.json")["status"] == "completed"
