import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import losses
from tfvae.latent import standard_normal_prior

tfd = tfp.distributions


def _posterior(rng, batch=4, dim=3):
    mu = rng.normal(size=(batch, dim)).astype("float32")
    log_sigma = rng.normal(scale=0.5, size=(batch, dim)).astype("float32")
    return mu, log_sigma, tfd.MultivariateNormalDiag(mu, tf.exp(log_sigma))


def test_kl_matches_closed_form_by_hand(rng):
    mu, log_sigma, q = _posterior(rng)
    by_hand = 0.5 * np.sum(mu**2 + np.exp(2 * log_sigma) - 1 - 2 * log_sigma, axis=1)
    np.testing.assert_allclose(losses.kl_divergence(q, standard_normal_prior(3)), by_hand, rtol=1e-5)


def test_kl_is_tfps_general_gaussian_kl_with_a_smaller_graph(rng):
    mu, log_sigma, q = _posterior(rng)
    prior = tfd.MultivariateNormalDiag(rng.normal(size=3).astype("float32"), [0.5, 1.0, 2.0])
    np.testing.assert_allclose(losses.kl_divergence(q, prior), tfd.kl_divergence(q, prior), rtol=1e-5)
    identity_scale = tfd.MultivariateNormalDiag(tf.zeros([3]))  # scale_diag omitted: the identity
    np.testing.assert_allclose(losses.kl_divergence(q, identity_scale), tfd.kl_divergence(q, identity_scale),
                               rtol=1e-5)
    gradients = []
    for kl in (losses.kl_divergence, tfd.kl_divergence):
        with tf.GradientTape() as tape:
            inputs = [tf.constant(mu), tf.constant(log_sigma)]
            tape.watch(inputs)
            value = kl(tfd.MultivariateNormalDiag(inputs[0], tf.exp(inputs[1])), prior)
        gradients.append(tape.gradient(value, inputs))
    for ours, tfps in zip(*gradients):
        np.testing.assert_allclose(ours, tfps, rtol=1e-5, atol=1e-6)

    def graph_ops(kl):
        def value_and_gradient(mu, log_sigma):
            with tf.GradientTape() as tape:
                tape.watch([mu, log_sigma])
                value = kl(tfd.MultivariateNormalDiag(mu, tf.exp(log_sigma)), standard_normal_prior(3))
            return tape.gradient(value, [mu, log_sigma])

        spec = tf.TensorSpec([None, 3])
        function = tf.function(value_and_gradient, input_signature=[spec, spec], autograph=False)
        return len(function.get_concrete_function().graph.get_operations())

    assert graph_ops(losses.kl_divergence) < graph_ops(tfd.kl_divergence) / 2


def test_kl_refuses_a_gaussian_without_a_diagonal_scale():
    full = tfd.MultivariateNormalTriL(tf.zeros([2]), tf.constant([[1.0, 0.0], [0.5, 1.0]]))
    with pytest.raises(TypeError, match="`posterior` must be a tfd.MultivariateNormalDiag"):
        losses.kl_divergence(full, standard_normal_prior(2))


def test_kl_per_dimension_sums_to_kl(rng):
    _, _, q = _posterior(rng)
    np.testing.assert_allclose(
        tf.reduce_sum(losses.kl_per_dimension(q), -1), losses.kl_divergence(q, standard_normal_prior(3)), rtol=1e-5
    )


def test_free_bits_floors_each_dimension(rng):
    _, _, q = _posterior(rng)
    per_dimension = losses.kl_per_dimension(q).numpy()
    np.testing.assert_allclose(losses.free_bits_kl(q, 0.5), np.maximum(per_dimension, 0.5).sum(1), rtol=1e-6)
    np.testing.assert_allclose(losses.free_bits_kl(q, 0.0), per_dimension.sum(1), rtol=1e-6)


def test_iwae_bound_is_log_mean_exp(rng):
    log_weights = rng.normal(size=(7, 3)).astype("float32")
    expected = np.log(np.mean(np.exp(log_weights), axis=0))
    np.testing.assert_allclose(losses.iwae_bound(log_weights), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.iwae_bound(log_weights[:1]), log_weights[0], rtol=1e-6)


def test_weighted_mean_and_bits_per_dimension():
    values = tf.constant([1.0, 3.0])
    assert float(losses.weighted_mean(values)) == 2.0
    assert float(losses.weighted_mean(values, tf.constant([3.0, 1.0]))) == 1.5
    np.testing.assert_allclose(losses.bits_per_dimension(64 * np.log(2.0), 64), 1.0)
