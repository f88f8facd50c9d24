"""Sweeps: one run per value of one config key, in subdirectories of a sweep directory.

    SWEEP_DIR/sweep.json          the preset, the swept key and values, the --set args
    SWEEP_DIR/<key>=<value>/      an ordinary run directory per value
    SWEEP_DIR/summary.json        the table across values (written by `report`)
    SWEEP_DIR/figures/

`langevin resume SWEEP_DIR` continues every unfinished run; `langevin report
SWEEP_DIR` rebuilds the table and figures from the run directories alone.

A sweep can also move several keys together: the preset's sweep key is then a tuple of keys
and every value a tuple (one entry per key), e.g. {("model.width", "data.d"): [(94, 12), ...]};
its run directories are named `width=94,d=12` and its table column is "model.width+data.d".
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from experiments.presets import Preset, get_preset
from experiments.reporting import sweep_tables
from experiments.reporting.report import write_report
from experiments.rundirs import rundir
from experiments.setup import config as cfg

SWEEP_FILE = "sweep.json"


def is_sweep_dir(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def _keys_values(key, value) -> list[tuple[str, object]]:
    """[(key, value)] of one sweep point; a tuple/list key moves its keys together."""
    if isinstance(key, str):
        return [(key, value)]
    if not isinstance(value, (list, tuple)) or len(value) != len(key):
        raise ValueError(f"sweep over {list(key)}: every value must have {len(key)} entries, got {value!r}")
    return list(zip(key, value))


def assignments(key, value) -> list[str]:
    """The `--set` strings of one sweep point."""
    return [f"{k}={v}" for k, v in _keys_values(key, value)]



def subdir_name(key, value) -> str:
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in _keys_values(key, value))


def _column(key) -> str:
    return key if isinstance(key, str) else "+".join(key)



def create_sweep(name: str, preset: Preset, set_args: list[str], out: Path,
                 start_run: Callable) -> list[tuple[Path, dict]]:
    """Validate every point of the sweep, then create the sweep directory and every
    point's run directory; returns (run_dir, config) per point."""
    (key, values), = preset.sweep.items()
    for value in values:  # every config of the sweep is valid before anything is written
        cfg.resolve([preset.overrides], [*set_args, *assignments(key, value)])
    out = rundir.create_run_dir(Path(out))
    rundir.write_json_atomic(out / SWEEP_FILE, {"preset": name, "key": key, "values": values,
                                                "set": set_args})
    return [start_run(name, [preset.overrides], [*set_args, *assignments(key, value)],
                      out / subdir_name(key, value)) for value in values]


def run_sweep(name: str, preset: Preset, set_args: list[str], out: Path,
              start_run: Callable, execute: Callable) -> int:
    """Create every point of the sweep, then run them one after the other."""
    for run_dir, config in create_sweep(name, preset, set_args, out, start_run):
        code = execute(run_dir, config, name)
        if code != 0:
            return code
    write_sweep_report(Path(out))
    return 0


def ensure_points(sweep_dir: Path, start_run: Callable) -> None:
    """Create the run directory of every point killed before its config was written."""
    spec = rundir.read_json(sweep_dir / SWEEP_FILE)
    preset = get_preset(spec["preset"])
    for value in spec["values"]:
        run_dir = sweep_dir / subdir_name(spec["key"], value)
        if (run_dir / rundir.CONFIG_FILE).is_file():
            continue
        _clear_leftovers(run_dir)
        start_run(spec["preset"], [preset.overrides], [*spec["set"], *assignments(spec["key"], value)],
                  run_dir)


def _clear_leftovers(run_dir: Path) -> None:
    if run_dir.exists():  # created but killed before its config was written
        for leftover in sorted(run_dir.rglob("*"), reverse=True):
            if leftover.is_file():
                leftover.unlink()


def resume_sweep(sweep_dir: Path, start_run: Callable, execute: Callable) -> int:
    """Finish the unfinished points of a sweep (creating those killed before their config
    was written), then write the sweep table."""
    spec = rundir.read_json(sweep_dir / SWEEP_FILE)
    preset = get_preset(spec["preset"])

    for value in spec["values"]:
        run_dir = sweep_dir / subdir_name(spec["key"], value)
        if (run_dir / rundir.CONFIG_FILE).is_file():
            meta = rundir.read_json(run_dir / rundir.META_FILE)
            if meta["status"] == "completed" and (run_dir / rundir.SUMMARY_FILE).is_file():
                continue
            config = rundir.load_config(run_dir)
        else:
            if run_dir.exists():  # created but killed before its config was written
                shutil.rmtree(run_dir)
            run_dir, config = start_run(spec["preset"], [preset.overrides],
                                        [*spec["set"], *assignments(spec["key"], value)], run_dir)
        code = execute(run_dir, config, spec["preset"])
        if code != 0:
            return code
    write_sweep_report(sweep_dir)
    return 0


def write_sweep_report(sweep_dir: Path) -> Path:
    """Collect each run's summary.json into one table (and figures) for the sweep."""
    spec = rundir.read_json(sweep_dir / SWEEP_FILE)
    rows = []
    for value in spec["values"]:
        run_dir = sweep_dir / subdir_name(spec["key"], value)
        if not (run_dir / rundir.SUMMARY_FILE).is_file():
            if not (run_dir / rundir.CONFIG_FILE).is_file():
                continue
            write_report(run_dir)
        rows.append((value, rundir.read_json(run_dir / rundir.SUMMARY_FILE)))
    table = sweep_tables.build_table(spec["preset"], _column(spec["key"]), rows)
    (sweep_dir / rundir.FIGURES_DIR).mkdir(exist_ok=True)
    sweep_tables.draw(spec["preset"], _column(spec["key"]), table, sweep_dir / rundir.FIGURES_DIR)
    path = sweep_dir / rundir.SUMMARY_FILE
    rundir.write_json_atomic(path, {"sweep": spec, "table": table})
    print(sweep_tables.format_table(table))
    return path
