"""Export the encoder or decoder of a tfvae.VAE as a LiteRT (`.tflite`) model.

    part      signature  inputs                            outputs
    encoder   encode     x float32 (b, *event) [, labels]  z_mean, z_log_sigma float32 (b, latent)
    decoder   decode     z float32 (b, latent) [, labels]  x_mean float32 (b, *event)

`labels` (conditional models) are int32 class ids `(b,)`. The batch size is
dynamic: resize the input (`interpreter.resize_tensor_input`) or call the
signature runner with any batch. With `int8_io=True` the float tensors are
int8 instead; their scale and zero point are in the JSON sidecar.

Quantization (`quantize`):

    None       float32, identical to Keras up to float rounding
    "float16"  weights stored as float16 (about half the size), computed in float32
    "dynamic"  weights int8, activations quantized on the fly (about a quarter)
    "int8"     full integer: weights and activations int8, ranges calibrated
               on `representative_data` (training examples); runs on
               integer-only accelerators. Optional int8 inputs and outputs.

Only TFLite builtin ops are allowed: a model that would need Select-TF
(Flex) or custom ops is refused with a `ValueError`, since most mobile
runtimes do not ship them.
"""

import re
import tempfile
import warnings

import tensorflow as tf

import export as _package
from export import _checks, _data, _endpoints, _litert, metadata, report
from tfvae import _atomic

QUANTIZE = (None, "float16", "dynamic", "int8")
PARTS = tuple(_endpoints.PARTS)
#: Largest parity error accepted before refusing to write, relative to max(1, |output|):
#: float32 must match; quantized models only have to be plausible (not garbage).
_PLAUSIBLE = {None: 1e-3, "float16": 1.0, "dynamic": 1.0, "int8": 1.0}


def tflite(model, path, *, part="encoder", quantize=None, representative_data=None, int8_io=False,
           overwrite=False, parity_data=None):
    """Writes the encoder or decoder of `model` as a `.tflite` file plus a JSON sidecar.

    The sidecar `PATH.json` (see `export.metadata`) tells a mobile developer
    how to feed the model: input shape and dtype, preprocessing, quantization
    parameters of every input and output. Both files are written to
    temporary siblings and renamed into place after the converted model was
    run by the LiteRT interpreter and compared with Keras.

    Args:
        model: a `tfvae.VAE`.
        path: the `.tflite` file to create.
        part: `"encoder"` (x -> z_mean, z_log_sigma) or `"decoder"` (z -> x_mean).
        quantize: None, `"float16"`, `"dynamic"` or `"int8"` (see the module docstring).
        representative_data: training examples `x` or `(x, labels)`,
            required for `"int8"` (at most 2,000 rows are used). For the
            decoder they are encoded into latent points: posterior means,
            posterior samples and as many prior draws.
        int8_io: with `"int8"`, make the float inputs and outputs int8 too.
        overwrite: replace existing files at `path` and its sidecar.
        parity_data: `x` or `(x, labels)` to measure parity on (e.g. the
            test split); default: `representative_data`, else 64 synthetic rows.

    Returns:
        An `export.report.ExportReport`.

    Raises:
        TypeError: if `model` is not a `tfvae.VAE` or an argument has the wrong type.
        ValueError: for a bad `part`, `quantize`, `path`, data of the wrong
            shape, `"int8"` without `representative_data`, `int8_io` without
            `"int8"`, or a model needing Select-TF (Flex) or custom ops.
        FileExistsError: if `path` or its sidecar exists and `overwrite` is False.
        RuntimeError: if the conversion fails or its result disagrees with Keras.

    Example:

    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", binarize=True)
    >>> report = export.tflite(model, "encoder_int8.tflite", quantize="int8",
    ...                        representative_data=x_train, parity_data=x_test)
    >>> print(report)
    """
    model = _checks.vae(model)
    path = _checks.path("path", path, "file", ".tflite")
    part = _checks.one_of("part", part, PARTS)
    quantize = _checks.one_of("quantize", quantize, QUANTIZE)
    int8_io = _checks.boolean("int8_io", int8_io)
    overwrite = _checks.boolean("overwrite", overwrite)
    if int8_io and quantize != "int8":
        raise ValueError(_checks.invalid("int8_io", "False unless quantize='int8'", int8_io))
    calibration = _calibration_examples(model, representative_data, quantize)
    examples, parity_source = _data.parity_examples(model, parity_data, calibration, "representative_data")
    targets = [path, metadata.sidecar_path(path)]
    _atomic.check_targets(targets, overwrite)

    endpoint = _endpoints.PARTS[part]
    what = f"{part} ({quantize or 'float32'})"
    content = _convert(model, endpoint, quantize, calibration, int8_io, what)
    op_counts = _litert.ops(content)
    _refuse_non_builtin(op_counts, what)
    feeds = _endpoints.feeds(model, endpoint, examples)
    rows = report.compare(
        endpoint.name,
        _endpoints.reference(model, endpoint, feeds),
        _litert.run(content, endpoint.name, feeds),
        sigma_units=quantize is not None and part == "encoder",
    )
    report.check_plausible(rows, _PLAUSIBLE[quantize], what)
    signatures = _litert.signatures(content)
    info = metadata.build(model, "tflite", signatures, file=path.name, part=part,
                          quantize=quantize or "float32", int8_io=int8_io)
    with _atomic.Staging(targets, overwrite) as staging:
        _atomic.write_bytes(staging.temp(targets[0]), content)
        _atomic.write_text(staging.temp(targets[1]), metadata.dumps(info))
    return report.ExportReport(
        path=str(path), format="tflite", size_bytes=len(content), signatures=signatures, ops=op_counts,
        parity=rows, parity_data=parity_source + (" (as latent points)" if part == "decoder" else ""),
        metadata_path=str(targets[1]), part=part, quantize=quantize, int8_io=int8_io,
    )


def _calibration_examples(model, representative_data, quantize):
    if representative_data is None:
        if quantize == "int8":
            raise ValueError(
                _checks.invalid(
                    "representative_data",
                    "training examples x (or (x, labels)) for quantize='int8'",
                    None,
                    "Full integer quantization calibrates its ranges on them: pass e.g. "
                    "representative_data=x_train (tfvae-export: --data digits)",
                )
            )
        return None
    examples = _data.as_examples(model, representative_data, "representative_data")
    return _data.subsample(examples, _data.CALIBRATION_ROWS)


def _convert(model, endpoint, quantize, calibration, int8_io, what):
    """Converts one endpoint through a SavedModel written by `keras.export.ExportArchive`."""
    with tempfile.TemporaryDirectory(prefix="tfvae-export-") as scratch:
        _endpoints.archive(model, [endpoint]).write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[endpoint.name])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = _representative(model, endpoint, calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        try:
            with warnings.catch_warnings():
                # The converter's own calibrator still uses tf.lite.Interpreter; nothing to act on.
                warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
                return converter.convert()
        except Exception as error:  # tf.lite ConverterError and friends
            raise _conversion_error(error, what) from None


def _representative(model, endpoint, calibration):
    feeds = _endpoints.feeds(model, endpoint, calibration)

    def rows():
        for index in range(len(next(iter(feeds.values())))):
            yield {name: value[index:index + 1] for name, value in feeds.items()}

    return rows


def _conversion_error(error, what):
    text = str(error)
    missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if missing:
        return ValueError(_flex_message(missing, what))
    first = next((line for line in text.splitlines() if "error" in line.lower()), text.splitlines()[0] if text else "")
    hint = " Full integer quantization needs every op to have an int8 kernel; try quantize='dynamic'." \
        if "int8" in what else ""
    return RuntimeError(f"LiteRT conversion of the {what} failed: {first.strip()[:500]}.{hint}")


def _refuse_non_builtin(op_counts, what):
    extra = _litert.non_builtin(op_counts)
    if extra:
        raise ValueError(_flex_message(extra, what))


def _flex_message(ops, what):
    return (
        f"The {what} cannot be written with TFLite builtin ops only: it uses {', '.join(ops)}, which LiteRT "
        "runs only as Select-TF (Flex) or custom ops that most mobile runtimes lack. Replace the layers using "
        "them with ones made of builtin ops (see the LiteRT op compatibility list) and train again. "
        "Nothing was written."
    )


_package._make_callable(__name__)  # `export.tflite` may be this module: make it call tflite()
