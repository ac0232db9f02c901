"""The VAE model: every public method, training, saving, errors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfvae

tfd = tfp.distributions

# Every model configuration goes through the same checks (Keras' run_layer_test style).
CONFIGS = {
    "mlp_gaussian": lambda: tfvae.mlp_vae(6, (4,), 2),
    "mlp_gaussian_fixed_scale": lambda: tfvae.mlp_vae(6, (4,), 2, likelihood_scale=0.5),
    "mlp_bernoulli": lambda: tfvae.mlp_vae(6, (5,), 3, likelihood="bernoulli"),
    "mlp_no_hidden": lambda: tfvae.mlp_vae(6, (), 2),
    "conv": lambda: tfvae.conv_vae((8, 8, 1), (4, 8), 2),
    "conditional": lambda: tfvae.mlp_vae(6, (4,), 2, num_classes=3),
    "iwae": lambda: tfvae.mlp_vae(6, (4,), 2, iwae_samples=4),
    "beta_free_bits_warmup": lambda: tfvae.mlp_vae(6, (4,), 2, beta=2.0, free_bits=0.1, kl_warmup_steps=5),
}


def _data(model, n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.random((n,) + model.event_shape) > 0.5).astype("float32")
    labels = (np.arange(n) % model.num_classes) if model.num_classes else None
    return x, labels


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_model_configuration(name, tmp_path):
    model = CONFIGS[name]()
    x, labels = _data(model)
    n, d = len(x), model.latent_dim

    # Every public method: shapes, types, finiteness.
    z_mean, z_log_sigma = model.encode(x, labels)
    assert z_mean.shape == (n, d) and z_log_sigma.shape == (n, d)
    posterior = model.posterior(x, labels)
    assert isinstance(posterior, tfd.MultivariateNormalDiag)
    np.testing.assert_allclose(posterior.stddev(), np.exp(z_log_sigma), rtol=1e-5)
    assert model.decode(z_mean, labels).shape == x.shape
    assert model.likelihood(z_mean, labels).log_prob(x).shape == (n,)
    assert model.reconstruct(x, labels).shape == x.shape
    assert model.sample(5, seed=1, labels=0 if labels is not None else None).shape == (5,) + model.event_shape
    assert model.elbo(x, labels).shape == (n,)
    assert np.all(np.isfinite(model.elbo(x, labels)))

    # Training through fit, evaluate and predict.
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, labels, epochs=2, batch_size=4, verbose=0)
    assert set(history.history) >= {"loss", "reconstruction", "kl"}
    assert all(np.isfinite(history.history["loss"]))
    results = model.evaluate(x, labels, verbose=0, return_dict=True)
    assert set(results) == {"loss", "reconstruction", "kl"}
    predicted = model.predict(x if labels is None else (x, labels), verbose=0)
    np.testing.assert_allclose(predicted, model.reconstruct(x, labels), atol=1e-6)

    # Save and reload (tfvae.load_model: Keras' loader in safe mode, no custom_objects): identical outputs.
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    reloaded = tfvae.load_model(path)
    assert isinstance(reloaded, tfvae.VAE)
    assert json.loads(json.dumps(reloaded.get_config())) == json.loads(json.dumps(model.get_config()))
    np.testing.assert_array_equal(reloaded.reconstruct(x, labels), model.reconstruct(x, labels))
    np.testing.assert_array_equal(reloaded.encode(x, labels)[1], model.encode(x, labels)[1])


def test_the_diagrams_encoder_has_two_separate_heads():
    model = tfvae.mlp_vae(6, (4,), 2)
    assert [layer.units for layer in model.encoder.layers] == [4]
    assert model.z_mean_head.name == "z_mean" and model.z_log_sigma_head.name == "z_log_sigma"
    assert model.z_mean_head.kernel.shape == (4, 2) and model.z_log_sigma_head.kernel.shape == (4, 2)
    # mu_1 != mu_2, and they change with the input: outputs, not parameters.
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    z_mean = model.encode(x)[0].numpy()
    assert not np.allclose(z_mean[:, 0], z_mean[:, 1])
    assert not np.allclose(z_mean[0], z_mean[1])
    # Each head is its own dense map of the body's features: changing the
    # z_log_sigma head changes z_log_sigma (as computed by hand) and not z_mean.
    features = model.encoder(x).numpy()
    np.testing.assert_allclose(
        z_mean, features @ model.z_mean_head.kernel.numpy() + model.z_mean_head.bias.numpy(), rtol=1e-5, atol=1e-6
    )
    kernel = np.random.default_rng(1).normal(size=(4, 2)).astype("float32")
    model.z_log_sigma_head.kernel.assign(kernel)
    z_mean_after, z_log_sigma = model.encode(x)
    np.testing.assert_array_equal(z_mean_after, z_mean)
    expected = model.latent.bound_log_sigma(features @ kernel + model.z_log_sigma_head.bias.numpy())
    np.testing.assert_allclose(z_log_sigma, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(z_log_sigma[:, 0], z_log_sigma[:, 1])


def test_loss_falls_on_real_digits(digits):
    (x_train, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (32,), 4, likelihood="bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(x_test, verbose=0, return_dict=True)["loss"]
    history = model.fit(x_train, epochs=4, batch_size=64, verbose=0, validation_data=(x_test, None))
    after = model.evaluate(x_test, verbose=0, return_dict=True)["loss"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after < before - 10, (before, after)
    assert "val_loss" in history.history


def test_metrics_are_the_negative_elbo_and_its_parts(digits):
    (_, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    model.compile(optimizer="adam")
    results = model.evaluate(x_test, batch_size=len(x_test), verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], results["reconstruction"] + results["kl"], rtol=1e-5)
    kl = tfd.kl_divergence(model.posterior(x_test), tfd.MultivariateNormalDiag(tf.zeros(3), tf.ones(3)))
    np.testing.assert_allclose(results["kl"], kl.numpy().mean(), rtol=1e-4)
    # The reconstruction term is a one-sample estimate: compare with many samples.
    elbos = np.mean([model.elbo(x_test).numpy().mean() for _ in range(20)])
    np.testing.assert_allclose(-results["loss"], elbos, rtol=0.02)


def test_elbo_with_z_mean_is_deterministic_and_sample_is_seeded(digits):
    (_, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    np.testing.assert_array_equal(model.elbo(x_test[:5], sample=False), model.elbo(x_test[:5], sample=False))
    np.testing.assert_array_equal(model.sample(4, seed=3), model.sample(4, seed=3))
    assert not np.allclose(model.sample(4, seed=3), model.sample(4, seed=4))
    np.testing.assert_array_equal(model.elbo(x_test[:5], seed=2), model.elbo(x_test[:5], seed=2))


def test_log_likelihood_is_above_the_elbo_and_chunking_does_not_change_it(digits):
    (_, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    x = x_test[:20]
    log_px = model.log_likelihood(x, importance_samples=200, samples_per_chunk=64, batch_size=7, seed=0)
    assert log_px.shape == (20,)
    elbo = np.mean([model.elbo(x).numpy() for _ in range(20)], axis=0)
    assert log_px.mean() > elbo.mean()
    log_px_one_chunk = model.log_likelihood(x, importance_samples=200, samples_per_chunk=200, batch_size=20, seed=1)
    # Different chunks draw different samples: the estimates agree on average
    # (a chunking error such as a wrong log k would shift them by >= 1 nat).
    assert abs(log_px.mean() - log_px_one_chunk.mean()) < 0.4


def test_kl_warmup_ramps_the_weight_linearly():
    model = tfvae.mlp_vae(6, (4,), 2, beta=2.0, kl_warmup_steps=10)
    model.compile(optimizer="adam")
    assert float(model.kl_weight(0)) == pytest.approx(0.2)
    assert float(model.kl_weight(4)) == pytest.approx(1.0)
    assert float(model.kl_weight(100)) == pytest.approx(2.0)
    x, _ = _data(model, n=8)
    history = model.fit(x, epochs=3, batch_size=4, verbose=0)
    assert history.history["kl_weight"][-1] == pytest.approx(1.2)


def test_added_losses_are_not_dropped():
    def build(l2):
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2(l2))])
        decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6)])
        model = tfvae.VAE(encoder, decoder, 2)
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        return model

    x, _ = _data(build(0.0))
    plain = build(0.0).fit(x, epochs=1, batch_size=12, verbose=0, shuffle=False).history["loss"][0]
    penalized_model = build(100.0)
    penalty = 100.0 * float(tf.reduce_sum(penalized_model.encoder.layers[0].kernel ** 2))
    penalized = penalized_model.fit(x, epochs=1, batch_size=12, verbose=0, shuffle=False).history["loss"][0]
    assert penalized == pytest.approx(plain + penalty, rel=1e-3)


def test_mixed_precision_training_scales_the_loss(digits):
    keras.mixed_precision.set_global_policy("mixed_float16")
    (x_train, _), _ = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    model.compile(optimizer="adam")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    weights_before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x_train[:256], epochs=2, batch_size=64, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert model.encoder.layers[0].compute_dtype == "float16"
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(weights_before, model.trainable_weights))
    assert model.encode(x_train[:3])[0].dtype == tf.float32


@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_mixed_bfloat16_trains_on_the_epoch_loop(digits, kind):
    # bfloat16 keeps float32's exponent range: no loss scaling, and the epoch loop trains as in float32.
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    (x_train, _), _ = digits
    if kind == "mlp":
        model, x = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli"), x_train[:128]
    else:
        model, x = tfvae.conv_vae((8, 8, 1), (8,), 3), x_train[:128].reshape(-1, 8, 8, 1)
    model.compile(optimizer="adam")
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.encoder.layers[0].compute_dtype == "bfloat16"
    weights_before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, epochs=3, batch_size=32, verbose=0)
    assert model.fit_path == "epoch loop" and np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(weights_before, model.trainable_weights))
    assert model.encode(x[:3])[0].dtype == tf.float32


def test_standard_callbacks_work(digits, tmp_path):
    (x_train, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
    model.compile(optimizer="adam")
    checkpoint = os.path.join(tmp_path, "best.keras")
    csv = os.path.join(tmp_path, "history.csv")
    model.fit(
        x_train[:256], epochs=3, batch_size=64, verbose=0, validation_data=(x_test[:64], None),
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5),
            keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
            keras.callbacks.CSVLogger(csv),
            keras.callbacks.TensorBoard(os.path.join(tmp_path, "logs")),
        ],
    )
    assert isinstance(keras.saving.load_model(checkpoint), tfvae.VAE)
    assert open(csv).readline().strip().split(",") == ["epoch", "kl", "loss", "reconstruction", "val_kl", "val_loss", "val_reconstruction"]
    assert os.listdir(os.path.join(tmp_path, "logs"))


def test_a_new_model_has_all_its_weights_before_any_call(tmp_path):
    # Exporters and load_weights need the variables; Keras creates a
    # subclassed model's variables only on its first call, so VAE does it.
    model = tfvae.mlp_vae(6, (4,), 2)
    # encoder 6*4+4, two heads 2*(4*2+2), decoder 2*4+4 and 4*6+6, learned scale 6
    assert model.count_params() == 28 + 20 + 12 + 30 + 6
    trained = tfvae.mlp_vae(6, (4,), 2)
    trained.compile(optimizer="adam")
    x, _ = _data(trained)
    trained.fit(x, epochs=1, verbose=0)
    trained.save_weights(tmp_path / "trained.weights.h5")
    model.load_weights(tmp_path / "trained.weights.h5")
    np.testing.assert_array_equal(model.encode(x)[0], trained.encode(x)[0])
    np.testing.assert_array_equal(model.decode(x[:, :2])[0], trained.decode(x[:, :2])[0])


def test_vae_accepts_any_keras_bodies_and_event_shape():
    class Body(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = tfvae.VAE(Body(), keras.layers.Dense(5), latent_dim=2, event_shape=(5,))
    assert model.reconstruct(np.zeros((2, 5), "float32")).shape == (2, 5)
    with pytest.raises(ValueError, match="event_shape"):
        tfvae.VAE(Body(), keras.layers.Dense(5), latent_dim=2)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(latent_dim=0), r"`latent_dim`.*positive integer.*latent_dim=0"),
        (dict(likelihood="laplace"), r"`likelihood`.*'laplace'"),
        (dict(beta=-1.0), r"`beta`.*beta=-1.0"),
        (dict(free_bits=float("nan")), r"`free_bits`"),
        (dict(iwae_samples=0), r"`iwae_samples`"),
        (dict(kl_warmup_steps=-3), r"`kl_warmup_steps`"),
        (dict(hidden_units=(4, -1)), r"`hidden_units`"),
        (dict(input_dim=2.5), r"`input_dim`"),
        (dict(likelihood="bernoulli", likelihood_scale=0.1), r"`likelihood_scale`"),
    ],
)
def test_bad_arguments_are_named(kwargs, pattern):
    arguments = dict(input_dim=6, hidden_units=(4,), latent_dim=2)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        tfvae.mlp_vae(**arguments)


def test_conv_builder_checks_shapes():
    with pytest.raises(ValueError, match="divisible"):
        tfvae.conv_vae((10, 10, 1), (8, 8), 2)
    with pytest.raises(ValueError, match="input_shape"):
        tfvae.conv_vae((8, 8), (8,), 2)


def test_decoder_of_the_wrong_shape_is_refused():
    encoder = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="`decoder`"):
        tfvae.VAE(encoder, decoder, 2)


def test_labels_as_class_ids_or_one_hot_rows_give_the_same_model():
    model = tfvae.mlp_vae(6, (4,), 2, num_classes=3)
    x = np.random.default_rng(0).random((3, 6)).astype("float32")
    ids = [0, 2, 1]
    z_mean = model.encode(x, labels=ids)[0]
    for labels in (np.eye(3, dtype="float32")[ids], np.eye(3, dtype=bool)[ids], np.array(ids, float)[:, None],
                   tf.constant(ids)):
        np.testing.assert_allclose(model.encode(x, labels=labels)[0], z_mean, rtol=1e-6)
    assert not np.allclose(model.encode(x, labels=[1, 1, 1])[0], z_mean)
