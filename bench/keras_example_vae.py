"""Reference VAE in the pattern of the official Keras VAE example.

This is the baseline tfvae is benchmarked against (issue 6).  It follows the
common pattern of https://keras.io/examples/generative/vae/ :

* a ``Sampling`` layer computing ``z_mean + exp(0.5 * z_log_var) * eps`` with
  ``keras.random.normal``;
* a subclassed ``keras.Model`` holding an encoder and a decoder model, with a
  ``GradientTape`` ``train_step``;
* the closed-form Gaussian KL ``-0.5 * (1 + z_log_var - z_mean**2 -
  exp(z_log_var))`` summed over latent dimensions;
* a Bernoulli reconstruction term: binary cross-entropy summed over features;
* three ``keras.metrics.Mean`` trackers;
* ``compile(optimizer=keras.optimizers.Adam(1e-3))`` and a plain
  ``fit(x, epochs=..., batch_size=...)``.

Differences from the keras.io page, all needed to run it on flat vectors:
the encoder and decoder are MLPs instead of convnets, and the decoder emits
logits (``from_logits=True`` cross-entropy) instead of sigmoid probabilities,
which is numerically safer and is what the tfvae Bernoulli likelihood uses.
``keras.ops.binary_crossentropy`` is the element-wise op, so the sum over
features is the true Bernoulli negative log-likelihood (``keras.losses.
binary_crossentropy`` would *average* over the last axis).

The module also loads the benchmark data set (binarized sklearn digits) and
computes the test negative ELBO per example.
"""

from __future__ import annotations

import numpy as np

import keras
from keras import layers, ops


class Sampling(layers.Layer):
    """Draws ``z ~ N(z_mean, exp(z_log_var))`` by the reparameterization trick."""

    def __init__(self, seed=1337, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def gaussian_kl(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example, summed over dims."""
    kl = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    return ops.sum(kl, axis=1)


def bernoulli_nll(x, logits):
    """Bernoulli negative log-likelihood per example, summed over features (and pixels)."""
    bce = ops.binary_crossentropy(x, logits, from_logits=True)
    return ops.sum(ops.reshape(bce, (ops.shape(bce)[0], -1)), axis=1)


class VAE(keras.Model):
    """The keras.io example VAE: encoder -> Sampling -> decoder, custom train_step."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    def call(self, x):
        z_mean, z_log_var, z = self.encoder(x)
        return self.decoder(z)

    def train_step(self, data):
        import tensorflow as tf  # the example's train_step is TensorFlow-specific

        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            logits = self.decoder(z)
            reconstruction_loss = ops.mean(bernoulli_nll(data, logits))
            kl_loss = ops.mean(gaussian_kl(z_mean, z_log_var))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build_reference(input_dim=64, hidden=(128, 128), latent_dim=8, seed=1337):
    """Build and compile the reference VAE.

    Encoder: ``input_dim -> Dense(h, relu) for h in hidden -> (z_mean,
    z_log_var)`` plus ``Sampling``.  Decoder: ``latent_dim -> Dense(h, relu)
    for h in reversed(hidden) -> Dense(input_dim)`` logits.  Compiled with
    ``Adam(1e-3)`` exactly as in the example (no ``jit_compile`` or
    ``steps_per_execution``: Keras' defaults).
    """
    encoder_inputs = keras.Input(shape=(input_dim,))
    h = encoder_inputs
    for units in hidden:
        h = layers.Dense(units, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(h)
    z = Sampling(seed=seed)([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    h = latent_inputs
    for units in reversed(hidden):
        h = layers.Dense(units, activation="relu")(h)
    logits = layers.Dense(input_dim, name="logits")(h)
    decoder = keras.Model(latent_inputs, logits, name="decoder")

    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae


def build_conv_reference(seed=1337):
    """The keras.io example's ConvNet VAE on 28x28x1 images, z of size 2, compiled as there.

    Encoder: Conv2D 32 and 64 (3x3, stride 2, same, relu), Flatten, Dense 16
    relu, the two latent heads and ``Sampling``. Decoder: Dense 7*7*64 relu,
    Reshape, Conv2DTranspose 64 and 32 (3x3, stride 2, same, relu),
    Conv2DTranspose 1 (3x3, same): logits, as in ``build_reference``.
    """
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    h = conv_encoder_body()(encoder_inputs)
    z_mean = layers.Dense(2, name="z_mean")(h)
    z_log_var = layers.Dense(2, name="z_log_var")(h)
    z = Sampling(seed=seed)([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    vae = VAE(encoder, conv_decoder())
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    return vae


def conv_encoder_body():
    """The example's encoder up to Dense 16 relu (what tfvae.VAE takes as `encoder`)."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2D(64, 3, activation="relu", strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(16, activation="relu"),
    ], name="encoder_body")


def conv_decoder():
    """The example's decoder, z of size 2 to 28x28x1 logits."""
    return keras.Sequential([
        keras.Input((2,)),
        layers.Dense(7 * 7 * 64, activation="relu"),
        layers.Reshape((7, 7, 64)),
        layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2DTranspose(1, 3, padding="same"),
    ], name="decoder")


def log_likelihood(vae, x, num_samples=1000, seed=0, chunk=100):
    """Importance-weighted (IWAE, k samples) log p(x) per example of the reference, in nats.

    ``log p(x) ~= logsumexp_i [log p(x|z_i) + log p(z_i) - log q(z_i|x)] - log k``
    with ``z_i ~ q(z|x)`` drawn from a numpy generator (``seed``), the
    estimator ``tfvae``'s ``VAE.log_likelihood`` uses.
    """
    x = np.asarray(x, dtype="float32")
    z_mean, z_log_var, _ = vae.encoder(x, training=False)
    z_mean, z_log_var = np.asarray(z_mean, "float64"), np.asarray(z_log_var, "float64")
    sigma = np.exp(0.5 * z_log_var)
    rng = np.random.default_rng(seed)
    weights = []
    for done in range(0, num_samples, chunk):
        k = min(chunk, num_samples - done)
        eps = rng.standard_normal((k,) + z_mean.shape)
        z = z_mean + sigma * eps
        logits = vae.decoder(z.reshape(-1, z.shape[-1]).astype("float32"), training=False)
        log_px = -np.asarray(bernoulli_nll(np.tile(x, (k,) + (1,) * (x.ndim - 1)), logits), "float64")
        log_pz = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=-1)
        log_qz = -0.5 * np.sum(eps ** 2 + np.log(2 * np.pi) + z_log_var, axis=-1)
        weights.append(log_px.reshape(k, -1) + log_pz - log_qz)
    weights = np.concatenate(weights)
    top = weights.max(axis=0)
    return top + np.log(np.mean(np.exp(weights - top), axis=0))


def negative_elbo(vae, x, n_samples=1, seed=0):
    """Test negative ELBO per example (nats), averaged over ``x``.

    ``-ELBO(x) = KL(q(z|x) || p(z)) - E_q[log p(x|z)]`` with the KL in closed
    form and the expectation estimated by ``n_samples`` reparameterized draws
    per example (``n_samples=1`` is the single-sample estimate the training
    loss uses; larger values only reduce the Monte-Carlo noise).  The draws
    come from a local numpy generator, so the value is deterministic for a
    given ``seed`` and does not advance the model's own seed state.
    """
    x = np.asarray(x, dtype="float32")
    z_mean, z_log_var, _ = vae.encoder(x, training=False)
    z_mean = np.asarray(z_mean)
    z_log_var = np.asarray(z_log_var)
    kl = np.asarray(gaussian_kl(z_mean, z_log_var))
    rng = np.random.default_rng(seed)
    rec = np.zeros(len(x), dtype="float64")
    for _ in range(n_samples):
        eps = rng.standard_normal(z_mean.shape).astype("float32")
        z = z_mean + np.exp(0.5 * z_log_var) * eps
        logits = vae.decoder(z, training=False)
        rec += np.asarray(bernoulli_nll(x, logits), dtype="float64")
    return float(np.mean(kl + rec / n_samples))


def load_digits_binarized(test_size=0.2, seed=0):
    """Binarized sklearn digits: ``x/16 > 0.5``, stratified 80/20 split.

    Returns ``(x_train, x_test, y_train, y_test)`` with float32 ``x`` of shape
    ``(1437, 64)`` and ``(360, 64)``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0 > 0.5).astype("float32")
    return train_test_split(
        x, digits.target, test_size=test_size, stratify=digits.target,
        random_state=seed,
    )


if __name__ == "__main__":
    # python bench/keras_example_vae.py [EPOCHS]: a whole fit on the digits at batch 64 in a fresh
    # process, timed around `fit` as bench/train_parts.py times `tfvae train`'s training phase
    # (bench/run.py's (d) runs it between those runs); the last line is JSON.
    import json
    import sys
    import time

    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    x_train, x_test, _, _ = load_digits_binarized()
    keras.utils.set_random_seed(0)
    model = build_reference()
    start = time.perf_counter()
    model.fit(x_train, epochs=epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    print(json.dumps({"epochs": epochs, "rows": len(x_train), "training": seconds,
                      "negative_elbo": negative_elbo(model, x_test, n_samples=10)}))
