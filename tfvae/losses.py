"""Pieces of VAE objectives as small functions of tensors (the objectives themselves: `tfvae.objectives`).

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)

`kl_divergence` is the fast analytic KL between diagonal Gaussians (the
standard prior's path), `kl_per_dimension` and `free_bits_kl` its
per-dimension form against N(0, 1), `iwae_bound` the k-sample bound;
references are in `tfvae.objectives`.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def kl_divergence(posterior, prior):
    """Analytic KL(q(z|x) || p(z)) per example.

    Both are diagonal Gaussians, so the KL is the sum over dimensions of
    TFP's Normal-to-Normal KL: the value of `tfd.kl_divergence(posterior,
    prior)`, whose general formula for Gaussians (through linear operators)
    traces several times as many graph ops with its gradient, in a step
    that runs them for every batch.

    Args:
        posterior: a `tfd.MultivariateNormalDiag`, batch shape `(batch,)`.
        prior: a `tfd.MultivariateNormalDiag` with the same event shape.

    Returns:
        A float tensor of shape `(batch,)`, in nats.

    Raises:
        TypeError: if either is not a Gaussian with a diagonal scale.
    """
    return tf.reduce_sum(tfd.kl_divergence(_per_dimension(posterior, "posterior"),
                                           _per_dimension(prior, "prior")), axis=-1)


def kl_per_dimension(posterior):
    """KL of each latent dimension of a diagonal posterior to N(0, 1).

    The diagonal Gaussian factorizes over dimensions, so these sum to
    `kl_divergence(posterior, standard_normal_prior)`.

    Returns:
        A float tensor of shape `(batch, latent_dim)`.
    """
    standard_normal = tfd.Normal(tf.zeros([], posterior.dtype), tf.ones([], posterior.dtype))
    return tfd.kl_divergence(_per_dimension(posterior, "posterior"), standard_normal)


#: The scales of a `tfd.MultivariateNormalDiag`: its `scale_diag`, or the identity when that is omitted.
_DIAGONAL_SCALES = (tf.linalg.LinearOperatorDiag, tf.linalg.LinearOperatorIdentity,
                    tf.linalg.LinearOperatorScaledIdentity)


def _per_dimension(gaussian, name):
    """The independent `tfd.Normal`s of a `tfd.MultivariateNormalDiag`'s dimensions."""
    if not isinstance(getattr(gaussian, "scale", None), _DIAGONAL_SCALES):
        raise TypeError(f"`{name}` must be a tfd.MultivariateNormalDiag (a Gaussian with a diagonal scale); "
                        f"received {gaussian!r}.")
    return tfd.Normal(loc=gaussian.loc, scale=gaussian.scale.diag_part())


def free_bits_kl(posterior, free_bits):
    """The KL term with free bits: sum_i max(KL_i, free_bits).

    A dimension whose KL is below `free_bits` nats costs a constant and gets
    no gradient pushing it to the prior, which keeps latent units from
    collapsing early in training.

    Returns:
        A float tensor of shape `(batch,)`.
    """
    return tf.reduce_sum(tf.maximum(kl_per_dimension(posterior), free_bits), axis=-1)


def iwae_bound(log_weights):
    """The importance-weighted bound log (1/k) sum_i w_i, per example.

    Args:
        log_weights: float tensor `(k, batch)` of
            `log p(x|z_i) + log p(z_i) - log q(z_i|x)`, z_i ~ q(z|x).

    Returns:
        A float tensor of shape `(batch,)`; for k = 1 it is a one-sample ELBO,
        and it tightens towards log p(x) as k grows.
    """
    num_samples = tf.cast(tf.shape(log_weights)[0], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=0) - tf.math.log(num_samples)


def weighted_mean(values, sample_weight=None):
    """Mean of per-example `values`, weighted by `sample_weight` if given."""
    if sample_weight is None:
        return tf.reduce_mean(values)
    sample_weight = tf.cast(tf.reshape(sample_weight, [-1]), values.dtype)
    return tf.math.divide_no_nan(
        tf.reduce_sum(values * sample_weight), tf.reduce_sum(sample_weight)
    )


def bits_per_dimension(negative_log_likelihood, num_dimensions):
    """Converts nats per example into bits per dimension of x."""
    return negative_log_likelihood / (num_dimensions * math.log(2.0))
