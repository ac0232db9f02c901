"""Argument checks of the export entry points.

Every check raises `ValueError` or `TypeError` whose message names the
argument, says what was expected and shows what was received, in the style
of tfvae and Keras:

    Received an invalid value for `part`: expected one of ['decoder', 'encoder'].
    Received: part='both'
"""

import os
import pathlib

import numpy as np


def invalid(name, expected, value, hint=""):
    """Builds the standard error message for argument `name`.

    Args:
        name: the argument's name, e.g. `"quantize"`.
        expected: what a valid value looks like, e.g. `"one of [...]"`.
        value: the value received (shown with `describe`).
        hint: optional sentence saying what to do.

    Returns:
        The message, a string.

    Example:

    >>> invalid("part", "one of ['decoder', 'encoder']", "both")
    "Received an invalid value for `part`: expected one of ['decoder', 'encoder']. Received: part='both'"
    """
    message = f"Received an invalid value for `{name}`: expected {expected}. Received: {name}={describe(value)}"
    return message + (f". {hint}" if hint else "")


def describe(value):
    """A short text for a value in an error message: arrays by shape, objects by type."""
    if isinstance(value, np.ndarray) or hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<array of shape {tuple(value.shape)} and dtype {np.dtype(getattr(value.dtype, 'as_numpy_dtype', value.dtype))}>"
    if isinstance(value, (str, bytes, int, float, bool, type(None), pathlib.PurePath, list, tuple, dict)):
        text = repr(value)
        return text if len(text) <= 120 else text[:117] + "..."
    name = getattr(value, "name", None)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    return f"<{kind} {name!r}>" if isinstance(name, str) else f"<{kind}>"


def vae(model):
    """Returns `model` if it is a `tfvae.VAE`, else raises `TypeError`.

    Raises:
        TypeError: for anything but a `tfvae.VAE` (or subclass).
    """
    import tfvae

    if not isinstance(model, tfvae.VAE):
        raise TypeError(
            invalid(
                "model",
                "a tfvae.VAE (from tfvae.mlp_vae, tfvae.conv_vae or tfvae.load_model('model.keras'))",
                model,
                "Load a saved model with `tfvae.load_model(path)` first",
            )
        )
    return model


def boolean(name, value):
    """Returns `value` if it is a bool, else raises `TypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(invalid(name, "True or False", value))
    return bool(value)


def one_of(name, value, choices):
    """Returns `value` if it is one of `choices` (None or strings), else raises `ValueError`."""
    if not any(value is choice or (isinstance(value, str) and value == choice) for choice in choices):
        raise ValueError(invalid(name, f"one of {list(choices)}", value))
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
