"""A conditional VAE generates the digit class it is asked for.

A classifier trained on real binarized digits judges the generated ones: it
must label at least 80% of them as the requested class.
"""

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import tfvae

SAMPLES_PER_CLASS = 50


def _generated_accuracy(model, classifier):
    """Per-class fraction of `sample(n, labels=c)` that the classifier calls c."""
    accuracy = []
    for digit in range(10):
        probabilities = np.asarray(model.sample(SAMPLES_PER_CLASS, labels=digit, seed=digit))
        # Threshold like the training images (datasets.load binarizes at 0.5).
        images = (probabilities > 0.5).astype("float32")
        accuracy.append(float(np.mean(classifier.predict(images) == digit)))
    return np.array(accuracy)


@pytest.fixture(scope="module")
def classifier(digits):
    (x_train, y_train), (x_test, y_test) = digits
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    assert model.score(x_test, y_test) > 0.85  # a judge worth trusting
    return model


def test_untrained_conditional_vae_does_not_pass(classifier):
    # The check can fail: an untrained decoder ignores the label.
    model = tfvae.mlp_vae(64, (64,), 2, likelihood="bernoulli", num_classes=10)
    assert _generated_accuracy(model, classifier).mean() < 0.5


def test_conditional_vae_generates_the_requested_digit(digits, classifier):
    (x_train, y_train), _ = digits
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(64, (64,), 2, likelihood="bernoulli", num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(x_train, y_train, epochs=30, batch_size=64, verbose=0)

    accuracy = _generated_accuracy(model, classifier)

    assert accuracy.mean() >= 0.8, accuracy
    assert accuracy.min() >= 0.5, accuracy  # no class left out
    # The label, not the random z, decides the class: one z, ten labels, ten digits.
    z = np.zeros((10, 2), "float32")
    images = (np.asarray(model.decode(z, labels=np.arange(10))) > 0.5).astype("float32")
    assert np.mean(classifier.predict(images) == np.arange(10)) >= 0.8
