"""Run directories: self-describing folders a run writes and `report` reads.

    config.toml    the resolved config (every key, defaults included)
    meta.json      version, git commit, device, dtype, seeds, convention, times, status
    data.npz       the data set of the run (train/test inputs and labels, w*)
    samples.zarr   observables, dims (chain, draw, ...)
    checkpoint/    the last atomic checkpoint
    summary.json   diagnostics and theory comparisons
    figures/       figures drawn from the files above
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from experiments import config as cfg

CONFIG_FILE = "config.toml"
META_FILE = "meta.json"
DATA_FILE = "data.npz"
SAMPLES_DIR = "samples.zarr"
CHECKPOINT_DIR = "checkpoint"
SUMMARY_FILE = "summary.json"
FIGURES_DIR = "figures"


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {value!r}")


def read_json(path: Path) -> dict:
    with open(path) as handle:
        return json.load(handle)


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
        from importlib.metadata import version
        return version("langevin-feature-learning")
    except Exception:  # noqa: BLE001 - not installed: running from a source tree
        return "source"


def default_run_dir(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}"


def create_run_dir(path: Path) -> Path:
    """Make a new run directory; refuse to reuse one that holds anything."""
    if path.exists() and any(path.iterdir()):
        raise FileExistsError(
            f"run directory {str(path)!r} already exists and is not empty; continue it with "
            f"`langevin resume {path}` or choose another --out")
    path.mkdir(parents=True, exist_ok=True)
    (path / FIGURES_DIR).mkdir(exist_ok=True)
    return path


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
    stored = cfg.load_toml(run_dir / CONFIG_FILE)
    config = cfg.merge(cfg.default_config(), stored)
    cfg.validate(config)
    return config
