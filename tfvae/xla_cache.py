"""TensorFlow's persistent XLA cache: a program XLA compiled once is loaded, not compiled, in the next process.

TensorFlow reads `TF_XLA_FLAGS` when it first compiles with XLA; with
`--tf_xla_persistent_cache_directory=DIR` it writes each program it compiles
to DIR, keyed by the program, and a later process that compiles the same
program (same model, batch size, XLA rule and TensorFlow) loads it instead.
The compile is most of what a fit under XLA costs before its first epoch
(see the XLA rule in `tfvae.epoch_loop`), so a repeated `tfvae train`
starts sooner; the weights it trains are the same.

A library does not change the environment of the process that imports it:
only the `tfvae` and `tfvae-export` commands, in a process of their own,
call `enable()` (through `tfvae._cli.command_start_up`). In Python, write
the one line yourself before your first fit:

    os.environ["TF_XLA_FLAGS"] = "--tf_xla_persistent_cache_directory=" + os.path.expanduser("~/.cache/tfvae/xla")

Set `TFVAE_XLA_CACHE` to another folder, or to an empty string to keep the
commands from using a cache; a `TF_XLA_FLAGS` that already names a cache
folder is left as it is.
"""

import os

#: TensorFlow's flag (read from the environment variable `TF_XLA_FLAGS`).
FLAG = "--tf_xla_persistent_cache_directory"
#: The environment variable that moves (or, empty, turns off) the commands' cache.
ENVIRONMENT_VARIABLE = "TFVAE_XLA_CACHE"


def default_directory():
    """The commands' cache folder: `$TFVAE_XLA_CACHE`, else `$XDG_CACHE_HOME/tfvae/xla` (`~/.cache/tfvae/xla`).

    Returns:
        The folder's path, or None when `TFVAE_XLA_CACHE` is set empty (no cache).

    Example:

    >>> import os
    >>> from tfvae.xla_cache import default_directory
    >>> os.environ["TFVAE_XLA_CACHE"] = "xla-programs"
    >>> default_directory()
    'xla-programs'
    >>> del os.environ["TFVAE_XLA_CACHE"]
    """
    chosen = os.environ.get(ENVIRONMENT_VARIABLE)
    if chosen is not None:
        return chosen or None
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache_home, "tfvae", "xla")


def enable(directory=None, environ=None):
    """Points TensorFlow's persistent XLA cache at `directory`, unless `TF_XLA_FLAGS` already names a cache.

    Takes effect only before the process's first XLA compile (TensorFlow reads
    the flags then); for a command's own process, not for a library.

    Args:
        directory: the cache folder; None: `default_directory()`.
        environ: the environment to change (`os.environ` when None).

    Returns:
        The cache folder now in `TF_XLA_FLAGS`, or None when there is none
        (`TFVAE_XLA_CACHE` set empty).

    Example:

    >>> from tfvae.xla_cache import enable
    >>> env = {"TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    >>> enable("xla-programs", env)
    'xla-programs'
    >>> env["TF_XLA_FLAGS"]
    '--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory=xla-programs'
    """
    environ = os.environ if environ is None else environ
    flags = environ.get("TF_XLA_FLAGS", "").split()
    named = [flag.split("=", 1)[1] for flag in flags if flag.startswith(FLAG + "=")]
    if named:
        return named[-1] or None
    directory = default_directory() if directory is None else directory
    if not directory:
        return None
    environ["TF_XLA_FLAGS"] = " ".join(flags + [f"{FLAG}={directory}"])
    return directory
