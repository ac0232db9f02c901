"""Checks of array arguments: numbers, shapes, finiteness, class labels and per-example weights.

Part of `tfvae._checks` (which re-exports every name here): imports only
numpy and the standard library, so that code running without TensorFlow
checks its input with the same rules.
"""

import numpy as np

from tfvae._messages import invalid

def _numeric(name, value, expected):
    """`value` (array-like or eager tensor) as a numpy array; `TypeError` if not numeric or boolean."""
    if hasattr(value, "numpy"):  # an eager tensor
        value = value.numpy()
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise ValueError(invalid(name, "a rectangular numeric array", "<ragged>", str(error))) from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(invalid(name, expected, f"<array of dtype {array.dtype}>"))
    return array


def float_array(name, x, event_shape=None, allow_empty=False):
    """Converts `x` to a finite float32 array of shape `(batch,) + event_shape`.

    Integer and boolean arrays are converted to float32 (VAEs model real
    values); strings, objects, NaN and infinities are refused.

    Args:
        name: the argument's name, for the error message.
        x: array-like data or an eager tensor, first axis the batch.
        event_shape: expected shape of one example, or None to accept any.
        allow_empty: whether a batch of zero examples is acceptable.

    Returns:
        A float32 numpy array.

    Raises:
        TypeError: if `x` is not numeric.
        ValueError: if `x` is empty, has the wrong shape, or holds a
            non-finite value (the message gives the first bad row).

    Example:

    >>> from tfvae._array_checks import float_array
    >>> float_array("x", [[1, 2], [3, 4]], (2,)).dtype
    dtype('float32')
    """
    array = _numeric(name, x, "a numeric array")
    if array.ndim == 0:
        raise ValueError(invalid(name, "an array with a batch axis", f"<scalar {array!r}>"))
    if event_shape is not None:
        expected = (None,) + tuple(event_shape)
        if array.ndim != len(expected) or any(
            e is not None and e != a for e, a in zip(expected, array.shape)
        ):
            raise ValueError(
                invalid(
                    name,
                    f"an array of shape (batch, {', '.join(map(str, event_shape))})",
                    f"<array of shape {array.shape}>",
                    _shape_hint(name, array.shape, tuple(event_shape)),
                )
            )
    if array.shape[0] == 0 and not allow_empty:
        raise ValueError(invalid(name, "at least one example", f"<array of shape {array.shape}>"))
    array = array.astype(np.float32, copy=False)
    row = first_non_finite_row(array)
    if row is not None:
        values = array[row].ravel()
        raise ValueError(
            invalid(
                name,
                "finite values",
                f"<non-finite value in row {row}: {values[~np.isfinite(values)][0]}>",
                "Remove or impute rows with NaN or infinity before training",
            )
        )
    return array


def _shape_hint(name, shape, event_shape):
    """How to fix an array whose shape does not fit `event_shape`, if obvious."""
    if shape == event_shape:
        return f"For a single example, add the batch axis: {name}[None]"
    if len(shape) >= 1 and shape[0] and np.prod(shape[1:]) == np.prod(event_shape):
        return f"Reshape it: {name}.reshape(-1, {', '.join(map(str, event_shape))})"
    return ""


def first_non_finite_row(array):
    """The index of the first row of `array` holding NaN or infinity, or None."""
    array = np.asarray(array)
    if len(array) == 0:
        return None
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    return None if finite.all() else int(np.flatnonzero(~finite)[0])


def overflow(name, output_name, row):
    """The message for finite input `name` whose row `row` gives a non-finite `output_name`."""
    return invalid(
        name, f"values the model maps to a finite `{output_name}`",
        f"<row {row}, whose `{output_name}` overflows float32>",
        f"Its values are too large for the network; preprocess `{name}` as the training data",
    )


def class_labels(name, labels, num_classes, rows=None, one_hot=True, hint=""):
    """Checks the class labels of a conditional model.

    Labels are class ids (shape `(n,)` or `(n, 1)`, integer-valued numbers
    in `[0, num_classes)`) or, when `one_hot`, rows of width `num_classes`
    (one-hot or soft, finite; the class of a row is its argmax).

    Args:
        name: the argument's name, for the error message.
        labels: array-like labels.
        num_classes: the number of classes, or None when unknown (any
            integer id >= 0 is accepted; one-hot rows are not).
        rows: the number of examples the labels belong to, or None for any.
        one_hot: whether one-hot rows are accepted.
        hint: sentence added to the error when `labels` is None.

    Returns:
        int32 class ids of shape `(n,)`, or float32 rows `(n, num_classes)`
        when one-hot rows were given.

    Raises:
        TypeError: for non-numeric labels.
        ValueError: for None, a wrong shape or count, or an id that is not an
            integer in range (the message names the first bad row).

    Example:

    >>> from tfvae._array_checks import class_labels
    >>> class_labels("labels", [0, 2.0, 1], 3)
    array([0, 2, 1], dtype=int32)
    """
    count = "" if rows is None else f"{rows} "
    if num_classes is None:
        expected = f"{count}integer class ids >= 0"
    elif one_hot:
        expected = f"{count}class ids in [0, {num_classes}) or {count}one-hot rows of width {num_classes}"
    else:
        expected = f"{count}integer class ids in [0, {num_classes})"
    if labels is None:
        raise ValueError(invalid(name, expected, None, hint))
    array = _numeric(name, labels, expected)
    is_one_hot = (
        one_hot and num_classes is not None and num_classes > 1 and array.ndim == 2 and array.shape[1] == num_classes
    )
    ids_shape = array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)
    if not (is_one_hot or ids_shape) or (rows is not None and len(array) != rows):
        raise ValueError(invalid(name, expected, array))
    if is_one_hot:
        bad = ~np.isfinite(array).all(axis=1)
    else:
        array = array.reshape(-1)
        limit = np.inf if num_classes is None else num_classes
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(array) | (array < 0) | (array >= limit) | (array != np.round(array))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(invalid(name, expected, f"<row {row}: {array[row]}>"))
    return array.astype(np.float32) if is_one_hot else array.astype(np.int32)


def class_ids(name, labels, num_classes, rows=None, one_hot=True, hint=""):
    """`class_labels` as int32 class ids `(n,)`: one-hot rows become their argmax.

    Example:

    >>> from tfvae._array_checks import class_ids
    >>> class_ids("labels", [[0, 1], [1, 0]], 2)
    array([1, 0], dtype=int32)
    """
    array = class_labels(name, labels, num_classes, rows, one_hot, hint)
    return array.argmax(axis=1).astype(np.int32) if array.ndim == 2 else array


def sample_weights(name, weights, rows):
    """Checks per-example weights: `rows` finite numbers >= 0, returned as float32.

    Example:

    >>> from tfvae._array_checks import sample_weights
    >>> sample_weights("sample_weight", [1, 0.5], 2)
    array([1. , 0.5], dtype=float32)
    """
    expected = f"{rows} finite numbers >= 0, one per example"
    array = _numeric(name, weights, expected)
    if array.ndim != 1 or len(array) != rows:
        raise ValueError(invalid(name, expected, f"<array of shape {array.shape}>"))
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(invalid(name, expected, f"<row {row}: {array[row]}>"))
    return array.astype(np.float32)
