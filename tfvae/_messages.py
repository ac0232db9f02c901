"""The one error message of every argument check: `invalid(name, expected, value)` and `describe`.

Imports only the standard library and numpy (see `tfvae._checks`).
"""

import numbers
import pathlib

import numpy as np



def describe(value):
    """A short text for `value` in an error message.

    Strings, numbers, paths and small containers are shown as `repr` (cut at
    120 characters), arrays and tensors by shape and dtype, other objects by
    class and name.

    Example:

    >>> import numpy as np
    >>> from tfvae._messages import describe
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

    >>> from tfvae._messages import invalid
    >>> invalid("latent_dim", "a positive integer", 0)
    'Received an invalid value for `latent_dim`: expected a positive integer. Received: latent_dim=0'
    """
    message = f"Received an invalid value for `{name}`: expected {expected}. Received: {name}={describe(value)}"
    return message + (f". {hint}" if hint else "")
