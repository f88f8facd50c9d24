"""The `langevin` command line.

    langevin run [NAME|CONFIG.toml] [--set section.key=value ...] [--out DIR]
    langevin resume DIR [--executor inline|local|slurm]
    langevin report DIR
    langevin status DIR [--json]
    langevin presets
    langevin run STUDY [--set key=value ...] [--out DIR]   a study (experiments.studies); resume
                                                            and report take its directory too
    langevin reference [NAME|CONFIG.toml] [--set ...] [--out DIR]   (needs the [jax] extra)

Every expected failure prints one line `error: ...` naming the file or config key and
what to do, with a non-zero exit code (experiments.rundirs.failures); `--debug` shows the
traceback instead.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from experiments import presets, reference_check, studies, sweep
from experiments.launch import plan
from experiments.launch.status import add_parser as add_status_parser
from experiments.reporting.report import print_report
from experiments.rundirs import failures, rundir
from experiments.rundirs.lock import RunDirectoryLock
from experiments.setup import config as cfg
# execute and start_run are also read as experiments.cli.<name>
from experiments.runner import execute, resume_run, start_run  # noqa: F401


def _resolve_source(source: str | None) -> tuple[str, list[dict], presets.Preset | None]:
    """(run name, override mappings, preset) for a preset name or a TOML file (preset None:
    a file is a single run, whatever its name)."""
    if source is None:
        default = presets.get_preset("default")
        return "default", [default.overrides], default
    if source.endswith(".toml") or Path(source).is_file():
        return Path(source).stem, [cfg.load_toml(source)], None
    preset = presets.get_preset(source)
    return source, [preset.overrides], preset


def cmd_run(args) -> int:
    if args.source in studies.STUDIES and not Path(args.source).is_file():
        studies.refuse_executor(args.executor)
        return studies.run_study_dir(studies.start_study(args.source, args.set or [], args.out))
    name, overrides, preset = _resolve_source(args.source)
    out = Path(args.out) if args.out else None
    if args.executor:
        args.set = [*(args.set or []), f"launch.executor={args.executor}"]
    swept = preset is not None and bool(preset.sweep)
    sweep_point = ([a for k, v in preset.sweep.items() for a in sweep.assignments(k, v[0])]
                   if swept else [])
    config, _ = cfg.resolve(overrides, [*(args.set or []), *sweep_point])
    if config["launch"]["executor"] != "inline":
        return plan.start(name, preset if swept else None, overrides, args.set or [],
                          out or rundir.default_run_dir(name), start_run, config["launch"])
    if swept:
        return sweep.run_sweep(name, preset, args.set or [],
                               out or rundir.default_run_dir(name), start_run, execute)
    run_dir, config = start_run(name, overrides, args.set or [], out)
    return execute(run_dir, config, name)


def cmd_resume(args) -> int:
    run_dir = Path(args.run_dir)
    if studies.is_study_dir(run_dir):
        studies.refuse_executor(args.executor)
        if args.no_report:  # a study writes its summary as part of its points (experiments.studies)
            raise cfg.ConfigError(f"--no-report is not supported for the study directory {str(run_dir)!r}: "
                                  "a study writes its summary at the end of its points; drop --no-report")
        return studies.run_study_dir(run_dir)
    if args.executor != "inline" and (sweep.is_sweep_dir(run_dir)
                                      or (run_dir / rundir.CONFIG_FILE).is_file()):
        if args.executor is not None or plan.with_executor(run_dir, None)["executor"] != "inline":
            return plan.resume(run_dir, args.executor, start_run)
    if sweep.is_sweep_dir(run_dir):
        with RunDirectoryLock(run_dir, "resume"):
            return sweep.resume_sweep(run_dir, start_run, execute)
    return resume_run(run_dir, report=not args.no_report)


def cmd_report(args) -> int:
    run_dir = Path(args.run_dir)
    is_sweep = sweep.is_sweep_dir(run_dir)
    is_study = studies.is_study_dir(run_dir)
    if not (is_sweep or is_study):
        rundir.check_run_dir(run_dir)
    try:
        with RunDirectoryLock(run_dir, "report"):
            if is_study:
                summary_path = studies.report_study_dir(run_dir)
            elif is_sweep:
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
    width = max(map(len, [*presets.PRESETS, *studies.STUDIES]))
    for name, preset in presets.PRESETS.items():
        print(f"{name:{width}s}  {preset.description}")
    for name, study in studies.STUDIES.items():  # not one run: experiments.studies
        print(f"{name:{width}s}  [study] {study.description}")
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
                        help="do not write the report at the end (a shard's job); refused "
                             "for a study directory (a study writes its summary with its points)")
    resume.set_defaults(func=cmd_resume)
    add_status_parser(sub)  # langevin status: jobs, steps, rates and ETAs of OUT
    report = sub.add_parser("report", help="write summary.json and figures of a run")
    report.add_argument("run_dir")
    report.set_defaults(func=cmd_report)
    sub.add_parser("presets", help="list the named presets").set_defaults(func=cmd_presets)
    reference_check.add_parser(sub)  # langevin reference: Langevin vs NUTS on a tiny problem
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command, and turn every expected failure into one message
    (experiments.rundirs.failures); `--debug` re-raises it with its traceback."""
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
