"""The staircase theory sweep (experiments.compare.staircase): table, fits and the log-log figure."""
import json

from experiments.compare import staircase


def test_staircase_table_and_figure(tmp_path):
    table = staircase.staircase_table(gp_dims=(8, 16, 32), adaptive_dims=(8, 16), steps=16)
    json.dumps(table, allow_nan=False)                       # strict JSON (a 2-point fit has no standard error)
    gp, adaptive = table["gp"], table["adaptive"]
    assert adaptive["fit"]["exponent_se"] is None and gp["fit"]["exponent_se"] > 0
    assert all(a < 0.1 * g for a, g in zip(adaptive["thresholds"], gp["thresholds"]))
    assert all(b > 5 for b in adaptive["sigma_parallel_times_d"])
    staircase.draw_staircase(table, tmp_path / "staircase.png")
    assert (tmp_path / "staircase.png").stat().st_size > 0
