"""The importance-weighted estimate of log p(x), computed in bounded memory.

    log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)

with the model's own prior p(z), likelihood and posterior
(`tfvae.objectives.log_importance_weights`). Work is done in chunks of
`batch_size` examples times `samples_per_chunk` samples, so memory stays
bounded for large k.

References:
    Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders.
"""

import numpy as np
import tensorflow as tf

from tfvae import _checks
from tfvae.epoch_loop import any_rows


def log_likelihood(model, x, importance_samples=1000, labels=None, batch_size=128, samples_per_chunk=128, seed=None):
    """Importance-weighted estimate of log p(x) per example (IWAE, k samples).

    Args:
        model: a `tfvae.VAE`.
        x: a checked float32 tensor `(n,) + event_shape`.
        importance_samples: positive int k.
        labels: class labels of a conditional model.
        batch_size, samples_per_chunk: positive ints, the size of a chunk of work.
        seed: None or an int; a stateless seed per chunk makes results reproducible.

    Returns:
        A float32 numpy array `(n,)`, in nats.
    """
    importance_samples = _checks.positive_int("importance_samples", importance_samples)
    batch_size = _checks.positive_int("batch_size", batch_size)
    samples_per_chunk = _checks.positive_int("samples_per_chunk", samples_per_chunk)
    seed = _checks.seed("seed", seed)
    one_hot = model._one_hot(labels)
    # Traced once for every batch size (the last batch is smaller) and chunk of samples.
    model._log_weights_chunk.get_concrete_function(
        any_rows(x), any_rows(one_hot), tf.TensorSpec([], tf.int32),
        None if seed is None else tf.TensorSpec([2], tf.int32))
    results = []
    chunk = 0
    for start in range(0, x.shape[0], batch_size):
        x_batch = x[start:start + batch_size]
        labels_batch = None if one_hot is None else one_hot[start:start + batch_size]
        total = tf.fill([x_batch.shape[0]], -np.inf)
        for done in range(0, importance_samples, samples_per_chunk):
            k = min(samples_per_chunk, importance_samples - done)
            # A stateless seed per chunk. (tf.random.set_seed only reached the
            # first trace of the chunk's function: later calls repeated the
            # first call's samples whatever their seed.)
            chunk_seed = None if seed is None else tf.constant([int(seed), chunk], tf.int32)
            chunk += 1
            log_weights, _ = model._log_weights_chunk(x_batch, labels_batch, tf.constant(k), chunk_seed)
            total = tf.reduce_logsumexp(tf.stack([total, tf.reduce_logsumexp(log_weights, 0)]), 0)
        results.append(total - np.log(importance_samples))
    return tf.concat(results, 0).numpy()
