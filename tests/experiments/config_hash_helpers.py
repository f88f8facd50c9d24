"""Shared checks that new config keys, left at their defaults, keep the hash of every existing config
(so run directories written before the keys existed still resume and report)."""
import hashlib
import json

from experiments import presets
from experiments.setup import config as cfg


def hash_without_keys(config: dict, new_keys: set[str]) -> str:
    """config_hash as it was computed before `new_keys` ("section.key") existed."""
    kept = {s: {k: v for k, v in values.items()
                if f"{s}.{k}" not in new_keys and cfg._hashed(s, k, config)}
            for s, values in config.items()}
    kept = {s: v for s, v in kept.items() if v}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def preset_sets_any(name: str, keys: set[str]) -> bool:
    """Whether preset `name` itself sets one of `keys` (such a preset is new with them)."""
    return any(f"{s}.{k}" in keys for s, values in presets.PRESETS[name].overrides.items() for k in values)
