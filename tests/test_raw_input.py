"""The exported raw input: plain-op preprocessing kept float32 in int8 files, uint8 pixels, out-of-range rows.

One design for every file: x is raw (float32 features, or uint8 `HxWxC` pixels for an image model),
the graph preprocesses it with SUB, MUL, MINIMUM and MAXIMUM in float32 before the first QUANTIZE,
and the score flags rows whose raw values the preprocessing would hide.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import export
import tfvae
from export import _litert, acceptance, metadata, report

#: Ops that Arm NN 20.08's TfLite parser rejects and the encoder and decoder files therefore must not hold.
COMPARISONS = {"GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "SELECT", "SELECT_V2",
               "LOG", "CAST"}


@pytest.fixture(scope="module")
def raw_digits():
    return tfvae.datasets.load("digits", scale=False)


@pytest.fixture(scope="module")
def binarized_model(raw_digits):
    (x_train, _), _ = raw_digits
    keras.utils.set_random_seed(0)
    preprocessing = tfvae.datasets.preprocessing_for("digits", binarize=True)
    model = tfvae.mlp_vae(64, (32,), 4, preprocessing=preprocessing)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(tfvae.datasets.apply_preprocessing(x_train, preprocessing), epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def files(binarized_model, raw_digits, tmp_path_factory):
    """{name: content} of encoder, decoder and score files, float32 and int8, with thresholds."""
    (x_train, _), (x_test, _) = raw_digits
    root = tmp_path_factory.mktemp("raw")
    result = {}
    for part in ("encoder", "decoder", "score"):
        for quantize in (None, "int8"):
            path = root / f"{part}{'_int8' if quantize else ''}.tflite"
            export.tflite(binarized_model, path, part=part, quantize=quantize, parity_data=x_test,
                          normal_data=x_test, representative_data=x_train if quantize else None)
            result[path.stem] = path.read_bytes()
    return result


@pytest.mark.parametrize("preprocessing", [
    {"offset": 0.0, "divisor": 16.0, "binarize_threshold": 0.5},
    {"offset": [0.0, 1.0, -2.0], "divisor": [2.0, 0.0, 4.0], "binarize_threshold": None},
    {"offset": [0.0, 1.0, -2.0], "divisor": [2.0, 0.0, 4.0], "binarize_threshold": 0.3},
])
def test_numpy_and_graph_preprocess_bit_for_bit_even_next_to_the_cut(preprocessing):
    import tensorflow as tf

    from export import _endpoints

    width = 64 if np.isscalar(preprocessing["offset"]) else 3
    model = tfvae.mlp_vae(width, (4,), 2, preprocessing=preprocessing)
    raw = np.random.default_rng(0).uniform(-3, 20, (300, width)).astype("float32")
    cut = tfvae.datasets.preprocessing_arithmetic(preprocessing).get("cut", np.float32(8.0))
    cut = np.broadcast_to(cut, (width,)).astype("float32")
    raw[0], raw[1] = cut, np.nextafter(cut, np.float32(np.inf))  # at the cut (-> 0) and one float above (-> 1)
    raw[2], raw[3] = np.nextafter(cut, np.float32(-np.inf)), 3e38  # below; far above (the product overflows)
    graph = tf.function(lambda x: _endpoints.preprocess(model, x))(tf.constant(raw)).numpy()
    numpy = tfvae.datasets.apply_preprocessing(raw, preprocessing)
    np.testing.assert_array_equal(graph, numpy)
    if preprocessing["binarize_threshold"] is not None:
        np.testing.assert_array_equal(numpy, (raw > cut).astype("float32"))  # the cut, rounded to float32
        divisor = np.where(np.asarray(preprocessing["divisor"]) == 0, 1, preprocessing["divisor"])
        scaled = (raw[4:].astype(np.float64) - preprocessing["offset"]) / divisor  # off the cut: the dict's words
        np.testing.assert_array_equal(numpy[4:], (scaled > preprocessing["binarize_threshold"]).astype("float32"))
        assert numpy[0].max() == 0 and numpy[1].min() == 1 and numpy[3].min() == 1


def test_encoder_and_decoder_files_hold_only_ops_arm_nn_parses(files):
    for name in ("encoder", "encoder_int8", "decoder"):
        ops = set(_litert.ops(files[name]))
        assert not ops & COMPARISONS, (name, ops)
        assert ops <= report.ARMNN_20_08_OPS, (name, ops - report.ARMNN_20_08_OPS)
    assert {"SUB", "MINIMUM"} <= set(_litert.ops(files["encoder"]))


def test_int8_files_preprocess_raw_input_in_float32_before_quantizing(files):
    for name, signature in (("encoder_int8", "encode"), ("score_int8", "score")):
        float_ops = _litert.float_ops(files[name], signature)
        assert float_ops.get("SUB") and float_ops.get("MUL"), (name, float_ops)
        info = metadata.from_tflite(files[name])
        assert info["float_ops"] == {signature: float_ops}
        assert info["signatures"][signature]["inputs"]["x"]["dtype"] == "float32"


def test_a_table_whose_columns_differ_by_ten_thousand_exports_to_int8_within_the_rule(tmp_path):
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((600, 2))
    ranges = np.array([1.0, 10.0, 100.0, 1e3, 1e4, 5e4])
    raw = ((np.tanh(latent @ rng.standard_normal((2, 6))) + 1.2) * ranges).astype("float32")
    preprocessing = tfvae.datasets.min_max_preprocessing(raw[:500])
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(6, (16,), 2, likelihood="gaussian", preprocessing=preprocessing)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(tfvae.datasets.apply_preprocessing(raw[:500], preprocessing), epochs=20, batch_size=50, verbose=0)
    for part in ("encoder", "score"):
        result = export.tflite(model, tmp_path / f"{part}.tflite", part=part, quantize="int8",
                               representative_data=raw[:500], parity_data=raw[500:])
        assert not acceptance.failures(result.parity)


def _plain_run(content, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], x.shape, strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


@pytest.mark.parametrize("name", ["score", "score_int8"])
def test_nan_negative_and_above_maximum_pixels_score_above_every_threshold(files, raw_digits, name):
    _, (x_test, _) = raw_digits
    thresholds = metadata.from_tflite(files[name])["score_thresholds"]["by_false_positive_rate"]
    rows = np.repeat(x_test[:4], 4, axis=0)
    rows[0, 10], rows[1, 20], rows[2, 30] = np.nan, -1.0, 17.0  # each one pixel outside 0..16
    rows[3, :] = np.nan
    (output,) = _plain_run(files[name], rows).values()
    assert np.all(np.isfinite(output))
    assert np.all(output[:4] > max(thresholds.values()))
    in_range = _plain_run(files[name], x_test[:16])
    assert np.all(list(in_range.values())[0] < 1e6)  # in-range rows keep their ordinary scores


def test_a_table_row_with_nan_scores_above_every_threshold_while_out_of_range_values_score_as_they_are(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 100, (200, 5)).astype("float32")
    model = tfvae.mlp_vae(5, (8,), 2, likelihood="gaussian",
                          preprocessing=tfvae.datasets.min_max_preprocessing(raw))
    path = tmp_path / "score.tflite"
    export.tflite(model, path, part="score", parity_data=raw)
    rows = raw[:3].copy()
    rows[0, 1], rows[1, 2] = np.nan, 150.0  # NaN flagged; beyond the training maximum is scored, not clipped
    (output,) = _plain_run(path.read_bytes(), rows).values()
    assert output[0] == np.finfo(np.float32).max
    expected = model.anomaly_score(tfvae.datasets.apply_preprocessing(rows[1:], model.preprocessing))
    np.testing.assert_allclose(output[1:], expected, rtol=1e-4)


@pytest.fixture(scope="module")
def photo_crops():
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images  # two 427x640x3 uint8 photos
    crops = [image[row:row + 24, col:col + 40] for image in images
             for row in range(0, 400, 24) for col in range(0, 600, 40)]
    return np.stack(crops)


@pytest.mark.parametrize("channels", [3, 1])
def test_image_models_take_uint8_hxwxc_pixels_and_colour_int8_meets_the_rule(photo_crops, channels, tmp_path):
    crops = photo_crops if channels == 3 else photo_crops.mean(axis=-1, keepdims=True).round().astype("uint8")
    preprocessing = {"offset": 0.0, "divisor": 255.0, "binarize_threshold": None}
    keras.utils.set_random_seed(0)
    model = tfvae.conv_vae((24, 40, channels), (8,), 4, preprocessing=preprocessing)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(tfvae.datasets.apply_preprocessing(crops[:300], preprocessing), epochs=2, batch_size=50, verbose=0)
    for quantize in (None, "int8"):
        path = tmp_path / f"encoder_{quantize}.tflite"
        result = export.tflite(model, path, quantize=quantize, representative_data=crops[:300],
                               parity_data=crops[300:])
        x = result.signatures["encode"]["inputs"]["x"]
        assert (x["dtype"], x["shape"]) == ("uint8", [-1, 24, 40, channels])
        outputs = _plain_run(path.read_bytes(), crops[300:310])
        z_mean = np.asarray(model.encode(tfvae.datasets.apply_preprocessing(crops[300:310], preprocessing))[0])
        assert any(np.allclose(value, z_mean, atol=1e-4 if quantize is None else 0.5) for value in outputs.values())
        assert quantize is None or not acceptance.failures(result.parity)


@pytest.mark.slow
def test_raw_breast_cancer_csv_exports_every_int8_file_within_the_rule(tmp_path):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    benign = data.data[data.target == 1]  # 30 raw columns, values 0 .. 1,210
    csv = tmp_path / "table.csv"
    np.savetxt(csv, benign, delimiter=",", header=",".join(n.replace(" ", "_") for n in data.feature_names),
               comments="")
    run = tmp_path / "run"
    for command in (["tfvae", "train", "--data", str(csv), "--out", str(run), "--epochs", "40"],
                    ["export", "all", str(run)]):
        completed = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=900)
        assert completed.returncode == 0, completed.stderr[-2000:]
    out = run / "export"
    for name in ("vae_int8.tflite", "encoder_int8.tflite", "score_int8.tflite"):
        assert (out / name).is_file(), completed.stdout[-3000:]
    # The rule, measured again here on the run's test split, independently of the export's own check.
    model = tfvae.load_model(run / "model.keras")
    _, test_rows = tfvae.datasets.split_rows(len(benign), seed=json.loads((run / "run.json").read_text())["seed"])
    raw = benign[test_rows].astype("float32")
    x = tfvae.datasets.apply_preprocessing(raw, model.preprocessing)
    z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(x))
    runner = export.LiteRTRunner(out / "encoder_int8.tflite")
    sigmas = np.abs(runner(x=raw)["z_mean"] - z_mean) / np.exp(z_log_sigma)
    assert np.percentile(sigmas, acceptance.PERCENTILE) <= acceptance.Z_MEAN_SIGMAS
    scores = export.LiteRTRunner(out / "score_int8.tflite")(x=raw)["score"]
    assert report.spearman(scores, -np.asarray(model.elbo(x, sample=False))) >= acceptance.SPEARMAN
    assert "ops per file" in completed.stdout and "LOG* x" in completed.stdout
