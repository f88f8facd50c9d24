"""The declaration of one config key (type, default, check, doc), shared by the config
schema and the architecture registry (whose entries own their keys)."""
from __future__ import annotations

import math
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


class ConfigError(ValueError):
    """A config key or value is invalid; the message names the key and the value."""


def positive(v):
    return None if v > 0 and math.isfinite(v) else "must be positive and finite"


def non_negative(v):
    return None if v >= 0 and math.isfinite(v) else "must be non-negative and finite"


def one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {list(choices)}"
