"""The anomaly score of a VAE, defined once for every prior and likelihood.

    score(x) = -log p(x | z_mean) - log p(z_mean) + log q(z_mean | x)

with z_mean the posterior mean of x: the negative log joint density of x and
its embedding, corrected by the posterior's density there. It is
deterministic (no sample), needs no analytic KL (so it is defined for a
mixture or VampPrior as for N(0, I)), and higher means less likely under the
model. The exporters' `score` signature computes this function, and so does
`VAE.anomaly_score`.
"""

import tensorflow as tf

#: Name scope of the score's density terms (after the networks): int8 exports keep its ops in float32.
DENSITY_SCOPE = "likelihood_in_float32"


def anomaly_score(model, x, labels=None):
    """`-log p(x|z_mean) - log p(z_mean) + log q(z_mean|x)` per example, in nats.

    The networks run first and the density terms after them, inside the
    name scope `DENSITY_SCOPE`.

    Args:
        model: a `tfvae.VAE`.
        x: preprocessed examples, array or tensor `(batch,) + event_shape`.
        labels: class ids or one-hot rows, for a conditional model.

    Returns:
        A float32 tensor `(batch,)`.

    Example:

    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> anomaly_score(model, np.zeros((3, 6), "float32")).shape
    TensorShape([3])
    """
    z_mean, z_log_sigma = model.encode(x, labels)
    likelihood = model.likelihood(z_mean, labels)
    x = tf.cast(x, "float32")
    with tf.name_scope(DENSITY_SCOPE):
        posterior = model.latent.distribution(z_mean, z_log_sigma)
        log_prior = model.prior.distribution(model).log_prob(z_mean)
        return posterior.log_prob(z_mean) - log_prior - likelihood.log_prob(x)
