"""export.tflite: every variant in the LiteRT interpreter, raw input, parity, Flex refusal, metadata, atomic writes.

The models are trained on binarized digits and exported with their preprocessing, so the
.tflite files take RAW digits (0..16) and Keras gets the same rows preprocessed.
"""

import os

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import export
import tfvae
from export import _litert, metadata
from tfvae import _atomic

BATCHES = (1, 5, 32)

# Stated tolerances, max |tflite - keras| on the digits test split unless said otherwise.
FLOAT32 = 1e-5  # the same computation up to float32 rounding
# float16 weights: each weight off by <= 2**-11 relative (~5e-4); summed over a layer this stays
# well below 2e-3 on outputs of size ~1 (measured ~2e-4).
FLOAT16 = 2e-3
# dynamic range: int8 weights (1/254 of each channel's range), float activations; measured ~5e-3.
DYNAMIC = 3e-2
# int8: z_mean within a tenth of the posterior sigma (the bar; measured ~0.013 sigma),
# z_log_sigma within 0.1 (its tanh bound is quantized in steps of 10/128 = 0.078: sigma within ~10%),
# decoder probabilities within 0.05 (measured ~0.011).
INT8_Z_MEAN_SIGMAS = 0.1
INT8_Z_LOG_SIGMA = 0.1
INT8_X_MEAN = 0.05

VARIANTS = {
    # name: (part, quantize, int8_io)
    "encoder": ("encoder", None, False),
    "encoder_float16": ("encoder", "float16", False),
    "encoder_dynamic": ("encoder", "dynamic", False),
    "encoder_int8": ("encoder", "int8", False),
    "decoder": ("decoder", None, False),
    "decoder_float16": ("decoder", "float16", False),
    "decoder_dynamic": ("decoder", "dynamic", False),
    "decoder_int8": ("decoder", "int8", False),
    "decoder_int8_io": ("decoder", "int8", True),
}


def _trained(x, labels=None, epochs=3, **options):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (32,), 4, likelihood="bernoulli",
                          preprocessing=tfvae.datasets.preprocessing_for("digits", binarize=True), **options)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def raw_digits():
    """The digits split of the `digits` fixture, raw pixel values 0..16 (what the files take)."""
    return tfvae.datasets.load("digits", scale=False)


@pytest.fixture(scope="module")
def model(digits):
    (x_train, _), _ = digits
    return _trained(x_train)


@pytest.fixture(scope="module")
def variants(model, raw_digits, tmp_path_factory):
    """Every variant written once: {name: (path, report)}."""
    (x_train, _), (x_test, _) = raw_digits
    root = tmp_path_factory.mktemp("tflite")
    result = {}
    for name, (part, quantize, int8_io) in VARIANTS.items():
        path = root / f"{name}.tflite"
        result[name] = path, export.tflite(
            model, path, part=part, quantize=quantize, int8_io=int8_io,
            representative_data=x_train if quantize == "int8" else None, parity_data=x_test, normal_data=x_test,
        )
    return result


def _run(path, inputs):
    """Runs a .tflite with the LiteRT interpreter, resizing to the batch and (de)quantizing per its metadata."""
    info = metadata.read(path)
    (signature, spec), = info["signatures"].items()
    interpreter = Interpreter(model_path=str(path))
    for name, value in inputs.items():
        interpreter.resize_tensor_input(spec["inputs"][name]["index"], value.shape, strict=True)
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        entry = spec["inputs"][name]
        if entry["quantization"]:
            q = entry["quantization"]
            value = np.clip(np.round(value / q["scale"]) + q["zero_point"], -128, 127)
        interpreter.set_tensor(entry["index"], value.astype(entry["dtype"]))
    interpreter.invoke()
    outputs = {}
    for name, entry in spec["outputs"].items():
        value = interpreter.get_tensor(entry["index"]).astype("float32")
        if entry["quantization"]:
            value = (value - entry["quantization"]["zero_point"]) * entry["quantization"]["scale"]
        outputs[name] = value
    return signature, outputs


def _inputs(model, part, raw, x):
    """The file's inputs (raw x) and Keras' (preprocessed x)."""
    if part == "encoder":
        return {"x": raw}, {"x": x}
    z_mean = np.asarray(model.encode(x)[0])
    prior = np.random.default_rng(0).standard_normal(z_mean.shape).astype("float32")
    z = {"z": np.concatenate([z_mean, prior])}
    return z, z


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_runs_at_several_batch_sizes_and_matches_keras(name, variants, model, digits, raw_digits):
    _, (x_test, _) = digits
    part, quantize, _ = VARIANTS[name]
    path, _ = variants[name]
    inputs, keras_inputs = _inputs(model, part, raw_digits[1][0], x_test)
    full = {}
    for batch in BATCHES + (len(next(iter(inputs.values()))),):
        signature, outputs = _run(path, {key: value[:batch] for key, value in inputs.items()})
        assert signature == ("encode" if part == "encoder" else "decode")
        assert all(len(value) == batch for value in outputs.values())
        full = outputs
    if part == "encoder":
        z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(keras_inputs["x"]))
        error = np.abs(full["z_mean"] - z_mean)
        log_sigma_error = np.abs(full["z_log_sigma"] - z_log_sigma)
        if quantize == "int8":
            assert (error / np.exp(z_log_sigma)).max() < INT8_Z_MEAN_SIGMAS
            assert log_sigma_error.max() < INT8_Z_LOG_SIGMA
        else:
            tolerance = {None: FLOAT32, "float16": FLOAT16, "dynamic": DYNAMIC}[quantize]
            assert error.max() <= tolerance and log_sigma_error.max() <= tolerance
    else:
        error = np.abs(full["x_mean"] - np.asarray(model.decode(inputs["z"])))
        assert error.max() <= {None: FLOAT32, "float16": FLOAT16, "dynamic": DYNAMIC, "int8": INT8_X_MEAN}[quantize]


def test_reports(variants):
    sizes = {name: report.size_bytes for name, (_, report) in variants.items()}
    # On this tiny model fixed overhead and the int8 encoder's float32 preprocessing and heads dominate;
    # see the CLI test for ratios.
    assert sizes["decoder_int8"] < sizes["decoder"]
    for part in ("encoder", "decoder"):
        assert sizes[f"{part}_float16"] < sizes[part]
    for name, (path, report) in variants.items():
        part, quantize, int8_io = VARIANTS[name]
        assert report.size_bytes == os.path.getsize(path)
        assert (report.part, report.quantize, report.int8_io) == (part, quantize, int8_io)
        assert report.ops == _litert.ops(path.read_bytes()) and not _litert.non_builtin(report.ops)
        assert "360 rows of parity_data" in report.parity_data
        if quantize is None:
            assert report.max_abs_error() <= FLOAT32
        z_mean = [row for row in report.parity if row.output == "z_mean"]
        if part == "encoder" and quantize is not None:
            assert z_mean[0].sigma_max is not None and z_mean[0].sigma_mean <= z_mean[0].sigma_max
        assert name.split("_")[0] in str(report) and "max |err|" in str(report)
    table = export.format_table([report for _, report in variants.values()])
    assert "encoder int8" in table and "vs float32" in table and len(table.splitlines()) > len(variants)


def test_metadata_is_inside_the_file(variants, model):
    path, _ = variants["decoder_int8_io"]
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith("decoder_int8_io")) == [path.name]
    info = metadata.read(path)
    assert info == metadata.from_tflite(path.read_bytes())
    assert info["artifact"] == "tflite" and info["part"] == "decoder" and info["quantize"] == "int8"
    assert info["int8_io"] is True and info["weights"] == "per-tensor, cross-layer equalized"
    assert info["tfvae_version"] == tfvae.__version__
    assert info["model"] == {
        "class": "tfvae.vae.VAE", "event_shape": [64], "latent_dim": 4, "likelihood": "bernoulli",
        "prior": "standard_normal", "num_classes": None,
        "preprocessing": tfvae.datasets.preprocessing_for("digits", binarize=True),
        "weights_sha256": metadata.weights_sha256(model),
    }
    thresholds = info["score_thresholds"]["by_false_positive_rate"]
    assert thresholds["0.01"] >= thresholds["0.05"] > 0 and "360 rows" in info["score_thresholds"]["computed_on"]
    realized = info["score_thresholds"]["realized_false_positive_rate"]
    assert realized["0.01"] <= 0.04 and 0.02 <= realized["0.05"] <= 0.08  # 180 rows each side: coarse
    runner = Interpreter(model_path=str(path)).get_signature_runner("decode")
    for side, details in (("inputs", runner.get_input_details()), ("outputs", runner.get_output_details())):
        for name, detail in details.items():
            entry = info["signatures"]["decode"][side][name]
            assert entry["dtype"] == "int8" == np.dtype(detail["dtype"]).name
            assert entry["index"] == detail["index"] and entry["shape"][0] == -1
            scale, zero_point = detail["quantization"]
            assert entry["quantization"]["scale"] == pytest.approx(scale)
            assert entry["quantization"]["zero_point"] == zero_point
    encoder_info = metadata.read(variants["encoder_int8"][0])
    assert encoder_info["signatures"]["encode"]["inputs"]["x"]["dtype"] == "float32"  # raw, preprocessed in float32
    assert "x > 0.5" in encoder_info["input"] and "divisor=16.0" in encoder_info["input"]
    assert "raw" in encoder_info["tensor_docs"]["x"]
    float_info = metadata.read(variants["decoder"][0])
    assert float_info["signatures"]["decode"]["inputs"]["z"]["quantization"] is None
    assert float_info["signatures"]["decode"]["outputs"]["x_mean"]["shape"] == [-1, 64]


def test_conditional_model_takes_labels(digits, raw_digits, tmp_path):
    (x_train, y_train), (x_test, y_test) = digits
    (raw_train, _), (raw_test, _) = raw_digits
    model = _trained(x_train, y_train, epochs=2, num_classes=10)
    labels = y_test.astype("int32")
    z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(x_test, labels))
    for part, quantize in (("encoder", None), ("decoder", None), ("encoder", "int8"), ("decoder", "int8")):
        path = tmp_path / f"{part}_{quantize}.tflite"
        export.tflite(model, path, part=part, quantize=quantize,
                      representative_data=(raw_train, y_train), parity_data=(raw_test, y_test))
        (signature, spec), = metadata.read(path)["signatures"].items()
        assert spec["inputs"]["labels"]["dtype"] == "int32" and spec["inputs"]["labels"]["shape"] == [-1]
        if part == "encoder":
            _, outputs = _run(path, {"x": raw_test, "labels": labels})
            error = np.abs(outputs["z_mean"] - z_mean)
            if quantize is None:
                assert error.max() <= FLOAT32
            else:  # labels enter the int8 graph correctly (TFLite's ONE_HOT would not, see VAE._one_hot)
                assert (error / np.exp(z_log_sigma)).max() < INT8_Z_MEAN_SIGMAS
        else:
            _, outputs = _run(path, {"z": z_mean, "labels": labels})
            error = np.abs(outputs["x_mean"] - np.asarray(model.decode(z_mean, labels)))
            assert error.max() <= (FLOAT32 if quantize is None else INT8_X_MEAN)


def test_convolutional_encoder(tmp_path):
    keras.utils.set_random_seed(0)
    model = tfvae.conv_vae((8, 8, 1), (4,), 2)
    report = export.tflite(model, tmp_path / "conv.tflite")
    assert report.signatures["encode"]["inputs"]["x"]["shape"] == [-1, 8, 8, 1]
    assert report.max_abs_error() <= FLOAT32 and "synthetic" in report.parity_data


class _Erf(keras.layers.Layer):
    """The Gaussian error function: TensorFlow's Erf has no TFLite builtin, only a Flex kernel."""

    def call(self, inputs):
        return keras.ops.erf(inputs)


def test_model_needing_flex_ops_is_refused(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), _Erf()])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
    model = tfvae.VAE(encoder, decoder, latent_dim=2)
    for quantize, data in ((None, None), ("int8", np.random.default_rng(0).random((8, 6)))):
        with pytest.raises(ValueError, match=r"(?s)builtin.*Erf.*Flex"):
            export.tflite(model, tmp_path / "encoder.tflite", quantize=quantize, representative_data=data)
    assert os.listdir(tmp_path) == []
    export.tflite(model, tmp_path / "decoder.tflite", part="decoder")  # the decoder has no Erf


def test_int8_needs_representative_data(model, tmp_path):
    with pytest.raises(ValueError, match="representative_data") as raised:
        export.tflite(model, tmp_path / "e.tflite", quantize="int8")
    assert "quantize='int8'" in str(raised.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(part="both"), ValueError, ["`part`", "'encoder'", "'decoder'", "'score'", "'vae'", "part='both'"]),
        (dict(part=None), ValueError, ["`part`", "part=None"]),
        (dict(quantize="int4"), ValueError, ["`quantize`", "'float16'", "quantize='int4'"]),
        (dict(quantize=8), ValueError, ["`quantize`", "quantize=8"]),
        (dict(path=42), TypeError, ["`path`", "path=42"]),
        (dict(path="encoder.onnx"), ValueError, ["`path`", ".tflite", "encoder.onnx"]),
        (dict(int8_io=True), ValueError, ["`int8_io`", "quantize='int8'"]),
        (dict(int8_io="yes"), TypeError, ["`int8_io`", "True or False"]),
        (dict(part="vae", quantize="int8", int8_io=True, representative_data=np.zeros((4, 64))), ValueError,
         ["`int8_io`", "part='vae'"]),
        (dict(part="encoder", quantize="int8", int8_io=True, representative_data=np.zeros((4, 64))), ValueError,
         ["`int8_io`", "part='encoder'", "float32", "part='decoder'"]),
        (dict(per_channel=1), TypeError, ["`per_channel`"]),
        (dict(overwrite=1), TypeError, ["`overwrite`"]),
        (dict(quantize="int8", representative_data=np.zeros((10, 63))), ValueError,
         ["`representative_data`", "(batch, 64)", "(10, 63)"]),
        (dict(representative_data="digits"), TypeError, ["`representative_data`", "numeric"]),
        (dict(parity_data=np.full((3, 64), np.nan)), ValueError, ["`parity_data`", "finite"]),
        (dict(model="model.keras"), TypeError, ["`model`", "tfvae.VAE", "load_model"]),
    ],
)
def test_bad_arguments(model, tmp_path, kwargs, error, words):
    arguments = dict(model=model, path=str(tmp_path / "e.tflite")) | kwargs
    with pytest.raises(error) as raised:
        export.tflite(arguments.pop("model"), arguments.pop("path"), **arguments)
    for word in words:
        assert word in str(raised.value)
    assert os.listdir(tmp_path) == []


def test_path_to_directory_is_refused(model, tmp_path):
    (tmp_path / "e.tflite").mkdir()
    with pytest.raises(ValueError, match="not an existing directory"):
        export.tflite(model, tmp_path / "e.tflite", overwrite=True)


def test_overwrite(model, tmp_path):
    path = tmp_path / "e.tflite"
    export.tflite(model, path)
    before = _files(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.tflite(model, path, quantize="float16")
    assert _files(tmp_path) == before
    report = export.tflite(model, path, quantize="float16", overwrite=True)
    assert metadata.read(path)["quantize"] == "float16" and os.path.getsize(path) == report.size_bytes
    assert sorted(os.listdir(tmp_path)) == ["FILES.md", "e.tflite", "files.json"]  # the folder's description


def test_failure_mid_write_leaves_old_artifact(model, tmp_path, monkeypatch):
    path = tmp_path / "e.tflite"
    export.tflite(model, path)
    before = _files(tmp_path)

    def disk_full(target, data):
        with open(target, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic, "write_bytes", disk_full)
    with pytest.raises(OSError, match="No space"):
        export.tflite(model, path, quantize="dynamic", overwrite=True)
    assert _files(tmp_path) == before
    with pytest.raises(OSError):
        export.tflite(model, tmp_path / "fresh.tflite")
    assert _files(tmp_path) == before


def _files(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def test_equalized_copy_computes_the_same_and_leaves_the_model_alone(digits):
    from export import _equalize

    (x_train, y_train), (x_test, y_test) = digits
    for model, labels in ((_trained(x_train, epochs=1), None),
                          (_trained(x_train, y_train, epochs=1, num_classes=10), y_test.astype("int32"))):
        before = [weight.copy() for weight in model.get_weights()]
        copy = _equalize.equalized_copy(model)
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        changed = [not np.allclose(a, b) for a, b in zip(model.get_weights(), copy.get_weights())]
        assert any(changed)  # the weights moved ...
        z_mean = np.asarray(model.encode(x_test, labels)[0])
        np.testing.assert_allclose(copy.encode(x_test, labels)[0], z_mean, atol=1e-5)  # ... the function did not
        np.testing.assert_allclose(copy.decode(z_mean, labels), model.decode(z_mean, labels), atol=1e-5)
        head = np.abs(copy.encoder.layers[-1].kernel.numpy()).max(axis=0)
        rows = np.abs(copy.z_mean_head.kernel.numpy()[:head.size]).max(axis=1)
        rows = np.maximum(rows, np.abs(copy.z_log_sigma_head.kernel.numpy()[:head.size]).max(axis=1))
        np.testing.assert_allclose(head[rows > 0], rows[rows > 0], rtol=0.05)  # balanced channel ranges


def test_equalization_skips_bodies_that_are_not_dense_chains():
    from export import _equalize

    keras.utils.set_random_seed(0)
    model = tfvae.conv_vae((8, 8, 1), (4,), 2)
    copy = _equalize.equalized_copy(model)
    encoder = [(a, b) for a, b in zip(model.encoder.get_weights(), copy.encoder.get_weights())]
    assert all(np.array_equal(a, b) for a, b in encoder)


@pytest.mark.parametrize("preprocessing", [
    None,
    {"offset": [0.0, 1.0, -2.0], "divisor": [2.0, 0.0, 4.0], "binarize_threshold": None},  # 0 counts as 1
    {"offset": 1.0, "divisor": 3.0, "binarize_threshold": 0.25},
])
def test_graph_preprocessing_is_the_numpy_rule(preprocessing):
    import tensorflow as tf

    from export import _endpoints

    model = tfvae.mlp_vae(3, (4,), 2, preprocessing=preprocessing)
    raw = np.random.default_rng(0).uniform(-3, 6, (200, 3)).astype("float32")
    raw[0] = [1.75, 1.0, -2.0]  # on the binarization threshold: 1 + 0.25 * 3, not above it
    graph = tf.function(lambda x: _endpoints.preprocess(model, x))(tf.constant(raw)).numpy()
    np.testing.assert_allclose(graph, tfvae.datasets.apply_preprocessing(raw, preprocessing), atol=1e-6)


def test_per_tensor_weights_use_the_converters_private_option_only_on_a_tested_tensorflow(monkeypatch):
    import tensorflow as tf

    from export import _tflite
    from tfvae import _tested_versions

    def converter():
        function = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([1, 2])])
        return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])

    assert _tested_versions.tensorflow_is_tested()
    tested = converter()
    _tflite._set_per_channel(tested, per_channel=False)
    assert tested._experimental_disable_per_channel is True
    monkeypatch.setattr(_tested_versions, "tensorflow_is_tested", lambda: False)
    other = converter()
    _tflite._set_per_channel(other, per_channel=True)  # the converter's default: nothing to set
    with pytest.raises(RuntimeError, match="pass per_channel=True"):
        _tflite._set_per_channel(other, per_channel=False)
    assert other._experimental_disable_per_channel is False  # untouched
