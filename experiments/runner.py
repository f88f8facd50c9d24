"""Start, sample, resume and report one run directory (experiments.rundirs.rundir holds its files).

    start_run(name, overrides, set_args, out) -> (run_dir, config)
        validate everything (config, data, memory), then create the run directory
    execute(run_dir, config, name, report=True) -> exit code
        sample (or resume from the last checkpoint) under the directory's lock, then write
        and print the report (experiments.reporting.report)
    resume_run(run_dir, report=True) -> exit code
        execute an existing run directory with its stored config

The layer below the command line (experiments.cli), sweeps (experiments.sweep), the
launchers (experiments.launch) and the NUTS check (experiments.reference_check). Every
expected failure while sampling becomes a `failures.RunFailure` saying what was kept.
"""
from __future__ import annotations

import errno
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from experiments.reporting.report import print_report, write_report
from experiments.rundirs import faults, failures, rundir, shards, staging, stop as stop_request
from experiments.rundirs.lock import RunDirectoryLock
from experiments.setup import config as cfg
from experiments.setup import preflight, run_mode_setup, step_options, tempering_setup
from experiments.setup.build import build_run, make_data
from experiments.setup.data import save_dataset
from experiments.setup.threads import automatic_threads, forward_flops_per_step
from langevin.checkpoint import load_checkpoint
from langevin.run import NonFiniteError, run_chains
from langevin.store import SampleStore


def _progress_bar(num_chains: int, enabled: bool):
    """A tqdm bar counting chain-steps (rate = chain-steps/s, with the ETA)."""
    if not enabled:
        return None, lambda: None
    bar = tqdm(unit="chain-step", unit_scale=True, dynamic_ncols=True, mininterval=1.0)

    def update(step: int, total: int) -> None:
        if bar.total != total * num_chains:
            bar.total = total * num_chains
        bar.update(step * num_chains - bar.n)

    return update, bar.close


def _last_checkpoint_text(run_dir: Path) -> str:
    try:
        checkpoint = load_checkpoint(Path(run_dir) / rundir.CHECKPOINT_DIR)
    except Exception:  # noqa: BLE001 - only for the wording of another failure
        return "the last checkpoint"
    if checkpoint is None:
        return "no checkpoint yet (a resume starts from the beginning)"
    return f"the last checkpoint (step {checkpoint.step}) is intact"


def _print_warning(text: str | None) -> None:
    if text:
        print(f"warning: {text}", file=sys.stderr)


def execute(run_dir: Path, config: dict, name: str, report: bool = True) -> int:
    """Sample (or resume) the run in `run_dir` holding its lock, then write its report
    (unless `report` is False). A sharded run (experiments.rundirs.shards) samples its shards in
    turn, each under its own lock.

    A failure while sampling (a full or read-only disk, memory, a second Ctrl-C) becomes
    a `RunFailure` that says the last checkpoint is intact and how to resume. A stop request
    (Ctrl-C/SIGTERM, experiments.rundirs.stop) checkpoints and returns exit code 130, or,
    for a run inside a study's stop flag, raises `stop.Interrupted` (the study stops)."""
    run_dir = Path(run_dir)
    if config["sampler"]["shards"] > 1:
        return shards.execute_inline(run_dir, execute, name, write_report)
    with RunDirectoryLock(run_dir, "run"):
        try:
            code = _execute_locked(run_dir, config)
        except (KeyboardInterrupt, OSError, MemoryError, RuntimeError) as err:
            if not (isinstance(err, (KeyboardInterrupt, OSError, MemoryError))
                    or failures.is_out_of_memory(err)):
                raise
            resume = f"`langevin resume {run_dir}`"
            kept = _last_checkpoint_text(run_dir)
            if isinstance(err, KeyboardInterrupt):
                raise failures.RunFailure(f"interrupted; {kept}: continue with {resume}",
                                          failures.EXIT_INTERRUPTED) from err
            if isinstance(err, OSError):
                fix = ("free space" if err.errno in (errno.ENOSPC, errno.EDQUOT)
                       else "make it writable")
                raise failures.RunFailure(
                    f"{failures.os_error_text(err)} while sampling into {str(run_dir)!r}; "
                    f"{kept}: {fix}, then {resume}", failures.EXIT_SYSTEM) from err
            raise failures.RunFailure(
                f"out of memory while sampling ({type(err).__name__}: {err}); {kept}; lower "
                "sampler.num_chains or model.width in a new run", failures.EXIT_SYSTEM) from err
        if code != 0:
            return code
        if not report:
            print(f"run directory: {run_dir}")
            return 0
        try:
            print_report(run_dir)
        except (KeyboardInterrupt, OSError) as err:
            if isinstance(err, OSError) and not failures.is_disk_problem(err):
                raise
            reason = ("interrupted" if isinstance(err, KeyboardInterrupt)
                      else failures.os_error_text(err))
            raise failures.RunFailure(
                f"the samples are complete, but writing the report failed ({reason}); "
                f"write it with `langevin report {run_dir}`",
                failures.EXIT_INTERRUPTED if isinstance(err, KeyboardInterrupt)
                else failures.EXIT_SYSTEM) from err
    print(f"run directory: {run_dir}")
    return 0


def _execute_locked(run_dir: Path, config: dict) -> int:
    previous_threads = torch.get_num_threads()
    if config["sampler"]["threads"] > 0:
        torch.set_num_threads(config["sampler"]["threads"])
    try:
        return _sample(run_dir, config)
    finally:
        torch.set_num_threads(previous_threads)


def _sample(run_dir: Path, config: dict) -> int:
    data = rundir.read_run_data(run_dir)
    _print_warning(preflight.check_before_compute(config, data))
    setup = build_run(config, data)
    if config["sampler"]["threads"] == 0 and torch.device(config["sampler"]["device"]).type == "cpu":
        # sampler.threads = 0: automatic (experiments.setup.threads; restored by _execute_locked)
        torch.set_num_threads(automatic_threads(
            forward_flops_per_step(setup.initial_theta, len(data.x_train)),
            torch.get_num_threads(), native=config["sampler"]["cpu_kernel"] == "native"))
    # sampler.compile and sampler.matmul_precision (experiments.setup.step_options)
    integrator, step_meta = step_options.run_integrator(config, setup, len(data.x_train))
    meta_path = run_dir / rundir.META_FILE
    meta = rundir.read_json(meta_path)
    update, close = _progress_bar(config["sampler"]["num_chains"], config["sampler"]["progress"])
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:  # Ctrl-C/SIGTERM/SIGUSR2: checkpoint and stop (experiments.rundirs.stop; a study's flag if nested)
        with stop_request.stop_on_signals() as stop, \
                step_options.matmul_precision(config["sampler"]["matmul_precision"]):
            in_study = stop_request.nested()  # a run of a study: a stop raises stop.Interrupted
            result = run_chains(
                integrator=integrator, initial_theta=setup.initial_theta,
                generator=setup.generator, observables=setup.observables, plan=setup.plan,
                store=SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"]),
                checkpoint_dir=run_dir / rundir.CHECKPOINT_DIR,
                config_hash=cfg.config_hash(config), stop_requested=stop, progress=update,
                fault_hook=faults.hook_from_environment(),
            )
    except NonFiniteError as err:
        meta["status"] = "failed: non-finite"
        rundir.write_json_atomic(meta_path, meta)
        print(f"error: {err}", file=sys.stderr)
        return failures.EXIT_DIVERGED
    finally:
        close()
    meta["status"] = result.status
    meta.update(tempering_setup.run_metadata(config, result.state))  # the (frozen) ladder, swap counts
    meta.update(run_mode_setup.run_metadata(config, result.state))  # GD stops, annealing step
    meta["segments"].append({"started": started, "ended_at_step": result.step,
                             "seconds": result.seconds,
                             "chain_steps_per_second": result.chain_steps_per_second,
                             "step": step_meta})
    rundir.write_json_atomic(meta_path, meta)
    if result.status == "interrupted":
        if in_study:
            raise stop_request.Interrupted(f"run {run_dir.name}", result.step)
        print(f"interrupted at step {result.step}; continue with: langevin resume {run_dir}",
              file=sys.stderr)
        return failures.EXIT_INTERRUPTED
    print(f"sampled {result.step} steps x {config['sampler']['num_chains']} chains in "
          f"{result.seconds:.1f} s ({result.chain_steps_per_second:.3g} chain-steps/s)")
    return 0


def start_run(name: str, overrides: list[dict], set_args: list[str], out: Path | None) -> tuple[Path, dict]:
    """Validate everything (config, data, memory), then create the run directory with its
    config, data and meta atomically (`rundir`: staged beside it, renamed into place)."""
    config, _ = cfg.resolve(overrides, set_args)
    data = make_data(config)  # validates user data before anything is written
    # A SLURM job's GPU is on the compute node, not here: validate the rest on the CPU.
    remote = config["launch"]["executor"] == "slurm"
    checked = cfg.merge(config, {"sampler": {"device": "cpu"}}) if remote else config
    _print_warning(preflight.check_before_compute(checked, data))
    physics = build_run(checked, data).physics  # validates device/dtype/model up front
    target = Path(out) if out else rundir.default_run_dir(name)
    rundir.check_new_run_dir(target)
    fault_hook = faults.hook_from_environment() or (lambda _point: None)

    def fill(directory: Path) -> None:
        rundir.write_text_atomic(directory / rundir.CONFIG_FILE, cfg.dumps_toml(config))
        fault_hook("startup:data")
        save_dataset(directory / rundir.DATA_FILE, data)
        fault_hook("startup:meta")
        meta = rundir.initial_meta(checked, physics.as_metadata(), checked["sampler"]["device"],
                                   config["sampler"]["dtype"], name)
        if remote:
            meta.update(device=config["sampler"]["device"], device_name="assigned by SLURM")
        meta.update(run_mode_setup.start_metadata(config))  # likelihood, output scale, run mode
        rundir.write_json_atomic(directory / rundir.META_FILE, meta)
        fault_hook("startup:publish")

    run_dir = staging.create_directory_atomically(target, "run", fill)
    if config["sampler"]["shards"] > 1:
        shards.create_shards(run_dir, config)
    return run_dir, config


def resume_run(run_dir: Path, report: bool = True) -> int:
    """Continue the run in `run_dir` from its last checkpoint with its stored config (a
    directory written by an earlier version is re-validated against today's schema)."""
    run_dir = Path(run_dir)
    rundir.check_run_dir(run_dir)
    config = rundir.load_config(run_dir)
    return execute(run_dir, config, rundir.read_json(run_dir / rundir.META_FILE).get("name", ""),
                   report=report)
