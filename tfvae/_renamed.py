"""Old names users type, kept working: a renamed keyword argument or command-line flag, with a one-line warning.

`num_samples` meant two things: the k of the IWAE bound a model trains on, and the importance samples
of an evaluation. They are now `iwae_samples` (`tfvae.VAE(iwae_samples=)`, `tfvae train --iwae-samples`)
and `importance_samples` (`tfvae.evaluate`, `tfvae evaluate --importance-samples`); the old spellings
still work and say so in one line.
"""

import argparse
import functools
import sys
import warnings


def keywords(**new_names):
    """Decorator: a function still accepts each old keyword `old=new` under its old name, with a warning.

    Args:
        **new_names: `old_name="new_name"` pairs.

    Returns:
        A decorator. The decorated function takes `old_name=value` as
        `new_name=value` and warns once per call (`DeprecationWarning`, one
        line naming both); passing both names is a `TypeError`.

    Example:

    >>> import warnings
    >>> from tfvae._renamed import keywords
    >>> @keywords(num_samples="importance_samples")
    ... def estimate(importance_samples=1000):
    ...     return importance_samples
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     estimate(num_samples=10)
    10
    >>> print(caught[0].message)
    `num_samples` is deprecated; use `importance_samples`
    """
    def decorate(function):
        @functools.wraps(function)
        def renamed(*args, **kwargs):
            return function(*args, **new_keywords(kwargs, new_names, stacklevel=2))

        return renamed

    return decorate


def new_keywords(kwargs, new_names, stacklevel=2, warn=True):
    """`kwargs` with each old name of `new_names` (`{old: new}`) replaced by its new one.

    Args:
        kwargs: a dict of keyword arguments (not changed).
        new_names: `{old_name: new_name}`.
        stacklevel: where the warning points (2: the caller of the function calling this).
        warn: False renames silently (for configs saved by an older release).

    Returns:
        A new dict.

    Raises:
        TypeError: when both an old name and its new one are given.

    Example:

    >>> from tfvae._renamed import new_keywords
    >>> new_keywords({"num_samples": 3, "beta": 1.0}, {"num_samples": "iwae_samples"}, warn=False)
    {'beta': 1.0, 'iwae_samples': 3}
    """
    kwargs = dict(kwargs)
    for old, new in new_names.items():
        if old not in kwargs:
            continue
        if new in kwargs:
            raise TypeError(f"Received both `{new}` and its old name `{old}`; pass only `{new}`.")
        if warn:
            warnings.warn(f"`{old}` is deprecated; use `{new}`", DeprecationWarning, stacklevel=stacklevel + 1)
        kwargs[new] = kwargs.pop(old)
    return kwargs


class RenamedFlag(argparse.Action):
    """An old command-line flag: stores its value as the new flag does and prints one line to stderr.

    Add it as `parser.add_argument("--old", dest=<the new flag's dest>, new="--new", type=...,
    help=argparse.SUPPRESS, action=RenamedFlag)`: `--help` shows only the new flag.

    Example:

    >>> import argparse
    >>> from tfvae._renamed import RenamedFlag
    >>> parser = argparse.ArgumentParser(prog="tfvae evaluate")
    >>> _ = parser.add_argument("--importance-samples", type=int, default=1000)
    >>> _ = parser.add_argument("--num-samples", dest="importance_samples", type=int,
    ...                         new="--importance-samples", action=RenamedFlag, help=argparse.SUPPRESS)
    >>> parser.parse_args(["--num-samples", "10"]).importance_samples  # also prints the line to stderr
    10
    """

    def __init__(self, option_strings, dest, new, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)
