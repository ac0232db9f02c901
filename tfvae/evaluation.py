"""Evaluation of a trained VAE: ELBO, importance-weighted NLL, active units.

For test examples x and a trained model, `evaluate` reports (all per
example, averaged over x):

    elbo            E_q[log p(x|z)] - KL(q(z|x) || p(z))      (nats, <= log p(x))
    reconstruction  -E_q[log p(x|z)]                          (nats)
    kl              KL(q(z|x) || p(z)), analytic or MC estimate (nats)
    nll             -log p(x) estimated with k importance samples:
                    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)
    bits_per_dim    nll / (number of features * log 2)
    active_units    latent units u with Var_x(E_q[z_u | x]) > 0.01

The k-sample estimate is a lower bound on log p(x) that tightens as k grows
(k = 1000 is the customary choice for reporting), so `nll` is an upper bound
on the true negative log-likelihood, and `nll <= -elbo` on average.

References:
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders
        (the k = 5000 NLL estimate and the active-unit statistic).
"""

import math

import numpy as np
import tensorflow as tf

from tfvae import _checks, _renamed, losses, objectives
from tfvae.epoch_loop import any_rows
from tfvae.vae import VAE

#: A latent unit is active when its posterior mean varies across the data by more than this.
ACTIVE_UNIT_THRESHOLD = 0.01


@_renamed.keywords(num_samples="importance_samples")
def evaluate(model, x, labels=None, importance_samples=1000, elbo_samples=100,
             active_threshold=ACTIVE_UNIT_THRESHOLD, batch_size=128, samples_per_chunk=128, seed=0):
    """Test ELBO and its parts, k-sample NLL, bits per dimension and active units.

    Args:
        model: a `tfvae.VAE`.
        x: test examples, array `(n,) + model.event_shape`.
        labels: class ids or one-hot rows, for a conditional model (else None).
        importance_samples: positive int k, importance samples per example
            for the NLL (`num_samples` is its deprecated old name).
        elbo_samples: positive int, samples z ~ q(z|x) per example averaged
            to estimate E_q[log p(x|z)] (the KL is exact).
        active_threshold: float >= 0; a unit is active when the variance of
            its posterior mean across x exceeds it.
        batch_size: positive int, examples per chunk of work.
        samples_per_chunk: positive int, samples per chunk for the NLL.
        seed: int; the same seed gives the same numbers.

    Returns:
        A dict of plain Python numbers and lists (JSON-serializable):
        `num_examples`, `num_dimensions`, `latent_dim`, `importance_samples`,
        `elbo`, `reconstruction`, `kl`, `nll`, `nll_standard_error` (of the
        mean over examples), `bits_per_dim`, `active_units` (count),
        `active_unit_indices`, `posterior_mean_variance` (per unit) and
        `active_threshold`. Nats per example unless the name says otherwise.

    Raises:
        TypeError: if `model` is not a `tfvae.VAE` or `seed` is not an int.
        ValueError: for x of the wrong shape or non-finite, labels that do not
            fit the model, or an invalid number.

    Example:

    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli")
    >>> model.compile(); _ = model.fit(x_train, epochs=1, verbose=0)
    >>> results = tfvae.evaluate(model, x_test, importance_samples=10, elbo_samples=2)
    >>> results["importance_samples"], results["num_examples"], results["nll"] <= -results["elbo"] + 1
    (10, 360, True)
    """
    _checks.instance("model", model, VAE, "a tfvae.VAE")
    x = _checks.float_array("x", x, model.event_shape)
    importance_samples = _checks.positive_int("importance_samples", importance_samples)
    elbo_samples = _checks.positive_int("elbo_samples", elbo_samples)
    active_threshold = _checks.non_negative_float("active_threshold", active_threshold)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seed = _checks.seed("seed", seed, allow_none=False)
    if labels is not None and model.num_classes:
        labels = _checks.class_labels("labels", labels, model.num_classes, rows=len(x))

    reconstruction, kl, z_mean = elbo_parts(model, x, labels, elbo_samples, batch_size, seed)
    log_px = model.log_likelihood(x, importance_samples=importance_samples, labels=labels, batch_size=batch_size,
                                  samples_per_chunk=samples_per_chunk, seed=seed)
    nll = -float(np.mean(log_px))
    variance = np.var(z_mean, axis=0)
    active = [int(unit) for unit in np.flatnonzero(variance > active_threshold)]
    num_dimensions = int(np.prod(model.event_shape))
    return {
        "num_examples": int(len(x)),
        "num_dimensions": num_dimensions,
        "latent_dim": int(model.latent_dim),
        "importance_samples": importance_samples,
        "elbo": -float(np.mean(reconstruction + kl)),
        "reconstruction": float(np.mean(reconstruction)),
        "kl": float(np.mean(kl)),
        "nll": nll,
        "nll_standard_error": float(np.std(log_px) / math.sqrt(len(log_px))),
        "bits_per_dim": float(losses.bits_per_dimension(nll, num_dimensions)),
        "active_units": len(active),
        "active_unit_indices": active,
        "posterior_mean_variance": [float(value) for value in variance],
        "active_threshold": active_threshold,
    }


def elbo_parts(model, x, labels=None, elbo_samples=100, batch_size=128, seed=0):
    """Per example: the ELBO's two terms and the posterior mean, as `evaluate` computes them.

    Args:
        model: a `tfvae.VAE`.
        x: checked float32 examples, `(n,) + model.event_shape`.
        labels: for a conditional model (else None).
        elbo_samples: draws z ~ q(z|x) averaged for E_q[log p(x|z)].
        batch_size: examples per chunk of work.
        seed: int; the draws are independent of `log_likelihood`'s with the same seed.

    Returns:
        `(reconstruction, kl, z_mean)`: numpy arrays of shapes `(n,)`, `(n,)`
        and `(n, latent_dim)`; reconstruction is -E_q[log p(x|z)], the KL exact.
    """
    def parts(x_batch, one_hot, seed):
        posterior = model.posterior(x_batch, one_hot)
        _, log_px_given_z, log_ratio = objectives.log_importance_weights(
            model, x_batch, one_hot, posterior, elbo_samples, seed=seed)
        # The prior's analytic KL where it has one, else its estimate on the same samples.
        kl = model.prior.kl(posterior, model)
        kl = -tf.reduce_mean(log_ratio, axis=0) if kl is None else kl
        return posterior.mean(), kl, -tf.reduce_mean(log_px_given_z, axis=0)

    # One compiled function for every batch (eagerly, TFP's Python cost more than the arithmetic).
    parts = tf.function(parts, autograph=False, reduce_retracing=True)
    z_means, reconstructions, kls = [], [], []
    for batch, start in enumerate(range(0, len(x), batch_size)):
        x_batch = tf.constant(x[start:start + batch_size])
        one_hot = None if labels is None else model._one_hot(labels[start:start + batch_size])  # checked here
        # Negative stream numbers: samples independent of log_likelihood's (seeded [seed, 0], [seed, 1], ...).
        stream = tf.constant([seed, -1 - batch], tf.int32)
        if batch == 0:  # traced once for every batch size (the last batch is smaller)
            parts.get_concrete_function(any_rows(x_batch), any_rows(one_hot), stream)
        z_mean, kl, reconstruction = parts(x_batch, one_hot, stream)
        z_means.append(z_mean.numpy())
        kls.append(kl.numpy())
        reconstructions.append(reconstruction.numpy())
    return np.concatenate(reconstructions), np.concatenate(kls), np.concatenate(z_means)


def format_evaluation(results):
    """The dict returned by `evaluate` as a two-column text table.

    Args:
        results: the dict returned by `evaluate` (or read back from
            `evaluation.json`, also one of the previous release, which
            calls k `num_samples`).

    Returns:
        A multi-line string, one metric per line.

    Example:

    >>> import tfvae
    >>> (_, _), (x_test, _) = tfvae.datasets.load("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli")
    >>> print(tfvae.format_evaluation(tfvae.evaluate(model, x_test, importance_samples=10, elbo_samples=2)))
    metric  value
    ---...
    examples  360
    ELBO (nats/example)  ...
    NLL, k=10 importance samples (nats/example)  ...
    active units (Var_x E[z|x] > 0.01)  ...
    """
    k = results["importance_samples"] if "importance_samples" in results else results["num_samples"]
    active = ", ".join(map(str, results["active_unit_indices"]))
    rows = [
        ("examples", f"{results['num_examples']}"),
        ("ELBO (nats/example)", f"{results['elbo']:.2f}"),
        ("  reconstruction -E_q log p(x|z)", f"{results['reconstruction']:.2f}"),
        ("  KL(q(z|x) || p(z))", f"{results['kl']:.2f}"),
        (f"NLL, k={k} importance samples (nats/example)",
         f"{results['nll']:.2f} +- {results['nll_standard_error']:.2f}"),
        ("  gap -ELBO - NLL", f"{-results['elbo'] - results['nll']:.2f}"),
        (f"bits per dimension ({results['num_dimensions']} dimensions)", f"{results['bits_per_dim']:.4f}"),
        (f"active units (Var_x E[z|x] > {results['active_threshold']:g})",
         f"{results['active_units']} of {results['latent_dim']}: [{active}]"),
    ]
    width = max(len(name) for name, _ in rows)
    value_width = max(len("value"), *(len(value) for _, value in rows))
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * value_width}"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
