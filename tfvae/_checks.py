"""Argument checks shared by the public entry points.

Every check raises `ValueError` or `TypeError` whose message names the
argument, says what was expected and shows the value received, in the style
of Keras' own layers:

    Received an invalid value for `latent_dim`: expected a positive integer.
    Received: latent_dim=0
"""

import numbers

import numpy as np


def invalid(name, expected, value, hint=""):
    """Builds the standard error message for argument `name`."""
    message = (
        f"Received an invalid value for `{name}`: expected {expected}. "
        f"Received: {name}={value!r}"
    )
    return message + (f". {hint}" if hint else "")


def positive_int(name, value):
    """Returns `value` as an int, or raises if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(invalid(name, "a positive integer", value))
    return int(value)


def non_negative_float(name, value):
    """Returns `value` as a float, or raises if it is not a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value < 0
    ):
        raise ValueError(invalid(name, "a finite number >= 0", value))
    return float(value)


def positive_float(name, value):
    """Returns `value` as a float, or raises if it is not a finite number > 0."""
    try:
        positive = non_negative_float(name, value) > 0
    except ValueError:  # its message would say ">= 0"
        positive = False
    if not positive:
        raise ValueError(invalid(name, "a finite number > 0", value))
    return float(value)


def int_tuple(name, value, allow_empty=True):
    """Returns `value` as a tuple of positive ints (a single int is accepted)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(invalid(name, "a tuple of positive integers", value)) from None
    if not allow_empty and not items:
        raise ValueError(invalid(name, "a non-empty tuple of positive integers", value))
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 1:
            raise ValueError(invalid(name, "a tuple of positive integers", value))
    return tuple(int(item) for item in items)


def one_of(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises."""
    if value not in choices:
        raise ValueError(invalid(name, f"one of {sorted(choices)}", value))
    return value


def float_array(name, x, event_shape=None, allow_empty=False):
    """Converts `x` to a finite float32 array of shape `(batch,) + event_shape`.

    Integer and boolean arrays are converted to float32 (VAEs model real
    values); strings, objects, NaN and infinities are refused.

    Args:
        name: the argument's name, for the error message.
        x: array-like data, first axis the batch.
        event_shape: expected shape of one example, or None to accept any.
        allow_empty: whether a batch of zero examples is acceptable.

    Returns:
        A float32 numpy array.

    Raises:
        TypeError: if `x` is not numeric.
        ValueError: if `x` is empty, has the wrong shape, or holds a
            non-finite value (the message gives the first bad row).
    """
    try:
        array = np.asarray(x)
    except ValueError as error:  # ragged nested lists
        raise ValueError(invalid(name, "a rectangular numeric array", "<ragged>", str(error))) from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == bool
    ):
        raise TypeError(
            invalid(name, "a numeric array", f"<array of dtype {array.dtype}>")
        )
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
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            invalid(
                name,
                "finite values",
                f"<non-finite value in row {row}: {array[row].ravel()[~np.isfinite(array[row].ravel())][0]}>",
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
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    return None if finite.all() else int(np.flatnonzero(~finite)[0])


def overflow(name, output_name, row):
    """The message for finite input `name` whose row `row` gives a non-finite `output_name`."""
    return invalid(
        name, f"values the model maps to a finite `{output_name}`",
        f"<row {row}, whose `{output_name}` overflows float32>",
        f"Its values are too large for the network; preprocess `{name}` as the training data",
    )
