"""The benchmark's workloads: the models and data of each case, built as a user would build them.

(a) digits MLP 64-128-128-8, batch 64, binarized sklearn digits; (b) the Keras example's ConvNet on the
digits resized to 28x28; (c) a 784-512-512-32 MLP on the same images flattened; and a GRU VAE on noisy
sine sequences (whole fits only). The reference is the Keras VAE example's pattern with the same bodies
(bench/keras_example_vae.py).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import tensorflow as tf

import keras_example_vae as reference
import tfvae

DIGITS = (64, (128, 128), 8)
HEAVY = (784, (512, 512), 32)
#: tfvae's training paths, each a `compile(jit_compile=...)` and a way of feeding fit.
PATHS = {"default": "auto", "epoch loop + XLA": True, "epoch loop": False, "keras per-step loop": "auto"}
#: (a)'s extra runner: the default path compiled with `keras.optimizers.Adam(1e-3)` (the default is tfvae's Adam).
KERAS_ADAM = "default, keras.optimizers.Adam"
#: A model family of loops: a GRU VAE on sequences (steps, features), z of size 4, whole fits only.
GRU_CASE = "GRU(64) VAE, 32x4 sequences"


def train_flops_per_example(case):
    """6 * multiply-adds of one forward pass (encoder, both heads, decoder)."""
    d, hidden, latent = case
    enc = list(zip((d,) + hidden, hidden + (2 * latent,)))
    dec = list(zip((latent,) + hidden[::-1], hidden[::-1] + (d,)))
    return 6 * sum(i * o for i, o in enc + dec)


def decoder_flops_per_sample(case):
    """2 * multiply-adds of the decoder for one z."""
    d, hidden, latent = case
    return 2 * sum(i * o for i, o in zip((latent,) + hidden[::-1], hidden[::-1] + (d,)))


def digit_images():
    """Binarized sklearn digits resized to 28x28x1: (train, test) split as `reference.load_digits_binarized`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = tf.image.resize(digits.images[..., None] / 16.0, (28, 28)).numpy()
    images = (images > 0.5).astype("float32")
    train, test = train_test_split(images, test_size=0.2, stratify=digits.target, random_state=0)
    return train, test


def tiled_images():
    """(b) and (c)'s training images: the 1,437 resized training digits three times, 33 full batches of 128."""
    return np.concatenate([digit_images()[0]] * 3)


def sine_sequences(n=2000, steps=32, features=4, seed=0):
    """`n` noisy sine waves of random frequency and phase per feature: float32 (n, steps, features)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, steps)[None, :, None]
    waves = np.sin(t * rng.uniform(0.5, 2, (n, 1, features)) + rng.uniform(0, 2 * np.pi, (n, 1, features)))
    return (waves + 0.1 * rng.normal(size=(n, steps, features))).astype("float32")


def gru_vae(steps=32, features=4):
    """GRU_CASE's tfvae model: GRU(64) + Dense(64) encoder; RepeatVector, GRU(64) sequences, Dense decoder."""
    layers = keras.layers
    encoder = keras.Sequential([keras.Input((steps, features)), layers.GRU(64), layers.Dense(64, activation="relu")])
    decoder = keras.Sequential([keras.Input((4,)), layers.RepeatVector(steps), layers.GRU(64, return_sequences=True),
                                layers.Dense(features)])
    return tfvae.VAE(encoder, decoder, 4, likelihood="gaussian")


def case_label(case):
    """A case's name in the tables: GRU_CASE itself, or an MLP's layer sizes joined by dashes."""
    return case if case == GRU_CASE else "-".join(map(str, (case[0], *case[1], case[2])))


def build(kind, case, seed=0, path="default", optimizer=None):
    """A reference or tfvae model, compiled as a user would (`path`: a key of PATHS).

    The reference compiles with Keras' Adam at 1e-3; tfvae with its default optimizer (Adam at 1e-3), or
    `optimizer(1e-3)` if given.
    """
    keras.utils.set_random_seed(seed)
    if case == "conv":
        if kind == "reference":
            return reference.build_conv_reference()
        model = tfvae.VAE(reference.conv_encoder_body(), reference.conv_decoder(), 2, likelihood="bernoulli")
    elif case == GRU_CASE:
        model = gru_vae()
    elif kind == "reference":
        return reference.build_reference(*case)
    else:
        model = tfvae.mlp_vae(case[0], case[1], case[2], likelihood="bernoulli")
    model.compile(optimizer=optimizer and optimizer(1e-3), jit_compile=PATHS[path])
    return model


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy set to `name` inside the block."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def bf16_model(case):
    """tfvae's default on `case`, built and compiled under the `mixed_bfloat16` policy."""
    with dtype_policy("mixed_bfloat16"):
        return build("tfvae", case)
