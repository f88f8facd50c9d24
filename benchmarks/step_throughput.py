"""Throughput of the Langevin step loop: chain-steps per second, batched vs naive.

For each problem size and chain count, measured side by side in one process:
  batched  the project's Euler–Maruyama step (one tensor per layer, chains leading,
           analytic backward pass): `langevin.integrators.euler_maruyama`;
  naive    what the papers' scripts do: one nn.Module per chain, autograd backward,
           per-parameter noise, a Python loop over chains.
Also printed: achieved FLOP/s of the batched step (4·n·N·d multiply-adds ×2 per
chain-step: forward h = Xwᵀ and the backward Gᵀ X) and its fraction of the machine's
measured dense-matmul rate (a 4096² float32 matmul in the same run) — the practical
hardware limit of this step, which is two matmuls per chain-step.

    python benchmarks/step_throughput.py [--device cpu|cuda] [--quick]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.models import TwoLayerNetwork
from langevin.potential import make_potential

SIZES = [  # (d, N, n)
    (16, 64, 128),
    (150, 700, 3000),  # the grokking paper's network (Rubin et al. 2024, App. C)
]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device, dtype, size=4096, repeats=5) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _problem(d, width, n, device, dtype, seed=0):
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
    y = torch.randn(n, generator=generator, device=device, dtype=dtype)
    return generator, x, y


def batched_rate(d, width, n, chains, device, dtype, steps) -> float:
    generator, x, y = _problem(d, width, n, device, dtype)
    temperature = 0.01
    model = TwoLayerNetwork(d, width, "erf", {"w": 1.0 / d, "a": 1.0 / width})
    decays = {"w": temperature * d, "a": temperature * width}
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                per_layer_step_sizes(1e-4, decays), temperature)
    state = integrator.init(model.sample_prior(chains, generator, dtype, device))
    state, _ = integrator.step(state, generator)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        state, _ = integrator.step(state, generator)
    _sync(device)
    return steps * chains / (time.perf_counter() - start)


class _Net(torch.nn.Module):
    def __init__(self, d, width):
        super().__init__()
        self.hidden = torch.nn.Linear(d, width, bias=False)
        self.readout = torch.nn.Linear(width, 1, bias=False)

    def forward(self, x):
        return self.readout(torch.erf(self.hidden(x))).squeeze(-1)


def naive_rate(d, width, n, chains, device, dtype, steps) -> float:
    generator, x, y = _problem(d, width, n, device, dtype)
    temperature, lr = 0.01, 1e-4
    nets = [_Net(d, width).to(device=device, dtype=dtype) for _ in range(chains)]
    decays = [temperature * d, temperature * width]

    def one_step():
        for net in nets:  # the Python loop over chains of the papers' scripts
            net.zero_grad()
            loss = 0.5 * ((net(x) - y) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                for param, decay in zip(net.parameters(), decays):
                    noise = torch.randn(param.shape, generator=generator, device=device, dtype=dtype)
                    param.add_(-lr * (param.grad + decay * param) + math.sqrt(2 * lr * temperature) * noise)

    one_step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    _sync(device)
    return steps * chains / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--quick", action="store_true", help="fewer steps (for a smoke check)")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    peak = matmul_rate(device, dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; dtype {args.dtype}")
    print(f"measured dense matmul rate (4096²): {peak / 1e9:.1f} GFLOP/s")
    header = f"{'d':>4} {'N':>5} {'n':>5} {'chains':>6} | {'batched ch-st/s':>15} {'naive ch-st/s':>14} {'ratio':>6} | {'GFLOP/s':>8} {'of matmul':>9}"
    print(header)
    print("-" * len(header))
    for d, width, n in SIZES:
        big = d * width * n > 1e7
        for chains in (1, 64):
            steps = (2 if args.quick else 5) if big else (20 if args.quick else 200)
            batched = batched_rate(d, width, n, chains, device, dtype, steps)
            naive_chains = chains if not (big and device.type == "cpu") else min(chains, 8)
            naive = naive_rate(d, width, n, naive_chains, device, dtype, max(1, steps // 2))
            flops = 4.0 * n * width * d * batched
            print(f"{d:>4} {width:>5} {n:>5} {chains:>6} | {batched:>15.1f} {naive:>14.1f} "
                  f"{batched / naive:>6.2f} | {flops / 1e9:>8.1f} {flops / peak:>9.1%}")
    print("naive rates at the big size on CPU use min(chains, 8) networks: its cost is linear in chains.")


if __name__ == "__main__":
    main()
