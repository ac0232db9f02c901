"""LiteRT (`.tflite`) export: the five-signature model and single-signature files.

    part      signatures (one subgraph each)                  for
    vae       encode, decode, reconstruct, score, sample      apps with a signature runner (LiteRT, tflite-runtime)
    encoder   encode                                           runtimes that load one subgraph only
    score     score                                            the same, for anomaly detection
    decoder   decode                                           the same, for generation

Signature inputs and outputs (`labels`, int32 class ids `(b,)`, is added
for conditional models; the batch size is dynamic):

    encode       x float32 (b, *event)     -> z_mean, z_log_sigma float32 (b, latent)
    decode       z float32 (b, latent)     -> x_mean float32 (b, *event)
    reconstruct  x float32 (b, *event)     -> x_mean float32 (b, *event)
    score        x float32 (b, *event)     -> score float32 (b,)
    sample       epsilon float32 (b, latent) -> x_mean float32 (b, *event)

x is RAW data (digits: pixel values 0..16): the graph applies the model's
preprocessing. Every file carries its metadata (`export.metadata.read`).

Quantization (`quantize`):

    None       float32, identical to Keras up to float rounding
    "float16"  weights stored as float16 (about half the size), computed in float32
    "dynamic"  weights int8, activations quantized on the fly (about a quarter)
    "int8"     weights and activations int8, ranges calibrated per signature
               on `representative_data` (training rows; decoders on their
               latent points, `sample` on N(0, I) draws). Weights per tensor
               (what older runtimes and NPU delegates accept), after
               cross-layer equalization of Dense chains (`export._equalize`),
               unless `per_channel=True`. The score's likelihood sum and KL term
               (ops in `_endpoints.FLOAT_SCOPE`) stay float32: quantized, the
               score ranked the digits test set almost at random (Spearman
               0.12 against Keras). Optional int8 inputs and outputs for
               the encoder and decoder.

Only TFLite builtin ops are allowed: a model that would need Select-TF
(Flex) or custom ops is refused with a `ValueError`, since most mobile
runtimes do not ship them.
"""

import re
import tempfile
import warnings

import tensorflow as tf

import tfvae
from export import _endpoints, _equalize, _examples, _litert, metadata, report
from tfvae import _atomic, _checks, _tested_versions

QUANTIZE = (None, "float16", "dynamic", "int8")
PARTS = tuple(_endpoints.PARTS)
#: Largest parity error accepted before refusing to write, relative to max(1, |output|):
#: float32 must match; quantized models only have to be plausible (not garbage).
_PLAUSIBLE = {None: 1e-3, "float16": 1.0, "dynamic": 1.0, "int8": 1.0}


def tflite(model, path, *, part="encoder", quantize=None, representative_data=None, int8_io=False,
           per_channel=False, overwrite=False, parity_data=None):
    """Writes one part of `model` as a `.tflite` file that carries its metadata.

    The file is written to a temporary sibling and renamed into place after
    the converted model was run by the LiteRT interpreter and every
    signature compared with Keras. With `parity_data` (data training did not
    use, such as the test split), the metadata also holds the anomaly-score
    thresholds at false-positive rates of 1% and 5%, computed with the
    file's own `score` (Keras' score for parts without one).

    Args:
        model: a `tfvae.VAE`.
        path: the `.tflite` file to create.
        part: `"vae"` (all five signatures in one file), `"encoder"`,
            `"score"` or `"decoder"` (one signature each); see the module docstring.
        quantize: None, `"float16"`, `"dynamic"` or `"int8"` (see the module docstring).
        representative_data: raw training examples `x` or `(x, labels)`,
            required for `"int8"` (at most 2,000 rows are used).
        int8_io: with `"int8"`, make the float inputs and outputs of an
            encoder or decoder int8 too.
        per_channel: with `"int8"`, quantize weights per output channel
            instead of per tensor.
        overwrite: replace an existing file at `path`.
        parity_data: raw `x` or `(x, labels)` to measure parity on and to
            compute thresholds from (e.g. the test split); default:
            `representative_data` without thresholds, else 64 synthetic rows.

    Returns:
        An `export.ExportReport`.

    Raises:
        TypeError: if `model` is not a `tfvae.VAE` or an argument has the wrong type.
        ValueError: for a bad `part`, `quantize`, `path`, data of the wrong
            shape, `"int8"` without `representative_data`, `int8_io`
            without `"int8"` or with a part holding `score`, or a model
            needing Select-TF (Flex) or custom ops.
        FileExistsError: if `path` exists and `overwrite` is False.
        RuntimeError: if the conversion fails or its result disagrees with Keras.

    Example:

    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)  # raw pixels 0..16
    >>> report = export.tflite(model, "vae_int8.tflite", part="vae", quantize="int8",
    ...                        representative_data=x_train, parity_data=x_test)
    >>> print(report)
    """
    model = _checks.instance("model", model, tfvae.VAE, "a tfvae.VAE (from tfvae.mlp_vae, tfvae.conv_vae or "
                             "tfvae.load_model('model.keras'))", "Load a saved model with `tfvae.load_model(path)` first")
    path = _checks.path("path", path, "file", ".tflite")
    part = _checks.one_of("part", part, PARTS)
    quantize = _checks.one_of("quantize", quantize, QUANTIZE)
    int8_io = _checks.boolean("int8_io", int8_io)
    per_channel = _checks.boolean("per_channel", per_channel)
    overwrite = _checks.boolean("overwrite", overwrite)
    endpoints = _endpoints.PARTS[part]
    if int8_io and quantize != "int8":
        raise ValueError(_checks.invalid("int8_io", "False unless quantize='int8'", int8_io))
    if int8_io and _endpoints.SCORE in endpoints:
        raise ValueError(_checks.invalid("int8_io", f"False for part={part!r}, whose score outputs float32",
                                         int8_io, "Use part='encoder' or 'decoder' for int8 inputs and outputs"))
    calibration = _calibration_examples(model, representative_data, quantize)
    examples, parity_source = _examples.parity_examples(model, parity_data, calibration, "representative_data")
    _atomic.check_targets([path], overwrite)

    what = f"{part} ({quantize or 'float32'})"
    # Per-tensor int8 weights lose little once the layers are equalized (see export._equalize);
    # the converted copy computes what `model` computes, which parity below checks against `model`.
    converted = _equalize.equalized_copy(model) if quantize == "int8" and not per_channel else model
    content = _convert(converted, endpoints, quantize, calibration, int8_io, per_channel, what)
    op_counts = _litert.ops(content)
    _refuse_non_builtin(op_counts, what)
    rows, scores = [], None
    for endpoint in endpoints:
        feeds = _endpoints.feeds(model, endpoint, examples)
        outputs = _litert.run(content, endpoint.name, feeds)
        rows += report.compare(endpoint.name, _endpoints.reference(model, endpoint, feeds), outputs,
                               sigma_units=quantize is not None and endpoint is _endpoints.ENCODE)
        if endpoint is _endpoints.SCORE:
            scores = outputs["score"]
    report.check_plausible(rows, _PLAUSIBLE[quantize], what)
    thresholds = None
    if parity_data is not None:
        if scores is None:  # a part without score: the thresholds of Keras' score
            feeds = _endpoints.feeds(model, _endpoints.SCORE, examples)
            scores = _endpoints.reference(model, _endpoints.SCORE, feeds)["score"]
        thresholds = metadata.score_thresholds(scores, parity_source)
    signatures = _litert.signatures(content)
    options = {"file": path.name, "part": part, "quantize": quantize or "float32", "int8_io": int8_io}
    if quantize == "int8":
        options["weights"] = "per-channel" if per_channel else "per-tensor, cross-layer equalized"
        options["float_ops"] = _float_ops(content, endpoints)
    info = metadata.build(model, "tflite", signatures, _versions(), **options, score_thresholds=thresholds)
    content = metadata.embed(content, info)
    with _atomic.Staging([path], overwrite) as staging:
        _atomic.write_bytes(staging.temp(path), content)
    return report.ExportReport(
        path=str(path), format="tflite", size_bytes=len(content), signatures=signatures, ops=op_counts,
        parity=rows, parity_data=parity_source, metadata_path=str(path), part=part, quantize=quantize,
        int8_io=int8_io, thresholds=thresholds,
    )


def _versions():
    return {"tfvae_version": tfvae.__version__, "tensorflow_version": tf.__version__}


def _calibration_examples(model, representative_data, quantize):
    if representative_data is None:
        if quantize == "int8":
            raise ValueError(
                _checks.invalid(
                    "representative_data",
                    "raw training examples x (or (x, labels)) for quantize='int8'",
                    None,
                    "Full integer quantization calibrates its ranges on them: pass e.g. "
                    "representative_data=x_train (tfvae-export: --data digits)",
                )
            )
        return None
    examples = _examples.as_examples(model, representative_data, "representative_data")
    return _examples.subsample(examples, _examples.CALIBRATION_ROWS)


def _convert(model, endpoints, quantize, calibration, int8_io, per_channel, what):
    """Converts `endpoints` through a SavedModel written by `keras.export.ExportArchive`."""
    keys = [endpoint.name for endpoint in endpoints]
    with tempfile.TemporaryDirectory(prefix="tfvae-export-") as scratch:
        _endpoints.archive(model, endpoints).write_out(scratch, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=keys)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = _representative(model, endpoints, calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            _set_per_channel(converter, per_channel)
            if int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        try:
            with warnings.catch_warnings():
                # The converter's calibrator and debugger still use tf.lite.Interpreter; nothing to act on.
                warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
                if quantize == "int8" and _endpoints.SCORE in endpoints:
                    return _quantize_keeping_float(converter)
                return converter.convert()
        except Exception as error:  # tf.lite ConverterError and friends
            raise _conversion_error(error, what) from None


def _set_per_channel(converter, per_channel):
    """Chooses per-channel (True, the converter's default) or per-tensor int8 weights.

    No public option chooses per-tensor weights (TF 2.21): the converter's
    `_experimental_disable_per_channel` does. It is set only on a TensorFlow
    of `tfvae._tested_versions.TESTED_TENSORFLOW`; elsewhere per-tensor
    weights are refused with a clear error (per-channel needs nothing).
    """
    if per_channel:
        return
    if not (_tested_versions.tensorflow_is_tested() and hasattr(converter, "_experimental_disable_per_channel")):
        raise RuntimeError(
            f"This TensorFlow ({tf.__version__}) has no per-tensor weight quantization option tfvae was tested "
            f"with (TensorFlow {', '.join(_tested_versions.TESTED_TENSORFLOW)}); pass per_channel=True"
        )
    converter._experimental_disable_per_channel = True  # private-ok: see docs/design.md, "Private names"


def _quantize_keeping_float(converter):
    """Full-integer quantization except the ops of `_endpoints.FLOAT_SCOPE` (the score's sums).

    TensorFlow's public `QuantizationDebugger` calibrates once and
    re-quantizes with a deny list of nodes (their output tensor names), which
    it leaves in float32 with DEQUANTIZE before them.
    """
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                         debug_dataset=converter.representative_dataset)
    denied = _score_float_nodes(debugger.calibrated_model)
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied)
    return debugger.get_nondebug_quantized_model()


def _score_float_nodes(content):
    """Output tensor names of the score subgraph's ops in FLOAT_SCOPE, and of its output."""
    names = _litert.tensor_names(content, _endpoints.SCORE.name)
    return [name for name in names["operators"] if _endpoints.FLOAT_SCOPE in name] + names["outputs"]


def _float_ops(content, endpoints):
    """What an int8 file computes in float32, and what that costs, for the metadata."""
    if _endpoints.SCORE not in endpoints:
        return None
    float_ops = _litert.float_ops(content, _endpoints.SCORE.name)
    return {
        "score": float_ops,
        "why": "the likelihood sum over every feature and the KL term lose the score's ranking in int8 "
               "(Spearman 0.12 against Keras on the digits test set)",
        "cost": "on an integer-only accelerator the networks run int8 on the accelerator; these few elementwise "
                "ops and sums (O(features + latent) per example) run on the CPU after one DEQUANTIZE: one "
                "extra delegate partition",
    }


def _representative(model, endpoints, calibration):
    """Calibration rows per signature: `(signature key, {input: one row})` pairs, as the converter takes them."""
    per_endpoint = [(endpoint.name, _endpoints.feeds(model, endpoint, calibration)) for endpoint in endpoints]

    def rows():
        for key, feeds in per_endpoint:
            for index in range(len(next(iter(feeds.values())))):
                yield key, {name: value[index:index + 1] for name, value in feeds.items()}

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
