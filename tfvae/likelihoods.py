"""Likelihoods p(x|z): the decoder's output turned into a distribution over x.

Each likelihood is a small Keras layer (it may own weights, such as a learned
Gaussian scale) with two methods:

    distribution(params) -> tfd distribution over one example x, whose
                            `log_prob(x)` is summed over all features
    mean(params)         -> E[x|z], what `VAE.decode` returns

The decoder body outputs `params_per_feature` parameters per feature of x,
stacked along the last axis: an event shape `(64,)` needs a decoder output
`(64,)` for one parameter (logits for `Bernoulli`, the mean for `Gaussian`,
the log-rate for `Poisson`) and `(128,)` for two (`PixelGaussian`'s mean and
log-scale); `tfvae.VAE`
checks the decoder's output against `params_shape()`.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import _checks
from tfvae.latent import soft_bound
from tfvae.registry import Registry

tfd = tfp.distributions


class Likelihood(keras.layers.Layer):
    """Base class of likelihoods: the event shape and float32 computation.

    Attributes:
        params_per_feature: how many decoder outputs each feature of x needs.
    """

    params_per_feature = 1

    def __init__(self, event_shape, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.event_shape = _checks.int_tuple("event_shape", event_shape, allow_empty=False)

    def params_shape(self):
        """The decoder output this likelihood needs for one example."""
        return self.event_shape[:-1] + (self.event_shape[-1] * self.params_per_feature,)

    def split(self, params):
        """The decoder's output as `params_per_feature` float32 tensors shaped like x."""
        params = tf.cast(params, "float32")
        if self.params_per_feature == 1:
            return (params,)
        return tuple(tf.split(params, self.params_per_feature, axis=-1))

    def _independent(self, base):
        # Treat every feature of x as part of one event: log_prob sums them.
        return tfd.Independent(base, reinterpreted_batch_ndims=len(self.event_shape))

    def call(self, params):
        return self.mean(params)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(self.event_shape)  # E[x|z], from the decoder's parameters

    def get_config(self):
        return {**super().get_config(), "event_shape": self.event_shape}


LIKELIHOODS = Registry("likelihood", Likelihood)


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Independent Bernoulli pixels/features, for binary or [0, 1] data.

    `params` are logits. For data in [0, 1] that is not binary, `log_prob`
    is the negative binary cross-entropy, as is usual for VAEs on grey images.

    Args:
        event_shape: shape of one example x, e.g. `(64,)` or `(8, 8, 1)`.

    Example:

    >>> import tensorflow as tf
    >>> from tfvae.likelihoods import Bernoulli
    >>> likelihood = Bernoulli((3,))
    >>> likelihood.distribution(tf.zeros([2, 3])).log_prob(tf.ones([2, 3]))
    <tf.Tensor: shape=(2,), dtype=float32, numpy=array([-2.0794415, -2.0794415], dtype=float32)>
    """


    def distribution(self, params):
        logits = tf.cast(params, "float32")
        return self._independent(tfd.Bernoulli(logits=logits, dtype=tf.float32))

    def mean(self, params):
        return tf.sigmoid(tf.cast(params, "float32"))


@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
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


@LIKELIHOODS.register("gaussian_per_pixel")
class PixelGaussian(Likelihood):
    """Independent Gaussian features whose scale the decoder predicts per feature and example.

    The decoder outputs twice the event size: the means, then the raw log
    standard deviations, softly bounded to `(-log_scale_bound,
    log_scale_bound)` as `Gaussian`'s learned scale is.

    Args:
        event_shape: shape of one example x.
        log_scale_bound: positive float.

    Example:

    >>> from tfvae.likelihoods import PixelGaussian
    >>> likelihood = PixelGaussian((3,))
    >>> likelihood.params_shape()
    (6,)
    """

    params_per_feature = 2

    def __init__(self, event_shape, log_scale_bound=7.0, **kwargs):
        super().__init__(event_shape, **kwargs)
        self.log_scale_bound = _checks.positive_float("log_scale_bound", log_scale_bound)

    def distribution(self, params):
        loc, log_scale = self.split(params)
        return self._independent(tfd.Normal(loc=loc, scale=tf.exp(soft_bound(log_scale, self.log_scale_bound))))

    def mean(self, params):
        return self.split(params)[0]

    def get_config(self):
        return {**super().get_config(), "log_scale_bound": self.log_scale_bound}


class _TabulatedPoisson(tfd.Poisson):
    """`tfd.Poisson` whose log(x!) is read from a table of counts 0..max_count.

    TFLite has no lgamma op, which `tfd.Poisson.log_prob` calls; a table
    lookup (GATHER) is a builtin, so a model with this likelihood exports to
    LiteRT with its `score`. Equal to `tfd.Poisson.log_prob` for integer
    counts in [0, max_count] (tests/test_parts.py checks it). It overrides
    only TFP's subclass hooks (`_log_prob`, `_parameter_properties`); it is
    made for `log_prob`, `mean` and sampling, not for slicing or `copy`.
    """

    def __init__(self, log_rate, max_count, name="TabulatedPoisson"):
        self.max_count = max_count
        super().__init__(log_rate=log_rate, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {"log_rate": tfd.Poisson._parameter_properties(dtype)["log_rate"]}

    def _log_prob(self, x):
        log_factorials = tf.constant([math.lgamma(count + 1.0) for count in range(self.max_count + 1)], x.dtype)
        index = tf.cast(tf.clip_by_value(tf.round(x), 0.0, float(self.max_count)), tf.int32)
        log_rate = tf.convert_to_tensor(self.log_rate)
        return x * log_rate - tf.exp(log_rate) - tf.gather(log_factorials, index)


@LIKELIHOODS.register("poisson")
class Poisson(Likelihood):
    """Independent Poisson counts, for non-negative integer data (e.g. raw pixel counts 0..16).

    `params` are log-rates, softly bounded to `(-log_rate_bound,
    log_rate_bound)` so that `exp` cannot overflow. `log_prob` is
    `tfd.Poisson`'s for integer counts in `[0, max_count]` (log x! is
    looked up in a table, which LiteRT runs; larger counts are clipped).

    Args:
        event_shape: shape of one example x.
        log_rate_bound: positive float.
        max_count: positive int, the largest count x may hold.

    Example:

    >>> import tensorflow as tf
    >>> from tfvae.likelihoods import Poisson
    >>> Poisson((2,)).mean(tf.zeros([1, 2]))
    <tf.Tensor: shape=(1, 2), dtype=float32, numpy=array([[1., 1.]], dtype=float32)>
    """

    def __init__(self, event_shape, log_rate_bound=15.0, max_count=255, **kwargs):
        super().__init__(event_shape, **kwargs)
        self.log_rate_bound = _checks.positive_float("log_rate_bound", log_rate_bound)
        self.max_count = _checks.positive_int("max_count", max_count)

    def _log_rate(self, params):
        return soft_bound(self.split(params)[0], self.log_rate_bound)

    def distribution(self, params):
        return self._independent(_TabulatedPoisson(self._log_rate(params), self.max_count))

    def mean(self, params):
        return tf.exp(self._log_rate(params))

    def get_config(self):
        return {**super().get_config(), "log_rate_bound": self.log_rate_bound, "max_count": self.max_count}


def get(likelihood, event_shape=None, **options):
    """The likelihood layer named by `likelihood`, for examples of shape `event_shape`.

    Args:
        likelihood: a registered name (`LIKELIHOODS.names()`: "bernoulli",
            "gaussian", "gaussian_per_pixel", "poisson"), a config dict or
            a `Likelihood` instance.
        event_shape: shape of one example x (for a name or a dict).
        **options: constructor options for a name (e.g. `scale=0.1`).

    Raises:
        ValueError: for an unknown name, or an instance of another event shape.

    Example:

    >>> from tfvae import likelihoods
    >>> likelihoods.get("poisson", (64,)).params_per_feature
    1
    """
    if isinstance(likelihood, str) and options:
        _checks.one_of("likelihood", likelihood, LIKELIHOODS.classes)
        return LIKELIHOODS.classes[likelihood](event_shape, **options)
    layer = LIKELIHOODS.get(likelihood, event_shape=event_shape)
    if event_shape is not None and tuple(layer.event_shape) != tuple(event_shape):
        raise ValueError(_checks.invalid("likelihood", f"a likelihood of event_shape {tuple(event_shape)}",
                                         f"<{type(layer).__name__} of event_shape {layer.event_shape}>"))
    return layer


def params_per_feature(likelihood):
    """How many decoder outputs per feature of x the likelihood `likelihood` (name, dict or instance) needs.

    Example:

    >>> from tfvae.likelihoods import params_per_feature
    >>> params_per_feature("gaussian_per_pixel")
    2
    """
    if isinstance(likelihood, Likelihood):
        return likelihood.params_per_feature
    name = likelihood.get("class_name") if isinstance(likelihood, dict) else likelihood
    return LIKELIHOODS.class_of(name).params_per_feature


def from_arguments(likelihood, likelihood_scale, event_shape):
    """The likelihood layer of `tfvae.VAE(likelihood=..., likelihood_scale=...)`.

    Raises:
        ValueError: for `likelihood_scale` with another likelihood than
            `"gaussian"`, or an invalid `likelihood`.
    """
    if likelihood_scale is not None and likelihood != "gaussian":
        raise ValueError(_checks.invalid("likelihood_scale", 'None unless likelihood="gaussian"', likelihood_scale))
    if not isinstance(likelihood, str):
        return get(likelihood, event_shape)
    options = {"scale": likelihood_scale} if likelihood == "gaussian" else {}
    return get(likelihood, event_shape, name="likelihood", **options)
