"""Test-wide settings."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test problems are tiny: torch's intra-op threads only add synchronization, which
    on a busy 2-core machine makes small steps up to ~100x slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
