"""Real data shipped with scikit-learn: the 8x8 handwritten digits as a ±1 regression task.

`sklearn.datasets.load_digits` (1797 images of 8x8 pixels with values 0…16, bundled with
scikit-learn, no download). Steps, all seeded by `data.seed` and fitted on the training
split only:

1. target: `pair` (data.digits_classes = [a, b]): keep the images of digits a and b,
   y = +1 for a and −1 for b; `odd_even`: all images, y = +1 for even digits, −1 for odd.
2. split: a seeded permutation; the first round(test_fraction·n) images are the test set,
   the rest the training set (disjoint); `digits_n_train` > 0 keeps the first that many of
   the training split (a learning-curve knob; 0 keeps all).
3. standardize: `global` x ← (x − m)/s with one mean m and one standard deviation s over
   all training pixels (keeps the image geometry and gives E|x|²/64 = 1 on the training
   set, so σ_w² keeps its meaning as the pre-activation variance); `pixel` per-pixel z-score
   (pixels constant on the training set are only centered); `none` raw values.
4. PCA (`pca_components` = k > 0, for fully connected nets): centre with the training
   mean, project on the top-k right singular vectors of the training matrix; unless
   standardize = `none`, rescale by one factor so that E|x|²/k = 1 on the training set.
   The inputs are then flat vectors (input_shape None); without PCA the images are kept,
   flattened row-major with input_shape (8, 8) recorded for the convolutional networks.
"""
from __future__ import annotations

import numpy as np

from experiments.setup.data import DataError, DataSet

IMAGE_SHAPE = (8, 8)
TARGETS = ("pair", "odd_even")
STANDARDIZATIONS = ("global", "pixel", "none")


def _load_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported here: ~1 s, only for this source

    bunch = load_digits()
    return bunch.images.reshape(len(bunch.images), -1).astype(np.float64), bunch.target


def _labels(digits: np.ndarray, target: str, classes) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the kept images, y = ±1)."""
    if target == "odd_even":
        return np.arange(len(digits)), np.where(digits % 2 == 0, 1.0, -1.0)
    if target != "pair":
        raise DataError(f"data.digits_target must be one of {list(TARGETS)}, got {target!r}")
    first, second = classes
    keep = np.flatnonzero((digits == first) | (digits == second))
    return keep, np.where(digits[keep] == first, 1.0, -1.0)


def _standardize(x_train, x_test, how: str):
    if how == "none":
        return x_train, x_test
    if how == "global":
        mean, std = x_train.mean(), x_train.std()
    elif how == "pixel":
        mean, std = x_train.mean(0), x_train.std(0)
        std = np.where(std > 0, std, 1.0)  # constant pixels: centred only
    else:
        raise DataError(f"data.standardize must be one of {list(STANDARDIZATIONS)}, got {how!r}")
    return (x_train - mean) / std, (x_test - mean) / std


def _pca(x_train, x_test, components: int, rescale: bool):
    mean = x_train.mean(0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    basis = vt[:components].T  # (64, k), orthonormal columns
    z_train, z_test = (x_train - mean) @ basis, (x_test - mean) @ basis
    if rescale:
        scale = np.sqrt(np.mean(z_train * z_train))  # E|z|²/k = 1 on the training set
        z_train, z_test = z_train / scale, z_test / scale
    return z_train, z_test


def digits_data(target: str = "pair", classes=(0, 1), standardize: str = "global",
                pca_components: int = 0, test_fraction: float = 0.25, n_train: int = 0,
                seed: int = 1) -> DataSet:
    """The digits task of the module docstring; errors name the config key."""
    if target == "pair":
        if len(classes) != 2 or classes[0] == classes[1] or not all(
                float(c).is_integer() and 0 <= c <= 9 for c in classes):
            raise DataError(f"data.digits_classes must be two different digits 0…9, "
                            f"got {list(classes)!r}")
        classes = (int(classes[0]), int(classes[1]))
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"data.test_fraction must be in (0, 1), got {test_fraction!r}")
    images, digits = _load_images()
    keep, y = _labels(digits, target, classes)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keep))
    n_test = max(1, int(round(test_fraction * len(keep))))
    test, train = order[:n_test], order[n_test:]
    if n_train > 0:
        if n_train > len(train):
            raise DataError(f"data.digits_n_train = {n_train} exceeds the {len(train)} training "
                            f"images of this split (target {target!r}, test_fraction "
                            f"{test_fraction})")
        train = train[:n_train]
    if pca_components > min(len(train), images.shape[1]):
        raise DataError(f"data.pca_components = {pca_components} exceeds min(n_train, 64) = "
                        f"{min(len(train), images.shape[1])}")
    x_train, x_test = _standardize(images[keep[train]], images[keep[test]], standardize)
    input_shape = IMAGE_SHAPE
    if pca_components > 0:
        x_train, x_test = _pca(x_train, x_test, pca_components, standardize != "none")
        input_shape = None
    return DataSet(x_train, y[train], x_test, y[test], None, None, input_shape)


def digits_from_config(config: dict) -> DataSet:
    """`digits_data` with the [data] keys of a validated config (data.source = "digits")."""
    data = config["data"]
    return digits_data(target=data["digits_target"], classes=data["digits_classes"],
                       standardize=data["standardize"], pca_components=data["pca_components"],
                       test_fraction=data["test_fraction"], n_train=data["digits_n_train"],
                       seed=data["seed"])
