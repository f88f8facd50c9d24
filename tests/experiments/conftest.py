"""Fixtures shared by the experiments tests."""
import pytest

from tests.experiments.crash_settings import sample


@pytest.fixture(scope="session")
def crash_reference(tmp_path_factory):
    """One uninterrupted run of the crash-safety configuration, and the write points its
    fault hook saw, in order."""
    run_dir = tmp_path_factory.mktemp("crash_reference") / "run"
    points = []
    sample(run_dir, points.append)
    return run_dir, points
