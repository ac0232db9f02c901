"""The formats `tfvae.VAE.export(filepath, format=...)` dispatches to, registered as plugins.

`setup.py` declares them under the entry-point group `tfvae.export_formats`
(`tf_saved_model = export:tf_saved_model_format`, `litert =
export:litert_format`); `VAE.export` looks the format up there, so `tfvae`
never imports `export`. Each function takes Keras' `Model.export`
arguments, checks them, and calls the exporter that `tfvae-export` uses, so
the artifacts (signatures, metadata, parity checks) are the same.
"""

from export import _saved_model, _tflite
from tfvae import _checks


def tf_saved_model_format(model, filepath, verbose=None, input_signature=None, overwrite=True, parity_data=None,
                          normal_data=None):
    """`model.export(filepath)`: the SavedModel of `export.saved_model`, with all its signatures.

    Args:
        model: a `tfvae.VAE`.
        filepath: the SavedModel directory.
        verbose: print the export report (size, signatures, parity); None means True.
        input_signature: must be None: the signatures are tfvae's own (raw x in).
        overwrite: replace an existing directory (True, as Keras does).
        parity_data: raw `x` (or `(x, labels)`), for parity.
        normal_data: raw `x` (or `(x, labels)`) known to be normal, unused
            by training, for the score thresholds.

    Returns:
        An `export.ExportReport`.

    Raises:
        ValueError: for an `input_signature`, or what `export.saved_model` raises.

    Example:

    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)   # then model.fit
    >>> report = model.export("saved_model", parity_data=x_test, normal_data=x_test)   # prints the report
    SavedModel: saved_model (... KiB)
    signatures:
      encode(x float32[-1, 64]) -> ...
    ...
    score thresholds on 360 rows of normal_data: FPR 1% -> ...
    """
    _no_input_signature(input_signature)
    result = _saved_model.saved_model(model, filepath, overwrite=overwrite, parity_data=parity_data,
                                      normal_data=normal_data)
    _report(result, verbose)
    return result


def litert_format(model, filepath, verbose=None, input_signature=None, overwrite=True, quantize=None,
                  representative_data=None, parity_data=None, per_channel=False, normal_data=None):
    """`model.export("vae.tflite", format="litert")`: the five-signature LiteRT model.

    The same file as `export.tflite(model, filepath, part="vae", ...)` and
    `tfvae-export all`'s `vae.tflite` / `vae_int8.tflite`: signatures
    encode, decode, reconstruct, score and sample, raw x in, metadata inside.

    Args:
        model: a `tfvae.VAE`.
        filepath: the `.tflite` file.
        verbose: print the export report (size, signatures, parity); None means True.
        input_signature: must be None: the signatures are tfvae's own.
        overwrite: replace an existing file (True, as Keras does).
        quantize: None (float32), `"float16"`, `"dynamic"` or `"int8"`.
        representative_data: raw training `x` (or `(x, labels)`), required for `"int8"`.
        parity_data: raw `x`, for parity.
        per_channel: int8 weights per channel instead of per tensor.
        normal_data: raw `x` known to be normal, unused by training, for the score thresholds.

    Returns:
        An `export.ExportReport`.

    Raises:
        ValueError: for an `input_signature`, or what `export.tflite` raises.

    Example:

    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)
    >>> model.compile()
    >>> history = model.fit(tfvae.datasets.apply_preprocessing(x_train, binarize), epochs=2, verbose=0)
    >>> report = model.export("vae_int8.tflite", format="litert", quantize="int8",
    ...                       representative_data=x_train, parity_data=x_test)   # prints the report
    vae int8: vae_int8.tflite (... KiB)
    signatures:
      decode(z float32[-1, 2]) -> x_mean float32[-1, 64]
      encode(x float32[-1, 64]) -> z_log_sigma float32[-1, 2], z_mean float32[-1, 2]
      reconstruct(x float32[-1, 64]) -> x_mean float32[-1, 64]
      sample(epsilon float32[-1, 2]) -> x_mean float32[-1, 64]
      score(x float32[-1, 64]) -> score float32[-1]
    ...
    """
    _no_input_signature(input_signature)
    result = _tflite.tflite(model, filepath, part="vae", quantize=quantize, representative_data=representative_data,
                            parity_data=parity_data, per_channel=per_channel, overwrite=overwrite,
                            normal_data=normal_data)
    _report(result, verbose)
    return result


def _no_input_signature(input_signature):
    if input_signature is not None:
        raise ValueError(_checks.invalid(
            "input_signature", "None: a tfvae.VAE exports its own signatures (raw x in; see export.metadata)",
            input_signature))


def _report(result, verbose):
    if verbose is None or _checks.boolean("verbose", verbose):
        print(result)
