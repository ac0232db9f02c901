"""What an export produced: size, signatures, ops, parity with the Keras model, score thresholds.

`saved_model()` and `tflite()` return an `ExportReport`; `str(report)` is a
readable summary and `format_table(reports)` puts several side by side (the
`tfvae-export all` table).

Parity is measured on the written artifact, run by TensorFlow (SavedModel)
or the LiteRT interpreter (.tflite), against the Keras model's own methods
on the same inputs: for every output, the largest absolute difference. For
a quantized encoder, the error of `z_mean` is also given in units of the
posterior's standard deviation, |dz_mean| / exp(z_log_sigma) (max and mean
over all rows and latent dimensions): below 0.1 means the quantization
moves an embedding by less than a tenth of the model's own uncertainty.
For `score`, the Spearman rank correlation with Keras' score says whether
the artifact orders inputs as the model does (what anomaly detection needs).
"""

import dataclasses
import os
import textwrap

import numpy as np


@dataclasses.dataclass
class ParityRow:
    """Agreement of one output of one signature with the Keras model.

    Attributes:
        signature: e.g. `"encode"`.
        output: e.g. `"z_mean"`.
        max_abs_error: max |exported - keras| over all rows and features.
        reference_max: max |keras|, the output's scale.
        p99_abs_error: the 99th percentile of |exported - keras|.
        sigma_max, sigma_mean, sigma_p99: for `z_mean` of quantized encoders,
            the error in units of the posterior sigma (max, mean, 99th
            percentile); None otherwise.
        max_relative_error: max |exported - keras| / |keras|, for `score`.
        spearman: Spearman rank correlation with Keras, for `score`.
    """

    signature: str
    output: str
    max_abs_error: float
    reference_max: float
    p99_abs_error: float = None
    sigma_max: float = None
    sigma_mean: float = None
    sigma_p99: float = None
    max_relative_error: float = None
    spearman: float = None


@dataclasses.dataclass
class ExportReport:
    """The result of one export.

    Attributes:
        path: the artifact's path (a directory for a SavedModel).
        format: `"saved_model"` or `"tflite"`.
        size_bytes: the artifact's size (all files of a SavedModel).
        signatures: `{name: {"inputs": {...}, "outputs": {...}}}` as in the metadata.
        ops: `{op name: count}` of the artifact's graph.
        parity: a list of `ParityRow`.
        parity_data: what the parity was measured on, e.g. `"360 rows of parity_data"`.
        metadata_path: where the metadata JSON was written.
        part, quantize, int8_io: the LiteRT options (None for a SavedModel).
        thresholds: the score thresholds stored in the metadata (see
            `export.metadata.score_thresholds`), or None.
    """

    path: str
    format: str
    size_bytes: int
    signatures: dict
    ops: dict
    parity: list
    parity_data: str
    metadata_path: str
    part: str = None
    quantize: str = None
    int8_io: bool = None
    thresholds: dict = None

    @property
    def name(self):
        """A short label: `"SavedModel"`, `"encoder float32"`, `"encoder int8"`, ..."""
        if self.format == "saved_model":
            return "SavedModel"
        return f"{self.part} {self.quantize or 'float32'}" + (" (int8 I/O)" if self.int8_io else "")

    def max_abs_error(self, output=None):
        """The largest parity error, over all rows, or of one output name."""
        return max(row.max_abs_error for row in self.parity if output in (None, row.output))

    def __str__(self):
        lines = [
            f"{self.name}: {self.path} ({human_size(self.size_bytes)})",
            "signatures:",
            *(f"  {_signature_line(name, spec)}" for name, spec in self.signatures.items()),
            textwrap.fill(", ".join(f"{op} x{count}" for op, count in sorted(self.ops.items())), width=100,
                          initial_indent="ops: ", subsequent_indent="  ", break_on_hyphens=False),
            f"metadata: {self.metadata_path}",
            f"parity with the Keras model on {self.parity_data}:",
            *("  " + line for line in _parity_table(self.parity)),
        ]
        if self.thresholds:
            lines.append(format_thresholds(self.thresholds))
        return "\n".join(lines)


def compare(signature, reference, exported, sigma_units=False):
    """Parity rows of one signature.

    Args:
        signature: the signature's name.
        reference: `{output: array}` from the Keras model.
        exported: `{output: array}` from the artifact (dequantized).
        sigma_units: also give the `z_mean` error in posterior sigmas
            (needs `z_mean` and `z_log_sigma` in `reference`).

    Returns:
        A list of `ParityRow`, one per output of `reference`.
    """
    rows = []
    for output, expected in reference.items():
        error = np.abs(np.asarray(exported[output], np.float64) - expected)
        row = ParityRow(signature, output, _max(error), _max(np.abs(expected)), _percentile(error))
        if sigma_units and output == "z_mean":
            relative = error / np.exp(reference["z_log_sigma"].astype(np.float64))
            row.sigma_max, row.sigma_mean = _max(relative), float(np.mean(relative))
            row.sigma_p99 = _percentile(relative)
        if output == "score":
            row.max_relative_error = _max(error / np.maximum(np.abs(expected), 1e-30))
            row.spearman = spearman(exported[output], expected)
        rows.append(row)
    return rows


def spearman(a, b):
    """The Spearman rank correlation of two 1-D arrays (ties get their average rank)."""
    from scipy import stats

    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:  # undefined: report it as such, without a warning
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def format_thresholds(thresholds):
    """`"score thresholds on ...: FPR 1% -> 41.2 (1.1% on rows that did not set it), ...; flag ..."`."""
    realized = thresholds.get("realized_false_positive_rate", {})
    values = ", ".join(
        f"FPR {float(rate):.0%} -> {value:.4g}"
        + (f" ({realized[rate]:.1%} on rows that did not set it)" if rate in realized else "")
        for rate, value in thresholds["by_false_positive_rate"].items())
    return f"score thresholds on {thresholds['computed_on']}: {values}; flag an input when score > threshold"


def check_plausible(rows, relative_limit, what):
    """Refuses an artifact whose outputs are garbage.

    Converters have produced models that run and return values near 1e38
    without an error; this catches that before anything is written.

    Args:
        rows: `ParityRow`s of the artifact.
        relative_limit: the largest acceptable `max_abs_error / max(1, reference_max)`.
        what: the artifact's name, for the message.

    Raises:
        RuntimeError: if an error is non-finite or above the limit.
    """
    for row in rows:
        if not np.isfinite(row.max_abs_error) or row.max_abs_error > relative_limit * max(1.0, row.reference_max):
            raise RuntimeError(
                f"The exported {what} disagrees with the Keras model: {row.signature}.{row.output} is off by "
                f"{row.max_abs_error:.3g} (outputs up to {row.reference_max:.3g}); nothing was written. "
                "This is a converter fault; please report it with the model."
            )


def format_table(reports):
    """One table for several reports: size, size relative to float32, and parity.

    Args:
        reports: a sequence of `ExportReport`.

    Returns:
        The table as a string, one row per artifact and output.
    """
    float_sizes = {r.part: r.size_bytes for r in reports if r.format == "tflite" and r.quantize is None}
    header = ("artifact", "size", "vs float32", "output", "max |err|", _NOTE)
    rows = []
    for report in reports:
        base = float_sizes.get(report.part) if report.format == "tflite" else None
        ratio = f"{report.size_bytes / base:.1%}" if base else "-"
        for index, row in enumerate(report.parity):
            first = index == 0
            rows.append((
                report.name if first else "",
                human_size(report.size_bytes) if first else "",
                ratio if first else "",
                f"{row.signature}.{row.output}",
                f"{row.max_abs_error:.2e}",
                _note(row),
            ))
    return "\n".join(_columns([header] + rows) + [""] + format_ops(reports))


#: The builtin ops Arm NN 20.08's TfLite parser reads (Debian's `python3-pyarmnn`, an engine on many Arm
#: phones and boards), from the parse functions of its `libarmnnTfLiteParser.so.22`. The encoder and
#: decoder files keep to them (`bench/armnn_check.py`); the score files need LOG and comparisons.
ARMNN_20_08_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "BATCH_TO_SPACE_ND", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "DIV", "EXP", "FULLY_CONNECTED", "HARD_SWISH", "L2_NORMALIZATION", "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D",
    "MAXIMUM", "MEAN", "MINIMUM", "MUL", "NEG", "PACK", "PAD", "QUANTIZE", "RELU", "RELU6", "RESHAPE",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SLICE", "SOFTMAX", "SPACE_TO_BATCH_ND", "SPLIT", "SPLIT_V",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "TANH", "TRANSPOSE_CONV", "TRANSPOSE", "UNPACK",
})


def format_ops(reports):
    """One line per LiteRT file: its ops, and those Arm NN 20.08's TfLite parser lacks (`ARMNN_20_08_OPS`).

    Args:
        reports: a sequence of `ExportReport`; SavedModels are skipped.

    Returns:
        A list of lines, a heading first.
    """
    lines = ["ops per file (beyond Arm NN 20.08's TfLite parser: marked *):"]
    for report in reports:
        if report.format != "tflite":
            continue
        ops = ", ".join(f"{op}{'*' if op not in ARMNN_20_08_OPS else ''} x{count}"
                        for op, count in sorted(report.ops.items()))
        lines.append(textwrap.fill(ops, width=110, initial_indent=f"  {os.path.basename(report.path)}: ",
                                   subsequent_indent="    ", break_on_hyphens=False))
    return lines


def human_size(size):
    """`12345` -> `"12.1 KiB"`."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024


def _max(values):
    return float(np.max(values)) if np.size(values) else 0.0


def _percentile(values, percentile=99):
    return float(np.percentile(values, percentile)) if np.size(values) else 0.0


_NOTE = "z_mean err / sigma (99th pct., max); score rel. err, Spearman"


def _note(row):
    if row.sigma_max is not None:
        return f"{row.sigma_p99:.4f}, {row.sigma_max:.4f}"
    if row.spearman is not None:
        return f"{row.max_relative_error:.2e}, {row.spearman:.4f}"
    return ""


def _parity_table(rows):
    header = ("signature", "output", "max |err|", _NOTE)
    body = [(row.signature, row.output, f"{row.max_abs_error:.2e}", _note(row)) for row in rows]
    return _columns([header] + body)


def _columns(rows):
    if not any(row[-1] for row in rows[1:]):  # no note column without quantized encoders or scores
        rows = [row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _signature_line(name, spec):
    def tensors(entries):
        return ", ".join(f"{key} {entry['dtype']}{list(entry['shape'])}" for key, entry in entries.items())

    return f"{name}({tensors(spec['inputs'])}) -> {tensors(spec['outputs'])}"
