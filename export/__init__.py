"""Export trained tfvae models for serving: TensorFlow SavedModel and LiteRT.

    import tfvae, export
    model = tfvae.load_model("runs/digits/model.keras")
    print(export.saved_model(model, "out/saved_model"))
    print(export.tflite(model, "out/encoder_int8.tflite", part="encoder",
                        quantize="int8", representative_data=x_train, parity_data=x_test))

Every artifact carries its metadata (`assets/tfvae.json` in a SavedModel, a
`.tflite.json` sidecar beside a LiteRT file; read it with
`export.metadata.read(path)`), is written atomically, and comes with an
`ExportReport` of its size, signatures, ops and parity with Keras. The
`tfvae-export` command (`python -m export`) does the same from a shell.

TensorFlow is imported on first use of an exporter, so `import export` and
the command line's argument checks stay fast.
"""

import importlib
import sys
import types

__all__ = ["saved_model", "tflite", "ExportReport", "format_table", "metadata"]

_LAZY = {
    "saved_model": ("export.saved_model", "saved_model"),
    "tflite": ("export.tflite", "tflite"),
    "ExportReport": ("export.report", "ExportReport"),
    "format_table": ("export.report", "format_table"),
    "metadata": ("export.metadata", None),
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


class _FunctionModule(types.ModuleType):
    """A module that calls its namesake function: `export.tflite` is a module and a function.

    `export.saved_model` and `export.tflite` name both a submodule and the
    function in it. Attribute access on the package gives the function, but
    an earlier `import export.tflite` binds the module instead; with this
    class the module is callable too, so `export.tflite(...)` works either way.
    """

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def _make_callable(module_name):
    sys.modules[module_name].__class__ = _FunctionModule
