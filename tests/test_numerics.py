"""Numerical faults: a large learning rate on unscaled data, and a loss that does become NaN.

What happens: with the bounds of the core (`z_log_sigma` squashed to
[-10, 10], the learned Gaussian scale to [9e-4, 1100]) training with Adam at
1e-2 on raw digits (0..16) or on a table in the thousands stays finite. On
raw digits the loss also falls; on the table it does not within three epochs
(it rises from the untrained model's: inputs near 5000 make each Adam step
swing the decoder's output far), only the learned scales move the right way,
up: scale such data (`load_array(path, scale=True)`). The
same model with the sigma bound lifted diverges to NaN at once on the table. When a loss
does become NaN (data that `fit` cannot pre-check, an absurd learning rate),
`TerminateOnNonFinite` stops at that batch and puts back the last good
weights, which `tfvae train` then saves, exiting non-zero.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import cli
from tfvae.callbacks import TerminateOnNonFinite


def _finite(model):
    return all(np.isfinite(weight).all() for weight in model.get_weights())


def _raw_digits():
    (x_train, _), _ = tfvae.datasets.load("digits", scale=False)
    return x_train[:640]


def _thousands_csv(tmp_path):
    rng = np.random.default_rng(0)
    table = rng.normal(5000.0, 1000.0, size=(320, 5)) * rng.uniform(0.5, 2.0, size=5)
    np.savetxt(tmp_path / "thousands.csv", table, delimiter=",", header="a,b,c,d,e", comments="")
    x, _ = tfvae.datasets.load_array(tmp_path / "thousands.csv")  # unscaled
    return x


def _fit(x, log_sigma_bound=10.0):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(x.shape[1], (32,), 4, likelihood="gaussian", log_sigma_bound=log_sigma_bound)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=3, batch_size=64, verbose=0)
    return model, history.history["loss"]


@pytest.mark.parametrize("data", ["raw_digits", "thousands_csv"])
def test_large_learning_rate_on_unscaled_data_stays_finite(data, tmp_path):
    x = _raw_digits() if data == "raw_digits" else _thousands_csv(tmp_path)
    assert x.max() >= 16.0
    model, losses = _fit(x)
    assert np.isfinite(losses).all(), losses
    assert _finite(model)
    if data == "raw_digits":
        assert losses[-1] < losses[0] / 2, losses
    z_mean, z_log_sigma = model.encode(x)
    assert np.isfinite(z_mean).all() and np.abs(z_log_sigma).max() <= 10.0
    stddev = model.likelihood_layer.stddev().numpy()
    assert np.all((stddev >= np.exp(-7.0)) & (stddev <= np.exp(7.0)))
    if data == "thousands_csv":
        assert np.all(stddev > 1.05), stddev  # initialized at 1, growing toward the data's spread


def test_without_the_sigma_bound_the_table_in_the_thousands_diverges(tmp_path):
    # The control: the bound is what keeps that run finite. (On raw digits
    # the zero-initialized z_log_sigma head alone now keeps 3 epochs finite.)
    unbounded, unbounded_losses = _fit(_thousands_csv(tmp_path), log_sigma_bound=1e30)
    assert not np.isfinite(unbounded_losses).all() and not _finite(unbounded)


def _dataset_with_nan_in_batch(batch_index, batch_size=8, batches=5):
    x = np.random.default_rng(0).random((batch_size * batches, 6)).astype("float32")
    x[batch_index * batch_size + 3, 1] = np.nan
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size)


class _WeightsBeforeEachBatch(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = []

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append(self.model.get_weights())


def test_terminate_on_non_finite_stops_and_restores_the_last_good_weights():
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    stop, seen = TerminateOnNonFinite(verbose=False), _WeightsBeforeEachBatch()
    model.fit(_dataset_with_nan_in_batch(2), epochs=3, verbose=0, callbacks=[seen, stop])
    assert (stop.stopped_epoch, stop.stopped_batch) == (0, 2)
    assert len(seen.weights) == 3  # stopped: no fourth batch, no second epoch
    assert "epoch 1, batch 3" in stop.message and "not finite (nan)" in stop.message
    # Batch 1 was the last with a finite loss: the weights it was computed with are back.
    for restored, good in zip(model.get_weights(), seen.weights[1]):
        np.testing.assert_array_equal(restored, good)
    assert _finite(model)


def test_terminate_on_non_finite_with_its_defaults_prints_and_stops(capsys):
    # The default path (verbose=True) as a user calls it, on arrays with an exploding learning rate.
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer=keras.optimizers.SGD(1e6))
    stop = TerminateOnNonFinite()
    model.fit(x, epochs=3, batch_size=16, verbose=0, callbacks=[stop])
    assert stop.message is not None and "the loss is not finite" in stop.message
    assert stop.message in capsys.readouterr().out
    assert _finite(model)


def test_keras_terminate_on_nan_alone_leaves_nan_weights():
    # Why tfvae has its own callback: Keras' stops too, but keeps the broken weights.
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(_dataset_with_nan_in_batch(2), epochs=3, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    assert not _finite(model)


def test_tfvae_train_saves_the_last_good_weights_and_says_so(tmp_path, capsys):
    # A learning rate of 1e30 makes the first update overflow: the loss is NaN from the second step.
    status = cli.main(["train", "--epochs", "2", "--hidden", "8", "--latent-dim", "2", "--learning-rate", "1e30",
                       "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert status == 1
    assert "test ELBO" not in captured.out  # no line that reads like a result
    assert len(captured.err.splitlines()) == 1, captured.err
    assert "Training stopped at epoch 1, batch " in captured.err and "the loss is not finite" in captured.err
    assert "model.keras" in captured.err and "test ELBO" in captured.err and "with those weights" in captured.err
    saved = tfvae.load_model(tmp_path / "run" / "model.keras")
    assert _finite(saved)
    assert np.isfinite(saved.encode(tfvae.datasets.load("digits")[1][0][:5])[0]).all()
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 2  # header + the stopped epoch
    assert not (tmp_path / "run" / "backup").exists()
