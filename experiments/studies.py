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

and is registered here as STUDIES[name] = Study(description, module). Names are checked at
import: every study module has the four names, and no study is named like a run preset
(experiments.presets.PRESETS).

Study directory (`langevin run NAME --out DIR`):

    DIR/study.json   {"name", "params" (validated, every key), "version" (package), "git_commit"}
    DIR/.lock        held (flock, experiments.rundirs.lock) by the process that runs, resumes
                     or reports it
    DIR/...          the study's own files: its points, summary.json, figures/

Start-up is atomic like a run's: study.json is written into a staging directory beside DIR
that is renamed into place (experiments.rundirs.rundir), so DIR is absent or resumable.
`--set KEY=VALUE` values are read as `--set` reads them for runs (TOML, else a bare string:
`--set noise_variances=[0.03,0.05]`, `--set init=well`); every key and value is validated
before anything is written. Studies run inline, in this process (no --executor).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from experiments import modular_addition_comparison, staircase_study
from experiments.presets import PRESETS
from experiments.rundirs import failures, rundir
from experiments.rundirs.lock import RunDirectoryLock
from experiments.setup.config import ConfigError, parse_override

STUDY_FILE = "study.json"
INTERFACE = ("DEFAULTS", "check_parameters", "run_study", "write_study_report")


class Study(NamedTuple):
    """A named study: its one-line description and the module providing the interface."""

    description: str
    module: ModuleType


STUDIES: dict[str, Study] = {
    "modular_addition": Study(
        "the sampled quadratic network on modular addition (P = 13, N = 64, all P^2 pairs) over "
        "sigma^2 across the theory's onset: discrepancy a, eigenvalue and per-mode order parameters "
        "against theory.modular_addition and the NNGP; 8 points of about 1.5 min on 2 busy CPU cores",
        modular_addition_comparison),
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
    return (Path(path) / STUDY_FILE).is_file()


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


def study_record(name: str, params: dict) -> dict:
    """The contents of study.json."""
    return {"name": name, "params": params, "version": rundir.package_version(),
            "git_commit": rundir.git_commit()}


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
    (staged beside it and renamed into place: absent or complete)."""
    params = study_parameters(name, set_args)
    target = Path(out) if out else rundir.default_run_dir(name)
    if is_study_dir(target):
        raise rundir.RunDirectoryError(
            f"study directory {str(target)!r} already exists; continue it with `langevin resume "
            f"{target}` or choose another --out")
    rundir.check_new_run_dir(target)
    try:
        staging = rundir.make_staging_dir(target)
    except OSError as err:
        raise failures.RunFailure(f"cannot create the study directory {str(target)!r}: "
                                  f"{failures.os_error_text(err)}", failures.EXIT_SYSTEM) from err
    lock = RunDirectoryLock(staging, "start-up")
    try:
        lock.acquire()
        rundir.write_json_atomic(staging / STUDY_FILE, study_record(name, params))
        study_dir = rundir.publish_staging_dir(staging, target)
    except BaseException as err:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise failures.RunFailure(
                f"cannot create the study directory {str(target)!r}: "
                f"{failures.os_error_text(err)}; nothing was written", failures.EXIT_SYSTEM) from err
        raise
    lock.release()
    return study_dir


def run_study_dir(study_dir: Path) -> int:
    """Run (or continue) the study of `study_dir` under its lock. Ctrl-C, a full disk or
    memory become a `failures.RunFailure` saying that the finished points are kept and how
    to continue."""
    study_dir = Path(study_dir)
    name, params = read_study_file(study_dir)
    resume = f"`langevin resume {study_dir}`"
    with RunDirectoryLock(study_dir, "run"):
        try:
            STUDIES[name].module.run_study(study_dir, params)
        except (KeyboardInterrupt, OSError, MemoryError, RuntimeError) as err:
            kept = ("the finished points are kept and the unfinished one continues from its "
                    "last checkpoint")
            if isinstance(err, KeyboardInterrupt):
                raise failures.RunFailure(f"interrupted; {kept}: continue with {resume}",
                                          failures.EXIT_INTERRUPTED) from err
            if isinstance(err, OSError) and failures.is_disk_problem(err):
                raise failures.RunFailure(
                    f"{failures.os_error_text(err)} while running study {name!r} in "
                    f"{str(study_dir)!r}; {kept}: free space or make it writable, then {resume}",
                    failures.EXIT_SYSTEM) from err
            if failures.is_out_of_memory(err):
                raise failures.RunFailure(
                    f"out of memory in study {name!r} ({type(err).__name__}: {err}); {kept}; "
                    "lower num_chains or width in a new study directory",
                    failures.EXIT_SYSTEM) from err
            raise
    print(f"study directory: {study_dir}")
    return 0


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
