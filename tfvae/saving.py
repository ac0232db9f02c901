"""Loading a saved `tfvae.VAE` with errors that say what is wrong with the file."""

import zipfile

import keras

from tfvae import _checks
from tfvae.vae import VAE


def load_model(path):
    """Loads a `tfvae.VAE` saved with `model.save("....keras")`.

    `keras.saving.load_model` reports a corrupt file as "File not found" and
    an archive without a model as a bare `KeyError`; this helper checks the
    file first and names the problem.

    Args:
        path: a `str` or `os.PathLike` to a `.keras` file.

    Returns:
        The `tfvae.VAE`.

    Raises:
        TypeError: if `path` is not a path, or the file holds another kind
            of Keras model.
        FileNotFoundError: if there is no file at `path`.
        ValueError: if `path` does not end in `.keras`, or the file is not
            a readable Keras archive (truncated, corrupt, not a zip).

    Example:

    >>> import tfvae
    >>> tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli").save("digits.keras")   # trained, in practice
    >>> model = tfvae.load_model("digits.keras")
    >>> model.likelihood_name, model.latent_dim
    ('bernoulli', 2)
    >>> tfvae.load_model("runs/digits/model.keras")   # no such file here
    Traceback (most recent call last):
    FileNotFoundError: Received an invalid value for `path`: expected an existing .keras file. ...
    """
    path = _checks.existing_file("path", path, ".keras", require_suffix=True)
    expected = "a .keras file saved by model.save"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            corrupt = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(_checks.invalid("path", expected, path, f"It is not a readable zip archive ({error})")) from None
    if corrupt is not None or "config.json" not in names:
        reason = f"its member {corrupt!r} is corrupt" if corrupt else "it holds no config.json"
        raise ValueError(_checks.invalid("path", expected, path, f"It is a zip archive but {reason}"))
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # Keras raises ValueError, KeyError, TypeError, h5py's OSError...
        raise ValueError(
            _checks.invalid("path", expected, path, f"Keras could not load it: {type(error).__name__}: {error}")
        ) from None
    if not isinstance(model, VAE):
        raise TypeError(
            _checks.invalid("path", "a saved tfvae.VAE", path, f"It holds a {type(model).__name__}")
        )
    return model
