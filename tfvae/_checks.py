"""Argument checks shared by `tfvae` and `export`: each rule written once.

Every check raises `ValueError` or `TypeError` whose message names the
argument, says what was expected and shows the value received, in the style
of Keras' own layers:

    Received an invalid value for `latent_dim`: expected a positive integer.
    Received: latent_dim=0

This module imports only the standard library and numpy (no TensorFlow), so
that code running without TensorFlow (a `.tflite` runner, artifact metadata)
checks its input with the same rules and messages. The message itself is
built in `tfvae._messages` and the array checks live in
`tfvae._array_checks`; both are re-exported here, so callers use
`_checks.invalid`, `_checks.float_array`, ...
"""

import numbers
import os
import pathlib

import numpy as np

from tfvae._messages import describe, invalid  # noqa: F401 - every check's message, re-exported
from tfvae._array_checks import (  # noqa: F401 - the array checks, re-exported
    float_array, first_non_finite_row, overflow, class_labels, class_ids, sample_weights,
)

# ------------------------------------------------------------------- scalars


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name, value):
    """Returns `value` as an int, or raises `ValueError` if it is not a positive integer.

    Example:

    >>> from tfvae._checks import positive_int
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

    >>> from tfvae._checks import seed
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

    >>> from tfvae._checks import one_of
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

    >>> from tfvae._checks import instance
    >>> instance("epochs", "3", int, "an int")
    Traceback (most recent call last):
    TypeError: Received an invalid value for `epochs`: expected an int. Received: epochs='3'
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

    >>> from tfvae._checks import path
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

    >>> from tfvae._checks import existing_file
    >>> existing_file("path", "model.keras", ".keras", require_suffix=True)
    Traceback (most recent call last):
    FileNotFoundError: Received an invalid value for `path`: expected an existing .keras file. ...
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
