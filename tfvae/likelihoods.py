"""Likelihoods p(x|z): the decoder's output turned into a distribution over x.

Each likelihood is a small Keras layer (it may own weights, such as a learned
Gaussian scale) with two methods:

    distribution(params) -> tfd distribution over one example x, whose
                            `log_prob(x)` is summed over all features
    mean(params)         -> E[x|z], what `VAE.decode` returns

The decoder body outputs `params` of the same shape as x: logits for
`Bernoulli`, the mean for `Gaussian`.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import _checks
from tfvae.latent import soft_bound

tfd = tfp.distributions


class _Likelihood(keras.layers.Layer):
    """Shared plumbing: the event shape and float32 computation."""

    name_ = None

    def __init__(self, event_shape, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.event_shape = _checks.int_tuple("event_shape", event_shape, allow_empty=False)

    def _independent(self, base):
        # Treat every feature of x as part of one event: log_prob sums them.
        return tfd.Independent(base, reinterpreted_batch_ndims=len(self.event_shape))

    def call(self, params):
        return self.mean(params)

    def compute_output_shape(self, input_shape):
        return input_shape  # E[x|z] has the shape of the parameters it is computed from

    def get_config(self):
        return {**super().get_config(), "event_shape": self.event_shape}


@keras.saving.register_keras_serializable(package="tfvae")
class Bernoulli(_Likelihood):
    """Independent Bernoulli pixels/features, for binary or [0, 1] data.

    `params` are logits. For data in [0, 1] that is not binary, `log_prob`
    is the negative binary cross-entropy, as is usual for VAEs on grey images.

    Args:
        event_shape: shape of one example x, e.g. `(64,)` or `(8, 8, 1)`.

    Example:

    >>> likelihood = Bernoulli((3,))
    >>> likelihood.distribution(tf.zeros([2, 3])).log_prob(tf.ones([2, 3]))
    <tf.Tensor: shape=(2,), dtype=float32, numpy=array([-2.0794415, -2.0794415], dtype=float32)>
    """

    name_ = "bernoulli"

    def distribution(self, params):
        logits = tf.cast(params, "float32")
        return self._independent(tfd.Bernoulli(logits=logits, dtype=tf.float32))

    def mean(self, params):
        return tf.sigmoid(tf.cast(params, "float32"))


@keras.saving.register_keras_serializable(package="tfvae")
class Gaussian(_Likelihood):
    """Independent Gaussian features, for real-valued data.

    `params` are the means. The standard deviation is either fixed (`scale`
    a positive float) or learned: one trainable log-scale per feature, shared
    by all examples, softly bounded to `(-log_scale_bound, log_scale_bound)`
    so that a constant feature cannot drive it to zero and the log-likelihood
    to infinity.

    Args:
        event_shape: shape of one example x.
        scale: None (learned, the default) or a positive float.
        log_scale_bound: positive float bounding |log scale| when learned;
            the default 7 keeps the scale in [9e-4, 1100].
    """

    name_ = "gaussian"

    def __init__(self, event_shape, scale=None, log_scale_bound=7.0, **kwargs):
        super().__init__(event_shape, **kwargs)
        self.scale = None if scale is None else _checks.positive_float("scale", scale)
        self.log_scale_bound = _checks.positive_float("log_scale_bound", log_scale_bound)
        if self.scale is None:
            self.log_scale = self.add_weight(
                shape=self.event_shape, initializer="zeros", name="log_scale"
            )

    def stddev(self):
        """The standard deviation of every feature, shape `event_shape`."""
        if self.scale is not None:
            return tf.fill(self.event_shape, self.scale)
        return tf.exp(soft_bound(tf.convert_to_tensor(self.log_scale), self.log_scale_bound))

    def distribution(self, params):
        loc = tf.cast(params, "float32")
        return self._independent(tfd.Normal(loc=loc, scale=self.stddev()))

    def mean(self, params):
        return tf.cast(params, "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "log_scale_bound": self.log_scale_bound,
        }


LIKELIHOODS = {cls.name_: cls for cls in (Bernoulli, Gaussian)}


def get(likelihood, event_shape, **options):
    """Builds the likelihood layer called `likelihood` ("bernoulli" or "gaussian").

    Raises:
        ValueError: for an unknown name.
    """
    _checks.one_of("likelihood", likelihood, LIKELIHOODS)
    return LIKELIHOODS[likelihood](event_shape, **options)
