"""The inspection notebook runs end to end on a fresh smoke run, so it cannot rot.

The kernel is this interpreter's (`python3` resolves to the running Python when
ipykernel is installed in it; `make test` installs it with the [test] extra); the run
directory reaches the notebook through the RUN_DIR environment variable, which the
kernel process inherits.
"""
import json
from pathlib import Path

import pytest

from experiments.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "experiments" / "notebooks" / "inspect_run.ipynb"


def test_parameters_cell_is_tagged_for_papermill():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and "RUN_DIR" in tagged[0].source


def test_inspect_notebook_executes_on_a_smoke_run(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    run_dir = tmp_path / "smoke"
    assert main(["run", "smoke", "--set", "sampler.progress=false", "--out", str(run_dir)]) == 0
    theory = json.loads((run_dir / "summary.json").read_text()).get("theory", {})
    monkeypatch.setenv("RUN_DIR", str(run_dir))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel uses its inline backend
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert f"{run_dir}: 4 chains x 200 draws" in text
    assert "step-size bias check: done" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    # trace, rank, autocorrelation, ESS evolution, virial windows (+ the GP overlay).
    assert len(images) >= 5 + ("gp" in theory)
