"""Export trained tfvae models for serving: TensorFlow SavedModel and LiteRT.

    import tfvae, export
    model = tfvae.load_model("runs/digits/model.keras")
    (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    print(export.saved_model(model, "out/saved_model", parity_data=x_test))
    print(export.tflite(model, "out/vae_int8.tflite", part="vae", quantize="int8",
                        representative_data=x_train, parity_data=x_test,
                        normal_data=x_test))   # rows known to be normal set the thresholds
    export.metadata.read("out/vae_int8.tflite")["score_thresholds"]   # no TensorFlow needed

`model.export(path)` and `model.export(path, format="litert")` (Keras' own
API) write the same SavedModel and five-signature LiteRT model; the
`tfvae-export` command (`python -m export`) writes them all for a run folder.
Every artifact takes raw input (the graph preprocesses it), carries its
metadata, is checked against Keras and written atomically, and comes with
an `ExportReport`.

Where each module's job is (the module map): docs/design.md.

This file imports neither TensorFlow nor tfvae: the public functions are
loaded on first use, so `import export` and `export.metadata.read` work in a
process without TensorFlow.
"""

import importlib

__all__ = ["saved_model", "tflite", "ExportReport", "format_table", "metadata", "tf_saved_model_format",
           "litert_format", "LiteRTRunner", "describe", "acceptance"]

_LAZY = {
    "saved_model": ("export._saved_model", "saved_model"),
    "tflite": ("export._tflite", "tflite"),
    "tf_saved_model_format": ("export._keras_formats", "tf_saved_model_format"),
    "litert_format": ("export._keras_formats", "litert_format"),
    "ExportReport": ("export.report", "ExportReport"),
    "format_table": ("export.report", "format_table"),
    "LiteRTRunner": ("export.litert_runner", "LiteRTRunner"),
    "metadata": ("export.metadata", None),
    "describe": ("export.describe", None),
    "acceptance": ("export.acceptance", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
