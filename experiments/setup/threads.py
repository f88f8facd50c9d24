"""The automatic CPU thread count of a run (`sampler.threads = 0`).

Rule: with F = 2 · n · Σ_l numel(θ_l), the multiply-add FLOPs of one forward pass of all
chains over the n training points (θ_l of shape (C, ...), so Σ_l numel counts every
chain's parameters), a run uses

    1 thread        if F < AUTO_THREADS_FLOPS (2·10⁹),
    torch's default otherwise (left unchanged).

Measured (benchmarks/README.md, "Automatic thread count"): on the 2-core CPU, for
two-layer erf networks from F = 2.8·10⁵ to 1.1·10⁹ one thread ran 18x to 1.3x faster
than two (per-step thread start-up and synchronisation dominate small steps, and
oversubscription on a shared machine makes it worse); at F ≥ 5·10⁹ the margin was
1.1x under load, and on an idle machine the matmuls that dominate such steps scale with
threads, so the default is kept there. Only CPU runs are affected; a positive
`sampler.threads` is always used as given.

With `sampler.cpu_kernel = "native"` the default is kept at every size: the kernel splits
the chains between threads in one call, with no per-op synchronisation (measured at
(d, N, n, C) = (16, 64, 128, 64) on the idle 2-core CPU, benchmarks/README.md: 2 threads
1.8x one thread).
"""
from __future__ import annotations

from typing import Mapping

import torch

AUTO_THREADS_FLOPS = 2e9


def forward_flops_per_step(theta: Mapping[str, torch.Tensor], num_train: int) -> float:
    """F = 2 · n · Σ_l numel(θ_l): the forward multiply-adds of all chains (dense layers)."""
    return 2.0 * num_train * sum(param.numel() for param in theta.values())


def automatic_threads(flops_per_step: float, default: int, native: bool = False) -> int:
    """1 below AUTO_THREADS_FLOPS forward FLOPs per step, else `default` (torch's);
    always `default` for the native kernel (module docstring)."""
    return 1 if flops_per_step < AUTO_THREADS_FLOPS and not native else int(default)
