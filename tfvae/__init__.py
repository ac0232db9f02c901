"""tfvae: variational autoencoders for Keras 3 and TensorFlow Probability.

>>> import tfvae
>>> model = tfvae.mlp_vae(6, (4,), 2)   # x1..x6 -> a1..a4 -> (mu, sigma) x 2
>>> model.compile()                      # Adam at 1e-3
>>> print(model.z_mean_head.kernel.shape, model.z_log_sigma_head.kernel.shape)   # two heads, own weights
(4, 2) (4, 2)

`import tfvae` loads nothing heavy and changes nothing global but the
default of `KERAS_BACKEND`: submodules and the public names below load on
first use (PEP 562), so that pure-Python parts (`tfvae.run_folder`,
`tfvae._atomic`, `tfvae._checks`, `tfvae.datasets`) work without
TensorFlow. Where each concept lives, and the layering rules: docs/design.md.
"""

import importlib as _importlib
import os as _os

# Keras 3 picks its backend when first imported; tfvae needs TensorFlow's (TFP distributions).
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "VAE": ("tfvae.vae", "VAE"),
    "GaussianLatent": ("tfvae.latent", "GaussianLatent"),
    "mlp_vae": ("tfvae.builders", "mlp_vae"),
    "conv_vae": ("tfvae.builders", "conv_vae"),
    "evaluate": ("tfvae.evaluation", "evaluate"),
    "format_evaluation": ("tfvae.evaluation", "format_evaluation"),
    "load_model": ("tfvae.saving", "load_model"),
}
_SUBMODULES = ("callbacks", "datasets", "distribute", "likelihoods", "losses", "objectives", "optimizers", "plot",
               "priors", "scores")

__all__ = [*_EXPORTS, *_SUBMODULES, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        module_name, attribute = _EXPORTS[name]
        _check_backend()
        value = getattr(_importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        if name != "datasets":
            _check_backend()
        return _importlib.import_module(f"tfvae.{name}")
    raise AttributeError(f"module 'tfvae' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})


def _check_backend():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            "tfvae needs the TensorFlow backend of Keras (TensorFlow Probability "
            f"distributions run on it); KERAS_BACKEND is {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow."
        )
