"""Cross-layer weight equalization: per-tensor int8 weights with almost per-channel accuracy.

Per-tensor quantization gives every output channel of a layer the step of
its widest channel, so narrow channels lose precision. ReLU is positively
homogeneous (relu(s * a) = s * relu(a) for s > 0), so channel i of a Dense
layer can be scaled by s_i, and the next layer's input row i by 1 / s_i,
without changing what the network computes. Choosing
s_i = sqrt(r1_i * r2_i) / r1_i (r1_i: the largest |weight| of output channel
i, r2_i: of the next layer's input row i) makes both ranges equal and the
per-tensor steps fit every channel.

It reduces the int8 encoder's z_mean error with per-tensor weights at the
same file size (`export.tflite`'s parity report shows the error of each
file; per-channel weights reach it too, in a larger file).

References:
    Nagel, van Baalen, Blankevoort, Welling (2019). Data-Free Quantization
    Through Weight Equalization and Bias Correction. ICCV.
"""

import keras
import numpy as np

#: Activations that commute with a positive scale of their input.
_HOMOGENEOUS = ("relu", "linear")
#: Equalization passes: each pass balances every pair once; a few converge.
_PASSES = 3


def equalized_copy(model):
    """A copy of `model` whose Dense chains are equalized; `model` itself is untouched.

    The encoder's Dense layers are balanced pairwise and the last one with
    the two heads (`z_mean_head`, `z_log_sigma_head`), the decoder's Dense
    layers pairwise. A body that holds anything but Dense layers is left
    as it is. The copy computes the same function up to float rounding.

    Args:
        model: a `tfvae.VAE`.

    Returns:
        A new `tfvae.VAE`; or `model` itself when neither body is a Dense
        chain, or when Keras cannot rebuild the model from its config (a
        custom layer that is not registered): then there is nothing to
        equalize, or no copy to equalize safely.

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> from export._equalize import equalized_copy
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> x = np.random.default_rng(0).random((8, 6), "float32")
    >>> copy = equalized_copy(model)
    >>> np.allclose(copy.encode(x)[0], model.encode(x)[0], atol=1e-5)   # the same function
    True
    >>> np.allclose(copy.encoder.weights[0], model.encoder.weights[0])   # other weights
    False
    """
    if not (_dense_chain(model.encoder) or _dense_chain(model.decoder)):
        return model
    try:
        copy = type(model).from_config(model.get_config())
    except (TypeError, ValueError):  # e.g. an unregistered custom layer in a body
        return model
    copy.set_weights(model.get_weights())
    encoder, decoder = _dense_chain(copy.encoder), _dense_chain(copy.decoder)
    for _ in range(_PASSES):
        if encoder:
            for first, second in zip(encoder, encoder[1:]):
                _balance(first, [second])
            _balance(encoder[-1], [copy.z_mean_head, copy.z_log_sigma_head])
        if decoder:
            for first, second in zip(decoder, decoder[1:]):
                _balance(first, [second])
    return copy


def _dense_chain(body):
    """The Dense layers of a body made only of Dense layers (in order), else []."""
    layers = [layer for layer in getattr(body, "layers", [body]) if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not all(isinstance(layer, keras.layers.Dense) for layer in layers):
        return []
    return layers


def _balance(first, nexts):
    """Scales the output channels of `first` and the matching input rows of each layer in `nexts`."""
    if getattr(first.activation, "__name__", None) not in _HOMOGENEOUS:
        return
    kernel = first.kernel.numpy()
    units = kernel.shape[1]
    r1 = np.abs(kernel).max(axis=0)
    # Heads of a conditional model read the features and then the one-hot label: rows [:units] only.
    r2 = np.max([np.abs(layer.kernel.numpy()[:units]).max(axis=1) for layer in nexts], axis=0)
    usable = (r1 > 0) & (r2 > 0)
    scale = np.where(usable, np.sqrt(r1 * r2) / np.where(usable, r1, 1.0), 1.0).astype(kernel.dtype)
    first.kernel.assign(kernel * scale)
    if first.use_bias:
        first.bias.assign(first.bias.numpy() * scale)
    for layer in nexts:
        next_kernel = layer.kernel.numpy()
        next_kernel[:units] /= scale[:, None]
        layer.kernel.assign(next_kernel)
