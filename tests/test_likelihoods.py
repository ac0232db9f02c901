import numpy as np
import pytest
import tensorflow as tf

from tfvae import likelihoods


def test_bernoulli_log_prob_is_summed_binary_cross_entropy(rng):
    logits = rng.normal(size=(5, 4)).astype("float32")
    x = (rng.random((5, 4)) > 0.5).astype("float32")
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    layer = likelihoods.Bernoulli((4,))
    np.testing.assert_allclose(layer.distribution(logits).log_prob(x), expected, rtol=1e-5)
    np.testing.assert_allclose(layer.mean(logits), p, rtol=1e-6)


def test_bernoulli_on_images_sums_over_all_pixels(rng):
    logits = np.zeros((2, 3, 3, 1), "float32")
    layer = likelihoods.Bernoulli((3, 3, 1))
    np.testing.assert_allclose(layer.distribution(logits).log_prob(np.ones_like(logits)), [9 * np.log(0.5)] * 2, rtol=1e-6)


def test_gaussian_fixed_scale_log_prob_matches_formula(rng):
    mean = rng.normal(size=(3, 2)).astype("float32")
    x = rng.normal(size=(3, 2)).astype("float32")
    layer = likelihoods.Gaussian((2,), scale=0.5)
    expected = np.sum(-0.5 * ((x - mean) / 0.5) ** 2 - np.log(0.5) - 0.5 * np.log(2 * np.pi), axis=1)
    np.testing.assert_allclose(layer.distribution(mean).log_prob(x), expected, rtol=1e-5)
    assert not layer.trainable_weights


def test_gaussian_learned_scale_is_one_trainable_weight_per_feature():
    layer = likelihoods.Gaussian((3,))
    assert [w.shape for w in layer.trainable_weights] == [(3,)]
    np.testing.assert_allclose(layer.stddev(), np.ones(3))
    layer.log_scale.assign([-1e6, 1e6, 0.0])
    assert np.all(np.isfinite(layer.stddev().numpy())) and np.all(layer.stddev().numpy() > 0)


def test_get_rejects_unknown_likelihood_and_bad_scale():
    with pytest.raises(ValueError, match="likelihood.*laplace"):
        likelihoods.get("laplace", (3,))
    with pytest.raises(ValueError, match="scale"):
        likelihoods.Gaussian((3,), scale=-1.0)


def test_config_round_trip():
    layer = likelihoods.Gaussian((3,), scale=0.25)
    clone = likelihoods.Gaussian.from_config(layer.get_config())
    assert clone.scale == 0.25 and clone.event_shape == (3,)
    assert tf.reduce_all(clone.stddev() == 0.25)
