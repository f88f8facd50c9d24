"""Memory of a run, estimated before anything is allocated, against the device's free
memory.

The estimate (bytes, `dtype_bytes` per number, C = num_chains, P = Σ_l P_l parameters
of one chain, H = hidden units per example, n = n_train, m = n_test):

    state              STATE_COPIES[integrator] · C · P      θ, ∇U (+ momentum; MALA:
                                                            the proposal's θ and ∇U)
    step temporaries   2 · C · P                            the new θ and the noise
                     + ACTIVATION_COPIES · C · n · H        pre-activations, φ, φ', ∂U/∂h
                     + 2 · C · m · H                        observables on the test inputs
    observable buffer  buffer_elements                      (capacity × C × values per draw)
    data               (n + m) · (d + 1)

The activation term dominates for wide networks on many examples; the buffer for
large `checkpoint_every` and many recorded outputs. The run is refused when the
total exceeds `REFUSE_FRACTION` of the free memory and warned about (it may swap and
crawl, or leave no room for other processes) above `WARN_FRACTION`. The numbers are
an estimate of the largest live tensors (allocator overhead and the Python process
are not counted), so the limits keep a margin.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, NamedTuple

import torch

STATE_COPIES = {"euler_maruyama": 2, "baoab": 3, "mala": 4}
ACTIVATION_COPIES = 4
REFUSE_FRACTION = 0.9
WARN_FRACTION = 0.5


class ResourceError(RuntimeError):
    """The run would not fit in the device's memory; the message has the numbers."""


class MemoryEstimate(NamedTuple):
    state: int
    step_temporaries: int
    observable_buffer: int
    data: int

    @property
    def total(self) -> int:
        return self.state + self.step_temporaries + self.observable_buffer + self.data

    def describe(self) -> str:
        return (f"{format_bytes(self.total)} (state {format_bytes(self.state)}, step "
                f"temporaries {format_bytes(self.step_temporaries)}, observable buffer "
                f"{format_bytes(self.observable_buffer)}, data {format_bytes(self.data)})")


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.3g} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError


def estimate_memory(*, num_chains: int, parameter_counts: Mapping[str, int],
                    hidden_units_per_example: int, n_train: int, n_test: int,
                    buffer_elements: int, dtype_bytes: int, input_dim: int = 0,
                    integrator: str = "euler_maruyama") -> MemoryEstimate:
    """The memory estimate of the module docstring, from plain numbers."""
    chains, params = int(num_chains), int(sum(parameter_counts.values()))
    hidden = int(hidden_units_per_example)
    state = STATE_COPIES.get(integrator, max(STATE_COPIES.values())) * chains * params
    temporaries = (2 * chains * params + ACTIVATION_COPIES * chains * n_train * hidden
                   + 2 * chains * n_test * hidden)
    data = (n_train + n_test) * (input_dim + 1)
    return MemoryEstimate(state * dtype_bytes, temporaries * dtype_bytes,
                          int(buffer_elements) * dtype_bytes, data * dtype_bytes)


def _cgroup_limit() -> float:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return float(text)
    return math.inf


def available_memory_bytes(device: str) -> float:
    """Free memory of `device`: CUDA's free memory, or on the CPU MemAvailable of
    /proc/meminfo (capped by a cgroup limit); inf if unknown."""
    if device.startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return float(free)
    available = math.inf
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = float(line.split()[1]) * 1024
                break
    except OSError:
        try:
            available = float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(available, _cgroup_limit())


def check_memory(estimate: MemoryEstimate, available: float, device: str) -> str | None:
    """Raise ResourceError if the run cannot fit; return a warning text if it is tight."""
    if estimate.total > REFUSE_FRACTION * available:
        raise ResourceError(
            f"the run needs about {estimate.describe()} but {device} has "
            f"{format_bytes(available)} free: lower sampler.num_chains, model.width, "
            "data.n_train, sampler.checkpoint_every (the observable buffer) or the recorded "
            "outputs (observables.outputs_*)")
    if estimate.total > WARN_FRACTION * available:
        return (f"the run needs about {estimate.describe()}, more than "
                f"{WARN_FRACTION:.0%} of the {format_bytes(available)} free on {device}: "
                "it may swap and run slowly")
    return None
