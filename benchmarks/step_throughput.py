"""Throughput of the Langevin step loop: chain-steps per second of the two-layer erf
posterior, the project's step against its peers, measured side by side in one process.

Main table, at (d, N, n) = (16, 64, 128) and (150, 700, 3000), 1 and 64 chains:
  eager     the project's Euler–Maruyama step (`langevin.integrators.euler_maruyama` on
            the one-hidden-layer `FullyConnectedNetwork`, fused analytic backward of
            `models.two_layer`), at torch's default thread count ("eager") and at 1
            thread ("eager 1t");
  compiled  the same step with its whole advance `torch.compile`d (`langevin.compiled`;
            64 chains; --no-compile skips);
  native    the same step with the loss and gradient of the C kernel
            `langevin.native.two_layer` (`sampler.cpu_kernel = "native"`; CPU, float32),
            at torch's default thread count and at 1 thread ("nat 1t");
  naive     what the papers' scripts do: one nn.Module per chain, autograd backward,
            per-parameter noise, a Python loop over chains;
  bjx       a vmapped, jitted `blackjax.sgld` of the SAME posterior (same data law, prior
            variances, temperature, per-layer step sizes; float32), when the [jax] extra
            is installed (`step_peers.blackjax_rate`), called once per step ("bjx") and
            as one jitted loop over all steps ("bjx scan").
Printed: chain-steps/s, the ratios (of the better eager column, and of the better native
column: "nat/bjx"), achieved FLOP/s with 4·n·N·(d+1) FLOPs per
chain-step (the matmuls h = Xwᵀ, Bᵀ X and the two readout matvecs) and its fraction of
the dense-matmul rate (a 4096² float32 matmul) measured in the same run; on CPU also the
time of each piece of the step at the big size (what bounds it).
--deep adds the older tables: fused vs generic batched-autograd gradient, and a deep fc
network (d=64, widths [256, 256], n=1024; generic path only).

    python benchmarks/step_throughput.py [--device cpu|cuda] [--quick] [--no-compile] [--deep]
                                         [--rounds R]
"""
from __future__ import annotations

import argparse
import math
import statistics
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
    kernel = None
    if gradient == "native":
        from experiments.setup.native_kernel import load_two_layer_kernel
        kernel = load_two_layer_kernel()
    return FullyConnectedNetwork(d, tuple(widths), "erf", variances, gradient=gradient,
                                 native_kernel=kernel)


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


def compiled_rate(d, width, n, chains, device, dtype, steps, mode=None,
                  backend="inductor") -> tuple[float, float]:
    """(chain-steps/s, compile seconds) of the step with its whole `advance` compiled
    (`langevin.compiled.compile_step`: potential, analytic gradient and update in one
    graph; the noise is drawn eagerly from the explicit torch.Generator, as in a run).
    `mode`: torch.compile's mode ("reduce-overhead": CUDA graphs on a GPU)."""
    from langevin.compiled import compile_step

    generator, x, y = _problem(d, (width,), n, device, dtype)
    temperature = 0.01
    model = _fc_model(d, (width,), "auto")
    decays = {name: temperature / variance for name, variance in model.prior_variances.items()}
    integrator = compile_step(euler_maruyama(make_potential(model, x, y, decays),
                                             per_layer_step_sizes(1e-4, decays), temperature),
                              mode=mode, backend=backend)
    start = time.perf_counter()
    state = integrator.init(model.sample_prior(chains, generator, dtype, device))
    for _ in range(2 if mode == "reduce-overhead" else 1):  # CUDA graphs record on call 2
        state, _ = integrator.step(state, generator)
    _sync(device)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        state, _ = integrator.step(state, generator)
    _sync(device)
    return steps * chains / (time.perf_counter() - start), compile_seconds


def native_available() -> bool:
    from experiments.setup.native_kernel import two_layer_kernel_unavailable

    reason = two_layer_kernel_unavailable()
    if reason is not None:
        print(f"native columns: not measured ({reason})")
    return reason is None


def _with_threads(threads, fn, *args):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


def interleaved_medians(columns: dict, rounds: int) -> dict[str, float]:
    """The median over `rounds` of each column's rate (None: NaN), the columns measured in
    turn within each round, so that a change of the machine's load or clock during the
    run affects all of them alike."""
    measured = {name: [] for name in columns}
    for _ in range(rounds):
        for name, measure in columns.items():
            if measure is not None:
                measured[name].append(measure())
    return {name: statistics.median(values) if values else math.nan
            for name, values in measured.items()}


def peer_table(device, dtype, quick: bool, compile_step: bool, peak: float,
               rounds: int = 3) -> None:
    """The two-layer erf step: project (eager at torch's default threads and at 1 thread,
    compiled, native), the naive per-chain loop, and a vmapped jitted BlackJAX SGLD; each
    rate the median of `rounds` interleaved measurements (the compiled one: one)."""
    from step_peers import blackjax_available, blackjax_rate, flops_per_chain_step

    use_jax = device.type == "cpu" and dtype == torch.float32 and blackjax_available()
    default_threads = torch.get_num_threads()
    print(f"FLOPs per chain-step: 4·n·N·(d+1) (the forward and backward matmuls, the "
          f"readout matvecs); threads: torch default {default_threads}")
    print("rates in chain-steps/s; 'bjx' = BlackJAX SGLD jit(vmap(step)) called per step, "
          "'bjx scan' = the steps in one jitted fori_loop")
    use_native = device.type == "cpu" and dtype == torch.float32 and native_available()
    header = (f"{'d':>4} {'N':>4} {'n':>5} {'C':>3} | {'eager':>8} {'eager 1t':>8} "
              f"{'compiled':>8} {'native':>8} {'nat 1t':>8} {'naive':>8} {'bjx':>8} "
              f"{'bjx scan':>8} | {'/naive':>6} {'/bjx':>5} {'/scan':>5} {'comp/eag':>8} "
              f"{'nat/bjx':>7} {'nat/scan':>8} | {'GFLOP/s':>7} {'of mm':>6} {'nat GF/s':>8} "
              f"{'of mm':>6}")
    print(header)
    print("-" * len(header))
    for d, width, n in SIZES:
        big = d * width * n > 1e7
        for chains in (1, 64):
            steps = (2 if quick else 3) if big else (20 if quick else 600)
            compiled = compile_seconds = math.nan
            if compile_step and chains == 64:
                try:
                    compiled, compile_seconds = compiled_rate(d, width, n, chains, device,
                                                              dtype, steps)
                except Exception as err:  # report, do not hide: the table says "failed"
                    print(f"torch.compile failed at {(d, width, n, chains)}: "
                          f"{type(err).__name__}: {err}")
            naive_chains = chains if not (big and device.type == "cpu") else min(chains, 8)
            args = (d, width, n, chains, device, dtype, steps)
            columns = {
                "eager": lambda: batched_rate(*args),
                "eager 1t": ((lambda: _with_threads(1, batched_rate, *args))
                             if device.type == "cpu" else None),
                "native": (lambda: batched_rate(*args, "native")) if use_native else None,
                "nat 1t": ((lambda: _with_threads(1, batched_rate, *args, "native"))
                           if use_native else None),
                "naive": lambda: naive_rate(d, width, n, naive_chains, device, dtype,
                                            max(1, steps // (2 if big else 20))),
                "bjx": (lambda: blackjax_rate(d, width, n, chains, steps)) if use_jax else None,
                "bjx scan": ((lambda: blackjax_rate(d, width, n, chains, steps, scan=True))
                             if use_jax else None),
            }
            rates = interleaved_medians(columns, rounds)
            eager, one_thread, native, native_1t, naive, bjx, scan = (
                rates[name] for name in columns)
            best = max(eager, one_thread if one_thread == one_thread else 0.0)
            best_native = max(native, native_1t) if use_native else math.nan
            flops = flops_per_chain_step(d, width, n) * best
            native_flops = flops_per_chain_step(d, width, n) * best_native
            print(f"{d:>4} {width:>4} {n:>5} {chains:>3} | {eager:>8.1f} {one_thread:>8.1f} "
                  f"{compiled:>8.1f} {native:>8.1f} {native_1t:>8.1f} {naive:>8.1f} "
                  f"{bjx:>8.1f} {scan:>8.1f} | "
                  f"{best / naive:>6.2f} {best / bjx:>5.2f} {best / scan:>5.2f} "
                  f"{compiled / eager:>8.2f} {best_native / bjx:>7.2f} {best_native / scan:>8.2f} | "
                  f"{flops / 1e9:>7.2f} {flops / peak:>6.1%} {native_flops / 1e9:>8.2f} "
                  f"{native_flops / peak:>6.1%}"
                  + (f"  (compile {compile_seconds:.0f} s)" if compile_seconds == compile_seconds
                     else ""))
    print(f"each rate: the median of {rounds} interleaved measurements (compiled: one); ratios "
          "and GFLOP/s use the better of the two eager (native) thread counts; naive rates "
          "at the big size on CPU use min(chains, 8) networks (its cost is linear in chains)")
    if not use_jax:
        print("BlackJAX columns: not measured (install the [jax] extra; CPU float32 only)")


def pieces_table(device, dtype, quick: bool) -> None:
    from step_peers import flops_per_chain_step, piece_times, stream_rate

    d, width, n = SIZES[-1]
    chains = 64
    times = piece_times(d, width, n, chains, repeats=1 if quick else 2, dtype=dtype)
    total = sum(times.values())
    elements = chains * n * width
    bandwidth = stream_rate(elements, dtype)
    print(f"pieces of the fused step at (d, N, n, C) = {(d, width, n, chains)}, each timed alone "
          f"(sum {total:.3f} s per step = {chains / total:.1f} chain-steps/s):")
    for name, seconds in times.items():
        print(f"  {name:<30} {seconds:8.4f} s  {seconds / total:6.1%}")
    matmul = times["forward matmul X wᵀ"] + times["backward matmul Bᵀ X"]
    print(f"  the two big matmuls: {flops_per_chain_step(d, width, n) * chains / matmul / 1e9:.1f}"
          f" GFLOP/s; in-place pass over one (C, n, N) tensor ({elements * 4 / 1e9:.2f} GB): "
          f"{bandwidth / 1e9:.1f} GB/s read+write")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--quick", action="store_true", help="fewer steps (for a smoke check)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved measurements per rate (the median is printed)")
    parser.add_argument("--deep", action="store_true",
                        help="also the fused-vs-generic and deep fc tables")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    peak = matmul_rate(device, dtype)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; dtype {args.dtype}")
    print(f"measured dense matmul rate (4096²): {peak / 1e9:.1f} GFLOP/s")
    peer_table(device, dtype, args.quick, not args.no_compile, peak, args.rounds)
    if device.type == "cpu":
        print()
        pieces_table(device, dtype, args.quick)
    if args.deep:
        print()
        fused_generic_tables(device, dtype, args.quick, peak)


def fused_generic_tables(device, dtype, quick: bool, peak: float) -> None:
    header = (f"{'d':>4} {'N':>5} {'n':>5} {'chains':>6} | {'fused ch-st/s':>13} "
              f"{'generic ch-st/s':>15} {'naive ch-st/s':>14} {'fused/naive':>11} | "
              f"{'GFLOP/s':>8} {'of matmul':>9}")
    print(header)
    print("-" * len(header))
    for d, width, n in SIZES:
        big = d * width * n > 1e7
        for chains in (1, 64):
            steps = (2 if quick else 5) if big else (20 if quick else 200)
            batched = batched_rate(d, width, n, chains, device, dtype, steps)
            generic = batched_rate(d, width, n, chains, device, dtype, steps, "autograd")
            native = native_1t = math.nan
            if use_native:
                native = batched_rate(d, width, n, chains, device, dtype, steps, "native")
                native_1t = _with_threads(1, batched_rate, d, width, n, chains, device, dtype,
                                          steps, "native")
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
            steps = 2 if quick else 10
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
