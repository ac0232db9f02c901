import numpy as np
import pytest

from tfvae import datasets


def test_digits_split_ranges_and_options():
    (x_train, y_train), (x_test, y_test) = datasets.load("digits")
    assert x_train.shape == (1437, 64) and x_test.shape == (360, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    assert sorted(np.unique(y_test)) == list(range(10))
    (binary, _), _ = datasets.load("digits", binarize=True)
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (x_train > 0.5).astype(np.float32))
    (raw, _), _ = datasets.load("digits", scale=False)
    assert raw.max() == 16.0
    (images, _), _ = datasets.load("digits", flatten=False)
    assert images.shape == (1437, 8, 8, 1)


def test_preprocessing_dict_reproduces_load():
    (raw, _), _ = datasets.load("digits", scale=False)
    (x, _), _ = datasets.load("digits", binarize=True, threshold=0.3)
    info = datasets.preprocessing_for("digits", scale=True, binarize=True, threshold=0.3)
    assert info == {"offset": 0.0, "divisor": 16.0, "binarize_threshold": 0.3}
    np.testing.assert_array_equal(datasets.apply_preprocessing(raw, info), x)


def test_unknown_name_and_offline_keras_dataset(monkeypatch):
    with pytest.raises(ValueError, match="`name`.*'cifar'"):
        datasets.load("cifar")
    import keras

    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(RuntimeError, match="network.*digits"):
        datasets.load("mnist")


def test_load_array_reads_npy_npz_and_csv(tmp_path):
    x = np.arange(12, dtype=np.int64).reshape(4, 3)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "a.npz", features=x)
    (tmp_path / "a.csv").write_text("f1,f2,f3\n" + "\n".join(",".join(map(str, row)) for row in x) + "\n")
    for name in ("a.npy", "a.npz", "a.csv"):
        loaded, info = datasets.load_array(tmp_path / name)
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, x)
        assert info["binarize_threshold"] is None
    scaled, info = datasets.load_array(tmp_path / "a.npy", scale=True)
    np.testing.assert_allclose(scaled.min(0), 0)
    np.testing.assert_allclose(scaled.max(0), 1)
    np.testing.assert_allclose(datasets.apply_preprocessing(x, info), scaled)


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("1,2\n3\n", "rectangular.*Line 2"),
        ("1,2\n3,abc\n", "non-numeric"),
        ("a,b\n", "at least one row"),
        ("1,2\nnan,4\n5,6\n", "Line 2"),
        ("1,2\n3,inf\n", "Line 2"),
    ],
)
def test_load_array_rejects_bad_csv(tmp_path, content, pattern):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=pattern):
        datasets.load_array(path)


def test_load_array_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        datasets.load_array(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="extension"):
        datasets.load_array(tmp_path / "data.txt")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match="at least one example"):
        datasets.load_array(tmp_path / "empty.npy")
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(TypeError, match="numeric"):
        datasets.load_array(tmp_path / "text.npy")
    (tmp_path / "corrupt.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="numpy file"):
        datasets.load_array(tmp_path / "corrupt.npy")


def test_split_rows_is_a_seeded_partition():
    train_rows, test_rows = datasets.split_rows(101, seed=3)
    assert (len(train_rows), len(test_rows)) == (81, 20)
    assert sorted(np.concatenate([train_rows, test_rows]).tolist()) == list(range(101))
    again, _ = datasets.split_rows(101, seed=3)
    other, _ = datasets.split_rows(101, seed=4)
    np.testing.assert_array_equal(train_rows, again)
    assert not np.array_equal(train_rows, other)
    with pytest.raises(ValueError, match=r"`--data`.*at least 2 rows.*<1 row>"):
        datasets.split_rows(1, name="--data")
