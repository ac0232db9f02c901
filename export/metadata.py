"""Everything an exported artifact carries about itself, and how to read it.

A SavedModel carries its metadata as `assets/tfvae.json`; a `.tflite` file
inside itself, as the buffer named `"tfvae"` in the TFLite schema's
`metadata` list (UTF-8 JSON), so an app that has the file has everything:
signatures, tensor shapes, dtypes and int8 quantization, the preprocessing
that the graph already applies, versions and the anomaly-score thresholds.
Every key, its type and unit: `metadata_schema.json` beside this module
(`schema()`). Example (abridged) for `vae_int8.tflite`:

    {
      "format": "tfvae-export", "format_version": 2,
      "artifact": "tflite", "file": "vae_int8.tflite", "part": "vae", "quantize": "int8",
      "signature_runner_required": true, "runtime_note": "several signatures, one subgraph each: ...",
      "subgraph_0": {"signature": "decode", "inputs": ["z"], "outputs": ["x_mean"]},
      "tfvae_version": "0.1.0", "tensorflow_version": "2.21.0",
      "model": {"event_shape": [64], "latent_dim": 8, "likelihood": "bernoulli", "num_classes": null,
                "preprocessing": {"offset": 0.0, "divisor": 16.0, "binarize_threshold": 0.5},
                "weights_sha256": "3f1c..."},
      "input": "raw: the graph applies the preprocessing (x = (raw - offset) / divisor, then ...)",
      "score_thresholds": {"by_false_positive_rate": {"0.01": 41.2, "0.05": 33.0},
                           "realized_false_positive_rate": {"0.01": 0.011, "0.05": 0.05},
                           "computed_on": "360 rows of the digits test split",
                           "rule": "flag an input as anomalous when score > threshold"},
      "weights": "per-tensor, cross-layer equalized",
      "float_ops": {"score": {"EXP": 4, ...}},
      "signatures": {"score": {"inputs": {"x": {"index": 0, "shape": [-1, 64], "dtype": "float32",
                                              "quantization": null}},
                               "outputs": {"score": {...}}}, ...},
      "tensor_docs": {"x": "raw features, ...", "score": "anomaly score: ...", ...}
    }

A shape of -1 is the dynamic batch size. `quantization` is null for float
tensors; for an int8 tensor, real = (q - zero_point) * scale and
q = clamp(round(real / scale) + zero_point, -128, 127).

This module imports neither TensorFlow nor tfvae (only numpy, and the
flatbuffer schema that `ai_edge_litert` ships, when it reads or writes a
`.tflite` file): `export.metadata.read(path)` works on a machine, or in a
process, without TensorFlow.
"""

import hashlib
import json
import os
import pathlib

import numpy as np

FORMAT = "tfvae-export"
FORMAT_VERSION = 2
#: File name of the metadata inside a SavedModel's `assets/` directory.
ASSET_NAME = "tfvae.json"
#: Name of the metadata buffer inside a `.tflite` file (TFLite schema `Model.metadata`).
TFLITE_METADATA_NAME = "tfvae"
#: The JSON schema of the metadata (every key, type and unit), shipped with the package.
SCHEMA_PATH = pathlib.Path(__file__).with_name("metadata_schema.json")

#: `runtime_note` of a file holding several signatures (one subgraph each).
SIGNATURE_RUNNER_NOTE = (
    "several signatures, one subgraph each: run it with a signature-aware runtime (LiteRT/TensorFlow Lite "
    "signature runner, Java runSignature); a runtime that runs the first subgraph only runs subgraph_0's "
    "signature, not the one you want: use the single-signature files instead"
)
#: What every input and output means; copied into the metadata.
TENSOR_DOCS = {
    "x": "raw features, one row per example, as the training data was read (the graph applies model.preprocessing)",
    "labels": "class ids in [0, num_classes), int32, one per row (conditional models only)",
    "z": "latent points, one row per example",
    "epsilon": "standard normal noise N(0, I), one row per sample; the graph turns it into a draw of the "
               "model's prior (for the prior N(0, I), z = epsilon)",
    "u": "uniform noise in [0, 1), one per sample (mixture priors only): picks the prior's mixture component",
    "z_mean": "mean of the posterior q(z|x): the embedding of x",
    "z_log_sigma": "log sigma of q(z|x), bounded: sigma = exp(z_log_sigma)",
    "x_mean": "mean of p(x|z): probabilities in [0, 1] for a Bernoulli likelihood, means for a Gaussian one, "
              "in preprocessed units",
    "score": (
        "anomaly score in nats, deterministic: -log p(x|z_mean) + KL(q(z|x) || p(z)) with the "
        "model's prior and likelihood (tfvae.scores.anomaly_score); higher means less likely under the model; "
        "flag score > threshold"
    ),
}


def schema():
    """The JSON schema of this `FORMAT_VERSION` (a dict), with its stability promise in `description`.

    Example:

    >>> import jsonschema
    >>> import export
    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)   # then model.fit
    >>> report = export.tflite(model, "vae.tflite", part="vae")
    >>> jsonschema.validate(export.metadata.read("vae.tflite"), export.metadata.schema())   # no error: valid
    """
    with open(SCHEMA_PATH) as handle:
        return json.load(handle)


def asset_path(saved_model_dir):
    """`DIR` -> `DIR/assets/tfvae.json`, where a SavedModel keeps its metadata."""
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

    Example:

    >>> from export.metadata import tensor
    >>> tensor("x", [None, 64], "float32")["shape"]
    [-1, 64]
    """
    entry = {
        "shape": [-1 if size is None else int(size) for size in shape],
        "dtype": np.dtype(getattr(dtype, "as_numpy_dtype", dtype)).name,
        "quantization": None,
    }
    if index is not None:
        entry = {"index": int(index), **entry}
    if scale:
        entry["quantization"] = {
            "scale": float(scale),
            "zero_point": int(zero_point),
        }
    return entry


def model_info(model):
    """What a client must know about the model: shapes, likelihood, preprocessing."""
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "event_shape": [int(size) for size in model.event_shape],
        "latent_dim": int(model.latent_dim),
        "likelihood": model.likelihood_name,
        "prior": type(model.prior).registered_name,
        "num_classes": model.num_classes,
        "preprocessing": model.preprocessing,
        "weights_sha256": weights_sha256(model),
    }


def score_thresholds(thresholds, realized, computed_on):
    """The `score_thresholds` entry of an artifact's metadata.

    A threshold at false-positive rate r is the (1 - r) quantile of the
    artifact's scores of rows known to be normal that training did not use
    (`tfvae.anomaly.thresholds`); `realized` is each threshold's measured
    rate on such rows that did not set it (`tfvae.anomaly.realized_rates`:
    on each half of the rows with thresholds set on the other half, the
    mean of the two).

    Args:
        thresholds: `{rate: threshold}`.
        realized: `{rate: realized false-positive rate}`.
        computed_on: a description of the normal rows, e.g.
            `"360 rows of the digits test split"`.

    Returns:
        `{"by_false_positive_rate": {"0.01": t1, "0.05": t5}, "realized_false_positive_rate": {...},
        "computed_on": ..., "rule": ...}`; JSON keys are the rates as strings.

    Example:

    >>> from export.metadata import score_thresholds
    >>> score_thresholds({0.05: 94.05}, {0.05: 0.06}, "100 rows")["by_false_positive_rate"]
    {'0.05': 94.05}
    """
    return {
        "by_false_positive_rate": {str(float(rate)): float(value) for rate, value in thresholds.items()},
        "realized_false_positive_rate": {str(float(rate)): float(value) for rate, value in realized.items()},
        "computed_on": computed_on,
        "rule": "flag an input as anomalous when score > threshold",
    }


def weights_sha256(model):
    """SHA-256 of what the exported graphs compute with: the weights (not the sampling seed) and the preprocessing.

    Two artifacts with the same value came from the same model.
    """
    digest = hashlib.sha256()
    for weight in model.weights:
        if "seed_generator" in weight.path:  # sampling state, not part of any exported function
            continue
        value = np.ascontiguousarray(np.asarray(weight.numpy()))
        digest.update(f"{weight.path}:{value.dtype.name}:{value.shape};".encode())
        digest.update(value.tobytes())
    digest.update(json.dumps(model.preprocessing, sort_keys=True).encode())
    return digest.hexdigest()


def build(model, artifact, signatures, versions, **options):
    """The full metadata of one artifact.

    Args:
        model: the exported `tfvae.VAE`.
        artifact: `"saved_model"` or `"tflite"`.
        signatures: `{name: {"inputs": {...}, "outputs": {...}}}` of `tensor` entries.
        versions: `{"tfvae_version": ..., "tensorflow_version": ...}`.
        **options: what else to record (`part`, `quantize`, `score_thresholds`, ...).

    Returns:
        A JSON-serializable dict (see the module docstring).
    """
    runtime = {}
    if artifact == "tflite":
        runtime = {"signature_runner_required": len(signatures) > 1}
        if len(signatures) > 1:  # a single-signature file reads as the schema's signature_runner_required says
            runtime["runtime_note"] = SIGNATURE_RUNNER_NOTE
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artifact": artifact,
        **options,
        **runtime,
        **versions,
        "model": model_info(model),
        "input": "raw: " + "; ".join(preprocessing_steps(model.preprocessing)),
        "signatures": signatures,
        "tensor_docs": {name: TENSOR_DOCS[name] for name in sorted(_tensor_names(signatures)) if name in TENSOR_DOCS},
    }


def _tensor_names(signatures):
    return {name for spec in signatures.values() for side in ("inputs", "outputs") for name in spec[side]}


def preprocessing_steps(preprocessing):
    """What the graph does to raw x before the network, in words."""
    prep = preprocessing or {}
    steps = []
    if "offset" in prep or "divisor" in prep:
        steps.append(
            f"x = (raw - offset) / divisor with offset={_short(prep.get('offset', 0.0))}, "
            f"divisor={_short(prep.get('divisor', 1.0))}"
        )
    if prep.get("binarize_threshold") is not None:
        steps.append(f"then x = 1.0 where x > {prep['binarize_threshold']} else 0.0")
    if not steps:
        steps.append("none (the model records no preprocessing: x is fed as the model was trained on it)")
    return steps


def dumps(metadata, indent=2):
    """The metadata as JSON text (`indent=None`: one compact line)."""
    separators = None if indent else (",", ":")
    return json.dumps(metadata, indent=indent, separators=separators) + ("\n" if indent else "")


def embed(content, metadata):
    """A copy of the `.tflite` bytes `content` carrying `metadata` in its `metadata` list.

    An earlier `"tfvae"` entry is replaced; the converter's own entries
    (`min_runtime_version`, `CONVERSION_METADATA`) are kept.

    Args:
        content: the model's bytes.
        metadata: a JSON-serializable dict.

    Returns:
        The new model's bytes.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    model.metadata = [entry for entry in (model.metadata or []) if _name(entry.name) != TFLITE_METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(dumps(metadata, indent=None).encode("utf-8"), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def from_tflite(content):
    """The metadata embedded in `.tflite` bytes, or None if there is none."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(content), 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if _name(entry.Name()) == TFLITE_METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return json.loads(bytes(data).decode("utf-8"))
    return None


def read(path):
    """Reads the metadata of an artifact, without TensorFlow.

    Args:
        path: a SavedModel directory or a `.tflite` file written by `export`.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: if there is no such artifact, or it carries no
            tfvae metadata.

    Example:

    >>> import export
    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)   # then model.fit
    >>> report = export.tflite(model, "vae.tflite", part="vae", normal_data=x_test)
    >>> export.metadata.read("vae.tflite")["score_thresholds"]   # set on the file's own scores
    {'by_false_positive_rate': {'0.01': ..., '0.05': ...}, 'realized_false_positive_rate': {...},
     'computed_on': '360 rows of normal_data', 'rule': 'flag an input as anomalous when score > threshold'}
    """
    path = pathlib.Path(os.fspath(path))
    if path.is_dir():
        with open(asset_path(path)) as handle:
            return json.load(handle)
    with open(path, "rb") as handle:
        content = handle.read()
    try:
        found = from_tflite(content)
    except Exception as error:  # noqa: BLE001 - a flatbuffer parser fails in many ways on foreign bytes
        raise FileNotFoundError(f"{os.fspath(path)!r} is not a LiteRT (.tflite) model: {error}") from None
    if found is None:
        raise FileNotFoundError(f"{os.fspath(path)!r} carries no tfvae metadata (not written by tfvae's export)")
    return found


def _name(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _short(value):
    if isinstance(value, list) and len(value) > 4:
        return f"[{', '.join(map(str, value[:3]))}, ... ({len(value)} values)]"
    return value
