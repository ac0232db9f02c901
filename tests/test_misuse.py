"""Misuse that used to pass in silence gets a one-line warning or tfvae's error (`tfvae.misuse`)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae


@pytest.fixture
def model():
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile()
    return model


def _one_warning(record, *words):
    messages = [str(warning.message) for warning in record if issubclass(warning.category, UserWarning)]
    hits = [message for message in messages if all(word in message for word in words)]
    assert len(hits) == 1, messages
    assert "\n" not in hits[0]
    return hits[0]


def test_labels_given_to_an_unconditional_model_are_named(model, digits):
    (x_train, y_train), _ = digits
    with pytest.warns(UserWarning) as record:
        model.fit(x_train[:64], y_train[:64], epochs=1, verbose=0)
    _one_warning(record, "`y`", "unconditional", "num_classes")
    dataset = tf.data.Dataset.from_tensor_slices((x_train[:64], y_train[:64])).batch(32)
    with pytest.warns(UserWarning) as record:
        model.fit(dataset, epochs=1, verbose=0)
    _one_warning(record, "`y`", "unconditional")


def test_pixels_0_to_255_under_a_bernoulli_likelihood_are_named(model, digits):
    (x_train, _), _ = digits
    raw = (x_train[:64] * 255).astype(np.uint8)
    with pytest.warns(UserWarning) as record:
        model.fit(raw, epochs=1, verbose=0)
    _one_warning(record, "`x`", "[0, 255]", "bernoulli", "divide uint8 pixels by 255")
    with pytest.warns(UserWarning) as record:
        model.fit(tf.data.Dataset.from_tensor_slices(raw).batch(32), epochs=1, verbose=0)
    _one_warning(record, "first batch", "bernoulli", "255")


def test_data_in_range_and_without_labels_trains_without_a_warning(model, digits):
    (x_train, _), (x_test, _) = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x_train[:64], epochs=1, verbose=0, validation_data=(x_test[:32], None))
        model.fit(tf.data.Dataset.from_tensor_slices(x_train[:64]).batch(32), epochs=1, verbose=0, shuffle=False)
        gaussian = tfvae.mlp_vae(64, (8,), 2)  # any real values under a Gaussian likelihood
        gaussian.compile()
        gaussian.fit(x_train[:64] * 16, epochs=1, verbose=0)


def test_a_dataset_gets_the_checks_of_arrays_on_its_first_batch(model, digits):
    (x_train, _), _ = digits
    broken = x_train[:64].copy()
    broken[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"first batch of the tf.data.Dataset.*finite values.*row 3"):
        model.fit(tf.data.Dataset.from_tensor_slices(broken).batch(32), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"first batch.*shape \(batch, 64\)"):
        model.fit(tf.data.Dataset.from_tensor_slices(x_train[:64, :63]).batch(32), epochs=1, verbose=0)
    with pytest.raises(TypeError, match="first batch"):
        model.fit(tf.data.Dataset.from_tensor_slices(np.array([["a"] * 64] * 4)).batch(2), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_data.*first batch.*finite"):
        model.fit(x_train[:64], epochs=1, verbose=0,
                  validation_data=tf.data.Dataset.from_tensor_slices(broken).batch(32))


def test_model_checkpoint_with_a_batch_count_is_named_on_the_epoch_loop(model, digits, tmp_path):
    (x_train, _), _ = digits
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True,
                                                 save_freq=20)
    with pytest.warns(UserWarning) as record:
        model.fit(x_train[:64], epochs=1, batch_size=8, verbose=0, callbacks=[checkpoint])
    _one_warning(record, "ModelCheckpoint(save_freq=20)", "every 20 epochs", "save_freq='epoch'")
    assert model.fit_path.startswith("epoch loop")
    with warnings.catch_warnings():  # batch by batch on a dataset: it counts batches, no warning
        warnings.simplefilter("error", UserWarning)
        model.fit(tf.data.Dataset.from_tensor_slices(x_train[:64]).batch(8), epochs=1, verbose=0,
                  shuffle=False, callbacks=[checkpoint])


@pytest.mark.parametrize("call", ["predict", "model(x)", "encode"])
def test_a_wrong_feature_count_gets_the_same_clear_message_everywhere(model, call):
    x = np.zeros((3, 63), "float32")
    run = {"predict": lambda: model.predict(x, verbose=0), "model(x)": lambda: model(x),
           "encode": lambda: model.encode(x)}[call]
    with pytest.raises(ValueError, match=r"Received an invalid value for `x`: expected an array of shape \(batch, 64\)"):
        run()


def test_predict_and_call_still_take_the_right_shape(model):
    x = np.full((3, 64), 0.5, "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), model.reconstruct(x), atol=1e-6)
    assert model(x).shape == (3, 64)


def test_summary_shows_the_heads_for_any_batch_and_what_the_likelihood_takes():
    lines = []
    tfvae.conv_vae((24, 40, 3), (4, 8), 8).summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    for name, shape in (("z_mean", "(None, 8)"), ("z_log_sigma", "(None, 8)"), ("latent", "(None, 8)"),
                        ("likelihood", "(None, 24, 40, 3)")):
        (row,) = [line for line in text.splitlines() if line.strip("│ ").startswith(name + " (")]
        assert shape in row, row
    assert "(1, 8)" not in text and " ? " not in text


def test_the_remedy_named_for_diverged_weights_keeps_the_last_finite_ones(digits):
    # The error for NaN weights sends users to TerminateOnNonFinite; with its defaults it must work.
    (x_train, _), _ = digits
    diverging = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    diverging.compile(optimizer=keras.optimizers.SGD(1e6))
    diverging.fit(x_train[:256], epochs=3, batch_size=32, verbose=0)
    with pytest.raises(RuntimeError, match=r"callbacks=\[tfvae.callbacks.TerminateOnNonFinite\(\)\]"):
        diverging.encode(x_train[:4])
    kept = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    kept.compile(optimizer=keras.optimizers.SGD(1e6))
    kept.fit(x_train[:256], epochs=3, batch_size=32, verbose=0,
             callbacks=[tfvae.callbacks.TerminateOnNonFinite()])
    assert all(np.all(np.isfinite(weight.numpy())) for weight in kept.weights)
    assert np.all(np.isfinite(kept.encode(x_train[:4])[0]))
