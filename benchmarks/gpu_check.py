"""The one script to run when a GPU is lent: throughput and correctness of the step on CUDA.

    python benchmarks/gpu_check.py [--out DIR] [--quick]        # on the GPU machine
    python benchmarks/gpu_check.py --cpu-dry-run                # here: the same code paths
                                                                #   on the CPU, tiny sizes

1. Throughput (chain-steps/s, GFLOP/s with 4·n·N·(d+1) FLOPs per chain-step, and the
   fraction of the dense-matmul rate measured in the same run in the same precision) of
   the two-layer erf step at (d, N, n) = (16, 64, 128) and (150, 700, 3000) with 1, 64
   and 512 chains: eager and compiled (`langevin.compiled`), compiled with mode
   "reduce-overhead" (CUDA graphs), each in IEEE float32 and in TF32
   (`experiments.setup.step_options.matmul_precision`), and the naive per-chain loop.
2. The ULA exact-variance check on the device: U = ½kθ², 4096 chains, float64; the
   sampled E[θ²] against T/(k(1 − ηk/2)) within 4 standard errors (independent chains).
3. A small run resumed on the device: `run_chains` of the `smoke` preset on the device,
   once uninterrupted and once stopped and resumed from its checkpoint; the stored draws
   must be equal bit for bit (eager, and compiled).
The dry run uses the CPU, sizes (4, 8, 16) with 1 and 4 chains, 2 steps, the "aot_eager"
compile backend (no C++ compilation) and no TF32 (which needs CUDA), so it checks the
plumbing in seconds, not the numbers. Results are printed and, with --out, written to
DIR/gpu_check.json. Exit status 1 if a correctness check fails.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_peers import flops_per_chain_step  # noqa: E402
from step_throughput import batched_rate, compiled_rate, matmul_rate, naive_rate  # noqa: E402

from experiments.setup.step_options import matmul_precision  # noqa: E402

SIZES = [(16, 64, 128), (150, 700, 3000)]
CHAINS = [1, 64, 512]


def _timed_variants(device, quick, dry_run):
    if dry_run:
        sizes, chain_counts, precisions, backend = [(4, 8, 16)], [1, 4], ["ieee"], "aot_eager"
    else:
        sizes, chain_counts, precisions, backend = SIZES, CHAINS, ["ieee", "tf32"], "inductor"
    rows = []
    for precision in precisions:
        with matmul_precision(precision):
            peak = matmul_rate(device, torch.float32, size=256 if dry_run else 8192)
            for d, width, n in sizes:
                big = d * width * n > 1e7
                for chains in chain_counts:
                    steps = 2 if dry_run else ((5 if quick else 20) if big else
                                              (50 if quick else 200))
                    row = {"precision": precision, "d": d, "N": width, "n": n,
                           "chains": chains, "matmul_rate": peak}
                    row["eager"] = batched_rate(d, width, n, chains, device, torch.float32,
                                                steps)
                    for name, mode in (("compiled", None), ("cuda_graphs", "reduce-overhead")):
                        if mode == "reduce-overhead" and device.type != "cuda" and not dry_run:
                            continue
                        try:
                            rate, seconds = compiled_rate(
                                d, width, n, chains, device, torch.float32, steps,
                                mode=None if device.type != "cuda" else mode, backend=backend)
                            row[name], row[name + "_compile_seconds"] = rate, seconds
                        except Exception as err:  # recorded, not hidden
                            row[name] = f"failed: {type(err).__name__}: {err}"[:300]
                    if precision == "ieee":
                        naive_chains = min(chains, 64 if device.type == "cuda" else 8)
                        row["naive"] = naive_rate(d, width, n, naive_chains, device,
                                                  torch.float32, max(1, steps // 4))
                    best = max(v for k, v in row.items()
                               if k in ("eager", "compiled", "cuda_graphs")
                               and isinstance(v, float))
                    row["best"] = best
                    row["gflops"] = flops_per_chain_step(d, width, n) * best / 1e9
                    row["of_matmul_rate"] = row["gflops"] * 1e9 / peak
                    rows.append(row)
                    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v)
                                      for k, v in row.items()}), flush=True)
    return rows


def ula_exact_variance(device, dry_run) -> dict:
    from langevin.integrators import euler_maruyama
    from langevin.potential import gaussian_potential

    k, eta, temperature = 1.0, 0.5, 0.5
    chains, burn_in, steps = (256, 50, 200) if dry_run else (4096, 200, 2000)
    integrator = euler_maruyama(gaussian_potential({"x": k}), {"x": eta}, temperature)
    generator = torch.Generator(device=device).manual_seed(11)
    state = integrator.init({"x": torch.zeros(chains, 1, dtype=torch.float64, device=device)})
    for _ in range(burn_in):
        state, _ = integrator.step(state, generator)
    total = torch.zeros(chains, 1, dtype=torch.float64, device=device)
    for _ in range(steps):
        state, _ = integrator.step(state, generator)
        total += state.theta["x"] ** 2
    per_chain = (total / steps).cpu().numpy()[:, 0]
    truth = temperature / (k * (1 - eta * k / 2))
    se = per_chain.std(ddof=1) / math.sqrt(chains)
    z = abs(per_chain.mean() - truth) / se
    return {"estimate": float(per_chain.mean()), "truth": truth, "se": float(se),
            "z": float(z), "passed": bool(z < 4)}


def resumed_run_is_bitwise(device, compiled, dry_run) -> dict:
    from experiments.setup import config as cfg
    from experiments.setup.build import build_run, make_data
    from langevin.compiled import compile_step
    from langevin.run import run_chains
    from langevin.store import SampleStore

    settings = [f"sampler.device={device.type}", "sampler.num_steps=60", "sampler.burn_in=10",
                "sampler.thin=5", "sampler.checkpoint_every=20"]
    from experiments.presets import get_preset

    config, _ = cfg.resolve([get_preset("smoke").overrides], settings)
    data = make_data(config)
    backend = "aot_eager" if dry_run else "inductor"

    def run(directory, stop_after=None):
        setup = build_run(config, data)
        integrator = compile_step(setup.integrator, backend=backend) if compiled \
            else setup.integrator
        calls = {"n": 0}

        def stop():
            calls["n"] += 1
            return stop_after is not None and calls["n"] >= stop_after

        return run_chains(integrator=integrator, initial_theta=setup.initial_theta,
                          generator=setup.generator, observables=setup.observables,
                          plan=setup.plan,
                          store=SampleStore(directory / "samples.zarr",
                                            config["sampler"]["num_chains"]),
                          checkpoint_dir=directory / "checkpoint", config_hash="gpu_check",
                          stop_requested=stop)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(tmp / "whole")
        run(tmp / "split", stop_after=37)
        run(tmp / "split")
        stored = [SampleStore(tmp / d / "samples.zarr", config["sampler"]["num_chains"]).open()
                  .load() for d in ("whole", "split")]
        different = [name for name in stored[0].data_vars
                     if not np.array_equal(stored[0][name].values, stored[1][name].values)]
    return {"compiled": compiled, "variables": len(stored[0].data_vars),
            "different": different, "passed": not different}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run every part on the CPU at tiny sizes (plumbing check)")
    parser.add_argument("--quick", action="store_true", help="fewer timed steps")
    parser.add_argument("--out", type=Path, default=None, help="write DIR/gpu_check.json")
    args = parser.parse_args()
    if not args.cpu_dry_run and not torch.cuda.is_available():
        print("error: no CUDA device; use --cpu-dry-run to check the script on a CPU",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.cpu_dry_run else "cuda")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    start = time.perf_counter()
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    results = {"device": name, "torch": torch.__version__,
               "correctness": {"ula_exact_variance": ula_exact_variance(device, args.cpu_dry_run)}}
    print(json.dumps(results["correctness"]), flush=True)
    for compiled in (False, True):
        key = "resume_bitwise_" + ("compiled" if compiled else "eager")
        results["correctness"][key] = resumed_run_is_bitwise(device, compiled, args.cpu_dry_run)
        print(json.dumps({key: results["correctness"][key]}), flush=True)
    results["throughput"] = _timed_variants(device, args.quick, args.cpu_dry_run)
    results["seconds"] = time.perf_counter() - start
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    passed = all(check["passed"] for check in results["correctness"].values())
    print(f"correctness: {'passed' if passed else 'FAILED'}; {results['seconds']:.0f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
