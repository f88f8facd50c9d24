"""The declaration of one config key (type, default, check, doc), shared by the config
schema and the architecture registry (whose entries own their keys)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# `Key.kind` for a value that is one number or a list of numbers (e.g. per-layer σ_l²).
NUMBER_OR_LIST = "number_or_list"


@dataclass(frozen=True)
class Key:
    kind: Any  # int, float, str, bool, list or NUMBER_OR_LIST
    default: Any
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    doc: str = ""
    element: type = float  # element type of a list (int lists stay integers)
