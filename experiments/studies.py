"""Studies: named presets of the command line that are not one config-driven run (their model
or their outputs do not fit the run config), run, resumed and reported like runs.

    langevin run NAME [--set KEY=VALUE ...] [--out DIR]   validate, write DIR/study.json, run
    langevin resume DIR                                    continue (finished points are reused)
    langevin report DIR                                    rebuild summary.json and figures/
    langevin presets                                       lists the studies too, marked [study]

STUDY INTERFACE. A study is a module that provides exactly these names:

    DEFAULTS: dict[str, object]
        the parameters (plain keys, no sections) and their defaults
    check_parameters(params: dict) -> dict
        `params` merged with DEFAULTS and validated; an unknown key or a bad value raises
        ValueError naming the key and the value
    run_study(out: Path, params: dict) -> dict
        compute into the study directory `out`; resumable: reuses finished points, resumes
        unfinished ones (a kill at any instant loses no finished point); writes
        out/summary.json atomically and out/figures/; returns the summary
    write_study_report(out: Path, params: dict) -> Path
        rebuild out/summary.json and out/figures/ from what is stored (no new sampling);
        returns the summary path

and is registered here as STUDIES[name] = Study(description, module, progress). Names are
checked at import: every study module has the four names, and no study is named like a run
preset (experiments.presets.PRESETS).

Stopping. `run_study` runs under the stop flag of runs (experiments.rundirs.stop, installed
by `run_study_dir`): its sampler loop passes `stop_requested=stop.requested` to
`langevin.run.run_chains` (or runs each point through experiments.runner.execute, which shares
the flag and returns exit code 130 when it stopped) and, when a point returned status
"interrupted" (checkpoint written), raises `stop.Interrupted(where, step)` without writing that
point's finished marker. Ctrl-C or
SIGTERM then print `interrupted at step S of point P; continue with: langevin resume DIR`
(exit code 130), and `langevin resume DIR` continues bit-identically.

Progress (`langevin status DIR`): `Study.progress(out, params) -> list[dict]`, optional (None:
the status shows name and parameters only), one dict per point in the order they run:
{"label", "finished" (bool), "step" (last checkpoint step or None), "total_steps"}, read from
the files alone (no lock, no torch state loaded).

Study directory (`langevin run NAME --out DIR`; experiments.study_dir):

    DIR/study.json   {"name", "params" (validated, every key), "version" (package), "git_commit"}
    DIR/.lock        held (flock, experiments.rundirs.lock) by the process that runs, resumes
                     or reports it
    DIR/...          the study's own files: its points, summary.json, figures/

Start-up is atomic like a run's: study.json is written into a staging directory beside DIR
that is renamed into place (experiments.rundirs.rundir), so DIR is absent or resumable.
`langevin resume --no-report DIR` is refused on a study directory (exit code 2, before
anything runs): a study writes its summary at the end of its points, as part of `run_study`.
`--set KEY=VALUE` values are read as `--set` reads them for runs (TOML, else a bare string:
`--set noise_variances=[0.03,0.05]`, `--set init=well`); every key and value is validated
before anything is written. Studies run inline, in this process (no --executor).
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Callable, NamedTuple

from experiments import modular_addition_comparison, staircase_study, study_dir as directory
from experiments.presets import PRESETS
from experiments.rundirs import rundir
from experiments.setup.config import ConfigError, parse_override

STUDY_FILE = directory.STUDY_FILE
INTERFACE = ("DEFAULTS", "check_parameters", "run_study", "write_study_report")


class Study(NamedTuple):
    """A named study: its one-line description, the module providing the interface, and its
    points' progress for `langevin status` (module docstring; None: not described)."""

    description: str
    module: ModuleType
    progress: Callable[[Path, dict], list[dict]] | None = None


STUDIES: dict[str, Study] = {
    "modular_addition": Study(
        "the sampled quadratic network on modular addition (P = 13, N = 64, all P^2 pairs) over "
        "sigma^2 across the theory's onset: discrepancy a, eigenvalue and per-mode order parameters "
        "against theory.modular_addition and the NNGP; 8 points of about 1.5 min on 2 busy CPU cores",
        modular_addition_comparison, modular_addition_comparison.point_progress),
}

# The sampled staircase (experiments.staircase_study): P*(d) of mean-field erf networks against the GP
# and adaptive-kernel thresholds of theory.staircase.
STUDIES["staircase"] = Study(
    "sampled mean-field erf networks (N = 16d) on y = z - 0.1 z^3 for d = 4, 6, 8 at P = 1, 2, 4 x the "
    "adaptive-kernel threshold: population L_3 +- MCSE, sampled P*(d) and the fits beside the GP and the "
    "adaptive kernel, with width, training-set and aligned-start checks; about 17 min on 2 busy CPU cores",
    staircase_study)


def check_registry(studies: dict[str, Study], presets: dict) -> None:
    """Every study module provides INTERFACE and no study shares a run preset's name
    (`langevin run NAME` must mean one thing); TypeError / ValueError otherwise."""
    for name, study in studies.items():
        missing = [attribute for attribute in INTERFACE if attribute not in vars(study.module)]
        if missing:
            raise TypeError(f"study {name!r} ({study.module.__name__}) lacks {missing} of the "
                            f"study interface {list(INTERFACE)} (experiments.studies)")
    clashes = sorted(set(studies) & set(presets))
    if clashes:
        raise ValueError(f"study name(s) {clashes} are also run presets (experiments.presets); "
                         "rename one of them")


check_registry(STUDIES, PRESETS)


def is_study_dir(path: Path) -> bool:
    return directory.is_study_dir(path)


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; studies are {sorted(STUDIES)}")
    return STUDIES[name]


def study_parameters(name: str, set_args: list[str]) -> dict:
    """The validated parameters of study `name` with the `--set KEY=VALUE` overrides applied;
    ConfigError naming the key and the value."""
    study = get_study(name)
    overrides = {}
    for text in set_args:
        if "=" not in text:
            raise ConfigError(f"--set expects KEY=VALUE for study {name!r}, got {text!r}")
        key, value = parse_override(text)
        if key not in study.module.DEFAULTS:
            raise ConfigError(f"--set {text}: unknown key {key!r} of study {name!r}; its keys are "
                              f"{sorted(study.module.DEFAULTS)}")
        overrides[key] = value
    try:
        return study.module.check_parameters(overrides)
    except ValueError as err:
        raise ConfigError(f"--set for study {name!r}: {err}") from None


def read_study_file(path: Path) -> tuple[str, dict]:
    """(name, validated params) of the study directory `path`; errors name study.json."""
    file = Path(path) / STUDY_FILE
    record = rundir.read_json(file)
    name, params = record.get("name"), record.get("params")
    if name not in STUDIES or not isinstance(params, dict):
        raise rundir.CorruptFileError(
            f"{str(file)!r} names no registered study with parameters (name {name!r}; studies "
            f"are {sorted(STUDIES)})")
    try:
        return name, STUDIES[name].module.check_parameters(params)
    except ValueError as err:
        raise ConfigError(f"{str(file)!r}: {err}") from None


def start_study(name: str, set_args: list[str], out: Path | None) -> Path:
    """Validate the parameters, then create the study directory with its study.json
    (experiments.study_dir: staged beside it and renamed into place, absent or complete)."""
    return directory.start_study_dir(name, study_parameters(name, set_args), out)


def run_study_dir(study_dir: Path) -> int:
    """Run (or continue) the study of `study_dir` under its lock and the stop flag of runs
    (experiments.study_dir.run_in_study_dir: Ctrl-C/SIGTERM checkpoint the point in progress
    and stop with exit code 130; a second Ctrl-C, a full disk or memory become a
    `failures.RunFailure` saying that the finished points are kept and how to continue)."""
    name, params = read_study_file(study_dir)
    return directory.run_in_study_dir(Path(study_dir), name, STUDIES[name].module.run_study, params)


def report_study_dir(study_dir: Path) -> Path:
    """Rebuild summary.json and figures/ of `study_dir` from its stored results (the caller,
    `langevin report`, holds the directory's lock as for runs and sweeps)."""
    name, params = read_study_file(study_dir)
    return STUDIES[name].module.write_study_report(Path(study_dir), params)


def refuse_executor(executor: str | None) -> None:
    """Studies run inline: any other executor is refused before anything runs."""
    if executor not in (None, "inline"):
        raise ConfigError(f"--executor {executor} is not supported for studies: a study runs "
                          "inline, in this process (drop --executor or use --executor inline)")


def study_status(study_dir: Path) -> dict:
    """The state of a study directory from its files alone (no lock taken, no torch state
    loaded): name, parameters, points finished / total, the point in progress (the first
    unfinished one, points run in order) with its last checkpoint step, whether summary.json
    is written, and the process that last held the lock (pid, purpose, alive). `state`:
    "done" (every point finished, summary written), "running" (the lock's holder is alive and
    running it), "stopped" (anything else: `langevin resume DIR` continues it)."""
    study_dir = Path(study_dir)
    name, params = read_study_file(study_dir)
    progress = STUDIES[name].progress
    points = None if progress is None else progress(study_dir, params)
    holder = directory.lock_holder(study_dir)
    summary_written = (study_dir / rundir.SUMMARY_FILE).is_file()
    in_progress = None if points is None else next((p for p in points if not p["finished"]), None)
    if points is not None and in_progress is None and summary_written:
        state = "done"
    elif holder is not None and holder["alive"] and holder["purpose"] == "run":
        state = "running"
    else:
        state = "stopped"
    return {"directory": str(study_dir), "name": name, "params": params, "state": state,
            "points_total": None if points is None else len(points),
            "points_finished": None if points is None else sum(p["finished"] for p in points),
            "in_progress": in_progress, "summary_written": summary_written,
            "lock_holder": holder, "points": points}


def format_study_status(status: dict) -> str:
    """The printed form of `study_status`: a few lines, parameters as key=value."""
    params = " ".join(f"{key}={value}" for key, value in status["params"].items())
    lines = [f"study {status['name']} in {status['directory']}: {status['state']}",
             f"parameters: {params}"]
    if status["points"] is None:
        lines.append("points: this study does not describe its progress (Study.progress)")
    else:
        lines.append(f"points finished: {status['points_finished']}/{status['points_total']}")
        current = status["in_progress"]
        if current is not None:
            step = ("no checkpoint yet" if current["step"] is None
                    else f"last checkpoint at step {current['step']}/{current['total_steps']}")
            lines.append(f"point in progress: {current['label']} ({step})")
    lines.append("summary.json: " + ("written" if status["summary_written"] else "not written yet"))
    holder = status["lock_holder"]
    if holder is not None and status["state"] == "running":
        lines.append(f"process: {holder['pid']} ({holder['purpose']})")
    elif status["state"] == "stopped":
        lines.append(f"continue with: langevin resume {status['directory']}")
    return "\n".join(lines)
