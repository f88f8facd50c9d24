"""The [data] keys of data.source = "digits" (experiments/setup/digits.py) and their rules;
merged into experiments.setup.config.SCHEMA."""
from __future__ import annotations

from experiments.setup.config_keys import ConfigError, Key, non_negative, one_of


def _digit_pair(v):
    ok = (len(v) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                              and float(c).is_integer()
                              and 0 <= c <= 9 for c in v) and v[0] != v[1])
    return None if ok else "must be two different digits 0..9, e.g. [3, 8]"


DIGITS_KEYS = {
    "digits_target": Key(str, "pair", one_of("pair", "odd_even"),
                         "pair: y = +1 for digits_classes[0], -1 for [1]; odd_even: +1 even, "
                         "-1 odd"),
    "digits_classes": Key(list, [0.0, 1.0], _digit_pair, "the two digits of target 'pair'"),
    "standardize": Key(str, "global", one_of("global", "pixel", "none"),
                       "global: one mean/std over all training pixels; pixel: per pixel"),
    "pca_components": Key(int, 0, lambda v: None if 0 <= v <= 64 else "must be in 0..64",
                          "project on the top-k principal components (0: keep the 8x8 images)"),
    "test_fraction": Key(float, 0.25, lambda v: None if 0 < v < 1 else "must be in (0, 1)",
                         "fraction of the selected images held out as the test set"),
    "digits_n_train": Key(int, 0, non_negative,
                          "keep this many training images (0: the whole training split)"),
}


def validate_digits(config: dict, user_keys) -> None:
    """The digits keys apply to data.source = 'digits' only (a resolved config.toml, which
    lists them at their defaults, stays valid)."""
    data = config["data"]
    if data["source"] != "digits":
        stray = sorted(f"data.{k}" for k, key in DIGITS_KEYS.items()
                       if f"data.{k}" in user_keys and data[k] != key.default)
        if stray:
            raise ConfigError(f"config key {stray[0]!r} applies to data.source = 'digits' only, "
                              f"got data.source {config['data']['source']!r}")
    elif (data["digits_target"] != "pair" and "data.digits_classes" in user_keys
          and data["digits_classes"] != DIGITS_KEYS["digits_classes"].default):
        raise ConfigError("config key 'data.digits_classes' applies to data.digits_target = "
                          f"'pair' only, got {data['digits_target']!r}")
