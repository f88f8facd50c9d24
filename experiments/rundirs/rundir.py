"""Run directories: self-describing folders a run writes and `report` reads.

    config.toml    the resolved config (every key, defaults included)
    meta.json      version, git commit, device, dtype, seeds, convention, times, status
    data.npz       the data set of the run (train/test inputs and labels, w*)
    samples.zarr   observables, dims (chain, draw, ...)
    checkpoint/    the last atomic checkpoint
    summary.json   diagnostics and theory comparisons
    figures/       figures drawn from the files above
    .lock          held (flock) by the process that samples into the directory or writes
                   its report (`experiments.rundirs.lock`)

Start-up is atomic: config.toml, data.npz and meta.json are written into a private
staging directory `.NAME.starting-PID` beside the target, which is then renamed into
place, so a run directory is either absent or complete (resumable). A staging directory
left by a killed start-up is removed by the next start-up of the same name.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.rundirs.lock import RunDirectoryBusy, RunDirectoryLock
from experiments.setup import config as cfg
from experiments.setup.data import read_dataset

CONFIG_FILE = "config.toml"
META_FILE = "meta.json"
DATA_FILE = "data.npz"
SAMPLES_DIR = "samples.zarr"
CHECKPOINT_DIR = "checkpoint"
SUMMARY_FILE = "summary.json"
FIGURES_DIR = "figures"
STAGING_MARK = ".starting-"


class CorruptFileError(ValueError):
    """A file of a run directory cannot be read (truncated or corrupt)."""


class RunDirectoryError(ValueError):
    """A path is not a usable run directory; the message says how to recover."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file, fsync it, rename it over `path`; a failed write
    (a full disk) removes the temporary file and leaves `path` as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {value!r}")


def json_ready(value):
    """Arrays to lists and non-finite floats to None, recursively (summary.json is strict JSON)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def read_json(path: Path) -> dict:
    """A JSON file of a run directory; CorruptFileError names it if it does not parse."""
    try:
        with open(path) as handle:
            payload = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{str(path)!r} is truncated or corrupt ({err})") from None
    if not isinstance(payload, dict):
        raise CorruptFileError(f"{str(path)!r} is not a JSON object")
    return payload


def read_run_data(run_dir: Path):
    """The run's data.npz (written by the run itself): CorruptFileError if unreadable."""
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        raise RunDirectoryError(f"{str(path)!r} is missing: the run directory is incomplete")
    try:
        return read_dataset(path)
    except (OSError, ValueError, EOFError) as err:
        raise CorruptFileError(f"{str(path)!r} is truncated or corrupt ({err})") from None
    except Exception as err:  # noqa: BLE001 - zipfile.BadZipFile and kin
        raise CorruptFileError(f"{str(path)!r} is truncated or corrupt "
                               f"({type(err).__name__}: {err})") from None


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_version() -> str:
    try:
        return version("langevin-feature-learning")
    except Exception:  # noqa: BLE001 - not installed: running from a source tree
        return "source"


def default_run_dir(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}"


def check_new_run_dir(path: Path) -> None:
    """Refuse a target that is a file or a directory that holds anything."""
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"--out {str(path)!r} is a file, not a directory; choose "
                                "another --out")
    if path.is_dir() and any(path.iterdir()):
        hint = (f"continue it with `langevin resume {path}` or choose another --out"
                if (path / CONFIG_FILE).is_file() else
                f"it is not a run directory (no {CONFIG_FILE}, nothing for `langevin resume "
                f"{path}` to continue): choose another --out")
        raise RunDirectoryError(
            f"run directory {str(path)!r} already exists and is not empty; {hint}")


def create_run_dir(path: Path) -> Path:
    """Make a new (sweep) directory; refuse to reuse one that holds anything."""
    path = Path(path)
    check_new_run_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / FIGURES_DIR).mkdir(exist_ok=True)
    return path


def _staging_prefix(path: Path) -> str:
    return f".{path.name}{STAGING_MARK}"


def make_staging_dir(path: Path) -> Path:
    """A private directory beside `path` to assemble a run directory in (module doc);
    stale staging directories of `path` from killed start-ups are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(_staging_prefix(path) + "*"):
        try:
            with RunDirectoryLock(stale, "start-up"):  # held while a start-up runs
                pass
        except (RunDirectoryBusy, OSError):
            continue
        shutil.rmtree(stale, ignore_errors=True)
    staging = path.parent / f"{_staging_prefix(path)}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / FIGURES_DIR).mkdir()
    return staging


def publish_staging_dir(staging: Path, path: Path) -> Path:
    """Rename the complete `staging` directory to `path` (an absent or empty directory)."""
    path = Path(path)
    check_new_run_dir(path)
    if path.is_dir():
        path.rmdir()
    os.rename(staging, path)
    return path


def check_run_dir(path: Path) -> None:
    """Refuse a path that is not a complete run directory, saying how to recover."""
    path = Path(path)
    if not path.exists():
        raise RunDirectoryError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise RunDirectoryError(f"{str(path)!r} is a file, not a run directory")
    if not (path / CONFIG_FILE).is_file():
        raise RunDirectoryError(f"{str(path)!r} is not a run directory (no {CONFIG_FILE})")
    missing = [name for name in (META_FILE, DATA_FILE) if not (path / name).is_file()]
    if missing:
        raise RunDirectoryError(
            f"run directory {str(path)!r} is incomplete (no {', '.join(missing)}): its "
            f"start-up was interrupted before any sampling; remove it (rm -r {path}) and "
            "start it again with `langevin run ... --out`")


def initial_meta(config: dict, physics_meta: dict, device: str, dtype: str, name: str) -> dict:
    return {
        "name": name,
        "package_version": package_version(),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": device,
        "device_name": (torch.cuda.get_device_name(torch.device(device))
                        if device.startswith("cuda") else platform.processor() or "cpu"),
        "dtype": dtype,
        "sampler_seed": config["sampler"]["seed"],
        "data_seed": config["data"]["seed"],
        "config_hash": cfg.config_hash(config),
        "convention": physics_meta,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": "created",
        "segments": [],
    }


def load_config(run_dir: Path) -> dict:
    """The resolved config of a run, re-validated against the current schema."""
    stored = cfg.load_toml(Path(run_dir) / CONFIG_FILE)
    config = cfg.merge(cfg.default_config(), stored)
    cfg.validate(config)
    return config
