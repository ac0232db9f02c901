"""The one acceptance rule for quantized files (`float16`, `dynamic`, `int8`).

A quantized file is written only if, on the parity rows (data training did
not use, or the calibration rows), every output it computes is close enough
to the Keras model's to serve the same purpose:

    output                                   measure                                         limit
    encode.z_mean                            |dz_mean| / posterior sigma, 99th percentile    <= 0.1
    encode.z_log_sigma                       |dz_log_sigma|, 99th percentile                 <= 0.1
    x_mean (decode, reconstruct, sample)     |dx_mean| / max(1, max |x_mean|), 99th pct.     <= 0.1
    score.score                              Spearman rank correlation with Keras             >= 0.99

In words: an embedding moves by less than a tenth of the model's own
uncertainty, that uncertainty by less than 10%, a decoded mean by less
than a tenth of the data's preprocessed range, for 99 rows in 100; and the
file orders inputs by unusualness as the model does. The 99th percentile
(not the maximum) keeps one rounding-unlucky row from refusing a file that
serves every other row well. A float32 file is held to float rounding
instead (`export.report.check_plausible`).

A file that fails is not written; the error names the output, the measure,
the limit and what to do: float16 keeps float arithmetic (half the size),
more calibration rows fix ranges calibrated on too few, and an int8 file
can be skipped while the float ones serve.
"""

import numpy as np

#: The percentile of the parity rows' errors held to the limits.
PERCENTILE = 99
#: Largest 99th-percentile z_mean error, in posterior sigmas.
Z_MEAN_SIGMAS = 0.1
#: Largest 99th-percentile z_log_sigma error (log units: sigma within about 10%).
Z_LOG_SIGMA = 0.1
#: Largest 99th-percentile x_mean error, relative to max(1, max |x_mean|).
X_MEAN = 0.1
#: Smallest Spearman rank correlation of the score with Keras'.
SPEARMAN = 0.99

RULE = (f"z_mean within {Z_MEAN_SIGMAS} posterior sigma and z_log_sigma within {Z_LOG_SIGMA} at the "
        f"{PERCENTILE}th percentile of the parity rows, x_mean within {X_MEAN} of max(1, max |x_mean|) there, "
        f"and the score's Spearman rank correlation with Keras at least {SPEARMAN}")


class NotAccepted(RuntimeError):
    """A quantized file that does not meet the acceptance rule (`RULE`); nothing was written."""


def measure(row):
    """`(value, limit, description)` of one parity row under the rule, or None for an output it does not cover.

    A value of NaN (undefined, e.g. a Spearman correlation of constant
    scores) fails, as does any non-finite error.

    Args:
        row: an `export.report.ParityRow`.

    Returns:
        A tuple, or None.
    """
    if row.output == "z_mean" and row.sigma_p99 is not None:
        return row.sigma_p99, Z_MEAN_SIGMAS, f"off by {row.sigma_p99:.3g} posterior sigma at the {PERCENTILE}th percentile"
    if row.output == "z_log_sigma":
        return row.p99_abs_error, Z_LOG_SIGMA, f"off by {row.p99_abs_error:.3g} at the {PERCENTILE}th percentile"
    if row.output == "x_mean":
        relative = row.p99_abs_error / max(1.0, row.reference_max)
        return relative, X_MEAN, (f"off by {row.p99_abs_error:.3g} (outputs up to {row.reference_max:.3g}) "
                                  f"at the {PERCENTILE}th percentile")
    if row.output == "score":
        return row.spearman, SPEARMAN, f"ranks rows with a Spearman correlation of {row.spearman:.4f} with Keras'"
    return None


def failures(rows):
    """The parity rows that fail the rule, each with its description: `[(row, text, limit)]`."""
    result = []
    for row in rows:
        measured = measure(row)
        if measured is None:
            continue
        value, limit, text = measured
        higher_is_better = row.output == "score"
        passes = value >= limit if higher_is_better else value <= limit
        if not (np.isfinite(row.max_abs_error) and np.isfinite(value) and passes):
            result.append((row, text, limit))
    return result


def check(rows, what, parity_data, quantize="int8"):
    """Raises `NotAccepted` unless every row meets the rule.

    Args:
        rows: the file's `export.report.ParityRow`s.
        what: the file's name in the message, e.g. `"vae int8"`.
        parity_data: what the rows were measured on, e.g. `"72 rows of the bc.csv test split"`.
        quantize: the file's quantization (`"float16"`, `"dynamic"` or `"int8"`), for the advice.

    Raises:
        NotAccepted: naming each failing output, by how much, the limit and what to do.

    Example:

    >>> import numpy as np
    >>> from export import acceptance, report
    >>> keras_outputs = {"z_mean": np.zeros((100, 2)), "z_log_sigma": np.zeros((100, 2))}   # sigma = 1
    >>> int8_outputs = {"z_mean": np.full((100, 2), 0.05), "z_log_sigma": np.zeros((100, 2))}
    >>> rows = report.compare("encode", keras_outputs, int8_outputs, sigma_units=True)
    >>> acceptance.check(rows, "encoder int8 file", "100 rows")   # within 0.1 sigma: passes silently
    >>> int8_outputs["z_mean"] += 0.25
    >>> acceptance.check(report.compare("encode", keras_outputs, int8_outputs, sigma_units=True),
    ...                  "encoder int8 file", "100 rows")
    Traceback (most recent call last):
    export.acceptance.NotAccepted: The encoder int8 file does not meet the acceptance rule for quantized files
    on 100 rows: encode.z_mean off by 0.3 posterior sigma at the 99th percentile (the rule: at most 0.1).
    Nothing was written. Use quantize='float16' ...
    """
    failed = failures(rows)
    if not failed:
        return
    outputs = "; ".join(
        f"{row.signature}.{row.output} {text} (the rule: {'at least' if row.output == 'score' else 'at most'} "
        f"{limit})" for row, text, limit in failed
    )
    raise NotAccepted(
        f"The {what} does not meet the acceptance rule for quantized files on {parity_data}: {outputs}. "
        f"Nothing was written. {_ADVICE[quantize]}"
    )


_ADVICE = {
    "int8": "Use quantize='float16' (float arithmetic, half the size) or 'dynamic', calibrate on more "
            "representative rows of the training data (representative_data), or skip the int8 file: the "
            "float32 file serves the same signatures.",
    "dynamic": "Use quantize='float16' (float arithmetic, half the size), or skip this file: the float32 file "
               "serves the same signatures.",
    "float16": "Use the float32 file (quantize=None): float16 weights are too coarse for this model.",
}
