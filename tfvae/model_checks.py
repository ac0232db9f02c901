"""Checks of what `tfvae.VAE`'s methods receive and return: shapes, finite values, seeds."""

import numpy as np
import tensorflow as tf

from tfvae import _checks, summary_shapes


def resolve_event_shape(encoder, event_shape):
    """The shape of one x: `event_shape` if given, else the encoder's input shape.

    Raises:
        ValueError: if neither tells it, or it is not a tuple of positive ints.
    """
    if event_shape is not None:
        return _checks.int_tuple("event_shape", event_shape, allow_empty=False)
    try:
        shape = tuple(encoder.inputs[0].shape[1:])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise ValueError(
            "Cannot tell the shape of x: `encoder` has no defined input. Start "
            "it with keras.Input(shape) or pass event_shape=..."
        ) from None
    return _checks.int_tuple("event_shape", shape, allow_empty=False)


def as_float_tensor(name, value, event_shape):
    """Checks a user's array or eager tensor; passes symbolic tensors through (shape checked)."""
    if tf.is_tensor(value) and not tf.executing_eagerly():
        expected = [None, *event_shape]
        if value.shape.rank is not None and not tf.TensorShape(expected).is_compatible_with(value.shape):
            raise ValueError(
                _checks.invalid(name, f"a tensor of shape {tuple(expected)}", f"<tensor of shape {value.shape}>")
            )
        return tf.cast(value, "float32")
    if tf.is_tensor(value):
        value = value.numpy()
    return tf.convert_to_tensor(_checks.float_array(name, value, event_shape))


def seed_tensor(seed):
    """An int seed as the stateless seed pair that TFP samplers accept."""
    return tf.constant([_checks.seed("seed", seed), 0], tf.int32)


def check_finite_output(model, name, output_name, output):
    """Raises if an eager output of finite input `name` has a non-finite row.

    Raises:
        RuntimeError: if the model's weights are not finite (training diverged).
        ValueError: otherwise, naming the first row whose output overflowed.
    """
    if not tf.executing_eagerly() or not hasattr(output, "numpy"):
        return  # traced by an exporter: nothing to check
    row = _checks.first_non_finite_row(output.numpy())
    if row is None:
        return
    broken = [weight.path for weight in model.trainable_weights if not np.all(np.isfinite(weight.numpy()))]
    if broken:
        raise RuntimeError(
            f"The model's weights hold NaN or infinity ({', '.join(broken[:3])}...): training diverged, and "
            f"no `{output_name}` it computes is meaningful. Train again with a lower learning rate or "
            "scaled data, and fit(..., callbacks=[tfvae.callbacks.TerminateOnNonFinite()]) to stop at the first "
            "non-finite loss with the last good weights."
        )
    raise ValueError(_checks.overflow(name, output_name, row))


def build_with_dummy_batch(model):
    """Runs one zero batch through every part of a `tfvae.VAE`: builds all weights now, checks the shapes.

    `train_step` never calls the model itself, so without this a model
    fitted and saved would be unbuilt for exporters.

    Raises:
        ValueError: if the encoder's output is not `(batch, units)`, or the
            decoder's is not the likelihood's `params_shape()`.
    """
    x = tf.zeros((1,) + model.event_shape)
    labels = tf.zeros([1], tf.int32) if model.num_classes else None
    features = model.encoder(x)
    if len(features.shape) != 2:
        raise ValueError(_checks.invalid(
            "encoder", "a body whose output has shape (batch, units); end a convolutional body with Flatten",
            f"<output of shape {tuple(features.shape)}>"))
    summary_shapes.build_unbatched(model, features.shape[-1] + (model.num_classes or 0))
    z_mean, _ = model._encode(x, labels)
    model.latent([z_mean, z_mean])  # marks the weightless layers built
    params = model._decoder_params(z_mean, labels)
    expected = model.likelihood_layer.params_shape()
    if tuple(params.shape[1:]) != expected:
        raise ValueError(_checks.invalid(
            "decoder", f"a body mapping z to parameters of shape (batch, {', '.join(map(str, expected))}) "
            f"({model.likelihood_layer.params_per_feature} per feature for likelihood={model.likelihood_name!r})",
            f"<output of shape {tuple(params.shape)}>"))
    model.likelihood_layer(params)
    model.built = True
