"""The metadata that travels with every artifact: how to feed the model.

A SavedModel carries it as `assets/tfvae.json`; a `.tflite` file as a JSON
sidecar beside it (`encoder.tflite` -> `encoder.tflite.json`). Example for
an int8 encoder with int8 I/O:

    {
      "format": "tfvae-export", "format_version": 1,
      "artifact": "tflite", "part": "encoder", "quantize": "int8", "int8_io": true,
      "tfvae_version": "0.1.0", "tensorflow_version": "2.21.0",
      "model": {"event_shape": [64], "latent_dim": 8, "likelihood": "bernoulli",
                "num_classes": null,
                "preprocessing": {"dataset": "digits", "offset": 0.0, "divisor": 16.0,
                                  "binarize_threshold": 0.5}},
      "how_to_feed": ["x = (raw - offset) / divisor with offset=0.0, divisor=16.0", ...],
      "signatures": {"encode": {
        "inputs":  {"x": {"index": 0, "shape": [-1, 64], "dtype": "int8",
                          "quantization": {"scale": 0.0039, "zero_point": -128},
                          "description": "..."}},
        "outputs": {"z_mean": {...}, "z_log_sigma": {...}}}}
    }

A shape of -1 is the dynamic batch size. `quantization` is null for float
tensors; for an int8 tensor, real = (q - zero_point) * scale.
"""

import json
import os
import pathlib

import numpy as np

from export import _endpoints

FORMAT = "tfvae-export"
FORMAT_VERSION = 1
#: File name of the metadata inside a SavedModel's `assets/` directory.
ASSET_NAME = "tfvae.json"


def sidecar_path(tflite_path):
    """`encoder.tflite` -> `encoder.tflite.json`, the sidecar's path."""
    return pathlib.Path(os.fspath(tflite_path) + ".json")


def asset_path(saved_model_dir):
    """`DIR` -> `DIR/assets/tfvae.json`."""
    return pathlib.Path(saved_model_dir) / "assets" / ASSET_NAME


def tensor(name, shape, dtype, index=None, scale=None, zero_point=None):
    """The metadata entry of one input or output tensor.

    Args:
        name: the tensor's signature name (`"x"`, `"z_mean"`, ...).
        shape: a sequence with -1 (or None) for the dynamic batch size.
        dtype: a numpy or TensorFlow dtype, or its name.
        index: the LiteRT tensor index, if any.
        scale, zero_point: the quantization of an integer tensor, if any.

    Returns:
        A JSON-serializable dict.
    """
    entry = {
        "shape": [-1 if size is None else int(size) for size in shape],
        "dtype": np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).name,
        "quantization": None,
        "description": _endpoints.TENSOR_DOCS.get(name, ""),
    }
    if index is not None:
        entry = {"index": int(index), **entry}
    if scale:
        entry["quantization"] = {
            "scale": float(scale),
            "zero_point": int(zero_point),
            "to_integer": "q = clamp(round(value / scale) + zero_point, -128, 127)",
            "to_real": "value = (q - zero_point) * scale",
        }
    return entry


def model_info(model):
    """What a client must know about the model: shapes, likelihood, preprocessing."""
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "event_shape": [int(size) for size in model.event_shape],
        "latent_dim": int(model.latent_dim),
        "likelihood": model.likelihood_name,
        "num_classes": model.num_classes,
        "preprocessing": model.preprocessing,
    }


def build(model, artifact, signatures, **options):
    """The full metadata of one artifact.

    Args:
        model: the exported `tfvae.VAE`.
        artifact: `"saved_model"` or `"tflite"`.
        signatures: `{name: {"inputs": {...}, "outputs": {...}}}` of `tensor` entries.
        **options: export options to record (`part`, `quantize`, ...).

    Returns:
        A JSON-serializable dict (see the module docstring).
    """
    import tensorflow as tf
    import tfvae

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artifact": artifact,
        **options,
        "tfvae_version": tfvae.__version__,
        "tensorflow_version": tf.__version__,
        "model": model_info(model),
        "how_to_feed": how_to_feed(model),
        "signatures": signatures,
    }


def how_to_feed(model):
    """Plain-language steps from raw data to the input `x`, and what comes out."""
    steps = []
    prep = model.preprocessing or {}
    if "offset" in prep or "divisor" in prep:
        steps.append(
            f"x = (raw - offset) / divisor with offset={_short(prep.get('offset', 0.0))}, "
            f"divisor={_short(prep.get('divisor', 1.0))} (per feature if lists)"
        )
    if prep.get("binarize_threshold") is not None:
        steps.append(f"then x = 1.0 where x > {prep['binarize_threshold']} else 0.0")
    if not prep:
        steps.append("x is fed as is (the model records no preprocessing)")
    shape = ", ".join(str(size) for size in model.event_shape)
    steps.append(f"feed x as float32 of shape (batch, {shape}); any batch size")
    if model.num_classes:
        steps.append(f"feed labels as int32 class ids of shape (batch,), in [0, {model.num_classes})")
    steps.append("int8 tensors (if any): convert with their quantization scale and zero_point")
    steps.append("posterior sigma = exp(z_log_sigma); a latent sample is z = z_mean + sigma * N(0, 1)")
    return steps


def dumps(metadata):
    """The metadata as indented JSON text."""
    return json.dumps(metadata, indent=2, sort_keys=False) + "\n"


def read(path):
    """Reads the metadata of an artifact.

    Args:
        path: a SavedModel directory or a `.tflite` file written by `export`.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: if the artifact has no metadata.

    Example:

    >>> export.metadata.read("runs/digits/export/encoder_int8.tflite")["signatures"]["encode"]["inputs"]
    """
    path = pathlib.Path(path)
    source = asset_path(path) if path.is_dir() else sidecar_path(path)
    with open(source) as handle:
        return json.load(handle)


def _short(value):
    if isinstance(value, list) and len(value) > 4:
        return f"[{', '.join(map(str, value[:3]))}, ... ({len(value)} values)]"
    return value
