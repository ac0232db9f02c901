"""Bad input at every public entry point: a named, clear error, and nothing lost.

Complements tests/test_vae.py (builder and constructor arguments) and
tests/test_datasets.py (bad CSV and numpy files), which are not repeated.
"""

import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import export.cli
import tfvae
from tfvae import cli, datasets, fit_checks, resumable


@pytest.fixture
def model():
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def _x(rows=8, width=6):
    return np.random.default_rng(0).random((rows, width)).astype("float32")


def _with(value, row=5, column=2, x=None):
    x = _x() if x is None else x.copy()
    x[row, column] = value
    return x


# ----------------------------------------------------------------------- fit


@pytest.mark.parametrize(
    "fit_kwargs, error, words",
    [
        (dict(x=_with(np.nan)), ValueError, ["`x`", "finite values", "row 5", "nan"]),
        (dict(x=_with(-np.inf, row=0)), ValueError, ["`x`", "row 0", "-inf"]),
        (dict(x=_x(), validation_data=(_with(np.inf, row=3), None)), ValueError,
         ["`validation_data[0]`", "row 3", "inf"]),
        (dict(x=_x(), validation_data=_with(np.nan, row=1)), ValueError, ["`validation_data`", "row 1"]),
        (dict(x=_x(width=5)), ValueError, ["`x`", "(batch, 6)", "(8, 5)"]),
        (dict(x=_x()[:, :, None]), ValueError, ["`x`", "(batch, 6)", "(8, 6, 1)", "x.reshape(-1, 6)"]),
        (dict(x=_x()[0]), ValueError, ["`x`", "(batch, 6)", "(6,)", "x[None]"]),
        (dict(x=np.zeros((0, 6), "float32")), ValueError, ["`x`", "at least one example", "(0, 6)"]),
        (dict(x=np.array([["a"] * 6] * 3)), TypeError, ["`x`", "numeric array", "<U1"]),
        (dict(x=[[0.5] * 6, [0.5] * 5]), ValueError, ["`x`", "rectangular"]),
        (dict(x=None), TypeError, ["`x`", "numeric array"]),
        (dict(x=_x(), sample_weight=-np.ones(8)), ValueError, ["`sample_weight`", ">= 0", "row 0"]),
        (dict(x=_x(), sample_weight=np.ones(7)), ValueError, ["`sample_weight`", "8 finite numbers", "(7,)"]),
        (dict(x=_x(), validation_data=(_x(), None, np.full(8, np.nan))), ValueError, ["`validation_data[2]`"]),
    ],
)
def test_fit_refuses_bad_arrays_before_the_first_step(model, fit_kwargs, error, words):
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(error) as raised:
        model.fit(epochs=1, batch_size=4, verbose=0, **fit_kwargs)
    for word in words:
        assert word in str(raised.value), str(raised.value)
    assert int(model.optimizer.iterations) == 0
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_fit_on_an_image_model_names_the_image_shape():
    model = tfvae.conv_vae((8, 8, 1), (4,), 2)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError) as raised:
        model.fit(np.zeros((4, 8, 8), "float32"), verbose=0)
    assert "(batch, 8, 8, 1)" in str(raised.value) and "x.reshape(-1, 8, 8, 1)" in str(raised.value)


@pytest.mark.parametrize(
    "labels, words",
    [
        (None, ["`y`", "8 class ids in [0, 3)", "conditional"]),
        (np.arange(8), ["`y`", "row 3"]),
        (np.zeros(7), ["`y`", "(7,)"]),
        (np.full(8, 0.5), ["`y`", "row 0"]),
        (np.zeros((8, 5)), ["`y`", "(8, 5)"]),
    ],
)
def test_conditional_fit_refuses_bad_labels(labels, words):
    model = tfvae.mlp_vae(6, (4,), 2, num_classes=3)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError) as raised:
        model.fit(_x(), labels, verbose=0)
    for word in words:
        assert word in str(raised.value)
    assert int(model.optimizer.iterations) == 0


def test_fit_converts_integers_and_lists_to_float32(model):
    # The core models real values: integer (and boolean, and nested-list) data is converted, documented.
    history = model.fit(np.ones((8, 6), "int64"), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.fit([[1, 0, 1, 0, 1, 0]] * 4, epochs=1, verbose=0)
    x, _, _ = fit_checks.check_training_data(model, np.ones((3, 6), bool))
    assert x.dtype == np.float32 and x.sum() == 18
    assert model.encode(np.ones((2, 6), "int32"))[0].dtype == tf.float32


def test_fit_checks_a_tf_data_dataset_on_its_first_batch_only(model):
    # Documented: a dataset is lazy; its first batch is checked as arrays are (tfvae.misuse), a NaN in a
    # later batch reaches training (TerminateOnNonFinite catches it).
    with pytest.raises(ValueError, match="first batch.*finite values"):
        model.fit(tf.data.Dataset.from_tensor_slices(_with(np.nan)).batch(8), epochs=1, verbose=0)
    history = model.fit(tf.data.Dataset.from_tensor_slices(_with(np.nan)).batch(4), epochs=1, verbose=0)
    assert np.isnan(history.history["loss"][0])


def test_fit_accepts_positional_arguments_and_conditional_tuples():
    model = tfvae.mlp_vae(6, (4,), 2, num_classes=3)
    model.compile(optimizer="adam")
    labels = np.arange(8) % 3
    model.fit(_x(), labels, 4, 1, 0)  # x, y, batch_size, epochs, verbose
    model.fit((_x(), labels), validation_data=(_x(), labels), verbose=0)
    assert int(model.optimizer.iterations) == 3


# ------------------------------------------------------------- encode, decode


@pytest.mark.parametrize(
    "method, value, error, words",
    [
        ("encode", np.zeros((0, 6)), ValueError, ["`x`", "at least one example"]),
        ("encode", np.float32(1.0), ValueError, ["`x`", "batch axis"]),
        ("encode", np.zeros((2, 6, 1)), ValueError, ["`x`", "(batch, 6)", "(2, 6, 1)"]),
        ("encode", [[1.0] * 6, [1.0] * 4], ValueError, ["`x`", "rectangular"]),
        ("encode", np.array([["a"] * 6]), TypeError, ["`x`", "numeric array"]),
        ("encode", _with(np.inf, row=1, x=_x(3)), ValueError, ["`x`", "row 1", "inf"]),
        ("decode", np.zeros((3, 3)), ValueError, ["`z`", "(batch, 2)", "(3, 3)"]),
        ("decode", np.zeros(2), ValueError, ["`z`", "(batch, 2)", "z[None]"]),
        ("decode", np.zeros((0, 2)), ValueError, ["`z`", "at least one example"]),
        ("decode", np.array([[0.0, np.nan]]), ValueError, ["`z`", "row 0", "nan"]),
    ],
)
def test_encode_and_decode_name_the_bad_argument(method, value, error, words):
    model = tfvae.mlp_vae(6, (4,), 2)
    with pytest.raises(error) as raised:
        getattr(model, method)(value)
    for word in words:
        assert word in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    "num_classes, labels, words",
    [
        (3, None, ["`labels`", "class ids in [0, 3)", "conditional (num_classes=3)"]),
        (3, [0, 3], ["`labels`", "row 1: 3"]),
        (3, [0, 0.5], ["`labels`", "row 1: 0.5"]),
        (3, tf.constant([0, -1]), ["`labels`", "row 1: -1"]),
        (3, np.zeros((2, 4)), ["`labels`", "one-hot rows of width 3", "(2, 4)"]),
        (3, ["a", "b"], ["`labels`", "<U1"]),  # TypeError, as for non-numeric x
        (None, [0, 1], ["`labels`", "None for an unconditional VAE"]),
    ],
)
def test_encode_names_bad_labels(num_classes, labels, words):
    model = tfvae.mlp_vae(6, (4,), 2, num_classes=num_classes)
    error = TypeError if isinstance(labels, list) and isinstance(labels[0], str) else ValueError
    with pytest.raises(error) as raised:
        model.encode(_x(2), labels=labels)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_finite_input_too_large_for_float32_is_refused():
    # No hidden layers and weights of 1: 6 * 3e38 (and 2 * 3e38) overflow float32 for sure.
    model = tfvae.mlp_vae(6, (), 2)
    for layer in (model.z_mean_head, model.decoder.layers[-1]):
        layer.kernel.assign(np.ones(layer.kernel.shape, "float32"))
    x = np.ones((3, 6), "float32")
    x[1] = 3e38
    with pytest.raises(ValueError) as raised:
        model.encode(x)
    assert "`x`" in str(raised.value) and "row 1, whose `z_mean` overflows float32" in str(raised.value)
    with pytest.raises(ValueError) as raised:
        model.decode(np.array([[0.0, 0.0], [3e38, 3e38]], "float32"))
    assert "`z`" in str(raised.value) and "row 1, whose `x_mean` overflows float32" in str(raised.value)


def test_a_diverged_model_says_so_instead_of_returning_nan():
    model = tfvae.mlp_vae(6, (4,), 2)
    kernel = model.z_mean_head.kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with pytest.raises(RuntimeError, match=r"weights hold NaN.*z_mean/kernel.*training diverged"):
        model.encode(_x(2))


# ----------------------------------------------------------------- load_model


def _corrupt_files(tmp_path):
    model = tfvae.mlp_vae(6, (4,), 2)
    model.save(tmp_path / "good.keras")
    content = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(content[: len(content) // 2])
    (tmp_path / "text.keras").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("notes.txt", "a zip, but no model")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(tmp_path / "dense.keras")


@pytest.mark.parametrize(
    "name, error, words",
    [
        ("missing.keras", FileNotFoundError, ["`path`", "an existing .keras file", "missing.keras"]),
        ("model.h5", ValueError, ["`path`", "ending in .keras", "model.h5"]),
        ("truncated.keras", ValueError, ["`path`", "not a readable zip archive"]),
        ("text.keras", ValueError, ["`path`", "not a readable zip archive"]),
        ("other.keras", ValueError, ["`path`", "no config.json"]),
        ("dense.keras", TypeError, ["`path`", "a saved tfvae.VAE", "Sequential"]),
        (42, TypeError, ["`path`", "path=42"]),
    ],
)
def test_load_model_names_what_is_wrong_with_the_file(tmp_path, name, error, words):
    _corrupt_files(tmp_path)
    with pytest.raises(error) as raised:
        tfvae.load_model(tmp_path / name if isinstance(name, str) else name)
    for word in words:
        assert word in str(raised.value), str(raised.value)


# ----------------------------------------------------------------- load_array


@pytest.mark.parametrize(
    "write, error, words",
    [
        (lambda p: np.save(p / "f.npy", np.arange(5.0)), ValueError, ["(n, features)", "(5,)", "(n, 1)"]),
        (lambda p: np.savez(p / "f.npz"), ValueError, ["`path`", "The archive is empty"]),
        (lambda p: np.savez(p / "f.npz", a=np.ones((2, 2))), None, None),  # the only array: fine
        (lambda p: np.save(p / "f.npy", np.array([{"a": 1}], dtype=object)), ValueError, ["numpy file"]),
        (lambda p: (p / "f.csv").write_text("1,2\n\n3,\n"), ValueError, ["non-numeric", "Line 3"]),
    ],
)
def test_load_array_more_bad_files(tmp_path, write, error, words):
    write(tmp_path)
    (path,) = list(tmp_path.iterdir())
    if error is None:
        assert datasets.load_array(path)[0].shape == (2, 2)
        return
    with pytest.raises(error) as raised:
        datasets.load_array(path)
    for word in words:
        assert word in str(raised.value), str(raised.value)


def test_load_array_npz_key_must_exist(tmp_path):
    np.savez(tmp_path / "f.npz", a=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"`key`.*\['a'\].*key='b'"):
        datasets.load_array(tmp_path / "f.npz", key="b")


# ----------------------------------------------------------------------- CLIs


def _files(tmp_path):
    (tmp_path / "nan.csv").write_text("a,b\n1,2\n3,4\nnan,5\n")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "header.csv").write_text("a,b\n")
    np.save(tmp_path / "column.npy", np.arange(10.0))
    (tmp_path / "interrupted" / resumable.BACKUP).mkdir(parents=True)
    (tmp_path / "interrupted" / resumable.BACKUP / "training_metadata.json").write_text('{"epoch": 1, "batch": 3}')


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--epochs", "abc"], ["--epochs", "invalid int value: 'abc'", "tfvae train --help"]),
        (["train", "--hidden", "16,x"], ["--hidden", "comma-separated integers"]),
        (["train", "--strategy", "tpu"], ["--strategy", "'tpu'", "multi-worker"]),
        (["fly"], ["invalid choice: 'fly'"]),
        (["train", "--epochs", "0"], ["`epochs`", "positive integer", "epochs=0"]),
        (["train", "--batch-size", "-4"], ["`batch_size`", "batch_size=-4"]),
        (["train", "--learning-rate", "nan"], ["`learning_rate`", "finite number > 0", "learning_rate=nan"]),
        (["train", "--backup-every", "0"], ["`backup_every`", "backup_every=0"]),
        (["train", "--data", "{tmp}/nan.csv"], ["nan.csv", "finite values", "Line 4"]),
        (["train", "--data", "{tmp}/ragged.csv"], ["rectangular CSV", "Line 2"]),
        (["train", "--data", "{tmp}/header.csv"], ["at least one row of numbers"]),
        (["train", "--data", "{tmp}/column.npy"], ["(n, features)", "(10,)"]),
        (["train", "--strategy", "multi-worker"], ["`TF_CONFIG`", "JSON cluster description"]),
        (["train", "--resume", "--overwrite"], ["`overwrite`", "choose one"]),
        (["train", "--out", "{tmp}/interrupted"], ["`out`", "interrupted run", "--resume", "--overwrite"]),
    ],
)
def test_tfvae_cli_errors_are_one_line(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    _files(tmp_path)
    status = cli.main([arg.format(tmp=tmp_path) for arg in args])
    captured = capsys.readouterr()
    assert status != 0
    assert len(captured.err.splitlines()) == 1, captured.err
    assert captured.err.startswith("tfvae") and "Traceback" not in captured.err
    for word in words:
        assert word in captured.err, captured.err
    assert not (tmp_path / "runs").exists()
    assert sorted(os.listdir(tmp_path / "interrupted" / resumable.BACKUP)) == ["training_metadata.json"]


def test_export_cli_corrupt_model_is_one_line(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    status = export.cli.main(["tflite", str(tmp_path / "model.keras"), "--out", str(tmp_path / "e.tflite")])
    captured = capsys.readouterr()
    assert status != 0
    assert len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err, captured.err
    assert "model.keras" in captured.err
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]
