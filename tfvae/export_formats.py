"""`VAE.export(format=...)`: dispatch to the exporters installed as entry-point plugins.

The formats are found under the entry-point group `tfvae.export_formats`
(the `export` package of this project registers `tf_saved_model` and
`litert`), so `tfvae` does not import `export`.
"""

from importlib import metadata as importlib_metadata

from tfvae import _checks

#: Entry-point group of the formats `VAE.export` writes (declared by the `export` package in setup.py).
EXPORT_FORMATS_GROUP = "tfvae.export_formats"


def export(model, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
    """Writes `model` in `format` with the plugin registered for it; see `tfvae.VAE.export`.

    Returns:
        The `export.ExportReport` of the artifact.

    Raises:
        ValueError: for a format no plugin provides (Keras' `"onnx"`,
            `"openvino"`, `"torch"` included: the message says what to use),
            or no installed exporter.
    """
    formats = {entry.name: entry for entry in importlib_metadata.entry_points(group=EXPORT_FORMATS_GROUP)}
    if format not in formats:
        known = sorted(formats) or ["tf_saved_model", "litert"]
        hint = (
            "For ONNX or OpenVINO, export format='tf_saved_model' and convert the SavedModel with that "
            "tool's TensorFlow importer (for example tf2onnx); its signatures take raw x"
            if format in ("onnx", "openvino", "torch") else ""
        )
        if not formats:
            hint = ("No exporter is installed: install tfvae with its `export` package "
                    "(pip install -e . from the project)")
        raise ValueError(_checks.invalid("format", f"one of {known}", format, hint))
    return formats[format].load()(model, filepath, verbose=verbose, input_signature=input_signature, **kwargs)
