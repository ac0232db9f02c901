"""The anomaly score of a VAE, defined once for every prior and likelihood.

    score(x) = -log p(x | z_mean) + KL(q(z|x) || p(z))

with z_mean the posterior mean of x: the negative ELBO with the posterior
mean in the reconstruction term. The KL is analytic where the prior has one
(N(0, I): TFP's registered KL of two diagonal Gaussians); for a prior
without one (a mixture, the VampPrior) it is its estimate at z_mean,
log q(z_mean|x) - log p(z_mean), so the score stays deterministic (no
sample) for every prior. Higher means less likely under the model. The
exporters' `score` signature computes this function, and so does
`VAE.anomaly_score`.
"""

import tensorflow as tf

#: Name scope of the score's density terms (after the networks): int8 exports keep its ops in float32.
DENSITY_SCOPE = "likelihood_in_float32"


def anomaly_score(model, x, labels=None):
    """`-log p(x|z_mean) + KL(q(z|x) || p(z))` per example, in nats (see the module docstring).

    The networks run first and the density terms after them, inside the
    name scope `DENSITY_SCOPE`.

    Args:
        model: a `tfvae.VAE`.
        x: preprocessed examples, array or tensor `(batch,) + event_shape`.
        labels: class ids or one-hot rows, for a conditional model.

    Returns:
        A float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.scores import anomaly_score
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> anomaly_score(model, np.zeros((3, 6), "float32")).shape
    TensorShape([3])
    """
    z_mean, z_log_sigma = model.encode(x, labels)
    likelihood = model.likelihood(z_mean, labels)
    x = tf.cast(x, "float32")
    with tf.name_scope(DENSITY_SCOPE):
        posterior = model.latent.distribution(z_mean, z_log_sigma)
        kl = model.prior.kl(posterior, model)
        if kl is None:  # no analytic KL: its estimate at z_mean
            kl = posterior.log_prob(z_mean) - model.prior.distribution(model).log_prob(z_mean)
        return kl - likelihood.log_prob(x)
