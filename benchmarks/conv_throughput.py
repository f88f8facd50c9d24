"""Throughput of the Langevin step of the patch networks (cnn, lcn) on the digits: batched vs naive.

Problem: scikit-learn's 8x8 digits, odd/even target (n ≈ 1348 training images), 4x4
non-overlapping patches (M = 4 patches of k = 16 pixels), 64 channels, erf.
Measured side by side in one process:
  batched  `langevin.integrators.euler_maruyama` on `langevin.models.conv.LocalPatchNetwork`
           (patches unfolded inside, one matmul for all chains, analytic backward);
  naive    one nn.Module per chain (Conv2d for cnn, one Linear per patch for lcn, then a
           dense readout), autograd backward, per-parameter noise, a Python loop over chains.
FLOPs per chain-step: 4·n·M·k·K (the hidden-layer matmul and its weight-gradient matmul,
2 FLOPs per multiply-add; readout and elementwise work not counted), printed beside the
machine's dense-matmul rate (4096², same dtype) as the practical hardware limit.

    python benchmarks/conv_throughput.py [--device cpu|cuda] [--seconds S]
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from experiments.setup.digits import digits_data
from langevin.models.conv import LocalPatchNetwork, patch_prior_variances
from langevin.integrators import euler_maruyama, per_layer_step_sizes
from langevin.potential import make_potential

PATCH, CHANNELS = 4, 64
TEMPERATURE, STEP = 0.01, 1e-3


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


def _model(shared: bool) -> LocalPatchNetwork:
    variances = patch_prior_variances(PATCH * PATCH, (8 // PATCH) ** 2, CHANNELS, 1.0, 1.0)
    return LocalPatchNetwork((8, 8), PATCH, PATCH, CHANNELS, "erf", variances, shared=shared)


def _timed(step, chains, device, seconds) -> float:
    """Chain-steps/s of `step`, repeated until `seconds` of wall time have passed (>= 2 steps)."""
    step()  # warm-up
    _sync(device)
    count, start = 0, time.perf_counter()
    while count < 2 or time.perf_counter() - start < seconds:
        step()
        _sync(device)
        count += 1
    return count * chains / (time.perf_counter() - start)


def batched_rate(model, x, y, chains, seconds, device, dtype) -> float:
    generator = torch.Generator(device=device).manual_seed(0)
    decays = {layer: TEMPERATURE / v for layer, v in model.prior_variances.items()}
    integrator = euler_maruyama(make_potential(model, x, y, decays),
                                per_layer_step_sizes(STEP, decays), TEMPERATURE)
    state = integrator.init(model.sample_prior(chains, generator, dtype, device))

    def one_step():
        nonlocal state
        state, _ = integrator.step(state, generator)

    return _timed(one_step, chains, device, seconds)


class _ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, CHANNELS, PATCH, stride=PATCH, bias=False)
        self.readout = torch.nn.Linear(CHANNELS * (8 // PATCH) ** 2, 1, bias=False)

    def forward(self, x):
        h = self.conv(x.reshape(-1, 1, 8, 8)).flatten(1)
        return self.readout(torch.erf(h)).squeeze(-1)


class _LocalNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        grid = 8 // PATCH
        self.slices = [(i * PATCH, j * PATCH) for i in range(grid) for j in range(grid)]
        self.hidden = torch.nn.ModuleList(
            torch.nn.Linear(PATCH * PATCH, CHANNELS, bias=False) for _ in self.slices)
        self.readout = torch.nn.Linear(CHANNELS * len(self.slices), 1, bias=False)

    def forward(self, x):
        image = x.reshape(-1, 8, 8)
        h = [lin(image[:, r:r + PATCH, c:c + PATCH].reshape(len(x), -1))
             for lin, (r, c) in zip(self.hidden, self.slices)]
        return self.readout(torch.erf(torch.cat(h, dim=1))).squeeze(-1)


def naive_rate(model, x, y, chains, seconds, device, dtype) -> float:
    generator = torch.Generator(device=device).manual_seed(0)
    net_type = _ConvNet if model.shared else _LocalNet
    nets = [net_type().to(device=device, dtype=dtype) for _ in range(chains)]
    decay_w = TEMPERATURE / model.prior_variances["w"]
    decay_a = TEMPERATURE / model.prior_variances["a"]

    def one_step():
        for net in nets:  # the Python loop over chains of the papers' scripts
            net.zero_grad()
            loss = 0.5 * ((net(x) - y) ** 2).sum()
            loss.backward()
            with torch.no_grad():
                for name, param in net.named_parameters():
                    decay = decay_a if name.startswith("readout") else decay_w
                    lr = STEP / decay
                    noise = torch.randn(param.shape, generator=generator, device=device,
                                        dtype=dtype)
                    param.add_(-lr * (param.grad + decay * param)
                               + math.sqrt(2 * lr * TEMPERATURE) * noise)

    return _timed(one_step, chains, device, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="wall time per measurement (each runs at least 2 steps)")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    data = digits_data(target="odd_even", seed=0)
    x = torch.as_tensor(data.x_train, device=device, dtype=dtype)
    y = torch.as_tensor(data.y_train, device=device, dtype=dtype)
    peak = matmul_rate(device, dtype)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU, {torch.get_num_threads()} threads")
    print(f"device: {name}; torch {torch.__version__}; dtype {args.dtype}")
    print(f"digits odd/even: n = {len(x)}, 8x8, patches {PATCH}x{PATCH} stride {PATCH}, "
          f"{CHANNELS} channels")
    print(f"measured dense matmul rate (4096²): {peak / 1e9:.1f} GFLOP/s")
    header = (f"{'model':>5} {'chains':>6} | {'batched ch-st/s':>15} {'naive ch-st/s':>14} "
              f"{'ratio':>6} | {'GFLOP/s':>8} {'of matmul':>9}")
    print(header)
    print("-" * len(header))
    chain_counts = (1, 16, 64) if device.type == "cpu" else (1, 64, 1024)
    for shared, label in ((True, "cnn"), (False, "lcn")):
        model = _model(shared)
        flops_per_chain_step = 4.0 * len(x) * model.num_patches * model.patch_dim * CHANNELS
        for chains in chain_counts:
            batched = batched_rate(model, x, y, chains, args.seconds, device, dtype)
            naive_chains = min(chains, 16)  # its cost is linear in chains
            naive = naive_rate(model, x, y, naive_chains, args.seconds, device, dtype)
            flops = flops_per_chain_step * batched
            print(f"{label:>5} {chains:>6} | {batched:>15.1f} {naive:>14.1f} "
                  f"{batched / naive:>6.2f} | {flops / 1e9:>8.1f} {flops / peak:>9.1%}")
    print("naive rates use min(chains, 16) networks (a per-chain loop: cost linear in chains).")


if __name__ == "__main__":
    main()
