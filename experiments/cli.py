"""The `langevin` command line.

    langevin run [NAME|CONFIG.toml] [--set section.key=value ...] [--out DIR]
    langevin resume DIR [--executor inline|local|slurm]
    langevin report DIR
    langevin status DIR [--json]
    langevin presets
    langevin reference [NAME|CONFIG.toml] [--set ...] [--out DIR]   (needs the [jax] extra)

Every expected failure prints one line `error: ...` naming the file or config key and
what to do, with a non-zero exit code (experiments.failures); `--debug` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import errno
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

from experiments import config as cfg
from experiments import faults, failures, preflight, presets, reference_check, rundir
from experiments.build import build_run, make_data
from experiments.data import save_dataset
from experiments.lock import RunDirectoryLock
from langevin.checkpoint import load_checkpoint
from langevin.run import NonFiniteError, run_chains
from langevin.store import SampleStore


_USR2 = () if sys.platform == "win32" else (signal.SIGUSR2,)  # POSIX only


class _StopFlag:
    """Set by SIGINT/SIGTERM/SIGUSR2 (SLURM's and submitit's warning before a time
    limit); the loop checkpoints and returns at the next step. A second SIGINT stops at
    once; repeated SIGTERM/SIGUSR2 (a cluster signals every process) only stop once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def install(self) -> dict:
        """Install the handlers; returns the previous ones for `restore`."""

        def handler(signum, _frame):
            if self.requested and signum == signal.SIGINT:  # a second Ctrl-C stops at once
                raise KeyboardInterrupt
            if self.requested:
                return
            self.requested = True
            print(f"\nreceived {signal.Signals(signum).name}: checkpointing and stopping ...",
                  file=sys.stderr)

        signals = (signal.SIGINT, signal.SIGTERM, *_USR2)
        return {sig: signal.signal(sig, handler) for sig in signals}

    @staticmethod
    def restore(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _progress_bar(num_chains: int, enabled: bool):
    """A tqdm bar counting chain-steps (rate = chain-steps/s, with the ETA)."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(unit="chain-step", unit_scale=True, dynamic_ncols=True, mininterval=1.0)

    def update(step: int, total: int) -> None:
        if bar.total != total * num_chains:
            bar.total = total * num_chains
        bar.update(step * num_chains - bar.n)

    return update, bar.close


def _resolve_source(source: str | None) -> tuple[str, list[dict]]:
    """(run name, override mappings) for a preset name or a TOML file."""
    if source is None:
        return "default", [presets.get_preset("default").overrides]
    if source.endswith(".toml") or Path(source).is_file():
        return Path(source).stem, [cfg.load_toml(source)]
    return source, [presets.get_preset(source).overrides]


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
    (unless `report` is False). A sharded run (experiments.shards) samples its shards in
    turn, each under its own lock.

    A failure while sampling (a full or read-only disk, memory, a second Ctrl-C) becomes
    a `RunFailure` that says the last checkpoint is intact and how to resume."""
    run_dir = Path(run_dir)
    if config["sampler"]["shards"] > 1:
        from experiments import shards

        from experiments.report import write_report

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
        from experiments.report import print_report

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
        # sampler.threads = 0: automatic (experiments.threads; restored by _execute_locked)
        from experiments.threads import automatic_threads, forward_flops_per_step

        torch.set_num_threads(automatic_threads(
            forward_flops_per_step(setup.initial_theta, len(data.x_train)),
            torch.get_num_threads()))
    from experiments import step_options  # sampler.compile, sampler.matmul_precision

    integrator, step_meta = step_options.run_integrator(config, setup, len(data.x_train))
    meta_path = run_dir / rundir.META_FILE
    meta = rundir.read_json(meta_path)
    stop = _StopFlag()
    previous_handlers = stop.install()
    update, close = _progress_bar(config["sampler"]["num_chains"], config["sampler"]["progress"])
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        with step_options.matmul_precision(config["sampler"]["matmul_precision"]):
            result = _run_chains_of(setup, integrator, run_dir, config, stop, update)
    except NonFiniteError as err:
        meta["status"] = "failed: non-finite"
        rundir.write_json_atomic(meta_path, meta)
        print(f"error: {err}", file=sys.stderr)
        return failures.EXIT_DIVERGED
    finally:
        close()
        _StopFlag.restore(previous_handlers)
    meta["status"] = result.status
    from experiments.tempering_setup import run_metadata
    meta.update(run_metadata(config, result.state))  # the (frozen) ladder, swap counts
    meta["segments"].append({"started": started, "ended_at_step": result.step,
                             "seconds": result.seconds,
                             "chain_steps_per_second": result.chain_steps_per_second,
                             "step": step_meta})
    rundir.write_json_atomic(meta_path, meta)
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; continue with: langevin resume {run_dir}",
              file=sys.stderr)
        return failures.EXIT_INTERRUPTED
    print(f"sampled {result.step} steps x {config['sampler']['num_chains']} chains in "
          f"{result.seconds:.1f} s ({result.chain_steps_per_second:.3g} chain-steps/s)")
    return 0


def _run_chains_of(setup, integrator, run_dir: Path, config: dict, stop, update):
    return run_chains(
        integrator=integrator, initial_theta=setup.initial_theta,
        generator=setup.generator, observables=setup.observables, plan=setup.plan,
        store=SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"]),
        checkpoint_dir=run_dir / rundir.CHECKPOINT_DIR, config_hash=cfg.config_hash(config),
        stop_requested=stop, progress=update, fault_hook=faults.hook_from_environment(),
    )


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
    try:
        staging = rundir.make_staging_dir(target)
    except OSError as err:
        raise failures.RunFailure(f"cannot create the run directory {str(target)!r}: "
                                  f"{failures.os_error_text(err)}", failures.EXIT_SYSTEM) from err
    lock = RunDirectoryLock(staging, "start-up")
    fault_hook = faults.hook_from_environment() or (lambda _point: None)
    try:
        lock.acquire()
        rundir.write_text_atomic(staging / rundir.CONFIG_FILE, cfg.dumps_toml(config))
        fault_hook("startup:data")
        save_dataset(staging / rundir.DATA_FILE, data)
        fault_hook("startup:meta")
        meta = rundir.initial_meta(checked, physics.as_metadata(), checked["sampler"]["device"],
                                   config["sampler"]["dtype"], name)
        if remote:
            meta.update(device=config["sampler"]["device"], device_name="assigned by SLURM")
        rundir.write_json_atomic(staging / rundir.META_FILE, meta)
        fault_hook("startup:publish")
        run_dir = rundir.publish_staging_dir(staging, target)
    except BaseException as err:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise failures.RunFailure(
                f"cannot create the run directory {str(target)!r}: "
                f"{failures.os_error_text(err)}; nothing was written", failures.EXIT_SYSTEM
            ) from err
        raise
    lock.release()
    if config["sampler"]["shards"] > 1:
        from experiments import shards

        shards.create_shards(run_dir, config)
    return run_dir, config


def cmd_run(args) -> int:
    name, overrides = _resolve_source(args.source)
    out = Path(args.out) if args.out else None
    if args.executor:
        args.set = [*(args.set or []), f"launch.executor={args.executor}"]
    preset = presets.PRESETS.get(name)
    from experiments import sweep

    sweep_point = ([a for k, v in preset.sweep.items() for a in sweep.assignments(k, v[0])]
                   if preset is not None and preset.sweep else [])
    config, _ = cfg.resolve(overrides, [*(args.set or []), *sweep_point])
    if config["launch"]["executor"] != "inline":
        from experiments.launch import plan

        return plan.start(name, preset if sweep_point else None, overrides, args.set or [],
                          out or rundir.default_run_dir(name), start_run, config["launch"])
    if name in presets.PRESETS and presets.PRESETS[name].sweep:
        return sweep.run_sweep(name, presets.PRESETS[name], args.set or [],
                               out or rundir.default_run_dir(name), start_run, execute)
    run_dir, config = start_run(name, overrides, args.set or [], out)
    return execute(run_dir, config, name)


def cmd_resume(args) -> int:
    run_dir = Path(args.run_dir)
    from experiments import sweep

    if args.executor != "inline" and (sweep.is_sweep_dir(run_dir)
                                      or (run_dir / rundir.CONFIG_FILE).is_file()):
        from experiments.launch import plan

        if args.executor is not None or plan.with_executor(run_dir, None)["executor"] != "inline":
            return plan.resume(run_dir, args.executor, start_run)
    if sweep.is_sweep_dir(run_dir):
        with RunDirectoryLock(run_dir, "resume"):
            return sweep.resume_sweep(run_dir, start_run, execute)
    rundir.check_run_dir(run_dir)
    config = rundir.load_config(run_dir)
    return execute(run_dir, config, rundir.read_json(run_dir / rundir.META_FILE).get("name", ""),
                   report=not args.no_report)


def cmd_report(args) -> int:
    from experiments import sweep
    from experiments.report import print_report

    run_dir = Path(args.run_dir)
    is_sweep = sweep.is_sweep_dir(run_dir)
    if not is_sweep:
        rundir.check_run_dir(run_dir)
    try:
        with RunDirectoryLock(run_dir, "report"):
            if is_sweep:
                summary_path = sweep.write_sweep_report(run_dir)
            else:
                summary_path = print_report(run_dir)
    except KeyboardInterrupt as err:
        raise failures.RunFailure(
            f"report interrupted; {rundir.SUMMARY_FILE} of {str(run_dir)!r} is unchanged (it is "
            "written atomically)", failures.EXIT_INTERRUPTED) from err
    except OSError as err:
        if isinstance(err, FileNotFoundError) or not failures.is_disk_problem(err):
            raise
        raise failures.RunFailure(
            f"cannot write the report of {str(run_dir)!r}: {failures.os_error_text(err)}; the "
            f"report writes {rundir.SUMMARY_FILE} and {rundir.FIGURES_DIR}/ into the run "
            "directory: copy it somewhere writable and report the copy",
            failures.EXIT_SYSTEM) from err
    print(f"wrote {summary_path}")
    return 0


def cmd_presets(_args) -> int:
    for name, preset in presets.PRESETS.items():
        print(f"{name:20s} {preset.description}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langevin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a failure instead of a one-line message "
                             "(accepted anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run from a preset name or a TOML config")
    run.add_argument("source", nargs="?", help="preset name (see `langevin presets`) or CONFIG.toml")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key, e.g. --set sampler.num_chains=64")
    run.add_argument("--out", help="run directory (default runs/NAME-TIMESTAMP)")
    run.add_argument("--executor", choices=cfg.LAUNCH_EXECUTORS,
                     help="where the runs execute (= --set launch.executor=...)")
    run.set_defaults(func=cmd_run)
    resume = sub.add_parser("resume", help="continue a run from its last checkpoint")
    resume.add_argument("run_dir")
    resume.add_argument("--executor", choices=cfg.LAUNCH_EXECUTORS,
                        help="resubmit the unfinished runs here (default: launch.executor)")
    resume.add_argument("--no-report", action="store_true",
                        help="do not write the report at the end (a shard's job)")
    resume.set_defaults(func=cmd_resume)
    from experiments.launch.status import add_parser as add_status_parser

    add_status_parser(sub)  # langevin status: jobs, steps, rates and ETAs of OUT
    report = sub.add_parser("report", help="write summary.json and figures of a run")
    report.add_argument("run_dir")
    report.set_defaults(func=cmd_report)
    sub.add_parser("presets", help="list the named presets").set_defaults(func=cmd_presets)
    reference_check.add_parser(sub)  # langevin reference: Langevin vs NUTS on a tiny problem
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command, and turn every expected failure into one message
    (experiments.failures); `--debug` re-raises it with its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    try:
        args = make_parser().parse_args([a for a in argv if a != DEBUG_FLAG])
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - the one error boundary of the command line
        return _report_failure(err, debug)
    except KeyboardInterrupt as err:
        return _report_failure(err, debug)


DEBUG_FLAG = "--debug"


def _report_failure(err: BaseException, debug: bool) -> int:
    described = failures.describe(err)
    if debug or described is None:
        if described is None:
            print("error: unexpected failure (a bug; please report it with this traceback):",
                  file=sys.stderr)
        traceback.print_exception(err)
        return described[0] if described else 1
    code, message = described
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
