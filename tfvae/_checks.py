"""Argument checks shared by `tfvae` and `export`: each rule written once.

Every check raises `ValueError` or `TypeError` whose message names the
argument, says what was expected and shows the value received, in the style
of Keras' own layers:

    Received an invalid value for `latent_dim`: expected a positive integer.
    Received: latent_dim=0

This module imports only the standard library and numpy (no TensorFlow), so
that code running without TensorFlow (a `.tflite` runner, artifact metadata)
checks its input with the same rules and messages.
"""

import numbers
import os
import pathlib

import numpy as np

# ------------------------------------------------------------------ messages


def describe(value):
    """A short text for `value` in an error message.

    Strings, numbers, paths and small containers are shown as `repr` (cut at
    120 characters), arrays and tensors by shape and dtype, other objects by
    class and name.

    Example:

    >>> describe(np.zeros((2, 3)))
    '<array of shape (2, 3) and dtype float64>'
    """
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, np.ndarray) or hasattr(value, "shape") and hasattr(value, "dtype"):
        dtype = getattr(value.dtype, "as_numpy_dtype", value.dtype)
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            pass
        return f"<array of shape {tuple(value.shape)} and dtype {dtype}>"
    if isinstance(value, (str, bytes, numbers.Number, type(None), pathlib.PurePath, list, tuple, dict, set)):
        text = repr(value)
        return text if len(text) <= 120 else text[:117] + "..."
    name = getattr(value, "name", None)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    return f"<{kind} {name!r}>" if isinstance(name, str) else f"<{kind}>"


def invalid(name, expected, value, hint=""):
    """Builds the standard error message for argument `name`.

    Args:
        name: the argument's name, e.g. `"latent_dim"`.
        expected: what a valid value looks like, e.g. `"a positive integer"`.
        value: the value received, shown with `describe`. Pass a string such
            as `"<row 3: [0 5]>"` to show a part of a large value.
        hint: optional sentence saying what to do.

    Returns:
        The message, a string.

    Example:

    >>> invalid("latent_dim", "a positive integer", 0)
    'Received an invalid value for `latent_dim`: expected a positive integer. Received: latent_dim=0'
    """
    message = f"Received an invalid value for `{name}`: expected {expected}. Received: {name}={describe(value)}"
    return message + (f". {hint}" if hint else "")


# ------------------------------------------------------------------- scalars


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name, value):
    """Returns `value` as an int, or raises `ValueError` if it is not a positive integer.

    Example:

    >>> positive_int("epochs", 3)
    3
    """
    if not _is_int(value) or value < 1:
        raise ValueError(invalid(name, "a positive integer", value))
    return int(value)


def non_negative_int(name, value):
    """Returns `value` as an int, or raises `ValueError` if it is not an integer >= 0."""
    if not _is_int(value) or value < 0:
        raise ValueError(invalid(name, "an integer >= 0", value))
    return int(value)


def non_negative_float(name, value):
    """Returns `value` as a float, or raises `ValueError` if it is not a finite number >= 0."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value < 0
    ):
        raise ValueError(invalid(name, "a finite number >= 0", value))
    return float(value)


def positive_float(name, value):
    """Returns `value` as a float, or raises `ValueError` if it is not a finite number > 0."""
    try:
        positive = non_negative_float(name, value) > 0
    except ValueError:  # its message would say ">= 0"
        positive = False
    if not positive:
        raise ValueError(invalid(name, "a finite number > 0", value))
    return float(value)


def boolean(name, value):
    """Returns `value` as a bool if it is one, else raises `TypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(name, "True or False", value))
    return bool(value)


_INT32 = (-(2**31), 2**31 - 1)


def seed(name, value, allow_none=True):
    """Returns a random seed as an int (or None), or raises.

    Seeds become int32 stateless-seed tensors, so they must fit in int32.

    Args:
        name: the argument's name, e.g. `"seed"`.
        value: the seed given.
        allow_none: whether None (a non-reproducible draw) is accepted.

    Returns:
        An int, or None.

    Raises:
        TypeError: if `value` is not an int (or None, when allowed).
        ValueError: if it does not fit in int32.

    Example:

    >>> seed("seed", 7), seed("seed", None)
    (7, None)
    """
    if value is None and allow_none:
        return None
    expected = "None or an int" if allow_none else "an int"
    if not _is_int(value):
        raise TypeError(invalid(name, expected, value))
    if not _INT32[0] <= value <= _INT32[1]:
        raise ValueError(invalid(name, f"{expected} in [{_INT32[0]}, {_INT32[1]}]", value))
    return int(value)


def int_tuple(name, value, allow_empty=True):
    """Returns `value` as a tuple of positive ints (a single int is accepted)."""
    if _is_int(value):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(invalid(name, "a tuple of positive integers", value)) from None
    if not allow_empty and not items:
        raise ValueError(invalid(name, "a non-empty tuple of positive integers", value))
    for item in items:
        if not _is_int(item) or item < 1:
            raise ValueError(invalid(name, "a tuple of positive integers", value))
    return tuple(int(item) for item in items)


def one_of(name, value, choices):
    """Returns `value` if it is one of `choices`, else raises `ValueError`.

    Args:
        name: the argument's name.
        value: the value given.
        choices: the accepted values: strings and None (a set, dict keys or
            a sequence). Strings are listed sorted, other choices in the
            order given.

    Example:

    >>> one_of("part", "encoder", ("encoder", "decoder"))
    'encoder'
    """
    choices = list(choices)
    # `is` or string equality: `value in choices` raises for an unhashable
    # value and compares arrays elementwise.
    if not any(value is choice or (isinstance(value, str) and value == choice) for choice in choices):
        shown = sorted(choices) if all(isinstance(choice, str) for choice in choices) else choices
        raise ValueError(invalid(name, f"one of {shown}", value))
    return value


def instance(name, value, cls, expected, hint=""):
    """Returns `value` if it is an instance of `cls`, else raises `TypeError`.

    Example:

    >>> instance("model", model, tfvae.VAE, "a tfvae.VAE")  # doctest: +SKIP
    """
    if not isinstance(value, cls):
        raise TypeError(invalid(name, expected, value, hint))
    return value


def optional_dict(name, value):
    """Returns `value` if it is None or a dict, else raises `TypeError`."""
    if value is not None and not isinstance(value, dict):
        raise TypeError(invalid(name, "None or a dict", value))
    return value


def path(name, value, kind, suffix=None):
    """Checks an output path and returns it as a `pathlib.Path`.

    Args:
        name: the argument's name.
        value: a `str` or `os.PathLike`.
        kind: `"file"` or `"directory"`: what the artifact at `value` is; an
            existing entry of the other kind is refused.
        suffix: required file name ending, e.g. `".tflite"`.

    Returns:
        A `pathlib.Path`.

    Raises:
        TypeError: if `value` is not a str or path.
        ValueError: if it is empty, lacks `suffix`, or names an existing
            entry of the other kind.

    Example:

    >>> path("path", "encoder.tflite", "file", ".tflite")
    PosixPath('encoder.tflite')
    """
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(invalid(name, "a str or os.PathLike path", value))
    text = os.fspath(value)
    if not text.strip():
        raise ValueError(invalid(name, "a non-empty path", value))
    result = pathlib.Path(text)
    if suffix and result.suffix.lower() != suffix:
        raise ValueError(invalid(name, f"a path ending in {suffix!r}", value, f"For example {name}='encoder{suffix}'"))
    if kind == "file" and result.is_dir():
        raise ValueError(invalid(name, "a file path, not an existing directory", value))
    if kind == "directory" and result.exists() and not result.is_dir():
        raise ValueError(invalid(name, "a directory path, not an existing file", value))
    return result


def existing_file(name, value, suffix=None, require_suffix=False):
    """Checks the path of a file to read and returns it as a `str`.

    Args:
        name: the argument's name.
        value: a `str` or `os.PathLike`.
        suffix: the file's usual ending, e.g. `".keras"`, named in messages.
        require_suffix: whether a path with another ending is refused.

    Returns:
        The path, a `str`.

    Raises:
        TypeError: if `value` is not a str or path.
        ValueError: if `require_suffix` and the path lacks `suffix`.
        FileNotFoundError: if there is no file at the path.

    Example:

    >>> existing_file("path", "runs/digits/model.keras", ".keras", require_suffix=True)  # doctest: +SKIP
    'runs/digits/model.keras'
    """
    kind = f"{suffix} file" if suffix else "file"
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(invalid(name, f"a str or os.PathLike path to a {kind}", value))
    text = os.fspath(value)
    if require_suffix and not text.endswith(suffix):
        raise ValueError(invalid(name, f"a path ending in {suffix}", value))
    if not os.path.isfile(text):
        raise FileNotFoundError(invalid(name, f"an existing {kind}", value, "There is no such file"))
    return text


# -------------------------------------------------------------------- arrays


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

    >>> class_ids("labels", [[0, 1], [1, 0]], 2)
    array([1, 0], dtype=int32)
    """
    array = class_labels(name, labels, num_classes, rows, one_hot, hint)
    return array.argmax(axis=1).astype(np.int32) if array.ndim == 2 else array


def sample_weights(name, weights, rows):
    """Checks per-example weights: `rows` finite numbers >= 0, returned as float32.

    Example:

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
