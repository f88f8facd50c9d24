"""A sweep on the local executor (2 parallel CPU jobs, each a submitit job running
`langevin resume POINT`) gives the same per-point draws and table as the sequential
sweep in one process; `langevin status` reads every point as done."""
import json

import pytest

pytest.importorskip("submitit")

from experiments import cli  # noqa: E402
from experiments.launch import status  # noqa: E402
from tests.experiments.launch_helpers import FAST, assert_same_draws, set_args  # noqa: E402

POINTS = ("noise_variance=0.1", "noise_variance=0.2")


def _table(sweep_dir):
    return json.loads((sweep_dir / "summary.json").read_text())["table"]


def test_local_executor_sweep_equals_the_sequential_sweep(tmp_path, capsys):
    sequential, local = tmp_path / "sequential", tmp_path / "local"
    assert cli.main(["run", "smoke_sweep", *set_args(FAST), "--out", str(sequential)]) == 0
    assert cli.main(["run", "smoke_sweep", *set_args(FAST), "--executor", "local",
                     "--set", "launch.max_parallel=2", "--out", str(local)]) == 0
    for point in POINTS:
        assert_same_draws(sequential / point / "samples.zarr", local / point / "samples.zarr")
        left = json.loads((sequential / point / "summary.json").read_text())
        right = json.loads((local / point / "summary.json").read_text())
        assert left["diagnostics"] == right["diagnostics"]
        assert left["predictions"] == right["predictions"]
        assert (local / point / "launch" / "submitted.json").is_file()
    assert _table(sequential) == _table(local)
    # the two jobs ran at the same time (two slots): their attempts overlap
    starts = [json.loads((local / p / "launch" / "events.jsonl").read_text().splitlines()[0])
              for p in POINTS]
    ends = [json.loads((local / p / "launch" / "events.jsonl").read_text().splitlines()[-1])
            for p in POINTS]
    assert max(s["time"] for s in starts) < min(e["time"] for e in ends)
    assert [s["cuda_visible_devices"] for s in starts] == ["", ""]  # CPU jobs see no GPU
    rows = status.collect(local)
    assert [(r.label, r.state, r.step, r.requeues) for r in rows] == [
        (p, "done", 1200, 0) for p in POINTS]
    capsys.readouterr()
    assert cli.main(["status", str(local)]) == 0
    assert "2 done" in capsys.readouterr().out
    # nothing left to do: resume submits nothing
    assert cli.main(["resume", str(local)]) == 0
    assert "nothing to resubmit" in capsys.readouterr().out
