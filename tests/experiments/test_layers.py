"""The layers of experiments/ import only downward (README, "experiments/").

Order, bottom to top: setup < rundirs < compare < reporting < the top modules (runner,
presets, studies, sweep, reference_check, launch/, cli, the modular-addition sweep). Every import
of an experiments module is read from the source with `ast`, at any depth (an import
inside a function counts too), so a cycle cannot hide in a function body.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "experiments"
LAYER_ORDER = {"setup": 0, "rundirs": 1, "compare": 2, "reporting": 3}
TOP = 4


def _layer(module: str) -> int:
    """Layer of a dotted module name `experiments.<package>.<name>` (top modules: TOP)."""
    parts = module.split(".")
    return LAYER_ORDER.get(parts[1], TOP) if len(parts) > 2 else TOP


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT.parent).with_suffix("")
    return ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted experiments module) of every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "experiments" or node.module in (
                    f"experiments.{package}" for package in LAYER_ORDER):
                found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.startswith("experiments.")]


MODULES = sorted(p for p in ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_only_downward(path):
    own = _layer(_module_name(path))
    upward = [f"line {line}: {name}" for line, name in _imported_modules(path)
              if _layer(name) > own]
    assert not upward, f"{path.relative_to(ROOT.parent)} imports a higher layer: {upward}"


def test_every_package_module_is_in_a_known_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"launch"} == set(LAYER_ORDER)


def test_checker_sees_an_upward_import(tmp_path):
    """The check itself: a setup module importing the report is flagged."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from experiments.reporting import report\n")
    assert [_layer(name) for _, name in _imported_modules(source)] == [LAYER_ORDER["reporting"]]
