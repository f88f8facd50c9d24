"""`langevin reference [NAME|CONFIG] [--set ...] [--out DIR]`: Langevin against NUTS on a
tiny problem.

Runs the project's Langevin sampler (an ordinary run directory, `OUT/langevin`) and the
NUTS reference sampler (`langevin.reference`, NumPyro, vectorized chains) on the same
data, model, prior and likelihood, and compares symmetric posterior statistics (the
posterior is invariant under neuron permutations and, for odd φ, (w, a) → (−w, −a), so
chains of either sampler may sit in different copies of a mode):

    predictive_mean[j]      E[f(x_j)]                on the first test points
    predictive_variance[j]  E[(f(x_j) − E f(x_j))²]  (the posterior variance of f)
    q2, q4                  E[mean_i q_i²], E[mean_i q_i⁴],  q_i = w_i·w*
    train_loss, squared_norm_w, squared_norm_a

Each estimate comes with its MCSE (`langevin.diagnostics.mcse_mean` over all chains;
for the variance, the MCSE of the mean of the centered squares). With D = Langevin −
NUTS, b̂ ± s_b the Langevin step-size bias estimated by step halving from the run's last
checkpoint (`experiments.reporting.bias`, K = num_steps/4 steps; b̂ = 0 for MALA, which is
unbiased), a statistic agrees when either

    z = |D| / √(mcse_L² + mcse_N²) < 4                   (as sampled), or
    z_corrected = |D − b̂| / √(mcse_L² + mcse_N² + s_b²) < 4   (bias-corrected Langevin).

The second form allows exactly the O(η) bias that the step halving resolves; its noise
enters through s_b instead of widening the tolerance by |b̂|. Writes
`OUT/reference.json`, prints a table; the exit code is 0 when every statistic agrees,
1 otherwise, 2 on a usage error (problem too large, JAX missing).

Tiny problems only (NUTS cost grows fast with the dimension): d ≤ 5, width ≤ 8,
n_train ≤ 20. Without a NAME|CONFIG the problem is `TINY_PROBLEM` (on the smoke preset).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from experiments import presets
from experiments.compare.theory_inputs import is_two_layer
from experiments.reporting import bias
from experiments.rundirs import rundir
from experiments.rundirs.run_draws import chain_draw, q_draws
from experiments.runner import execute, start_run
from experiments.setup import config as cfg
from experiments.setup.architectures import fc_widths
from experiments.setup.build import build_run, make_data
from experiments.setup.run_mode_setup import theory_skip_reason
from langevin import diagnostics
from langevin import observables as obs
from langevin.reference import (
    ReferenceSamplerUnavailable, nuts_two_layer_posterior, require_reference_sampler,
)
from langevin.store import SampleStore

LIMITS = {"data.d": 5, "model.width": 8, "data.n_train": 20}
AGREEMENT_IN_MCSE = 4.0
DEFAULT_TEST_POINTS = 6
TINY_PROBLEM = {
    "model": {"width": 4},
    "data": {"d": 3, "n_train": 12, "n_test": 8},
    "posterior": {"noise_variance": 0.5},
    "sampler": {"num_chains": 16, "num_steps": 20000, "burn_in": 2000, "thin": 10,
                "checkpoint_every": 22000, "step_size": 0.002},
}


class ProblemTooLarge(ValueError):
    """The problem is too large for the NUTS reference (LIMITS)."""


def _overrides(source: str | None) -> tuple[str, list[dict]]:
    if source is None:
        return "reference", [presets.get_preset("smoke").overrides, TINY_PROBLEM]
    if source.endswith(".toml") or Path(source).is_file():
        return Path(source).stem, [cfg.load_toml(source)]
    return source, [presets.get_preset(source).overrides]


def check_problem_size(config: dict, x_train: np.ndarray) -> None:
    """Refuse (ProblemTooLarge, naming the key) anything beyond LIMITS, and any network
    but the one the NUTS model implements (fc, one hidden layer, no bias)."""
    if not is_two_layer(config):
        raise ProblemTooLarge(
            "the NUTS reference check implements the fc network with one hidden layer and no "
            f"bias; got model.architecture = {config['model']['architecture']!r}, "
            f"model.widths = {config['model']['widths']!r}, model.bias = "
            f"{config['model']['bias']!r}")
    if theory_skip_reason(config) is not None:  # NUTS samples the Gaussian likelihood, fixed T
        raise ProblemTooLarge("the NUTS reference check implements the Gaussian likelihood at "
                              "alpha = 1 and a fixed T; " + theory_skip_reason(config)
                              .split("this run has ", 1)[1])
    sizes = {"data.d": x_train.shape[1], "model.width": fc_widths(config)[0],
             "data.n_train": x_train.shape[0]}
    for key, limit in LIMITS.items():
        if sizes[key] > limit:
            raise ProblemTooLarge(
                f"the NUTS reference check is for tiny problems: {key} = {sizes[key]} > {limit} "
                f"(limits: {LIMITS}); set it with --set {key}=...")


def symmetric_statistics(draws: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """{statistic: (estimate, MCSE)} from draws (chain, draw, ...) of f_test (test points),
    q (neurons), train_loss, squared_norm_w, squared_norm_a (those present)."""
    out = {}
    if "f_test" in draws:
        f = draws["f_test"]
        mean, mcse = f.mean(axis=(0, 1)), diagnostics.mcse_mean(f)
        squares = (f - mean) ** 2
        variance, variance_mcse = squares.mean(axis=(0, 1)), diagnostics.mcse_mean(squares)
        for j in range(f.shape[2]):
            out[f"predictive_mean[{j}]"] = (float(mean[j]), float(mcse[j]))
            out[f"predictive_variance[{j}]"] = (float(variance[j]), float(variance_mcse[j]))
    scalars = {name: draws[name] for name in ("train_loss", "squared_norm_w", "squared_norm_a")
               if name in draws}
    if "q" in draws:
        scalars["q2"] = (draws["q"] ** 2).mean(axis=2)
        scalars["q4"] = (draws["q"] ** 4).mean(axis=2)
    for name, values in scalars.items():
        out[name] = (float(values.mean()), float(diagnostics.mcse_mean(values)))
    return out


def _reference_observables(setup, x_points: torch.Tensor, teacher: torch.Tensor | None) -> dict:
    layers = setup.model.layer_names
    out = {"f_test": obs.outputs(setup.model.predict, x_points, "f_test", "test_point"),
           "train_loss": obs.train_loss(), "squared_norms": obs.squared_norms(layers)}
    if teacher is not None:
        out["q"] = obs.teacher_projections(teacher)
    return out


def langevin_bias(run_dir: Path, config: dict, data, num_points: int) -> dict[str, tuple]:
    """{statistic: (b̂, MCSE)}: step-halving bias of every statistic (0 for MALA), continuing
    the run's chains from its last checkpoint (`bias.restore_continuation`)."""
    restored = bias.restore_continuation(run_dir, config, data)
    setup = restored.setup

    def tensor(a):
        return None if a is None else torch.as_tensor(a, dtype=setup.dtype, device=setup.device)

    observables = _reference_observables(setup, tensor(data.x_test[:num_points]),
                                         tensor(data.teacher_direction))
    num_steps = max(bias.automatic_steps(config), config["sampler"]["num_steps"] // 4)
    full, half = bias.step_halving(restored.build_integrator, config["sampler"]["step_size"],
                                   restored.state, restored.generator,
                                   restored.half_step_generator, num_steps, observables)
    if half is None:  # Metropolis-adjusted: unbiased
        return {}
    full_stats = symmetric_statistics({k: bias.discard_transient(v)
                                       for k, v in full.values.items()})
    half_stats = symmetric_statistics({k: bias.discard_transient(v)
                                       for k, v in half.values.items()})
    return {name: (2 * (full_stats[name][0] - half_stats[name][0]),
                   2 * math.hypot(full_stats[name][1], half_stats[name][1]))
            for name in full_stats}


def langevin_draws(run_dir: Path, config: dict, num_points: int) -> dict[str, np.ndarray]:
    store = SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"])
    ds = store.open().load()
    draws = {name: chain_draw(ds[name]).astype(np.float64)
             for name in ("train_loss", "squared_norm_w", "squared_norm_a") if name in ds}
    if "f_test" in ds:
        draws["f_test"] = chain_draw(ds["f_test"], "test_point")[
            :, :, :num_points].astype(np.float64)
    q = q_draws(store, config)
    if q is not None:
        draws["q"] = chain_draw(q, "neuron").astype(np.float64)
    return draws


def nuts_draws(config: dict, data, num_points: int, nuts_options: dict) -> tuple[dict, dict]:
    """NUTS draws of the same statistics' inputs, and NUTS's own diagnostics."""
    setup = build_run(config, data)
    physics = setup.physics
    result = nuts_two_layer_posterior(
        data.x_train, data.y_train, width=fc_widths(config)[0],
        activation=config["model"]["activation"], prior_variances=physics.prior_variances,
        noise_variance=physics.noise_variance, seed=config["sampler"]["seed"], **nuts_options)
    chains, num_draws = result.theta["a"].shape[:2]
    theta = {layer: torch.tensor(v.reshape(chains * num_draws, *v.shape[2:]))
             for layer, v in result.theta.items()}

    def per_draw(values: torch.Tensor) -> np.ndarray:
        return values.numpy().reshape(chains, num_draws, *values.shape[1:])

    x_points = torch.as_tensor(data.x_test[:num_points], dtype=torch.float64)
    x_train = torch.as_tensor(data.x_train, dtype=torch.float64)
    residual = setup.model.predict(theta, x_train) - torch.as_tensor(data.y_train)
    draws = {"f_test": per_draw(setup.model.predict(theta, x_points)),
             "train_loss": per_draw(0.5 * (residual**2).sum(-1)),
             "squared_norm_w": per_draw((theta["w"] ** 2).sum((1, 2))),
             "squared_norm_a": per_draw((theta["a"] ** 2).sum(1))}
    if data.teacher_direction is not None:
        draws["q"] = per_draw(theta["w"] @ torch.as_tensor(data.teacher_direction))
    info = {"num_chains": chains, "num_draws": num_draws,
            "num_divergences": result.num_divergences,
            "mean_acceptance": result.mean_acceptance, **nuts_options}
    return draws, info


def _z(difference: float, *errors: float) -> float:
    scale = math.sqrt(sum(e * e for e in errors))
    return abs(difference) / scale if scale > 0 else (0.0 if difference == 0 else math.inf)


def compare(langevin: dict, nuts: dict, biases: dict) -> dict[str, dict]:
    """Per statistic: both estimates, MCSEs, the bias estimate, z, z_corrected, verdict."""
    table = {}
    for name, (value_l, mcse_l) in langevin.items():
        if name not in nuts:
            continue
        value_n, mcse_n = nuts[name]
        bias_value, bias_mcse = biases.get(name, (0.0, 0.0))
        difference = value_l - value_n
        z = _z(difference, mcse_l, mcse_n)
        z_corrected = _z(difference - bias_value, mcse_l, mcse_n, bias_mcse)
        table[name] = {"langevin": value_l, "langevin_mcse": mcse_l, "nuts": value_n,
                       "nuts_mcse": mcse_n, "difference": difference,
                       "bias_estimate": bias_value, "bias_mcse": bias_mcse,
                       "z": z, "z_corrected": z_corrected,
                       "agree": bool(min(z, z_corrected) < AGREEMENT_IN_MCSE)}
    return table


def format_table(table: dict[str, dict]) -> str:
    head = (f"{'statistic':26s} {'Langevin':>11s} {'± mcse':>9s} {'NUTS':>11s} {'± mcse':>9s} "
            f"{'bias est.':>10s} {'z':>6s} {'z_corr':>6s}  verdict")
    lines = [head, "-" * len(head)]
    for name, row in table.items():
        lines.append(f"{name:26s} {row['langevin']:11.4g} {row['langevin_mcse']:9.2g} "
                     f"{row['nuts']:11.4g} {row['nuts_mcse']:9.2g} {row['bias_estimate']:10.2g} "
                     f"{row['z']:6.2f} {row['z_corrected']:6.2f}  "
                     f"{'agree' if row['agree'] else 'DISAGREE'}")
    return "\n".join(lines)


def run_reference_check(name: str, overrides: list[dict], set_args: list[str], out: Path,
                        nuts_options: dict, num_points: int = DEFAULT_TEST_POINTS) -> dict:
    """The whole check; returns the JSON-ready result (also written to OUT/reference.json)."""
    config, _ = cfg.resolve(overrides, set_args)
    data = make_data(config)
    check_problem_size(config, data.x_train)
    require_reference_sampler()  # fail before sampling when JAX is missing
    num_points = min(num_points, len(data.x_test))
    out.mkdir(parents=True, exist_ok=True)
    run_dir, config = start_run(name, overrides, set_args, out / "langevin")
    started = time.perf_counter()
    code = execute(run_dir, config, name)
    if code != 0:
        raise RuntimeError(f"the Langevin run in {run_dir} ended with exit code {code}")
    langevin_seconds = time.perf_counter() - started
    data = make_data(config)
    langevin = symmetric_statistics(langevin_draws(run_dir, config, num_points))
    biases = langevin_bias(run_dir, config, data, num_points)
    started = time.perf_counter()
    nuts_raw, nuts_info = nuts_draws(config, data, num_points, nuts_options)
    nuts_info["seconds"] = time.perf_counter() - started
    table = compare(langevin, symmetric_statistics(nuts_raw), biases)
    result = {
        "problem": {"d": int(data.x_train.shape[1]), "width": fc_widths(config)[0],
                    "n_train": int(len(data.x_train)), "test_points": num_points,
                    "activation": config["model"]["activation"]},
        "langevin": {"run_dir": str(run_dir), "integrator": config["sampler"]["integrator"],
                     "step_size": config["sampler"]["step_size"],
                     "num_chains": config["sampler"]["num_chains"],
                     "num_steps": config["sampler"]["num_steps"],
                     "seconds": langevin_seconds,
                     "bias_estimated": bool(biases)},
        "nuts": nuts_info,
        "rule": f"agree when z = |L - N| / sqrt(mcse_L^2 + mcse_N^2) < {AGREEMENT_IN_MCSE:g} or "
                "z_corrected = |L - b - N| / sqrt(mcse_L^2 + mcse_N^2 + mcse_b^2) < "
                f"{AGREEMENT_IN_MCSE:g}, b the Langevin step-size bias estimate (step halving)",
        "comparisons": table,
        "all_agree": all(row["agree"] for row in table.values()),
    }
    rundir.write_json_atomic(out / "reference.json", result)
    return result


def cmd_reference(args) -> int:
    name, overrides = _overrides(args.source)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"reference-{name}-{stamp}"
    nuts_options = {"num_chains": args.nuts_chains, "num_warmup": args.nuts_warmup,
                    "num_samples": args.nuts_samples}
    try:
        result = run_reference_check(name, overrides, args.set or [], out, nuts_options,
                                     args.test_points)
    except ReferenceSamplerUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result["comparisons"]))
    nuts = result["nuts"]
    print(f"NUTS: {nuts['num_chains']} chains x {nuts['num_draws']} draws, "
          f"{nuts['num_divergences']} divergences, acceptance {nuts['mean_acceptance']:.2f}")
    verdict = "all statistics agree" if result["all_agree"] else "SOME STATISTICS DISAGREE"
    print(f"{verdict}; wrote {out / 'reference.json'}")
    return 0 if result["all_agree"] else 1


def add_parser(subparsers) -> None:
    """The `reference` subcommand (wired into experiments.cli)."""
    parser = subparsers.add_parser(
        "reference", help="compare Langevin with NUTS (NumPyro) on a tiny problem")
    parser.add_argument("source", nargs="?",
                        help="preset name or CONFIG.toml (default: a tiny erf network)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config key, e.g. --set model.width=4")
    parser.add_argument("--out", help="output directory (default runs/reference-NAME-TIMESTAMP)")
    parser.add_argument("--nuts-chains", type=int, default=4)
    parser.add_argument("--nuts-warmup", type=int, default=1000)
    parser.add_argument("--nuts-samples", type=int, default=2000)
    parser.add_argument("--test-points", type=int, default=DEFAULT_TEST_POINTS,
                        help="compare on the first K test points")
    parser.set_defaults(func=cmd_reference)
