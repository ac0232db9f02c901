"""export.acceptance: the one rule every quantized file meets, and what a failing file's error says."""

import keras
import numpy as np
import pytest

import export
import tfvae
from export import acceptance
from export.report import compare


def _encoder_rows(z_mean_error, rows=200, latent=4, sigma=0.5, outliers=0):
    """Parity rows of an encoder whose z_mean is off by `z_mean_error` posterior sigmas, except `outliers` rows."""
    rng = np.random.default_rng(0)
    z_mean = rng.standard_normal((rows, latent)).astype("float32")
    z_log_sigma = np.full((rows, latent), np.log(sigma), "float32")
    exported = z_mean + z_mean_error * sigma
    exported[:outliers] += 5 * sigma
    return compare("encode", {"z_mean": z_mean, "z_log_sigma": z_log_sigma},
                   {"z_mean": exported, "z_log_sigma": z_log_sigma}, sigma_units=True)


def _score_rows(noise, rows=300):
    rng = np.random.default_rng(0)
    score = rng.uniform(10, 50, rows)
    return compare("score", {"score": score}, {"score": score + noise * rng.standard_normal(rows)})


def test_a_file_within_the_rule_passes_and_one_outlier_row_in_a_hundred_does_not_refuse_it():
    acceptance.check(_encoder_rows(0.05, outliers=1) + _score_rows(0.5), "encoder (int8) file", "200 rows")
    assert not acceptance.failures(_encoder_rows(0.05, outliers=1))


def test_z_mean_off_by_more_than_a_tenth_of_sigma_fails_naming_output_amount_and_what_to_do():
    with pytest.raises(acceptance.NotAccepted) as caught:
        acceptance.check(_encoder_rows(0.2), "encoder (int8) file encoder_int8.tflite", "71 rows of the bc.csv test split")
    message = str(caught.value)
    assert "encode.z_mean" in message and "0.2 posterior sigma at the 99th percentile" in message
    assert "at most 0.1" in message and "71 rows of the bc.csv test split" in message
    assert "float16" in message and "more" in message and "skip" in message
    assert "converter" not in message and "report it" not in message
    assert isinstance(caught.value, RuntimeError)


def test_a_score_that_ranks_rows_differently_fails():
    rows = _score_rows(30.0)  # noise as large as the scores' spread
    assert rows[0].spearman < acceptance.SPEARMAN
    with pytest.raises(acceptance.NotAccepted, match=r"score\.score ranks rows with a Spearman correlation of 0\.\d+"):
        acceptance.check(rows, "score (int8) file", "300 rows")


def test_undefined_or_non_finite_measures_fail():
    constant = compare("score", {"score": np.arange(10.0)}, {"score": np.full(10, 3.0)})
    assert np.isnan(constant[0].spearman) and acceptance.failures(constant)
    nan_rows = _encoder_rows(0.0)
    nan_rows[0].max_abs_error = float("nan")
    assert acceptance.failures(nan_rows)


def test_x_mean_is_held_to_a_tenth_of_its_range():
    x = np.linspace(0, 1, 400, dtype="float32").reshape(100, 4)
    assert not acceptance.failures(compare("decode", {"x_mean": x}, {"x_mean": x + 0.05}))
    assert acceptance.failures(compare("decode", {"x_mean": x}, {"x_mean": x + 0.15}))


def test_export_refuses_a_quantized_file_that_fails_and_writes_nothing(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(6, (8,), 2)
    x = np.random.default_rng(0).uniform(0, 1, (64, 6)).astype("float32")
    # No real int8 file is exact: with a limit of 0 sigma the rule must refuse it.
    monkeypatch.setattr(acceptance, "Z_MEAN_SIGMAS", 0.0)
    path = tmp_path / "encoder_int8.tflite"
    with pytest.raises(acceptance.NotAccepted, match=r"encoder_int8\.tflite .*encode\.z_mean off by"):
        export.tflite(model, path, quantize="int8", representative_data=x)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    report = export.tflite(model, path, quantize="int8", representative_data=x)
    z_mean = next(row for row in report.parity if row.output == "z_mean")
    assert z_mean.sigma_p99 <= acceptance.Z_MEAN_SIGMAS and path.is_file()
