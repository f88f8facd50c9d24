"""scikit-learn's 8x8 digits as a ±1 regression task; npz images; the digits config keys."""
import numpy as np
import pytest

from experiments.setup import config as cfg
from experiments.setup.data import DataError, DataSet, load_npz, read_dataset, save_dataset
from experiments.setup.digits import digits_data, digits_from_config
from sklearn.datasets import load_digits

DIGITS = load_digits()
PIXELS = DIGITS.images.reshape(len(DIGITS.images), -1)


def _source_rows(x_raw_rows):
    """Row index in load_digits of every raw (unstandardized) image (all 1797 are distinct)."""
    lookup = {row.tobytes(): i for i, row in enumerate(PIXELS)}
    return np.array([lookup[row.tobytes()] for row in x_raw_rows])


def test_pair_task_shapes_labels_and_a_disjoint_seeded_split():
    data = digits_data(target="pair", classes=(3, 8), standardize="none", seed=4)
    kept = np.isin(DIGITS.target, (3, 8)).sum()
    assert data.x_train.shape[1] == 64 and data.input_shape == (8, 8)
    assert len(data.x_train) + len(data.x_test) == kept
    assert len(data.x_test) == round(0.25 * kept)
    train_rows, test_rows = _source_rows(data.x_train), _source_rows(data.x_test)
    assert set(np.unique(data.y_train)) == {-1.0, 1.0}
    np.testing.assert_array_equal(data.y_train, np.where(DIGITS.target[train_rows] == 3, 1, -1))
    np.testing.assert_array_equal(data.y_test, np.where(DIGITS.target[test_rows] == 3, 1, -1))
    assert not set(train_rows) & set(test_rows)
    again = digits_data(target="pair", classes=(3, 8), standardize="none", seed=4)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    other = digits_data(target="pair", classes=(3, 8), standardize="none", seed=5)
    assert not np.array_equal(other.y_train, data.y_train)
    assert data.teacher_direction is None and data.control_directions is None


def test_odd_even_task_labels_every_image():
    data = digits_data(target="odd_even", standardize="none", test_fraction=0.5, seed=0)
    assert len(data.x_train) + len(data.x_test) == len(PIXELS)
    rows = _source_rows(data.x_test)
    np.testing.assert_array_equal(data.y_test, np.where(DIGITS.target[rows] % 2 == 0, 1, -1))
    assert abs(len(data.x_test) - len(PIXELS) / 2) <= 1


def test_standardization_uses_training_statistics():
    raw = digits_data(standardize="none", seed=2)
    glob = digits_data(standardize="global", seed=2)
    mean, std = raw.x_train.mean(), raw.x_train.std()
    np.testing.assert_allclose(glob.x_train, (raw.x_train - mean) / std, rtol=1e-13)
    np.testing.assert_allclose(glob.x_test, (raw.x_test - mean) / std, rtol=1e-13)
    assert abs(glob.x_train.mean()) < 1e-12 and np.mean(glob.x_train ** 2) == pytest.approx(1.0)
    pixel = digits_data(standardize="pixel", seed=2)
    varying = raw.x_train.std(0) > 0
    np.testing.assert_allclose(pixel.x_train.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(pixel.x_train.std(0)[varying], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(pixel.x_train[:, ~varying], 0.0)


def test_pca_projects_on_the_top_components_of_the_training_set():
    base = digits_data(target="odd_even", standardize="global", seed=3)
    data = digits_data(target="odd_even", standardize="global", pca_components=12, seed=3)
    assert data.x_train.shape == (len(base.x_train), 12) and data.input_shape is None
    assert np.mean(data.x_train ** 2) == pytest.approx(1.0)
    # Uncorrelated components with decreasing variance, the top-12 eigenvalues of the
    # training covariance up to the one global rescaling.
    covariance = np.cov(data.x_train, rowvar=False, bias=True)
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0.0, atol=1e-10)
    eigenvalues = np.linalg.eigvalsh(np.cov(base.x_train, rowvar=False, bias=True))[::-1][:12]
    ratio = np.diag(covariance) / eigenvalues
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    # The test set goes through the same centring, projection and scale as the training set.
    assert data.x_test.shape == (len(base.x_test), 12)
    centred = base.x_test - base.x_train.mean(0)
    scale = 1.0 / np.sqrt(ratio[0])  # ratio = 1/scale²
    np.testing.assert_allclose(np.linalg.norm(data.x_test, axis=1) * scale,
                               np.linalg.norm(centred @ _top_basis(base.x_train, 12), axis=1),
                               rtol=1e-9)


def _top_basis(x, k):
    eigenvalues, vectors = np.linalg.eigh(np.cov(x, rowvar=False, bias=True))
    return vectors[:, ::-1][:, :k]


def test_digits_n_train_and_bad_values_name_the_key():
    data = digits_data(n_train=50, seed=1)
    assert len(data.x_train) == 50
    with pytest.raises(DataError, match="data.digits_n_train"):
        digits_data(n_train=10_000)
    with pytest.raises(DataError, match="data.digits_classes"):
        digits_data(classes=(4, 4))
    with pytest.raises(DataError, match="data.pca_components"):
        digits_data(n_train=5, pca_components=6)
    with pytest.raises(DataError, match="data.test_fraction"):
        digits_data(test_fraction=1.0)


def test_config_keys_resolve_validate_and_hash_only_for_digits():
    config, _ = cfg.resolve([{"data": {"source": "digits", "digits_classes": [2, 7],
                                       "pca_components": 8, "digits_n_train": 60}}])
    data = digits_from_config(config)
    assert data.x_train.shape == (60, 8)
    assert set(data.y_train) == {-1.0, 1.0}
    for override, key in [({"digits_classes": [1, 1]}, "data.digits_classes"),
                          ({"digits_target": "parity"}, "data.digits_target"),
                          ({"standardize": "minmax"}, "data.standardize"),
                          ({"test_fraction": 0.0}, "data.test_fraction"),
                          ({"pca_components": 65}, "data.pca_components")]:
        with pytest.raises(cfg.ConfigError, match=key):
            cfg.resolve([{"data": {"source": "digits", **override}}])
    with pytest.raises(cfg.ConfigError, match="data.pca_components.*'digits' only"):
        cfg.resolve([{"data": {"pca_components": 4}}])
    with pytest.raises(cfg.ConfigError, match="data.digits_classes.*'pair' only"):
        cfg.resolve([{"data": {"source": "digits", "digits_target": "odd_even",
                               "digits_classes": [3, 5]}}])
    # A resolved [data] section (digits keys at their defaults) is valid input again.
    default, _ = cfg.resolve([])
    cfg.resolve([{"data": default["data"]}])
    # Digits keys do not enter the hash of other sources' runs (resume of older runs).
    changed = cfg.merge(default, {"data": {"pca_components": 3}})
    assert cfg.config_hash(changed) == cfg.config_hash(default)
    digits = cfg.merge(default, {"data": {"source": "digits"}})
    assert cfg.config_hash(cfg.merge(digits, {"data": {"pca_components": 3}})) != \
        cfg.config_hash(digits)


def test_npz_images_load_flattened_with_their_shape(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((6, 4, 5))
    path = tmp_path / "images.npz"
    np.savez(path, X=images, y=np.ones(6), X_test=images[:2], y_test=np.ones(2))
    data = load_npz(path)
    assert data.input_shape == (4, 5)
    np.testing.assert_array_equal(data.x_train, images.reshape(6, 20))
    np.testing.assert_array_equal(data.x_test, images[:2].reshape(2, 20))
    np.savez(path, X=images, y=np.ones(6), X_test=images[:2, :, :4], y_test=np.ones(2))
    with pytest.raises(DataError, match="'X_test' inputs have shape"):
        load_npz(path)
    np.savez(path, X=images[:, 0], y=np.ones(6))
    assert load_npz(path).input_shape is None


def test_input_shape_round_trips_and_old_data_files_still_load(tmp_path):
    data = digits_data(n_train=20, seed=0)
    save_dataset(tmp_path / "data.npz", data)
    again = read_dataset(tmp_path / "data.npz")
    assert again.input_shape == (8, 8)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    old_fields = DataSet._fields[:6]  # a data.npz written before input_shape existed
    np.savez(tmp_path / "old.npz", **{f: getattr(data, f) for f in old_fields[:4]})
    assert read_dataset(tmp_path / "old.npz").input_shape is None
