"""sampler.threads = 0: the automatic thread count (experiments.setup.threads)."""
import torch

import experiments.runner as runner
from experiments.cli import main
from experiments.setup.threads import AUTO_THREADS_FLOPS, automatic_threads, forward_flops_per_step


def test_forward_flops_count_every_chain_and_training_point():
    theta = {"w": torch.zeros(3, 5, 4), "a": torch.zeros(3, 5)}
    # 2 · n · C · (N·d + N) = 2 · 7 · 3 · 25
    assert forward_flops_per_step(theta, 7) == 2 * 7 * 3 * 25


def test_one_thread_below_the_threshold_default_above():
    assert automatic_threads(AUTO_THREADS_FLOPS / 2, default=8) == 1
    assert automatic_threads(AUTO_THREADS_FLOPS, default=8) == 8
    assert automatic_threads(10 * AUTO_THREADS_FLOPS, default=2) == 2
    # the native kernel splits the chains between threads: the default at every size
    assert automatic_threads(AUTO_THREADS_FLOPS / 2, default=8, native=True) == 8


def _record_threads(monkeypatch):
    seen = []
    original = runner.run_chains

    def recording(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_chains", recording)
    return seen


def test_automatic_threads_is_one_on_a_small_run_and_restored(tmp_path, monkeypatch):
    seen = _record_threads(monkeypatch)
    torch.set_num_threads(2)
    try:
        assert main(["run", "smoke", "--set", "sampler.threads=0", "--set",
                     "sampler.progress=false", "--set", "diagnostics.bias_check=off",
                     "--set", "sampler.num_steps=200", "--set", "sampler.burn_in=50",
                     "--set", "sampler.checkpoint_every=100",
                     "--out", str(tmp_path / "run")]) == 0
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
