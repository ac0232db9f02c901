"""Priors p(z) of a VAE: standard normal, mixture of Gaussians, VampPrior.

Every prior is a small Keras layer (it may own weights: the mixture's
means, the VampPrior's pseudo-inputs) with one interface:

    bind(model)                      creates its weights for the model's latent_dim / event_shape
    distribution(model)              p(z), a tfd distribution with event shape (latent_dim,)
    kl(posterior, model)             analytic KL(q(z|x) || p(z)) per example, or None (no closed form)
    kl_per_dimension(posterior, model)   (batch, latent_dim) KLs if p(z) factorizes, else None
    noise_names                      the export's noise inputs: ("epsilon",) or ("epsilon", "u")
    noise(rng, n)                    numpy noise for those inputs
    from_noise(model, epsilon, u)    a draw of z computed from that noise, without random ops

`from_noise` is what the exported `sample` signature computes: the noise is
an input, so LiteRT and SavedModel graphs carry no random op. A mixture
picks component `k` as the first whose cumulative weight exceeds
`u ~ U[0, 1)` and returns `mean_k + scale_k * epsilon`.

References:
    Tomczak & Welling (2018), VAE with a VampPrior.
    Dilokthanakul et al. (2016), Deep Unsupervised Clustering with Gaussian
        Mixture Variational Autoencoders (a mixture-of-Gaussians prior).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import _checks, losses
from tfvae.latent import soft_bound, standard_normal_prior
from tfvae.registry import Registry

tfd = tfp.distributions


class Prior(keras.layers.Layer):
    """Base class of priors; see the module docstring for the interface."""

    noise_names = ("epsilon",)

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.latent_dim = None

    def bind(self, model):
        """Creates the weights for `model`; called once by `tfvae.VAE`."""
        self.latent_dim = model.latent_dim
        self.built = True

    def distribution(self, model):
        raise NotImplementedError

    def kl(self, posterior, model):
        return None

    def kl_per_dimension(self, posterior, model):
        return None

    def noise(self, rng, n):
        """Noise for the export's `sample` inputs: a dict name -> float32 numpy array."""
        return {"epsilon": rng.standard_normal((n, self.latent_dim)).astype(np.float32)}

    def from_noise(self, model, epsilon, u=None):
        raise NotImplementedError

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape  # p(z) is a distribution over z of this shape


PRIORS = Registry("prior", Prior)


@PRIORS.register("standard_normal")
class StandardNormal(Prior):
    """p(z) = N(0, I), the classic VAE prior.

    Its KL to a diagonal Gaussian posterior is analytic and per dimension
    (`tfvae.losses.kl_divergence`, the fast path of the default model).

    Example:

    >>> import tfvae
    >>> from tfvae.priors import StandardNormal
    >>> model = tfvae.mlp_vae(6, (4,), 2, prior=StandardNormal())   # the default
    >>> model.prior.distribution(model)
    <tfp.distributions.MultivariateNormalDiag ... batch_shape=[] event_shape=[2] dtype=float32>
    """

    def distribution(self, model):
        return standard_normal_prior(model.latent_dim)

    def kl(self, posterior, model):
        return losses.kl_divergence(posterior, self.distribution(model))

    def kl_per_dimension(self, posterior, model):
        return losses.kl_per_dimension(posterior)

    def from_noise(self, model, epsilon, u=None):
        return epsilon  # z ~ N(0, I) is the noise itself


class _Mixture(Prior):
    """A mixture prior; subclasses give the component means, scales and logits."""

    noise_names = ("epsilon", "u")

    def __init__(self, num_components=10, **kwargs):
        super().__init__(**kwargs)
        self.num_components = _checks.positive_int("num_components", num_components)

    def components(self, model):
        """`(logits (K,), means (K, d), scales (K, d))` of the mixture."""
        raise NotImplementedError

    def distribution(self, model):
        logits, means, scales = self.components(model)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=logits),
            components_distribution=tfd.MultivariateNormalDiag(loc=means, scale_diag=scales),
        )

    def noise(self, rng, n):
        return {**super().noise(rng, n), "u": rng.uniform(0.0, 1.0, (n,)).astype(np.float32)}

    def from_noise(self, model, epsilon, u=None):
        if u is None:
            raise ValueError(_checks.invalid("u", "uniform noise of shape (n,) for a mixture prior", u))
        logits, means, scales = self.components(model)
        cumulative = tf.cumsum(tf.nn.softmax(logits))
        # The number of cumulative weights below u is the component's index;
        # the last one is left out so that rounding never gives index K.
        index = tf.reduce_sum(tf.cast(u[:, None] > cumulative[None, :-1], tf.int32), axis=1)
        return tf.gather(means, index) + tf.gather(scales, index) * epsilon

    def get_config(self):
        return {**super().get_config(), "num_components": self.num_components}


@PRIORS.register("mixture")
class MixtureOfGaussians(_Mixture):
    """p(z) = sum_k pi_k N(z; mu_k, diag(sigma_k)^2) with learned pi, mu, sigma.

    The means start spread as draws of N(0, I), the scales at 1 and the
    weights equal; log sigma is softly bounded to `[-log_scale_bound,
    log_scale_bound]`. Its KL to the posterior has no closed form: the
    objectives estimate it by Monte Carlo.

    Args:
        num_components: positive int K.
        log_scale_bound: positive float.

    Example:

    >>> import tfvae
    >>> from tfvae.priors import MixtureOfGaussians
    >>> model = tfvae.mlp_vae(64, (32,), 4, prior=MixtureOfGaussians(5))
    >>> model.prior.means.shape, model.sample(3).shape
    (TensorShape([5, 4]), TensorShape([3, 64]))
    """

    def __init__(self, num_components=10, log_scale_bound=5.0, **kwargs):
        super().__init__(num_components, **kwargs)
        self.log_scale_bound = _checks.positive_float("log_scale_bound", log_scale_bound)

    def bind(self, model):
        super().bind(model)
        shape = (self.num_components, model.latent_dim)
        self.means = self.add_weight(shape=shape, initializer=keras.initializers.RandomNormal(seed=0), name="means")
        self.log_scales = self.add_weight(shape=shape, initializer="zeros", name="log_scales")
        self.logits = self.add_weight(shape=(self.num_components,), initializer="zeros", name="logits")

    def components(self, model):
        scales = tf.exp(soft_bound(tf.convert_to_tensor(self.log_scales), self.log_scale_bound))
        return tf.convert_to_tensor(self.logits), tf.convert_to_tensor(self.means), scales

    def get_config(self):
        return {**super().get_config(), "log_scale_bound": self.log_scale_bound}


@PRIORS.register("vamp")
class VampPrior(_Mixture):
    """The VampPrior: p(z) = (1/K) sum_k q(z | u_k), with K learned pseudo-inputs u_k.

    The pseudo-inputs have the shape of x and are trained with the model;
    each mixture component is the model's own posterior of one of them, so
    the prior follows the encoder. They start uniform in [0, 1] (the range
    of binarized or scaled data). Unconditional models only.

    Args:
        num_components: positive int K, the number of pseudo-inputs.

    Example:

    >>> import tfvae
    >>> from tfvae.priors import VampPrior
    >>> model = tfvae.mlp_vae(64, (32,), 4, likelihood="bernoulli", prior=VampPrior(20))
    >>> model.prior.pseudo_inputs.shape   # 20 learned inputs shaped like x
    TensorShape([20, 64])
    """

    def __init__(self, num_components=50, **kwargs):
        super().__init__(num_components, **kwargs)

    def bind(self, model):
        super().bind(model)
        if model.num_classes:
            raise ValueError(_checks.invalid("prior", "a prior of an unconditional VAE (num_classes=None)",
                                             "VampPrior"))
        self.pseudo_inputs = self.add_weight(
            shape=(self.num_components,) + tuple(model.event_shape),
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0), name="pseudo_inputs")

    def components(self, model):
        z_mean, z_log_sigma = model._encode(tf.convert_to_tensor(self.pseudo_inputs), None)
        return tf.zeros([self.num_components]), z_mean, tf.exp(z_log_sigma)


def get(identifier, **context):
    """A prior from a name (`"standard_normal"`, `"mixture"`, `"vamp"`), a config dict or an instance.

    Example:

    >>> from tfvae import priors
    >>> priors.get("vamp").num_components
    50
    """
    return PRIORS.get("standard_normal" if identifier is None else identifier, **context)
