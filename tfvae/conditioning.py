"""The class label of a conditional VAE as the one-hot columns its bodies see."""

import keras
import tensorflow as tf

from tfvae import _checks


def one_hot(labels, num_classes):
    """Labels (class ids or one-hot rows) as float32 one-hot rows `(batch, num_classes)`, or None.

    Args:
        labels: None, class ids `(batch,)` or `(batch, 1)`, or one-hot rows.
        num_classes: None for an unconditional model, else a positive int.

    Raises:
        ValueError: for labels given to an unconditional model, missing
            labels of a conditional one, or labels out of range.

    Example:

    >>> from tfvae.conditioning import one_hot
    >>> one_hot([2, 0], 3).numpy()
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    if not num_classes:
        if labels is not None:
            raise ValueError(
                _checks.invalid("labels", "None for an unconditional VAE (num_classes=None)", "<labels>"))
        return None
    if labels is None or not tf.is_tensor(labels) or tf.executing_eagerly():
        labels = _checks.class_labels(
            "labels", labels, num_classes,
            hint=f"This VAE is conditional (num_classes={num_classes}): pass class ids or one-hot rows, "
            "e.g. model.fit(x, y) or model.encode(x, labels=y)",
        )
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] == num_classes and labels.dtype.is_floating:
        return tf.cast(labels, "float32")
    if labels.shape.rank == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    # A row lookup in an identity matrix rather than tf.one_hot: under full
    # int8 quantization the TFLite converter (TF 2.21) gives ONE_HOT an
    # output scale without rescaling its on/off values, so an int8
    # conditional model would see its label as ~2 instead of 1. GATHER
    # quantizes correctly, and the values are the same 0.0 and 1.0.
    return tf.gather(tf.eye(num_classes, dtype=tf.float32), tf.cast(labels, tf.int32))


def unpack(data, num_classes):
    """A batch of `fit`/`evaluate`/`predict` as `(x, labels, sample_weight)`; labels None if unconditional.

    A conditional model takes `(x, y)`, `((x, y),)` or `(x, y, sample_weight)`.

    Raises:
        ValueError: if a conditional model's batch has no labels.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if isinstance(x, (tuple, list)) and len(x) == 2 and num_classes:
        x, y = x
    labels = y if num_classes else None
    if num_classes and labels is None:
        one_hot(None, num_classes)  # raises the explanation
    return x, labels, sample_weight
