import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae.latent import GaussianLatent, soft_bound, standard_normal_prior

tfd = tfp.distributions


def test_distribution_is_mvn_diag_with_exp_scale():
    latent = GaussianLatent()
    z_mean = tf.constant([[0.5, -1.0]])
    z_log_sigma = tf.constant([[0.2, -0.3]])
    q = latent.distribution(z_mean, z_log_sigma)
    assert isinstance(q, tfd.MultivariateNormalDiag)
    np.testing.assert_allclose(q.mean(), z_mean)
    np.testing.assert_allclose(q.stddev(), np.exp([[0.2, -0.3]]), rtol=1e-6)


def test_samples_have_the_posterior_moments():
    tf.random.set_seed(1)
    latent = GaussianLatent()
    n = 20000
    z_mean = tf.fill([n, 2], 3.0) * tf.constant([1.0, -1.0])
    z_log_sigma = tf.fill([n, 2], np.log(0.5).astype("float32"))
    z = latent([z_mean, z_log_sigma]).numpy()
    np.testing.assert_allclose(z.mean(0), [3.0, -3.0], atol=0.02)
    np.testing.assert_allclose(z.std(0), [0.5, 0.5], atol=0.02)


def test_reparameterized_sample_passes_gradients_to_mean_and_log_sigma():
    latent = GaussianLatent()
    z_mean = tf.Variable([[0.0, 0.0]])
    z_log_sigma = tf.Variable([[0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(latent([z_mean, z_log_sigma]) ** 2)
    grad_mean, grad_log_sigma = tape.gradient(loss, [z_mean, z_log_sigma])
    assert grad_mean is not None and grad_log_sigma is not None
    assert np.all(np.abs(grad_log_sigma.numpy()) > 0)


def test_bound_keeps_sigma_finite_and_is_near_identity_for_small_values():
    latent = GaussianLatent(log_sigma_bound=10.0)
    raw = tf.constant([1e6, -1e6, 0.5, -2.0])
    bounded = latent.bound_log_sigma(raw).numpy()
    assert np.all(np.isfinite(np.exp(2 * bounded)))
    assert np.all(np.abs(bounded) <= 10.0)
    np.testing.assert_allclose(bounded[2:], [0.5, -2.0], rtol=0.02)
    np.testing.assert_allclose(soft_bound(tf.constant(0.0), 3.0), 0.0)


def test_prior_is_standard_normal():
    prior = standard_normal_prior(3)
    np.testing.assert_allclose(prior.mean(), np.zeros(3))
    np.testing.assert_allclose(prior.stddev(), np.ones(3))


def test_config_round_trip_and_bad_bound():
    latent = GaussianLatent(log_sigma_bound=4.0)
    assert GaussianLatent.from_config(latent.get_config()).log_sigma_bound == 4.0
    with pytest.raises(ValueError, match="log_sigma_bound"):
        GaussianLatent(log_sigma_bound=0)


def test_seeded_reparameterized_sample_is_reproducible_and_has_the_posterior_moments():
    from tfvae.latent import reparameterized_sample

    n = 20000
    q = tfd.MultivariateNormalDiag(tf.fill([n, 2], 1.5), tf.fill([n, 2], 0.25))
    seed = tf.constant([4, 2], tf.int32)
    z = reparameterized_sample(q, seed).numpy()
    np.testing.assert_array_equal(z, reparameterized_sample(q, seed).numpy())
    assert not np.array_equal(z, reparameterized_sample(q, tf.constant([4, 3], tf.int32)).numpy())
    np.testing.assert_allclose(z.mean(0), [1.5, 1.5], atol=0.01)
    np.testing.assert_allclose(z.std(0), [0.25, 0.25], atol=0.01)
    assert reparameterized_sample(q, seed, [3]).shape == (3, n, 2)
    assert reparameterized_sample(q, None, [3]).shape == (3, n, 2)  # stateful: posterior.sample


@pytest.mark.parametrize("loc_shape, scale_shape", [((5, 3), (5, 3)), (None, (5, 3)), ((3,), None),
                                                    ((4, 1, 3), (2, 3)), ((3,), (5, 3))])
def test_seeded_sample_takes_the_noise_shape_tfp_gives_the_posterior(loc_shape, scale_shape):
    from tfvae.latent import reparameterized_sample

    rng = np.random.default_rng(0)
    loc = None if loc_shape is None else tf.constant(rng.normal(size=loc_shape), tf.float32)
    scale = None if scale_shape is None else tf.constant(rng.uniform(0.5, 2.0, size=scale_shape), tf.float32)
    seed = tf.constant([7, 1], tf.int32)
    for sample_shape in ([], [3]):
        q = tfd.MultivariateNormalDiag(loc, scale)
        shape = tf.concat([tf.constant(sample_shape, tf.int32), q.batch_shape_tensor(), q.event_shape_tensor()], 0)
        expected = q.bijector.forward(tf.random.stateless_normal(shape, seed, alg="philox"))
        np.testing.assert_array_equal(reparameterized_sample(q, seed, sample_shape), expected)
    # In a step traced for any batch size, as training's.
    def sample(z_mean):
        return reparameterized_sample(tfd.MultivariateNormalDiag(z_mean, tf.exp(z_mean)), seed)

    traced = tf.function(sample).get_concrete_function(tf.TensorSpec([None, 3], tf.float32))
    z_mean = tf.constant(rng.normal(size=(6, 3)), tf.float32)
    np.testing.assert_array_equal(traced(z_mean), sample(z_mean))
