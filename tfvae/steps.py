"""One training step and one test step of a `tfvae.VAE`, and the metrics they keep.

    train_step: loss = the objective's batch mean (per-example weights applied)
                       + the bodies' own losses (add_loss, weight regularizers);
                the optimizer applies the gradients of loss / replicas (summed over replicas)
    test_step:  the same objective, no update

Both draw their noise from the model's seed generator (`sampling_seed`), so a
run repeats after `keras.utils.set_random_seed`, also under XLA. The metrics
are `loss` and the objective's own (`objective.metric_names`).
"""

import keras
import tensorflow as tf

from tfvae import conditioning, distribute, losses


def trackers(objective):
    """`(loss_tracker, objective_trackers)`: a `keras.metrics.Mean` for the loss and each of the objective's metrics.

    >>> from tfvae import objectives
    >>> from tfvae.steps import trackers
    >>> loss, others = trackers(objectives.ELBO())
    >>> loss.name, [tracker.name for tracker in others]
    ('loss', ['reconstruction', 'kl'])
    """
    return keras.metrics.Mean(name="loss"), [keras.metrics.Mean(name=name) for name in objective.metric_names]


def sampling_seed(model):
    """A fresh stateless seed pair `int32 (2,)` from the model's seed generator."""
    seed = tf.cast(model.seed_generator.next(), tf.int64)
    return tf.cast(tf.math.floormod(seed, 2**31 - 1), tf.int32)


def train_step(model, data):
    """One optimizer step on a batch `data` (x, `(x, labels)` or `(x, labels, weights)`); returns the logs."""
    x, labels, sample_weight = conditioning.unpack(data, model.num_classes)
    with tf.GradientTape() as tape:
        objective, terms = model.objective(model, x, labels, True, sampling_seed(model))
        loss = losses.weighted_mean(objective, sample_weight)
        if model.losses:  # add_loss and weight regularizers of the bodies
            loss += tf.add_n([tf.cast(extra, loss.dtype) for extra in model.losses])
        # Gradients are summed over replicas: each contributes its share.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled_loss = model.optimizer.scale_loss(loss / replicas)
    gradients = tape.gradient(scaled_loss, model.trainable_variables)
    model.optimizer.apply(gradients, model.trainable_variables)
    update_metrics(model, loss, terms, sample_weight)
    return step_logs(model)


def test_step(model, data):
    """The objective on a batch without an update; returns the metrics' results."""
    x, labels, sample_weight = conditioning.unpack(data, model.num_classes)
    objective, terms = model.objective(model, x, labels, False, sampling_seed(model))
    update_metrics(model, losses.weighted_mean(objective, sample_weight), terms, sample_weight)
    return distribute.step_logs({metric.name: metric.result() for metric in model.metrics})


def update_metrics(model, loss, terms, sample_weight):
    """Adds a batch's loss and the objective's per-example `terms` to the model's trackers."""
    model.loss_tracker.update_state(loss)
    for tracker in model.objective_trackers:
        tracker.update_state(terms[tracker.name], sample_weight=sample_weight)


def step_logs(model):
    """The logs of a training step: the metrics, and what the objective adds (the KL weight while it ramps)."""
    logs = {metric.name: metric.result() for metric in model.metrics}
    logs.update(model.objective.step_logs(model))
    return distribute.step_logs(logs)
