"""Throughput of the Langevin step loop: chain-steps per second, batched vs naive.

For each problem size and chain count, measured side by side in one process:
  batched  the project's Euler–Maruyama step (one tensor per layer, chains leading,
           analytic backward pass): `langevin.integrators.euler_maruyama`;
  generic  the same step with the generic batched-autograd gradient (one backward pass
           of Σ_c L_c, `langevin.models.autograd_loss_and_gradient`);
  naive    what the papers' scripts do: one nn.Module per chain, autograd backward,
           per-parameter noise, a Python loop over chains.
A second table does the same for a deep fc network (d=64, widths [256, 256], n=1024),
whose batched step is the generic autograd path (there is no fused deep backward).
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
from langevin.models import FullyConnectedNetwork
from langevin.models.fc import fc_layer_names
from langevin.potential import make_potential

SIZES = [  # (d, N, n)
    (16, 64, 128),
    (150, 700, 3000),  # the grokking paper's network (Rubin et al. 2024, App. C)
]
DEEP_SIZES = [  # (d, widths, n)
    (64, (256, 256), 1024),
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


def _fc_model(d, widths, gradient):
    """fc network with the standard prior σ_l² = 1: every weight ~ N(0, 1/fan_in)."""
    fan_ins = (d, *widths)
    names = fc_layer_names(len(widths), bias=False)
    variances = {name: 1.0 / fan_in for name, fan_in in zip(names, fan_ins)}
    return FullyConnectedNetwork(d, tuple(widths), "erf", variances, gradient=gradient)


def batched_rate(d, widths, n, chains, device, dtype, steps, gradient="auto") -> float:
    """Chain-steps/s of the batched step; `gradient` "auto" is the fused two-layer backward
    for one hidden layer, "autograd" the generic batched-autograd pass."""
    widths = (widths,) if isinstance(widths, int) else tuple(widths)
    generator, x, y = _problem(d, widths, n, device, dtype)
    temperature = 0.01
    model = _fc_model(d, widths, gradient)
    decays = {name: temperature / variance for name, variance in model.prior_variances.items()}
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
    def __init__(self, d, widths):
        super().__init__()
        fan_ins = (d, *widths)
        self.hidden = torch.nn.ModuleList(
            torch.nn.Linear(fan_in, width, bias=False) for fan_in, width in zip(fan_ins, widths))
        self.readout = torch.nn.Linear(widths[-1], 1, bias=False)

    def forward(self, x):
        for linear in self.hidden:
            x = torch.erf(linear(x))
        return self.readout(x).squeeze(-1)


def naive_rate(d, widths, n, chains, device, dtype, steps) -> float:
    widths = (widths,) if isinstance(widths, int) else tuple(widths)
    generator, x, y = _problem(d, widths, n, device, dtype)
    temperature, lr = 0.01, 1e-4
    nets = [_Net(d, widths).to(device=device, dtype=dtype) for _ in range(chains)]
    decays = [temperature * fan_in for fan_in in (d, *widths)]

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
    header = (f"{'d':>4} {'N':>5} {'n':>5} {'chains':>6} | {'fused ch-st/s':>13} "
              f"{'generic ch-st/s':>15} {'naive ch-st/s':>14} {'fused/naive':>11} | "
              f"{'GFLOP/s':>8} {'of matmul':>9}")
    print(header)
    print("-" * len(header))
    for d, width, n in SIZES:
        big = d * width * n > 1e7
        for chains in (1, 64):
            steps = (2 if args.quick else 5) if big else (20 if args.quick else 200)
            batched = batched_rate(d, width, n, chains, device, dtype, steps)
            generic = batched_rate(d, width, n, chains, device, dtype, steps, "autograd")
            naive_chains = chains if not (big and device.type == "cpu") else min(chains, 8)
            naive = naive_rate(d, width, n, naive_chains, device, dtype, max(1, steps // 2))
            flops = 4.0 * n * width * d * batched
            print(f"{d:>4} {width:>5} {n:>5} {chains:>6} | {batched:>13.1f} {generic:>15.1f} "
                  f"{naive:>14.1f} {batched / naive:>11.2f} | {flops / 1e9:>8.1f} "
                  f"{flops / peak:>9.1%}")
    print("naive rates at the big size on CPU use min(chains, 8) networks: its cost is linear in chains.")
    print()
    header = (f"{'d':>4} {'widths':>11} {'n':>5} {'chains':>6} | {'generic ch-st/s':>15} "
              f"{'naive ch-st/s':>14} {'ratio':>6} | {'GFLOP/s':>8} {'of matmul':>9}")
    print("deep fc (generic batched autograd):")
    print(header)
    print("-" * len(header))
    for d, widths, n in DEEP_SIZES:
        # Multiply-adds per chain-step: forward n·Σ fan_in·N_l, backward twice that.
        flops_per_step = 2.0 * 3.0 * n * sum(a * b for a, b in zip((d, *widths), widths))
        for chains in (1, 16):
            steps = 2 if args.quick else 10
            generic = batched_rate(d, widths, n, chains, device, dtype, steps, "autograd")
            naive_chains = chains if device.type != "cpu" else min(chains, 4)
            naive = naive_rate(d, widths, n, naive_chains, device, dtype, max(1, steps // 2))
            flops = flops_per_step * generic
            print(f"{d:>4} {str(list(widths)):>11} {n:>5} {chains:>6} | {generic:>15.1f} "
                  f"{naive:>14.1f} {generic / naive:>6.2f} | {flops / 1e9:>8.1f} "
                  f"{flops / peak:>9.1%}")
    print("naive deep rates on CPU use min(chains, 4) networks.")


if __name__ == "__main__":
    main()
