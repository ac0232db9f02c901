"""tfvae: variational autoencoders for Keras 3 and TensorFlow Probability.

>>> import tfvae
>>> model = tfvae.mlp_vae(6, (4,), 2)   # x1..x6 -> a1..a4 -> (mu, sigma) x 2
>>> model.compile(optimizer="adam")
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfvae._quiet import native_stderr_silenced as _silenced  # noqa: E402

# TensorFlow's C++ runtime prints CUDA-probe and CPU-feature notices to fd 2
# when it loads; they are noise on the CPU and bury the CLIs' one-line errors.
with _silenced():
    import keras as _keras  # noqa: E402
    import tensorflow as _tf  # noqa: E402
    import tensorflow_probability as _tfp  # noqa: E402, F401

    # The first op initializes the runtime, which logs too. Not in a
    # multi-worker job (TF_CONFIG set): MultiWorkerMirroredStrategy has to
    # configure collective ops before the runtime starts.
    if not _os.environ.get("TF_CONFIG"):
        _tf.constant(0.0) + 1.0

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "tfvae needs the TensorFlow backend of Keras (TensorFlow Probability "
        f"distributions run on it); KERAS_BACKEND is {_keras.backend.backend()!r}. "
        "Set KERAS_BACKEND=tensorflow."
    )

from tfvae import callbacks, datasets, distribute, likelihoods, losses  # noqa: E402
from tfvae.builders import conv_vae, mlp_vae  # noqa: E402
# `tfvae.evaluate` is the function; the module stays importable as `from tfvae.evaluate import ...`.
from tfvae.evaluate import evaluate, format_evaluation  # noqa: E402
from tfvae.latent import GaussianLatent  # noqa: E402
from tfvae.saving import load_model  # noqa: E402
from tfvae.vae import VAE  # noqa: E402

__version__ = "0.1.0"

__all__ = ["VAE", "GaussianLatent", "mlp_vae", "conv_vae", "evaluate", "format_evaluation", "load_model", "callbacks", "datasets", "distribute", "likelihoods", "losses", "__version__"]
