"""Anomaly scores and thresholds: VAE.anomaly_score, VAE.fit_thresholds, the contamination rule, .keras."""

import json
import os
import warnings
import zipfile

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import export
import tfvae
from tfvae import anomaly

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def one_class():
    """A model trained on digits 0-4 (normal); held-out normal rows; digits 5-9 (anomalies). Raw 0..16."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = tfvae.datasets.load("digits", scale=False)
    x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
    normal, anomalies = x[y < 5], x[y >= 5]
    order = np.random.default_rng(0).permutation(len(normal))
    train, held_out = normal[order[:500]], normal[order[500:]]
    preprocessing = {"offset": 0.0, "divisor": 16.0, "binarize_threshold": 0.5}
    model = tfvae.mlp_vae(64, (64,), 4, likelihood="bernoulli", preprocessing=preprocessing)
    model.compile()
    model.fit(_prep(model, train), epochs=30, batch_size=32, verbose=0)
    return model, train, held_out, anomalies


def _prep(model, raw):
    return tfvae.datasets.apply_preprocessing(raw, model.preprocessing)


def test_anomaly_score_is_the_deterministic_negative_elbo(one_class):
    model, _, held_out, _ = one_class
    x = _prep(model, held_out[:50])
    scores = model.anomaly_score(x)
    assert isinstance(scores, np.ndarray) and scores.shape == (50,) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, model.anomaly_score(x))
    np.testing.assert_allclose(scores, -model.elbo(x, sample=False).numpy(), rtol=1e-5)  # N(0, I): analytic KL
    importance = model.anomaly_score(x, importance_samples=20)
    np.testing.assert_array_equal(importance, model.anomaly_score(x, importance_samples=20))
    np.testing.assert_allclose(importance, -model.log_likelihood(x, num_samples=20, seed=0), rtol=1e-6)


def test_anomaly_score_ranks_unseen_digits_higher(one_class):
    model, _, held_out, anomalies = one_class
    normal, unusual = (model.anomaly_score(_prep(model, rows)) for rows in (held_out, anomalies))
    assert np.median(unusual) > np.quantile(normal, 0.75)


def test_anomaly_score_agrees_with_the_float32_score_file(one_class, tmp_path):
    model, train, held_out, _ = one_class
    path = tmp_path / "score.tflite"
    export.tflite(model, path, part="score")
    runner = Interpreter(model_path=str(path)).get_signature_runner("score")
    exported = runner(x=held_out[:64].astype(np.float32))["score"]  # raw rows: the file preprocesses
    np.testing.assert_allclose(model.anomaly_score(_prep(model, held_out[:64])), exported, rtol=1e-4)


def test_thresholds_hold_their_rate_on_other_normal_rows(one_class):
    model, train, held_out, _ = one_class
    x = _prep(model, held_out)
    thresholds = model.fit_thresholds(x, x_train=_prep(model, train))
    assert set(thresholds) == {0.01, 0.05} and thresholds[0.01] >= thresholds[0.05]
    assert model.thresholds == thresholds
    # 400 held-out rows: one split's realized rate varies by about 1.5 points; ten splits average that out.
    rng, realized = np.random.default_rng(0), []
    for _ in range(10):
        order = rng.permutation(len(x))
        fitted = model.fit_thresholds(x[order[:270]])
        realized.append(np.mean(model.anomaly_score(x[order[270:]]) > fitted[0.05]))
    assert abs(np.mean(realized) - 0.05) <= 0.02, realized


def test_contamination_warning(one_class):
    model, train, held_out, anomalies = one_class
    clean = _prep(model, held_out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit_thresholds(clean, x_train=_prep(model, train))
    third = len(held_out) // 3
    mixed = _prep(model, np.concatenate([held_out[: len(held_out) - third], anomalies[:third]]))
    with pytest.warns(UserWarning, match="look like they hold anomalies"):
        model.fit_thresholds(mixed, x_train=_prep(model, train))


def test_thresholds_survive_keras_files(one_class, tmp_path):
    model, _, held_out, _ = one_class
    model.fit_thresholds(_prep(model, held_out), false_positive_rates=(0.01, 0.05, 0.1))
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        stored = json.loads(archive.read("config.json"))["config"]["thresholds"]
    assert set(stored) == {"0.01", "0.05", "0.1"}  # JSON keys are strings
    loaded = tfvae.load_model(path)
    assert loaded.thresholds == pytest.approx(model.thresholds) and set(loaded.thresholds) == {0.01, 0.05, 0.1}


def test_a_keras_file_without_thresholds_loads():
    loaded = tfvae.load_model(os.path.join(HERE, "data", "vae_0_1_0.keras"))
    assert loaded.thresholds is None


def test_realized_rates_on_rows_that_did_not_set_them():
    scores = np.random.default_rng(0).standard_normal(4000)
    realized = anomaly.realized_rates(scores)
    assert realized[0.01] == pytest.approx(0.01, abs=0.005) and realized[0.05] == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize("rates", [(), (0.0,), (1.5,), ("0.01",)])
def test_bad_false_positive_rates_are_named(one_class, rates):
    model, _, held_out, _ = one_class
    with pytest.raises(ValueError, match="false_positive_rates"):
        model.fit_thresholds(_prep(model, held_out[:10]), false_positive_rates=rates)


def test_bad_importance_samples_are_named(one_class):
    model, _, held_out, _ = one_class
    with pytest.raises(ValueError, match="importance_samples"):
        model.anomaly_score(_prep(model, held_out[:4]), importance_samples=0)
