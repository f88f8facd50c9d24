"""Data sets of a run: the single-index Hermite teacher, or the user's .npz file.

Single-index teacher (Rubin, Seroussi & Ringel, ICLR 2024, Sec. 3.1 and App. A): x ~ N(0, I_d),
    y(x) = Σ_k c_k He_k(w*·x),   |w*| = 1,
with He_k the probabilists' Hermite polynomials (He_1 = z, He_3 = z³ − 3z). The
grokking model is c = (0, 1, 0, ε). `data.target = "relu_abs"` instead gives the ReLU teacher
of Ringel et al. 2025 (arXiv:2502.18553), y = z + ε(|z| − √(2/π)), z = w*·x (He_0 removed; its He_2, He_4, … content:
`theory.single_index_gfl.relu_abs_hermite_coefficients`). Data are generated with NumPy from `data.seed`,
separately from the sampler's generator, in float64.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from theory.hermite import hermite_he
from theory.single_index_gfl import relu_abs_hermite_coefficients


class DataSet(NamedTuple):
    x_train: np.ndarray  # (n_train, d)
    y_train: np.ndarray  # (n_train,)
    x_test: np.ndarray  # (n_test, d)
    y_test: np.ndarray  # (n_test,)
    teacher_direction: np.ndarray | None  # (d,) unit vector w*, or None for user data
    control_directions: np.ndarray | None  # (k, d) unit vectors orthogonal to w*
    # Shape of one input before flattening ((H, W) images, (L,) signals), for patch models;
    # None for plain vectors. x_* are always flat (n, prod(input_shape)), row-major.
    input_shape: tuple[int, ...] | None = None
    # The sparse-coding model (experiments.setup.sparse_coding_data): the orthonormal dictionary M
    # (d, d), atoms as columns, and the label weights w* (d,); None for other data.
    dictionary: np.ndarray | None = None
    label_weights: np.ndarray | None = None


class DataError(ValueError):
    """Bad user data; the message names the array and the problem."""


def single_index_target(z: np.ndarray, coefficients: list[float]) -> np.ndarray:
    return sum(c * hermite_he(k, z) for k, c in enumerate(coefficients) if c != 0.0) + 0.0 * z


def relu_abs_target(z: np.ndarray, epsilon: float) -> np.ndarray:
    """y = z + ε(|z| − √(2/π)): the ReLU teacher of Ringel et al. 2025 (E|z| = √(2/π) removes He_0)."""
    return z + epsilon * (np.abs(z) - np.sqrt(2.0 / np.pi))


# Degrees on which `target_hermite_coefficients` reports the relu_abs teacher (its odd ≥ 3 vanish).
RELU_ABS_DEGREES = tuple(range(7))


def target_hermite_coefficients(data_config: dict) -> tuple[float, ...]:
    """Unnormalized c_k (k = 0, 1, ...) of the configured single-index target; relu_abs up to degree 6
    (the rest of its power, ε² × 0.0105 of Var = ε²(1 − 2/π), is not listed)."""
    if data_config.get("target", "hermite") == "relu_abs":
        return tuple(relu_abs_hermite_coefficients(data_config["epsilon"], RELU_ABS_DEGREES).tolist())
    return tuple(data_config["hermite_coefficients"])


def single_index_data(d: int, n_train: int, n_test: int, coefficients: list[float], seed: int,
                      label_noise: float = 0.0, num_control: int = 0, target=None) -> DataSet:
    """Draw w* uniformly on the sphere, x ~ N(0, I_d) and y = Σ_k c_k He_k(w*·x), or y = target(w*·x)
    for a given callable `target` (then `coefficients` is unused)."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal(d)
    teacher /= np.linalg.norm(teacher)
    x_train = rng.standard_normal((n_train, d))
    x_test = rng.standard_normal((n_test, d))
    target = (lambda z: single_index_target(z, coefficients)) if target is None else target
    y_train = target(x_train @ teacher)
    if label_noise > 0:
        y_train = y_train + label_noise * rng.standard_normal(n_train)
    y_test = target(x_test @ teacher)
    control = rng.standard_normal((num_control, d))
    control -= np.outer(control @ teacher, teacher)  # orthogonal to w*: a pure control
    control /= np.linalg.norm(control, axis=1, keepdims=True)
    return DataSet(x_train, y_train, x_test, y_test, teacher, control if num_control else None)


def _checked(name: str, array, ndim: int, path: str) -> np.ndarray:
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(f"{path}: array {name!r} must be real numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise DataError(f"{path}: array {name!r} must have {ndim} dimension(s), got shape "
                        f"{array.shape}")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise DataError(f"{path}: array {name!r} has {bad} non-finite value(s)")
    return array.astype(np.float64)


def load_npz(path: str | Path) -> DataSet:
    """User data: X (n, d) or images (n, H, W), y (n,), optional X_test (m, d) or
    (m, H, W), y_test (m,), optional teacher_direction (d,) (d = H·W). Images are
    flattened row-major and input_shape (H, W) is recorded. Shapes, dtypes, finiteness and
    degeneracy (no rows, no columns, identical inputs, a zero teacher direction) are
    checked; a file that is not a readable .npz archive (text, truncated) raises DataError
    naming `data.path`."""
    path = str(path)
    if not Path(path).is_file():
        raise DataError(f"data.path {path!r} is not a file")
    try:
        return _load_npz_checked(path)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - np.load/zipfile raise many types on bad files
        raise DataError(f"data.path {path!r} is not a readable .npz archive (truncated, or "
                        f"not written by numpy.savez): {type(err).__name__}: {err}") from None


def _check_degenerate(path: str, x: np.ndarray, teacher: np.ndarray | None) -> None:
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{path}: array 'X' has shape {x.shape}: it needs at least one row "
                        "(example) and one column (input dimension)")
    if x.shape[0] > 1 and not np.ptp(x, axis=0).any():
        raise DataError(f"{path}: every row of array 'X' is the same input: the data carry "
                        "no information to learn from")
    if teacher is not None and not np.linalg.norm(teacher) > 0:
        raise DataError(f"{path}: array 'teacher_direction' is zero: it must be a non-zero "
                        "direction (it is normalized to unit length)")


def _load_npz_checked(path: str) -> DataSet:
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        if not {"X", "y"} <= keys:
            raise DataError(f"{path}: needs arrays 'X' and 'y', found {sorted(keys)}")
        input_shape = _image_shape(archive["X"])
        x = _checked("X", _flattened(archive["X"]), 2, path)
        y = _checked("y", archive["y"], 1, path)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{path}: 'X' has {x.shape[0]} rows but 'y' has {y.shape[0]} entries")
        if ("X_test" in keys) != ("y_test" in keys):
            raise DataError(f"{path}: give both 'X_test' and 'y_test' or neither")
        if "X_test" in keys:
            if _image_shape(archive["X_test"]) != input_shape:
                raise DataError(f"{path}: 'X_test' inputs have shape "
                                f"{archive['X_test'].shape[1:]}, 'X' inputs "
                                f"{archive['X'].shape[1:]}")
            x_test = _checked("X_test", _flattened(archive["X_test"]), 2, path)
            y_test = _checked("y_test", archive["y_test"], 1, path)
            if x_test.shape[1] != x.shape[1]:
                raise DataError(f"{path}: 'X_test' has {x_test.shape[1]} columns, 'X' has "
                                f"{x.shape[1]}")
            if x_test.shape[0] != y_test.shape[0]:
                raise DataError(f"{path}: 'X_test' has {x_test.shape[0]} rows but 'y_test' has "
                                f"{y_test.shape[0]} entries")
        else:
            x_test, y_test = x[:0], y[:0]
        teacher = None
        if "teacher_direction" in keys:
            teacher = _checked("teacher_direction", archive["teacher_direction"], 1, path)
            if teacher.shape[0] != x.shape[1]:
                raise DataError(f"{path}: 'teacher_direction' has length {teacher.shape[0]}, "
                                f"'X' has {x.shape[1]} columns")
        _check_degenerate(path, x, teacher)
        if teacher is not None:
            teacher = teacher / np.linalg.norm(teacher)
    return DataSet(x, y, x_test, y_test, teacher, None, input_shape)


def _image_shape(array: np.ndarray) -> tuple[int, int] | None:
    """(H, W) of an (n, H, W) image array; None otherwise (other ranks fail in _checked)."""
    return tuple(int(s) for s in array.shape[1:]) if array.ndim == 3 else None


def _flattened(array: np.ndarray) -> np.ndarray:
    return array.reshape(array.shape[0], -1) if array.ndim == 3 else array


def save_dataset(path: str | Path, data: DataSet) -> None:
    arrays = {k: v for k, v in data._asdict().items() if v is not None}
    np.savez(path, **arrays)


def read_dataset(path: str | Path) -> DataSet:
    with np.load(path) as archive:
        fields = {f: (archive[f] if f in archive.files else None) for f in DataSet._fields}
    if fields["input_shape"] is not None:  # absent from files written before it existed
        fields["input_shape"] = tuple(int(s) for s in fields["input_shape"])
    return DataSet(**fields)
