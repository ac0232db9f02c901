"""Builders for the usual bodies: a multilayer perceptron and a small ConvNet."""

import keras

from tfvae import _checks, _renamed, likelihoods
from tfvae.vae import VAE


@_renamed.keywords(num_samples="iwae_samples")  # warns at the caller's line
def mlp_vae(input_dim, hidden_units, latent_dim, likelihood="gaussian", activation="relu", num_classes=None, **kwargs):
    """A VAE with Dense bodies: `input_dim -> hidden_units -> latent_dim` and back.

    The classic diagram (x1..x6 -> a1..a4 -> mu1, mu2, sigma1, sigma2) is
    `mlp_vae(6, (4,), 2)`: the encoder body maps x to a = (a1..a4), and two
    separate Dense heads map a to (mu1, mu2) and (log sigma1, log sigma2).
    The decoder mirrors the hidden layers and ends in a linear Dense layer
    giving the likelihood's parameters (`params_per_feature` per feature).

    Args:
        input_dim: positive int, the number of features of x.
        hidden_units: tuple of positive ints, the encoder's hidden layers
            (the decoder uses them in reverse); may be empty.
        latent_dim: positive int, the size of z.
        likelihood: a name of `tfvae.likelihoods.LIKELIHOODS`, a config dict
            or a `Likelihood` (e.g. `"gaussian"`, `"bernoulli"`, `"poisson"`).
        activation: activation of the hidden layers.
        num_classes: None, or the number of classes of a conditional VAE.
        **kwargs: further `tfvae.VAE` arguments (`prior`, `objective`, `beta`, ...).

    Returns:
        A built `tfvae.VAE`.

    Raises:
        ValueError: for an invalid argument.

    Example:

    >>> import tfvae
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> [layer.name for layer in model.encoder.layers], [layer.name for layer in model.decoder.layers]
    (['hidden_1'], ['hidden_1', 'params'])
    """
    input_dim = _checks.positive_int("input_dim", input_dim)
    hidden_units = _checks.int_tuple("hidden_units", hidden_units)
    latent_dim = _checks.positive_int("latent_dim", latent_dim)
    num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
    encoder = keras.Sequential(
        [keras.Input((input_dim,), name="x")]
        + [keras.layers.Dense(units, activation, name=f"hidden_{i + 1}") for i, units in enumerate(hidden_units)]
        + ([] if hidden_units else [keras.layers.Identity(name="identity")]),
        name="encoder",
    )
    decoder = keras.Sequential(
        [keras.Input((latent_dim + (num_classes or 0),), name="z")]
        + [keras.layers.Dense(units, activation, name=f"hidden_{i + 1}") for i, units in enumerate(reversed(hidden_units))]
        + [keras.layers.Dense(input_dim * likelihoods.params_per_feature(likelihood), name="params")],
        name="decoder",
    )
    return VAE(encoder, decoder, latent_dim, likelihood=likelihood, num_classes=num_classes, **kwargs)


@_renamed.keywords(num_samples="iwae_samples")
def conv_vae(input_shape, filters, latent_dim, likelihood="bernoulli", kernel_size=3, activation="relu", num_classes=None, **kwargs):
    """A VAE with convolutional bodies for images of shape `(height, width, channels)`.

    The encoder halves the resolution with each stride-2 `Conv2D` in
    `filters` and flattens; the decoder projects z with a Dense layer and
    doubles the resolution back with stride-2 `Conv2DTranspose` layers, the
    last one linear with `channels` outputs.

    Args:
        input_shape: `(height, width, channels)`; height and width must be
            divisible by `2 ** len(filters)`.
        filters: tuple of positive ints, the encoder's convolutions.
        latent_dim: positive int.
        likelihood: `"bernoulli"` (default, for [0, 1] pixels) or `"gaussian"`.
        kernel_size: positive int.
        activation: activation of the hidden layers.
        num_classes: None, or the number of classes of a conditional VAE.
        **kwargs: further `tfvae.VAE` arguments.

    Returns:
        A built `tfvae.VAE`.

    Raises:
        ValueError: for an invalid argument.

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> model = tfvae.conv_vae((8, 8, 1), (16, 32), 4)
    >>> model.decode(np.zeros((2, 4), "float32")).shape
    TensorShape([2, 8, 8, 1])
    """
    input_shape = _checks.int_tuple("input_shape", input_shape, allow_empty=False)
    if len(input_shape) != 3:
        raise ValueError(_checks.invalid("input_shape", "(height, width, channels)", input_shape))
    filters = _checks.int_tuple("filters", filters, allow_empty=False)
    latent_dim = _checks.positive_int("latent_dim", latent_dim)
    kernel_size = _checks.positive_int("kernel_size", kernel_size)
    num_classes = None if num_classes is None else _checks.positive_int("num_classes", num_classes)
    height, width, channels = input_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            _checks.invalid(
                "input_shape",
                f"height and width divisible by 2**len(filters) = {factor}",
                input_shape,
                "Pad the images or use fewer filters",
            )
        )
    conv = dict(kernel_size=kernel_size, strides=2, padding="same")
    encoder = keras.Sequential(
        [keras.Input(input_shape, name="x")]
        + [keras.layers.Conv2D(f, activation=activation, name=f"conv_{i + 1}", **conv) for i, f in enumerate(filters)]
        + [keras.layers.Flatten(name="flatten")],
        name="encoder",
    )
    decoder = keras.Sequential(
        [
            keras.Input((latent_dim + (num_classes or 0),), name="z"),
            keras.layers.Dense(height // factor * width // factor * filters[-1], activation, name="project"),
            keras.layers.Reshape((height // factor, width // factor, filters[-1]), name="reshape"),
        ]
        + [
            keras.layers.Conv2DTranspose(f, activation=activation, name=f"deconv_{i + 1}", **conv)
            for i, f in enumerate(reversed(filters[:-1]))
        ]
        + [keras.layers.Conv2DTranspose(channels * likelihoods.params_per_feature(likelihood), name="params",
                                        **conv)],
        name="decoder",
    )
    return VAE(encoder, decoder, latent_dim, likelihood=likelihood, num_classes=num_classes, **kwargs)
