"""Training objectives of a VAE: the ELBO, the IWAE bound, beta-TCVAE.

An objective is one serializable object with one interface:

    objective(model, x, labels, training, seed) -> (loss, metrics)

`loss` is the per-example loss `(batch,)` that `fit` minimizes (its batch
mean); `metrics` maps each of the objective's `metric_names` to per-example
values that `fit` averages into metrics of those names. `step_logs(model)`
adds what a step should also log (the KL weight while it warms up). Adding
an objective touches this module only.

Each one asks the model for its parts: the posterior `model.latent`, the
prior `model.prior` (its analytic KL when it has one, else a Monte Carlo
estimate log q(z|x) - log p(z) with the training sample z) and the
likelihood `model.likelihood_layer`.

References:
    Kingma & Welling (2014), Auto-Encoding Variational Bayes.
    Higgins et al. (2017), beta-VAE.
    Kingma et al. (2016), Improved Variational Inference with Inverse
        Autoregressive Flow (free bits).
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
    Chen, Li, Grosse & Duvenaud (2018), Isolating Sources of Disentanglement
        in VAEs (beta-TCVAE, minibatch-weighted sampling).
"""

import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import _checks, losses
from tfvae.registry import Registry

tfd = tfp.distributions


class Objective:
    """Base class of objectives; see the module docstring for the interface."""

    metric_names = ("reconstruction", "kl")

    def __call__(self, model, x, labels, training, seed=None):
        raise NotImplementedError

    def step_logs(self, model):
        """Extra logs of a training step (after the optimizer counted it)."""
        return {}

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


OBJECTIVES = Registry("objective", Objective)


# ------------------------------------------------------ pieces of every objective


def posterior(model, x, labels, training):
    """q(z|x) of a batch."""
    return model.latent.distribution(*model._encode(x, labels, training))


def log_px(model, x, z, labels, training):
    """log p(x|z) per example, z of shape `(batch, latent_dim)`."""
    return model.likelihood_layer.distribution(model._decoder_params(z, labels, training)).log_prob(x)


def kl(model, q, z=None):
    """KL(q(z|x) || p(z)) per example: analytic where the prior has it, else log q(z|x) - log p(z) at `z`."""
    analytic = model.prior.kl(q, model)
    if analytic is not None:
        return analytic
    return q.log_prob(z) - model.prior.distribution(model).log_prob(z)


def free_bits_kl(model, q, kl_value, free_bits):
    """The KL with free bits: sum_i max(KL_i, free_bits) over latent dimensions.

    For a prior that does not factorize over dimensions (a mixture), the
    per-dimension KLs are not defined: the total is held to at least
    `free_bits * latent_dim` instead.
    """
    per_dimension = model.prior.kl_per_dimension(q, model)
    if per_dimension is None:
        return tf.maximum(kl_value, free_bits * model.latent_dim)
    return tf.reduce_sum(tf.maximum(per_dimension, free_bits), axis=-1)


def log_importance_weights(model, x, labels, q, num_samples, kl_weight=1.0, training=False, seed=None):
    """log w_i = log p(x|z_i) + kl_weight * (log p(z_i) - log q(z_i|x)), z_i ~ q(z|x).

    Returns:
        `(log_weights, log_px_given_z, log_ratio)`, float tensors `(k, batch)`.
    """
    z = model.latent.sample(q, seed, [num_samples])  # (k, batch, latent_dim)
    batch = tf.shape(z)[1]
    flat_z = tf.reshape(z, [-1, model.latent_dim])
    flat_labels = None
    if labels is not None and model.num_classes:
        one_hot = model._one_hot(labels)
        flat_labels = tf.reshape(tf.tile(one_hot[None], [num_samples, 1, 1]), [-1, model.num_classes])
    flat_x = tf.reshape(
        tf.broadcast_to(x[None], tf.concat([[num_samples], tf.shape(x)], 0)),
        tf.concat([[-1], tf.shape(x)[1:]], 0),
    )
    log_likelihood = tf.reshape(log_px(model, flat_x, flat_z, flat_labels, training), [num_samples, batch])
    log_ratio = model.prior.distribution(model).log_prob(z) - q.log_prob(z)
    return log_likelihood + kl_weight * log_ratio, log_likelihood, log_ratio


# ------------------------------------------------------------- the objectives


class _KLWeighted(Objective):
    """The KL weight `beta`, ramped linearly from 0 over `kl_warmup_steps` optimizer steps."""

    def __init__(self, beta=1.0, kl_warmup_steps=0):
        self.beta = _checks.non_negative_float("beta", beta)
        self.kl_warmup_steps = _checks.non_negative_int("kl_warmup_steps", kl_warmup_steps)

    def kl_weight(self, model, step=None):
        """The KL weight at optimizer step `step` (default: the model's current one)."""
        if not self.kl_warmup_steps:
            return tf.constant(self.beta, tf.float32)
        if step is None:
            step = model.optimizer.iterations if model.optimizer is not None else 0
        ramp = tf.cast(step + 1, tf.float32) / float(self.kl_warmup_steps)
        return self.beta * tf.minimum(ramp, 1.0)

    def _weight(self, model, training):
        # Evaluation scores the objective at its final weight.
        return self.kl_weight(model) if training else tf.constant(self.beta, tf.float32)

    def step_logs(self, model):
        if not self.kl_warmup_steps:
            return {}
        return {"kl_weight": self.kl_weight(model, model.optimizer.iterations - 1)}

    def get_config(self):
        return {"beta": self.beta, "kl_warmup_steps": self.kl_warmup_steps}


@OBJECTIVES.register("elbo")
class ELBO(_KLWeighted):
    """The negative ELBO: -log p(x|z) + kl_weight * KL(q(z|x) || p(z)), one z ~ q(z|x).

    `kl_weight` is `beta` (beta-VAE), ramped from 0 over `kl_warmup_steps`;
    with `free_bits > 0` a latent dimension's KL below that many nats is not
    penalized. Metrics: `reconstruction` (-log p(x|z)) and `kl` (before beta
    and free bits).

    Args:
        beta: float >= 0.
        free_bits: float >= 0, nats per latent dimension (0 disables).
        kl_warmup_steps: int >= 0 (0 disables).

    Example:

    >>> import tfvae
    >>> from tfvae.objectives import ELBO
    >>> model = tfvae.mlp_vae(6, (4,), 2, objective=ELBO(beta=4.0))
    >>> model.objective.beta, model.objective.metric_names
    (4.0, ('reconstruction', 'kl'))
    """

    def __init__(self, beta=1.0, free_bits=0.0, kl_warmup_steps=0):
        super().__init__(beta, kl_warmup_steps)
        self.free_bits = _checks.non_negative_float("free_bits", free_bits)

    def __call__(self, model, x, labels, training, seed=None):
        weight = self._weight(model, training)
        x = tf.cast(x, "float32")
        q = posterior(model, x, labels, training)
        z = model.latent.sample(q, seed)
        kl_value = kl(model, q, z)
        reconstruction = -log_px(model, x, z, labels, training)
        kl_term = free_bits_kl(model, q, kl_value, self.free_bits) if self.free_bits else kl_value
        return reconstruction + weight * kl_term, {"reconstruction": reconstruction, "kl": kl_value}

    def get_config(self):
        return {**super().get_config(), "free_bits": self.free_bits}


@OBJECTIVES.register("iwae")
class IWAE(_KLWeighted):
    """The negative k-sample importance-weighted bound: -log (1/k) sum_i w_i.

    log w_i = log p(x|z_i) + kl_weight * (log p(z_i) - log q(z_i|x)), with
    z_i ~ q(z|x); k = 1 is the one-sample ELBO, larger k a tighter bound.
    Metrics: `reconstruction` (mean over the k samples) and `kl`.

    Args:
        num_samples: positive int k.
        beta, kl_warmup_steps: as for `ELBO`.

    Example:

    >>> import tfvae
    >>> from tfvae.objectives import IWAE
    >>> model = tfvae.mlp_vae(6, (4,), 2, objective=IWAE(num_samples=5))
    >>> model.objective.num_samples
    5
    """

    def __init__(self, num_samples=5, beta=1.0, kl_warmup_steps=0):
        super().__init__(beta, kl_warmup_steps)
        self.num_samples = _checks.positive_int("num_samples", num_samples)

    def __call__(self, model, x, labels, training, seed=None):
        weight = self._weight(model, training)
        x = tf.cast(x, "float32")
        q = posterior(model, x, labels, training)
        log_weights, log_likelihood, log_ratio = log_importance_weights(
            model, x, labels, q, self.num_samples, weight, training, seed)
        analytic = model.prior.kl(q, model)
        kl_value = -tf.reduce_mean(log_ratio, axis=0) if analytic is None else analytic
        return -losses.iwae_bound(log_weights), {"reconstruction": -tf.reduce_mean(log_likelihood, axis=0),
                                                  "kl": kl_value}

    def get_config(self):
        return {"num_samples": self.num_samples, **super().get_config()}


@OBJECTIVES.register("beta_tcvae")
class BetaTCVAE(Objective):
    """beta-TCVAE: the KL split into index-code MI, total correlation and dimension-wise KL.

        loss = -log p(x|z) + alpha * [log q(z|x) - log q(z)]
                           + beta  * [log q(z) - sum_d log q(z_d)]
                           + gamma * [sum_d log q(z_d) - log p(z)]

    with one z ~ q(z|x) per example, and the aggregate posterior q(z) and
    its marginals q(z_d) estimated on the minibatch by minibatch-weighted
    sampling: log q(z_i) ~= logsumexp_j log q(z_i|x_j) - log(N M), for a
    batch of M examples from a dataset of N. With alpha = beta = gamma = 1
    the three terms add up to log q(z|x) - log p(z), and the loss is the
    one-sample negative ELBO with a Monte Carlo KL. For a prior that does not
    factorize, the last term is the remainder rather than a sum of KLs.

    Args:
        alpha: weight of the index-code mutual information, float >= 0.
        beta: weight of the total correlation, float >= 0.
        gamma: weight of the dimension-wise KL, float >= 0.
        dataset_size: N, the number of training examples; None takes N =
            the batch size. N only shifts the MI, TC and dimension-wise
            terms by constants (no gradient), so a wrong N changes the
            reported values, not the training.

    Example:

    >>> import tfvae
    >>> from tfvae.objectives import BetaTCVAE
    >>> (x_train, _), _ = tfvae.datasets.load("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (32,), 4, likelihood="bernoulli",
    ...                       objective=BetaTCVAE(beta=6.0, dataset_size=len(x_train)))
    >>> model.compile()
    >>> sorted(model.fit(x_train, epochs=1, verbose=0).history)
    ['dimension_kl', 'kl', 'loss', 'mutual_information', 'reconstruction', 'total_correlation']
    """

    metric_names = ("reconstruction", "kl", "mutual_information", "total_correlation", "dimension_kl")

    def __init__(self, alpha=1.0, beta=6.0, gamma=1.0, dataset_size=None):
        self.alpha = _checks.non_negative_float("alpha", alpha)
        self.beta = _checks.non_negative_float("beta", beta)
        self.gamma = _checks.non_negative_float("gamma", gamma)
        self.dataset_size = None if dataset_size is None else _checks.positive_int("dataset_size", dataset_size)

    def __call__(self, model, x, labels, training, seed=None):
        x = tf.cast(x, "float32")
        q = posterior(model, x, labels, training)
        z = model.latent.sample(q, seed)
        reconstruction = -log_px(model, x, z, labels, training)
        batch = tf.cast(tf.shape(z)[0], tf.float32)
        dataset_size = batch if self.dataset_size is None else float(self.dataset_size)
        log_norm = tf.math.log(batch * dataset_size)
        # log q(z_i,d | x_j) for every pair (i, j) of the batch: (M, M, latent_dim).
        pairwise = tfd.Normal(q.loc[None, :, :], q.scale.diag_part()[None, :, :]).log_prob(z[:, None, :])
        log_qz = tf.reduce_logsumexp(tf.reduce_sum(pairwise, axis=2), axis=1) - log_norm
        log_prod_qzd = tf.reduce_sum(tf.reduce_logsumexp(pairwise, axis=1) - log_norm, axis=1)
        log_qz_x = q.log_prob(z)
        log_pz = model.prior.distribution(model).log_prob(z)
        mutual_information = log_qz_x - log_qz
        total_correlation = log_qz - log_prod_qzd
        dimension_kl = log_prod_qzd - log_pz
        loss = (reconstruction + self.alpha * mutual_information + self.beta * total_correlation
                + self.gamma * dimension_kl)
        return loss, {"reconstruction": reconstruction, "kl": kl(model, q, z),
                      "mutual_information": mutual_information, "total_correlation": total_correlation,
                      "dimension_kl": dimension_kl}

    def get_config(self):
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "dataset_size": self.dataset_size}


def get(identifier, **context):
    """An objective from a name (`"elbo"`, `"iwae"`, `"beta_tcvae"`), a config dict or an instance.

    Example:

    >>> from tfvae import objectives
    >>> objectives.get({"class_name": "iwae", "config": {"num_samples": 10}}).num_samples
    10
    """
    return OBJECTIVES.get(identifier, **context)


def resolve(objective=None, beta=1.0, free_bits=0.0, kl_warmup_steps=0, iwae_samples=1):
    """`tfvae.VAE`'s objective: `objective` if given (the shortcuts then at their defaults), else `from_shortcuts`.

    Raises:
        ValueError: for an invalid shortcut, or shortcuts beside an `objective`.
    """
    shortcuts = from_shortcuts(beta, free_bits, kl_warmup_steps, iwae_samples)
    if objective is None:
        return shortcuts
    if (float(beta), float(free_bits), int(kl_warmup_steps), int(iwae_samples)) != (1.0, 0.0, 0, 1):
        raise ValueError(_checks.invalid("objective", "None when beta, free_bits, kl_warmup_steps or iwae_samples "
                                         "is given (pass them to the objective)", objective))
    return get(objective)


def from_shortcuts(beta=1.0, free_bits=0.0, kl_warmup_steps=0, iwae_samples=1):
    """The objective that `tfvae.VAE`'s keyword arguments describe: the ELBO, or IWAE(k) for k > 1.

    Raises:
        ValueError: for free bits with k > 1 (free bits apply to the one-sample ELBO).
    """
    iwae_samples = _checks.positive_int("iwae_samples", iwae_samples)
    if iwae_samples == 1:
        return ELBO(beta, free_bits, kl_warmup_steps)
    if _checks.non_negative_float("free_bits", free_bits):
        raise ValueError(_checks.invalid(
            "free_bits", "0 when iwae_samples > 1 (free bits apply to the one-sample ELBO)", free_bits))
    return IWAE(iwae_samples, beta, kl_warmup_steps)
