"""The posterior family: a diagonal Gaussian q(z|x), its bound and its one reparameterized sampler.

A posterior layer has one interface, used by the VAE, its objectives and the
exporters:

    bound_log_sigma(raw)                 the soft bound on a raw log-sigma head output
    distribution(z_mean, z_log_sigma)    q(z|x) as a tfd distribution
    sample(posterior, seed, shape)       z = mean + sigma * epsilon, differentiably

`POSTERIORS` registers it (`get("gaussian")`).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import _checks
from tfvae.registry import Registry

tfd = tfp.distributions


def soft_bound(value, bound):
    """Smoothly squashes `value` into [-bound, bound]: `bound * tanh(value / bound)`.

    Close to the identity for |value| well below `bound`, so it does not bend
    the ordinary range of a log-scale; its gradient never vanishes abruptly as
    `tf.clip_by_value`'s does.
    """
    return bound * tf.tanh(value / bound)


def standard_normal_prior(latent_dim, dtype="float32"):
    """The VAE prior p(z) = N(0, I) as a `tfd.MultivariateNormalDiag`."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([latent_dim], dtype), scale_diag=tf.ones([latent_dim], dtype)
    )


def reparameterized_sample(posterior, seed=None, sample_shape=()):
    """Draws z from a `tfd.MultivariateNormalDiag`, differentiably.

    `z = posterior.bijector.forward(epsilon)` with `epsilon ~ N(0, I)`:
    TFP's own transformation of standard normal noise into a sample (what
    `posterior.sample` does), with the noise drawn here when `seed` is given,
    as `tf.random.stateless_normal(..., alg="philox")`. Naming the algorithm
    matters under XLA: with the default "auto_select" and a seed that
    changes every step, XLA's CPU code for the draw is many times slower,
    enough to dominate a small model's XLA training step.

    The noise's shape is that of `loc` and `scale_diag` broadcast together,
    which is the posterior's `batch_shape + event_shape`: TFP's
    `batch_shape_tensor()` derives the same through its bijectors, in many
    more graph ops when the batch size is known only as the step runs
    (tests/test_latent.py checks that shapes and values agree).

    Args:
        posterior: a `tfd.MultivariateNormalDiag`.
        seed: None (stateful sampling, `posterior.sample`) or an int32
            tensor of shape `(2,)`, a stateless seed.
        sample_shape: leading sample dimensions, e.g. `[k]`.

    Returns:
        A float tensor `sample_shape + batch_shape + event_shape`.
    """
    if seed is None:
        return posterior.sample(sample_shape)
    shape = tf.shape(posterior.scale.diag_part())
    if posterior.loc is not None:
        shape = tf.broadcast_dynamic_shape(tf.shape(posterior.loc), shape)
    shape = tf.concat([tf.cast(sample_shape, tf.int32), shape], axis=0)
    epsilon = tf.random.stateless_normal(shape, seed, dtype=posterior.dtype, alg="philox")
    return posterior.bijector.forward(epsilon)


POSTERIORS = Registry("posterior", keras.layers.Layer)


@POSTERIORS.register("gaussian")
class GaussianLatent(keras.layers.Layer):
    """Diagonal Gaussian posterior with a reparameterized sample.

    The encoder's two heads give, for every input x, its own
    `z_mean = mu(x)` and `z_log_sigma = log sigma(x)`: they are outputs of the
    network, not weights. This layer turns them into

        q(z|x) = MultivariateNormalDiag(loc=z_mean, scale_diag=exp(z_log_sigma))

    and draws `z = z_mean + exp(z_log_sigma) * epsilon` with
    `epsilon ~ N(0, I)` (the reparameterization trick: the randomness enters
    through `epsilon`, so gradients flow to `z_mean` and `z_log_sigma`).

    `z_log_sigma` is kept in `[-log_sigma_bound, log_sigma_bound]` by
    `soft_bound` (a scaled tanh) before `exp`, so a large learning rate cannot
    overflow `exp` or drive sigma to zero: with the default bound of 10, sigma
    stays in [4.5e-5, 2.2e4] and sigma**2 is finite in float32. The layer
    always computes in float32, also under a mixed-precision policy.

    Every draw goes through `sample` (`reparameterized_sample`): training,
    the IWAE bound, `VAE.elbo` and a call in training mode.

    Args:
        log_sigma_bound: positive float, the bound on |z_log_sigma|.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a list `[z_mean, z_log_sigma]` of float tensors of shape
            `(batch, latent_dim)`; `z_log_sigma` is the raw head output.
        training: unused: a VAE samples in training and in inference.

    Returns:
        A sample z of shape `(batch, latent_dim)`.

    Example:

    >>> import tensorflow as tf
    >>> from tfvae.latent import GaussianLatent
    >>> latent = GaussianLatent()
    >>> z = latent([tf.zeros([4, 2]), tf.zeros([4, 2])])
    >>> z.shape
    TensorShape([4, 2])
    """

    def __init__(self, log_sigma_bound=10.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.log_sigma_bound = _checks.positive_float("log_sigma_bound", log_sigma_bound)

    def bound_log_sigma(self, z_log_sigma):
        """Applies the soft bound to a raw `z_log_sigma` head output."""
        return soft_bound(tf.cast(z_log_sigma, "float32"), self.log_sigma_bound)

    def distribution(self, z_mean, z_log_sigma):
        """q(z|x) for already bounded `z_log_sigma`.

        Returns:
            A `tfd.MultivariateNormalDiag` with batch shape `(batch,)` and
            event shape `(latent_dim,)`.
        """
        return tfd.MultivariateNormalDiag(
            loc=tf.cast(z_mean, "float32"),
            scale_diag=tf.exp(tf.cast(z_log_sigma, "float32")),
        )

    def sample(self, posterior, seed=None, sample_shape=()):
        """A reparameterized draw of `posterior`: see `reparameterized_sample`."""
        return reparameterized_sample(posterior, seed, sample_shape)

    def call(self, inputs, training=None):
        z_mean, z_log_sigma = inputs
        return self.sample(self.distribution(z_mean, self.bound_log_sigma(z_log_sigma)))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "log_sigma_bound": self.log_sigma_bound}


def get(identifier="gaussian", **context):
    """A posterior layer from a name (`"gaussian"`), a config dict or an instance.

    Example:

    >>> from tfvae import latent
    >>> latent.get("gaussian", log_sigma_bound=5.0).log_sigma_bound
    5.0
    """
    return POSTERIORS.get(identifier, **context)
