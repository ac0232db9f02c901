"""export.saved_model: signatures, raw input, parity in a fresh process, metadata, atomic writes, checks.

The models are trained on binarized digits with their preprocessing recorded; the SavedModel
takes RAW digits (0..16) and applies it, so feeds here are raw and Keras gets them preprocessed.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import export
import tfvae
from export import _endpoints, metadata
from tfvae import _atomic

SIGNATURES = {"serving_default", "encode", "decode", "reconstruct", "sample", "score"}
BATCHES = (1, 7, 64)  # dynamic batch size: several sizes through the same signature
TOLERANCE = 1e-5  # float32 SavedModel vs Keras, the bar


def _trained(x, labels=None, num_classes=None):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli", num_classes=num_classes,
                          preprocessing=tfvae.datasets.preprocessing_for("digits", binarize=True))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, labels, epochs=2, batch_size=128, verbose=0)
    return model


@pytest.fixture(scope="module")
def models(digits):
    (x_train, y_train), _ = digits
    return {"plain": _trained(x_train), "conditional": _trained(x_train, y_train, num_classes=10)}


@pytest.fixture(scope="module")
def raw_digits():
    """The digits split of the `digits` fixture, raw pixel values 0..16."""
    return tfvae.datasets.load("digits", scale=False)


@pytest.fixture(scope="module")
def exported(models, raw_digits, tmp_path_factory):
    """Each model exported once: {name: (path, report)}."""
    _, (x_test, y_test) = raw_digits
    root = tmp_path_factory.mktemp("saved_models")
    return {
        "plain": (root / "plain", export.saved_model(models["plain"], root / "plain", parity_data=x_test,
                                                     normal_data=x_test)),
        "conditional": (
            root / "conditional",
            export.saved_model(models["conditional"], root / "conditional", parity_data=(x_test, y_test)),
        ),
    }


def _feeds(model, raw, x, labels):
    """Inputs of every signature, 64 rows, from the test split (raw x; z from Keras on preprocessed x)."""
    result = {"x": raw[:64], "z": np.asarray(model.encode(x[:64], None if labels is None else labels[:64])[0])}
    result["epsilon"] = np.random.default_rng(1).standard_normal((64, model.latent_dim)).astype("float32")
    if labels is not None:
        result["labels"] = labels[:64].astype("int32")
    return result


_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf  # no tfvae, no keras model code: the artifact stands alone

    path, feeds_path, out_path, batches = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    feeds = dict(np.load(feeds_path))
    loaded = tf.saved_model.load(path)
    results = {}
    for name, function in loaded.signatures.items():
        inputs = function.structured_input_signature[1]
        for batch in map(int, batches.split(",")):
            outputs = function(**{key: tf.constant(feeds[key][:batch]) for key in inputs})
            for key, value in outputs.items():
                results[f"{name}/{key}/{batch}"] = value.numpy()
    np.savez(out_path, **results)
    """
)


@pytest.mark.slow
def test_fresh_process_matches_keras_for_every_signature(models, exported, digits, raw_digits, tmp_path):
    _, (x_test, y_test) = digits
    _, (raw_test, _) = raw_digits
    script = tmp_path / "load.py"
    script.write_text(_FRESH_PROCESS)
    for name, model in models.items():
        labels = y_test if model.num_classes else None
        feeds = _feeds(model, raw_test, x_test, labels)
        np.savez(tmp_path / f"{name}_feeds.npz", **feeds)
        out = tmp_path / f"{name}_out.npz"
        done = subprocess.run(
            [sys.executable, str(script), str(exported[name][0]), str(tmp_path / f"{name}_feeds.npz"), str(out),
             ",".join(map(str, BATCHES))],
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        served = dict(np.load(out))
        endpoints = {e.name: e for e in _endpoints.SAVED_MODEL} | {"serving_default": _endpoints.ENCODE}
        assert {key.split("/")[0] for key in served} == SIGNATURES
        for signature, endpoint in endpoints.items():
            for batch in BATCHES:
                inputs = {key: feeds[key][:batch] for key in endpoint.input_names(model)}
                expected = _endpoints.reference(model, endpoint, inputs)
                for output, value in expected.items():
                    got = served[f"{signature}/{output}/{batch}"]
                    assert got.shape == value.shape
                    np.testing.assert_allclose(got, value, rtol=0, atol=TOLERANCE, err_msg=f"{name} {signature}")


def test_keras_reference_is_the_public_api(models, digits, raw_digits):
    """The reference the parity uses is the model's own methods on preprocessed x.

    The score is -log p(x|z_mean) + KL(q(z|x) || N(0, I)), the KL of the
    diagonal posterior written out by hand.
    """
    _, (x_test, _) = digits
    _, (raw_test, _) = raw_digits
    model = models["plain"]
    score = _endpoints.reference(model, _endpoints.SCORE, {"x": raw_test[:5]})["score"]
    z_mean, z_log_sigma = (np.asarray(t, np.float64) for t in model.encode(x_test[:5]))
    log_px = np.asarray(model.likelihood(z_mean.astype("float32")).log_prob(x_test[:5]))
    kl = np.sum(0.5 * (np.exp(2 * z_log_sigma) + z_mean**2 - 1) - z_log_sigma, axis=1)
    np.testing.assert_allclose(score, -log_px + kl, rtol=1e-5, atol=1e-4)
    sample = _endpoints.reference(model, _endpoints.SAMPLE, {"epsilon": np.zeros((2, 3), "float32")})["x_mean"]
    np.testing.assert_allclose(sample, model.decode(np.zeros((2, 3), "float32")), atol=1e-6)


def test_report_signatures_and_parity(exported):
    for name, (path, report) in exported.items():
        assert report.format == "saved_model" and report.path == str(path)
        assert set(report.signatures) == SIGNATURES
        assert report.size_bytes > 0 and report.ops
        assert report.signatures["encode"]["outputs"].keys() == {"z_mean", "z_log_sigma"}
        assert report.signatures["sample"]["inputs"]["epsilon"]["shape"] == [-1, 3]
        assert report.signatures["score"]["outputs"]["score"]["shape"] == [-1]
        assert {(row.signature, row.output) for row in report.parity} >= {("score", "score"), ("decode", "x_mean")}
        assert report.max_abs_error() <= TOLERANCE
        text = str(report)
        assert "parity" in text and "score" in text and "360 rows" in text
    conditional = exported["conditional"][1]
    for signature in SIGNATURES:
        assert conditional.signatures[signature]["inputs"]["labels"]["dtype"] == "int32"


def test_metadata_asset(exported, models):
    path, _ = exported["plain"]
    assert (path / "assets" / "tfvae.json").is_file()
    info = metadata.read(path)
    assert info["artifact"] == "saved_model" and info["tfvae_version"] == tfvae.__version__
    assert info["model"]["event_shape"] == [64] and info["model"]["latent_dim"] == 3
    assert info["model"]["likelihood"] == "bernoulli"
    assert info["model"]["preprocessing"]["divisor"] == 16.0
    assert set(info["signatures"]) == SIGNATURES
    x = info["signatures"]["encode"]["inputs"]["x"]
    assert x["shape"] == [-1, 64] and x["dtype"] == "float32" and x["quantization"] is None
    assert "divisor=16.0" in info["input"] and "x > 0.5" in info["input"]
    thresholds = info["score_thresholds"]
    assert thresholds["computed_on"] == "360 rows of normal_data"
    assert thresholds["by_false_positive_rate"]["0.01"] >= thresholds["by_false_positive_rate"]["0.05"]
    assert set(thresholds["realized_false_positive_rate"]) == {"0.01", "0.05"}
    assert info["model"]["weights_sha256"] == metadata.weights_sha256(models["plain"])


def test_thresholds_come_from_normal_data_only(exported):
    _, conditional = exported["conditional"]
    assert conditional.thresholds is None  # parity_data alone (which may hold anomalies) sets none


def test_existing_directory_needs_overwrite(models, exported):
    path, _ = exported["plain"]
    before = _snapshot(path)
    with pytest.raises(FileExistsError, match="overwrite"):
        export.saved_model(models["plain"], path)
    assert _snapshot(path) == before


def test_overwrite_replaces_and_leaves_no_temporaries(models, tmp_path):
    path = tmp_path / "sm"
    export.saved_model(models["plain"], path)
    (path / "stale.txt").write_text("from the old export")
    export.saved_model(models["plain"], path, overwrite=True)
    assert not (path / "stale.txt").exists() and (path / "saved_model.pb").is_file()
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_failure_mid_write_leaves_nothing_and_keeps_old(models, tmp_path, monkeypatch):
    path = tmp_path / "sm"
    export.saved_model(models["plain"], path)
    before = _snapshot(path)

    def disk_full(target, text):
        with open(target, "w") as handle:
            handle.write(text[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        export.saved_model(models["plain"], path, overwrite=True)
    assert _snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    with pytest.raises(OSError):
        export.saved_model(models["plain"], tmp_path / "new" / "sm")
    assert sorted(os.listdir(tmp_path)) == ["sm"]  # not even the parent it created


def test_failing_rename_keeps_old(models, tmp_path, monkeypatch):
    path = tmp_path / "sm"
    export.saved_model(models["plain"], path)
    before = _snapshot(path)
    real_replace = os.replace
    failures = []

    def replace(source, target):
        if os.fspath(target) == os.fspath(path) and not failures:  # the new artifact moving into place
            failures.append(source)
            raise OSError(5, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(_atomic.os, "replace", replace)
    with pytest.raises(OSError, match="Input/output"):
        export.saved_model(models["plain"], path, overwrite=True)
    assert failures and _snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == ["sm"]


def test_garbage_outputs_are_refused(models, tmp_path, monkeypatch):
    real = _endpoints.reference

    def shifted(model, endpoint, feeds):  # as if the artifact returned values far from Keras
        return {key: value + 1.0 for key, value in real(model, endpoint, feeds).items()}

    monkeypatch.setattr(_endpoints, "reference", shifted)
    with pytest.raises(RuntimeError, match="disagrees"):
        export.saved_model(models["plain"], tmp_path / "sm")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(model=keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])), TypeError, ["model", "tfvae.VAE"]),
        (dict(path=3), TypeError, ["path", "Received: path=3"]),
        (dict(path=""), ValueError, ["path", "non-empty"]),
        (dict(overwrite="yes"), TypeError, ["overwrite", "True or False"]),
        (dict(parity_data=np.zeros((4, 5))), ValueError, ["parity_data", "(batch, 64)", "(4, 5)"]),
    ],
)
def test_bad_arguments(models, tmp_path, kwargs, error, words):
    arguments = dict(model=models["plain"], path=tmp_path / "sm") | kwargs
    with pytest.raises(error) as raised:
        export.saved_model(arguments.pop("model"), arguments.pop("path"), **arguments)
    for word in words:
        assert word in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_path_to_existing_file_is_refused(models, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match="directory path"):
        export.saved_model(models["plain"], tmp_path / "file", overwrite=True)
    assert (tmp_path / "file").read_text() == "not a directory"


def test_conditional_needs_labels_in_parity_data(models, tmp_path, raw_digits):
    _, (x_test, _) = raw_digits
    with pytest.raises(ValueError, match="parity_data"):
        export.saved_model(models["conditional"], tmp_path / "sm", parity_data=x_test)


def _snapshot(directory):
    return {
        os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory)
        for name in names
    }


def test_metadata_is_json(exported):
    path, _ = exported["conditional"]
    info = json.loads((path / "assets" / "tfvae.json").read_text())
    assert info["model"]["num_classes"] == 10
    assert "labels" in info["signatures"]["decode"]["inputs"]


@pytest.mark.parametrize(
    "build",
    [
        lambda: tfvae.mlp_vae(6, (4,), 2),  # Gaussian likelihood: score uses its learned scale
        lambda: tfvae.conv_vae((8, 8, 1), (4,), 2),  # images: x of shape (batch, 8, 8, 1)
    ],
    ids=["gaussian", "conv"],
)
def test_other_model_kinds(build, tmp_path):
    model = build()
    report = export.saved_model(model, tmp_path / "sm")
    assert report.max_abs_error() <= TOLERANCE and "synthetic" in report.parity_data
    event = [-1, *model.event_shape]
    assert report.signatures["reconstruct"]["outputs"]["x_mean"]["shape"] == event
    assert metadata.read(tmp_path / "sm")["model"]["likelihood"] == model.likelihood_name
