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
    sample       epsilon float32 (b, latent) [, u float32 (b,)] -> x_mean float32 (b, *event)

x is RAW data (digits: pixel values 0..16; uint8 `(b, height, width,
channels)` pixels for an image model, see `_examples.raw_dtype`): the graph
applies the model's preprocessing with SUB, MUL, MINIMUM and MAXIMUM only
(`_endpoints.preprocess`). Every file carries its metadata
(`export.metadata.read`).

Quantization (`quantize`):

    None       float32, identical to Keras up to float rounding
    "float16"  weights stored as float16 (about half the size), computed in float32
    "dynamic"  weights int8, activations quantized on the fly (about a quarter)
    "int8"     weights and activations int8, ranges calibrated per signature
               on `representative_data` (training rows; decoders on their
               latent points, `sample` on the prior's noise). Weights per tensor
               (what older runtimes and NPU delegates accept), after
               cross-layer equalization of Dense chains (`export._equalize`),
               unless `per_channel=True`. The raw-input preprocessing
               (`_endpoints.RAW_SCOPE`) runs in float32 before the first
               QUANTIZE, and the score's density terms
               (`_endpoints.FLOAT_SCOPE`) stay float32: quantized, they lose
               the score's ranking. When int8 posterior heads miss the
               acceptance rule, they stay float32 too. Optional int8 input and
               output for the decoder.

Every quantized file meets `export.acceptance.RULE` on the parity rows,
or is not written (`export.acceptance.NotAccepted` says what to do).

Only TFLite builtin ops are allowed: a model that would need Select-TF
(Flex) or custom ops is refused with a `ValueError`, since most mobile
runtimes do not ship them.
"""

import re
import tempfile
import warnings

import tensorflow as tf

import tfvae
from export import _endpoints, _equalize, _examples, _litert, _plain_io, _thresholds, acceptance, describe, metadata
from export import report
from tfvae import _atomic, _checks, _tested_versions

QUANTIZE = (None, "float16", "dynamic", "int8")
PARTS = tuple(_endpoints.PARTS)
#: Largest parity error of a float32 file, relative to max(1, |output|): float rounding only.
#: Quantized files meet `export.acceptance.RULE` instead.
_FLOAT32_TOLERANCE = 1e-3


def tflite(model, path, *, part="encoder", quantize=None, representative_data=None, int8_io=False,
           per_channel=False, overwrite=False, parity_data=None, normal_data=None):
    """Writes one part of `model` as a `.tflite` file that carries its metadata.

    The file is written to a temporary sibling and renamed into place after
    the converted model was run by the LiteRT interpreter and every
    signature compared with Keras. With `normal_data` (rows known to be
    normal that training did not use), the metadata also holds the
    anomaly-score thresholds at false-positive rates of 1% and 5%, computed
    with the file's own `score` (Keras' score for parts without one), and
    their realized rates (`export._thresholds`).

    Args:
        model: a `tfvae.VAE`.
        path: the `.tflite` file to create.
        part: `"vae"` (all five signatures in one file), `"encoder"`,
            `"score"` or `"decoder"` (one signature each); see the module docstring.
        quantize: None, `"float16"`, `"dynamic"` or `"int8"` (see the module docstring).
        representative_data: raw training examples `x` or `(x, labels)`,
            required for `"int8"` (at most 2,000 rows are used).
        int8_io: with `"int8"`, make the input `z` and output `x_mean` of a
            decoder int8 too (parts taking raw x keep it float32).
        per_channel: with `"int8"`, quantize weights per output channel
            instead of per tensor.
        overwrite: replace an existing file at `path`.
        parity_data: raw `x` or `(x, labels)` to measure parity on (e.g.
            the test split; anomalies welcome); default:
            `representative_data`, else 64 synthetic rows.
        normal_data: raw `x` or `(x, labels)` known to be normal and unused
            by training (e.g. held-out training rows), for the thresholds;
            default: no thresholds.

    Returns:
        An `export.ExportReport`.

    Raises:
        TypeError: if `model` is not a `tfvae.VAE` or an argument has the wrong type.
        ValueError: for a bad `part`, `quantize`, `path`, data of the wrong
            shape, `"int8"` without `representative_data`, `int8_io`
            without `"int8"` or with a part other than `"decoder"`, or a model
            needing Select-TF (Flex) or custom ops.
        FileExistsError: if `path` exists and `overwrite` is False.
        RuntimeError: if the conversion fails or a float32 result disagrees with Keras.
        export.acceptance.NotAccepted: (a RuntimeError) if a quantized file
            does not meet the acceptance rule; nothing is written.

    Example:

    >>> import export
    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)
    >>> model.compile()
    >>> history = model.fit(tfvae.datasets.apply_preprocessing(x_train, binarize), epochs=2, verbose=0)
    >>> report = export.tflite(model, "vae_int8.tflite", part="vae", quantize="int8",
    ...                        representative_data=x_train, parity_data=x_test)
    >>> print(report)
    vae int8: vae_int8.tflite (... KiB)
    ...
    parity with the Keras model on 360 rows of parity_data:
      signature    output       max |err|  z_mean err / sigma (99th pct., max); score rel. err, Spearman
      encode       z_mean       ...
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
    if int8_io and part != "decoder":
        raise ValueError(_checks.invalid(
            "int8_io", f"False for part={part!r}, whose raw input x is preprocessed in float32 before the first "
            "QUANTIZE (one int8 scale cannot serve raw features of different ranges)", int8_io,
            "Use part='decoder' for int8 inputs and outputs"))
    calibration = _calibration_examples(model, representative_data, quantize)
    examples, parity_source = _examples.parity_examples(model, parity_data, calibration, "representative_data")
    _atomic.check_targets([path], overwrite)

    what = f"{part} ({quantize or 'float32'})"
    # Per-tensor int8 weights lose little once the layers are equalized (see export._equalize);
    # the converted copy computes what `model` computes, which parity below checks against `model`.
    converted = _equalize.equalized_copy(model) if quantize == "int8" and not per_channel else model

    def convert(float_heads=False):
        content = _convert(converted, endpoints, quantize, calibration, int8_io, per_channel, what, float_heads)
        # Named tensors, primary output first: what a runtime without signatures reads (export._plain_io).
        return _plain_io.apply(content, {e.name: (e.input_names(model), e.outputs) for e in endpoints})

    content = convert()
    op_counts = _litert.ops(content)
    _refuse_non_builtin(op_counts, what)
    rows = _parity(model, content, endpoints, examples, quantize)
    if quantize == "int8" and any(row.signature == "encode" for row, _, _ in acceptance.failures(rows)):
        # int8 posterior heads move z_mean in steps of its range / 256, which for a narrow posterior can
        # exceed a tenth of its sigma: the heads then stay float32 (features x latent float weights).
        content = convert(float_heads=True)
        op_counts = _litert.ops(content)
        rows = _parity(model, content, endpoints, examples, quantize)
    if quantize is None:
        report.check_plausible(rows, _FLOAT32_TOLERANCE, what)
    else:
        acceptance.check(rows, f"{what} file {path.name}", parity_source, quantize)
    run_score = (lambda feeds: _litert.run(content, _endpoints.SCORE.name, feeds)["score"]) \
        if _endpoints.SCORE in endpoints else None
    thresholds = _thresholds.artifact_thresholds(model, normal_data, run_score)
    signatures = _litert.signatures(content)
    options = {"file": path.name, "part": part, "quantize": quantize or "float32", "int8_io": int8_io,
               "subgraph_0": _plain_io.subgraph_0(content)}
    if quantize == "int8":
        options["weights"] = "per-channel" if per_channel else "per-tensor, cross-layer equalized"
        options["float_ops"] = _float_ops(content, endpoints)
    info = metadata.build(model, "tflite", signatures, _versions(), **options, score_thresholds=thresholds)
    content = metadata.embed(content, info)
    with _atomic.Staging([path], overwrite) as staging:
        _atomic.write_bytes(staging.temp(path), content)
    describe.write(path.parent)  # the folder's FILES.md and files.json, read from its files
    return report.ExportReport(
        path=str(path), format="tflite", size_bytes=len(content), signatures=signatures, ops=op_counts,
        parity=rows, parity_data=parity_source, metadata_path=str(path), part=part, quantize=quantize,
        int8_io=int8_io, thresholds=thresholds,
    )


def _parity(model, content, endpoints, examples, quantize):
    """Parity rows of every signature of `content` against Keras."""
    rows = []
    for endpoint in endpoints:
        feeds = _endpoints.feeds(model, endpoint, examples)
        outputs = _litert.run(content, endpoint.name, feeds)
        rows += report.compare(endpoint.name, _endpoints.reference(model, endpoint, feeds), outputs,
                               sigma_units=quantize is not None and endpoint is _endpoints.ENCODE)
    return rows


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


def _convert(model, endpoints, quantize, calibration, int8_io, per_channel, what, float_heads=False):
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
                if quantize == "int8" and any("x" in endpoint.inputs for endpoint in endpoints):
                    return _quantize_keeping_float(converter, endpoints, float_heads)
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


def _quantize_keeping_float(converter, endpoints, float_heads=False):
    """Full-integer quantization except the ops that must stay float32.

    Those are the raw-input preprocessing (`_endpoints.RAW_SCOPE`: one int8
    scale cannot serve raw columns whose ranges differ by 10**4, and the
    score's range check reads raw values) and the score's likelihood sum and
    KL term (`_endpoints.FLOAT_SCOPE`) with its output. TensorFlow's public
    `QuantizationDebugger` calibrates once and re-quantizes with a deny list
    of nodes (their output tensor names), which it leaves in float32 with
    QUANTIZE / DEQUANTIZE at their borders.
    """
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                         debug_dataset=converter.representative_dataset)
    denied = _float_nodes(debugger.calibrated_model, endpoints, float_heads)
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied)
    return debugger.get_nondebug_quantized_model()


def _float_nodes(content, endpoints, float_heads=False):
    """Output tensor names of the ops in RAW_SCOPE and FLOAT_SCOPE of every signature, and of the score's
    output; with `float_heads`, also of `encode`'s outputs (the ops computing them are the posterior heads).
    """
    # A tensor name is its op's name ("outer/raw/sub"; a scope entered twice becomes "raw_1"), or several
    # joined by ";" when the converter fused ops.
    scope = re.compile(rf"(^|/)({_endpoints.RAW_SCOPE}|{_endpoints.FLOAT_SCOPE})(_\d+)?/")
    nodes = []
    for endpoint in endpoints:
        names = _litert.tensor_names(content, endpoint.name)
        nodes += [name for name in names["operators"] if any(scope.search(part) for part in name.split(";"))]
        if endpoint is _endpoints.SCORE or (float_heads and endpoint is _endpoints.ENCODE):
            nodes += names["outputs"]
    return nodes


def _float_ops(content, endpoints):
    """`{signature: {op: count}}` of what an int8 file computes in float32, for the metadata.

    Facts about the file only; why these ops stay float32 is told in
    docs/export.md. None for a decoder, which takes no raw input and
    computes nothing in float32 but its output's DEQUANTIZE.
    """
    if not any("x" in endpoint.inputs for endpoint in endpoints):
        return None
    return {endpoint.name: _litert.float_ops(content, endpoint.name) for endpoint in endpoints}


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
