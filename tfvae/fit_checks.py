"""Checks of the data given to `VAE.fit`, before any training step runs.

This module finds the data among `fit`'s arguments; the rules themselves
(arrays, labels, weights) live in `tfvae._checks`.

`VAE.fit` calls `check_fit_arguments` and then `keras.Model.fit`. Data given
as arrays (numpy arrays, eager tensors, nested lists, pandas frames: anything
`numpy.asarray` reads) is checked completely before training starts:

    x                  numeric, shape (n,) + model.event_shape, n >= 1, finite
                       (the first row with NaN or infinity is named);
                       integers and booleans are converted to float32
    y (conditional)    n class ids in [0, num_classes) or n one-hot rows
    sample_weight      n finite numbers >= 0
    validation_data    (x_val,), (x_val, y_val) or (x_val, y_val, weights),
                       checked the same way

`tf.data.Dataset`s, generators and `keras.utils.PyDataset`s are passed to
Keras unchecked: they are lazy, and reading them twice to check them would
cost a pass over the data (or be impossible, for a generator). Check them
in the pipeline (`dataset.map(...)` with `tf.debugging.assert_all_finite`)
or train with `tfvae.callbacks.TerminateOnNonFinite`, which stops at the
first non-finite loss and keeps the last good weights (`tfvae train` does).
"""

import inspect
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfvae import _checks


def check_fit_arguments(model, *args, **kwargs):
    """Checks the data arguments of `model.fit(*args, **kwargs)`.

    Args:
        model: a `tfvae.VAE`.
        *args, **kwargs: the arguments of `keras.Model.fit`.

    Returns:
        `(args, kwargs)` to pass on to `keras.Model.fit`: the same arguments
        with array data replaced by checked float32 arrays (labels as int32
        class ids or float32 one-hot rows).

    Raises:
        TypeError: if array data is not numeric.
        ValueError: if array data is empty, has the wrong shape, holds NaN
            or infinity (the message names the first bad row), or if labels
            or sample weights do not fit the examples.
    """
    try:
        bound = inspect.signature(keras.Model.fit).bind(model, *args, **kwargs)
    except TypeError:
        return args, kwargs  # Keras raises its own error for a wrong call
    arguments = bound.arguments
    if _is_array_like(arguments.get("x")):
        arguments["x"], arguments["y"], arguments["sample_weight"] = check_training_data(
            model, arguments.get("x"), arguments.get("y"), arguments.get("sample_weight")
        )
    validation_data = arguments.get("validation_data")
    if isinstance(validation_data, (tuple, list)) and 1 <= len(validation_data) <= 3:
        parts = tuple(validation_data) + (None,) * (3 - len(validation_data))
        if _is_array_like(parts[0]):
            arguments["validation_data"] = check_training_data(model, *parts, name="validation_data[0]")
    elif validation_data is not None and _is_array_like(validation_data):
        arguments["validation_data"] = check_training_data(model, validation_data, name="validation_data")[:1]
    return bound.args[1:], bound.kwargs


def check_training_data(model, x, y=None, sample_weight=None, name="x"):
    """Checks one set of examples for `model`: features, labels and weights.

    Args:
        model: a `tfvae.VAE`.
        x: array-like of shape `(n,) + model.event_shape`; for a conditional
            model also `(x, labels)` with `y` None.
        y: class labels of a conditional model: `n` class ids or `n` one-hot
            rows. Ignored (passed through) for an unconditional model.
        sample_weight: None or `n` non-negative finite weights.
        name: the argument's name in error messages.

    Returns:
        `(x, y, sample_weight)`: x a finite float32 numpy array, labels
        int32 class ids or float32 one-hot rows (see `_checks.class_labels`),
        weights float32 (or None).

    Raises:
        TypeError: if x, labels or weights are not numeric.
        ValueError: if x is empty, has the wrong shape or a non-finite value,
            or labels or weights do not fit x.

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.fit_checks import check_training_data
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> x, _, _ = check_training_data(model, np.ones((3, 6), "int64"))
    >>> x.dtype
    dtype('float32')
    """
    if model.num_classes and y is None and isinstance(x, (tuple, list)) and len(x) == 2 and np.ndim(x[0]) >= 2:
        x, y = x
    label_name = "y" if name == "x" else f"{name.split('[')[0]}[1]"
    x = _checks.float_array(name, x, model.event_shape)
    if model.num_classes:
        y = _checks.class_labels(
            label_name, y, model.num_classes, rows=len(x),
            hint=f"This VAE is conditional (num_classes={model.num_classes}): pass model.fit(x, y)",
        )
    if sample_weight is not None:
        weight_name = "sample_weight" if name == "x" else f"{name.split('[')[0]}[2]"
        sample_weight = _checks.sample_weights(weight_name, sample_weight, len(x))
    return x, y, sample_weight


def _is_array_like(value):
    """True for what `numpy.asarray` is meant to read; False for datasets and generators."""
    if isinstance(value, (tf.data.Dataset, keras.utils.PyDataset)) or inspect.isgenerator(value):
        return False
    return (
        value is None
        or isinstance(value, (np.ndarray, np.generic, list, tuple, dict, str, bytes, numbers.Number))
        or tf.is_tensor(value)
        or hasattr(value, "__array__")
    )
