"""The `langevin` command line.

    langevin run [NAME|CONFIG.toml] [--set section.key=value ...] [--out DIR]
    langevin resume DIR [--executor inline|local|slurm]
    langevin report DIR
    langevin status DIR [--json]
    langevin presets
    langevin reference [NAME|CONFIG.toml] [--set ...] [--out DIR]   (needs the [jax] extra)
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import torch

from experiments import config as cfg
from experiments import presets, reference_check, rundir
from experiments.build import build_run, make_data
from experiments.data import DataError, read_dataset, save_dataset
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


def execute(run_dir: Path, config: dict, name: str, report: bool = True) -> int:
    """Sample (or resume) the run in `run_dir`, then write its report (unless `report`
    is False). A sharded run (experiments.shards) samples its shards in turn."""
    if config["sampler"]["shards"] > 1:
        from experiments import shards

        return shards.execute_inline(run_dir, execute, name)
    previous_threads = torch.get_num_threads()
    if config["sampler"]["threads"] > 0:
        torch.set_num_threads(config["sampler"]["threads"])
    data = read_dataset(run_dir / rundir.DATA_FILE)
    setup = build_run(config, data)
    meta_path = run_dir / rundir.META_FILE
    meta = rundir.read_json(meta_path)
    stop = _StopFlag()
    previous_handlers = stop.install()
    update, close = _progress_bar(config["sampler"]["num_chains"], config["sampler"]["progress"])
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        result = run_chains(
            integrator=setup.integrator, initial_theta=setup.initial_theta,
            generator=setup.generator, observables=setup.observables, plan=setup.plan,
            store=SampleStore(run_dir / rundir.SAMPLES_DIR, config["sampler"]["num_chains"]),
            checkpoint_dir=run_dir / rundir.CHECKPOINT_DIR, config_hash=cfg.config_hash(config),
            stop_requested=stop, progress=update,
        )
    except NonFiniteError as err:
        meta["status"] = "failed: non-finite"
        rundir.write_json_atomic(meta_path, meta)
        print(f"error: {err}", file=sys.stderr)
        return 3
    finally:
        close()
        _StopFlag.restore(previous_handlers)
        torch.set_num_threads(previous_threads)
    meta["status"] = result.status
    meta["segments"].append({"started": started, "ended_at_step": result.step,
                             "seconds": result.seconds,
                             "chain_steps_per_second": result.chain_steps_per_second})
    rundir.write_json_atomic(meta_path, meta)
    if result.status == "interrupted":
        print(f"interrupted at step {result.step}; continue with: langevin resume {run_dir}",
              file=sys.stderr)
        return 130
    print(f"sampled {result.step} steps x {config['sampler']['num_chains']} chains in "
          f"{result.seconds:.1f} s ({result.chain_steps_per_second:.3g} chain-steps/s)")
    if not report:
        return 0
    from experiments.report import write_report

    write_report(run_dir)
    print(f"run directory: {run_dir}")
    return 0


def start_run(name: str, overrides: list[dict], set_args: list[str], out: Path | None) -> tuple[Path, dict]:
    """Validate everything, then create the run directory with its config, data and meta."""
    config, _ = cfg.resolve(overrides, set_args)
    data = make_data(config)  # validates user data before anything is written
    # A SLURM job's GPU is on the compute node, not here: validate the rest on the CPU.
    remote = config["launch"]["executor"] == "slurm"
    checked = cfg.merge(config, {"sampler": {"device": "cpu"}}) if remote else config
    physics = build_run(checked, data).physics  # validates device/dtype/model up front
    run_dir = rundir.create_run_dir(out if out else rundir.default_run_dir(name))
    rundir.write_text_atomic(run_dir / rundir.CONFIG_FILE, cfg.dumps_toml(config))
    save_dataset(run_dir / rundir.DATA_FILE, data)
    meta = rundir.initial_meta(checked, physics.as_metadata(), checked["sampler"]["device"],
                               config["sampler"]["dtype"], name)
    if remote:
        meta.update(device=config["sampler"]["device"], device_name="assigned by SLURM")
    rundir.write_json_atomic(run_dir / rundir.META_FILE, meta)
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
    sweep_point = ([f"{k}={v[0]}" for k, v in preset.sweep.items()]
                   if preset is not None and preset.sweep else [])
    config, _ = cfg.resolve(overrides, [*(args.set or []), *sweep_point])
    if config["launch"]["executor"] != "inline":
        from experiments.launch import plan

        return plan.start(name, preset if sweep_point else None, overrides, args.set or [],
                          out or rundir.default_run_dir(name), start_run, config["launch"])
    if name in presets.PRESETS and presets.PRESETS[name].sweep:
        from experiments import sweep

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
        return sweep.resume_sweep(run_dir, execute)
    if not (run_dir / rundir.CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run directory (no config.toml)")
    config = rundir.load_config(run_dir)
    return execute(run_dir, config, rundir.read_json(run_dir / rundir.META_FILE).get("name", ""),
                   report=not args.no_report)


def cmd_report(args) -> int:
    from experiments import sweep
    from experiments.report import write_report

    run_dir = Path(args.run_dir)
    if sweep.is_sweep_dir(run_dir):
        summary_path = sweep.write_sweep_report(run_dir)
    else:
        summary_path = write_report(run_dir)
    print(f"wrote {summary_path}")
    return 0


def cmd_presets(_args) -> int:
    for name, preset in presets.PRESETS.items():
        print(f"{name:20s} {preset.description}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langevin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (cfg.ConfigError, DataError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
