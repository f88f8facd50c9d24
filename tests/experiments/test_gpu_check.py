"""benchmarks/gpu_check.py --cpu-dry-run: every part of the GPU script runs on the CPU
(the ULA exact variance and the bitwise resume pass). About a minute: slow."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_passes(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"),
                             "--cpu-dry-run", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all(check["passed"] for check in report["correctness"].values())
    assert {row["chains"] for row in report["throughput"]} == {1, 4}
    assert all(isinstance(row["eager"], float) for row in report["throughput"])
