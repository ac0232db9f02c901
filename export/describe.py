"""What each `.tflite` file of an export folder is, read from the files themselves.

`write(folder)` writes `files.json` (the table) and `FILES.md` (the same, for
people) beside the files; `export.tflite` calls it after every file it
writes, so `tfvae-export all RUN` leaves `RUN/export/FILES.md`. Nothing in
the table is typed by hand: per file, it holds the size, the signatures, the
tensors a runtime without signatures sees (position, name, dtype, shape,
which dimensions may be resized), the raw input's range and layout, the op
counts, `min_runtime_version`, the score thresholds and two verdicts:

- TensorFlow Lite Micro: every op's kernel must accept the type of the
  tensor the op gets. `TFLM_KERNELS` lists, per op, the input types that
  its kernel in tensorflow/tflite-micro accepts, as its source reads (the
  file is named beside each entry); an op missing from the list is
  reported as unchecked, never as supported. Micro runs a file at its
  stored shapes (batch 1): it has no call that resizes an input.
- GPU delegate: the verdict of TensorFlow's own GPU compatibility checker
  (`tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)`, the
  rules of `tensorflow/lite/tools/versioning/gpu_compatibility.cc`), which
  says what the delegate accepts, not how fast it runs.

`phone_doc(table)` renders docs/phone.md from a table (the committed
docs/phone_files.json); tests check that the table matches its files and
that the page equals the renderer's output. To regenerate the page:

    tfvae train --data digits && tfvae-export all runs/digits
    cp runs/digits/export/files.json docs/phone_files.json
    python -m export.describe docs/phone_files.json docs/phone.md
"""

import collections
import contextlib
import io
import json
import pathlib
import sys

import numpy as np

from export import metadata

FILES_JSON = "files.json"
FILES_MD = "FILES.md"
#: Version of the `files.json` layout.
TABLE_VERSION = 1

#: TensorFlow Lite Micro kernels: op -> (position of the input whose type the kernel checks,
#: the types it accepts, its source file under tensorflow/lite/micro/kernels/ in tensorflow/tflite-micro).
TFLM_KERNELS = {
    "ABS": (0, ("float32", "int8", "int16"), "elementwise.cc"),
    "ADD": (0, ("float32", "int32", "int8", "int16"), "add.cc"),
    "CONCATENATION": (0, ("float32", "int32", "int8", "int64"), "concatenation.cc"),
    "CONV_2D": (0, ("float32", "int8", "int16"), "conv.cc"),
    "DEQUANTIZE": (0, ("int8", "int16", "uint8"), "dequantize_common.cc"),
    "EQUAL": (0, ("bool", "float32", "int32", "int64", "int8"), "comparisons.cc"),
    "EXP": (0, ("float32",), "exp.cc"),
    "FULLY_CONNECTED": (0, ("float32", "int8", "int16"), "fully_connected.cc"),
    "GREATER": (0, ("float32", "int32", "int64", "int8", "int16"), "comparisons.cc"),
    "GREATER_EQUAL": (0, ("float32", "int32", "int64", "int8"), "comparisons.cc"),
    "LESS": (0, ("float32", "int32", "int64", "int8"), "comparisons.cc"),
    "LESS_EQUAL": (0, ("float32", "int32", "int64", "int8"), "comparisons.cc"),
    "LOG": (0, ("float32",), "elementwise.cc"),
    "LOGICAL_AND": (0, ("bool",), "logical.cc"),
    "LOGICAL_NOT": (0, ("bool",), "elementwise.cc"),
    "LOGICAL_OR": (0, ("bool",), "logical.cc"),
    "LOGISTIC": (0, ("float32", "int8", "int16"), "logistic.cc"),
    "MAXIMUM": (0, ("float32", "int8", "int16", "int32", "int64"), "maximum_minimum.cc"),
    "MINIMUM": (0, ("float32", "int8", "int16", "int32", "int64"), "maximum_minimum.cc"),
    "MUL": (0, ("float32", "int8", "int16", "int32"), "mul.cc"),
    "NEG": (0, ("float32",), "neg.cc"),
    "NOT_EQUAL": (0, ("bool", "float32", "int32", "int64", "int8"), "comparisons.cc"),
    "QUANTIZE": (0, ("float32", "int32", "int16", "int8", "uint8"), "quantize_common.cc"),
    "REDUCE_MAX": (0, ("float32", "int8"), "reduce_common.cc"),
    "REDUCE_MIN": (0, ("float32", "int8"), "reduce_common.cc"),
    "SELECT_V2": (1, ("float32", "int8", "int16"), "select.cc"),
    "SQUARE": (0, ("float32",), "elementwise.cc"),
    "SQUARED_DIFFERENCE": (0, ("float32", "int32", "int8", "int16"), "squared_difference.cc"),
    "SUB": (0, ("float32", "int32", "int8", "int16"), "sub.cc"),
    "SUM": (0, ("float32", "int8", "int16"), "reduce_common.cc"),
    "TANH": (0, ("float32", "int8", "int16"), "tanh.cc"),
}
#: Builtin ops that TensorFlow Lite Micro has no kernel for (absent from its micro_mutable_op_resolver.h).
TFLM_WITHOUT_KERNEL = ("POW", "REDUCE_ANY", "REDUCE_PROD", "SELECT")
TFLM_SOURCE = "https://github.com/tensorflow/tflite-micro/tree/main/tensorflow/lite/micro/kernels/"


def describe_file(path):
    """The table row of one `.tflite` file written by `export.tflite`.

    Args:
        path: the file.

    Returns:
        A JSON-serializable dict (see the module docstring).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    path = pathlib.Path(path)
    content = path.read_bytes()
    info = metadata.from_tflite(content)
    model = schema.Model.GetRootAs(bytearray(content), 0)
    interpreter = Interpreter(model_content=content)
    operators = _operators(model)
    return {
        "file": path.name,
        "size_bytes": len(content),
        "part": info.get("part"),
        "quantize": info.get("quantize"),
        "signatures": sorted(interpreter.get_signature_list()),
        "subgraphs": model.SubgraphsLength(),
        "signature_runner_required": info.get("signature_runner_required"),
        "subgraph_0": info.get("subgraph_0"),
        "inputs": [_tensor(position, detail) for position, detail in enumerate(interpreter.get_input_details())],
        "outputs": [_tensor(position, detail) for position, detail in enumerate(interpreter.get_output_details())],
        "signature_tensors": {
            key: {side: [_tensor(None, detail) for detail in details.values()]
                  for side, details in (("inputs", runner.get_input_details()),
                                        ("outputs", runner.get_output_details()))}
            for key, runner in ((key, interpreter.get_signature_runner(key))
                                for key in sorted(interpreter.get_signature_list()))
        },
        "raw_input": raw_input(info["model"]) if _takes_x(info) else None,
        "ops": dict(sorted(collections.Counter(name for name, _ in operators).items())),
        "min_runtime_version": _metadata_text(model, "min_runtime_version"),
        "tflm": tflm_support(operators),
        "gpu_delegate": gpu_support(content),
        "probes": probes(interpreter, info) if "score" in interpreter.get_signature_list() else None,
        "score_thresholds": (info.get("score_thresholds") or {}).get("by_false_positive_rate"),
        "thresholds_computed_on": (info.get("score_thresholds") or {}).get("computed_on"),
    }


def table(folder):
    """`{"table_version": 1, "files": [row, ...]}` for the tfvae `.tflite` files in `folder`, by name."""
    rows = []
    for path in sorted(pathlib.Path(folder).glob("*.tflite")):
        try:
            metadata.read(path)
        except FileNotFoundError:  # not a file tfvae wrote: not ours to describe
            continue
        rows.append(describe_file(path))
    return {"table_version": TABLE_VERSION, "files": rows}


def write(folder):
    """Writes `files.json` and `FILES.md` into `folder`, each whole or not at all.

    Returns:
        The table.
    """
    from tfvae import _atomic

    folder = pathlib.Path(folder)
    result = table(folder)
    _atomic.replace_text(folder / FILES_JSON, json.dumps(result, indent=1) + "\n")
    _atomic.replace_text(folder / FILES_MD, render(result))
    return result


def raw_input(model_info):
    """The raw input's layout and the range of values the model was trained on, from its preprocessing."""
    prep = model_info.get("preprocessing") or {}
    event_shape = model_info["event_shape"]
    offset = np.asarray(prep.get("offset", 0.0), np.float64)
    divisor = np.asarray(prep.get("divisor", 1.0), np.float64)
    divisor = np.where(divisor == 0, 1.0, divisor)
    scaled = not (np.all(offset == 0) and np.all(divisor == 1))
    threshold = prep.get("binarize_threshold")
    return {
        "dtype": "float32",
        "shape": [-1, *event_shape],
        "layout": "row-major (C order): one example per row"
                  + (", each an H x W x C image, channels last" if len(event_shape) == 3 else "")
                  + "; a 2-D image is flattened row by row, as numpy's reshape does",
        # Scaling maps [offset, offset + divisor] onto [0, 1]: the range training data had.
        "range": [float(np.min(offset)), float(np.max(offset + divisor))] if scaled else None,
        "binarized_above_raw": (
            float(np.max(offset + threshold * divisor)) if threshold is not None else None
        ),
    }


def probes(interpreter, info):
    """What the file's `score` gives for inputs a phone may send by mistake, beside a blank example.

    Each probe is one row: every feature at the low end of the raw range (a
    blank image), or that row with its first feature NaN, below the range,
    at its top or above it, or every feature 1 (data pre-scaled to 0..1)
    or at the top of the range (a full image).

    Returns:
        `[{"input": words, "score": float or None, "flagged": bool or None}]`,
        flagged at the file's threshold for a false-positive rate of 1%
        (None without thresholds); None for a model with no recorded range.
    """
    raw = raw_input(info["model"])
    if raw["range"] is None:
        return None
    low, high = raw["range"]
    threshold = ((info.get("score_thresholds") or {}).get("by_false_positive_rate") or {}).get("0.01")
    blank = np.full([1, *info["model"]["event_shape"]], low, np.float32)
    rows = [("every feature at the raw minimum (a blank image)", blank)]
    for words, value in (("NaN", np.nan), ("below the raw minimum", low - 1.0), ("at the raw maximum", high),
                         ("above the raw maximum", high + 1.0)):
        row = blank.copy()
        row.reshape(-1)[0] = value
        rows.append((f"the blank image with its first feature {words}", row))
    rows += [("every feature 1 (data pre-scaled to 0..1)", np.ones_like(blank)),
             ("every feature at the raw maximum (a full image)", np.full_like(blank, high))]
    runner = interpreter.get_signature_runner("score")
    dtype = np.dtype(runner.get_input_details()["x"]["dtype"])
    if dtype.kind in "iu":  # integer pixels cannot hold NaN or values outside their type's range
        limits = np.iinfo(dtype)
        rows = [(words, row.astype(dtype)) for words, row in rows
                if np.all(np.isfinite(row)) and limits.min <= row.min() and row.max() <= limits.max]
    result = []
    for words, row in rows:
        score = float(runner(x=row)["score"][0])
        finite = bool(np.isfinite(score))
        result.append({"input": words, "score": score if finite else None,
                       "flagged": None if threshold is None else bool(finite and score > threshold)})
    return result


def tflm_support(operators):
    """TensorFlow Lite Micro's verdict from its kernels' accepted input types.

    Args:
        operators: `[(op name, [input dtype names])]` as the file holds them.

    Returns:
        `{"supported": True/False/None, "refused": [...], "unchecked": [...], "batch": ...}`;
        None when an op is unchecked and none is refused.
    """
    refused, unchecked = set(), set()
    for name, input_types in operators:
        if name in TFLM_WITHOUT_KERNEL:
            refused.add(f"{name} (Micro has no kernel for it)")
            continue
        if name not in TFLM_KERNELS:
            unchecked.add(name)
            continue
        position, accepted, source = TFLM_KERNELS[name]
        dtype = input_types[position] if position < len(input_types) else None
        if dtype not in accepted:
            refused.add(f"{name} on {dtype} (its kernel, {source}, accepts {', '.join(accepted)})")
    return {
        "supported": False if refused else (None if unchecked else True),
        "refused": sorted(refused),
        "unchecked": sorted(unchecked),
        "batch": "the stored shapes (batch 1): Micro cannot resize an input",
    }


def gpu_support(content):
    """The GPU delegate's verdict from TensorFlow's GPU compatibility checker.

    Returns:
        `{"compatible": bool, "findings": [line, ...]}`, or None without TensorFlow.
    """
    try:
        import tensorflow as tf
    except ImportError:
        return None
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        tf.lite.experimental.Analyzer.analyze(model_content=content, gpu_compatibility=True)
    text = printed.getvalue()
    findings = sorted({line.split("GPU COMPATIBILITY WARNING:")[-1].strip()
                       for line in text.splitlines() if "GPU COMPATIBILITY WARNING" in line})
    return {"compatible": "looks compatible with GPU delegate" in text and not findings, "findings": findings}


def _operators(model):
    from ai_edge_litert import schema_py_generated as schema

    builtin_names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    type_names = {code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")}
    result = []
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            operator = subgraph.Operators(op_index)
            code = model.OperatorCodes(operator.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = builtin_names.get(builtin, f"BUILTIN_{builtin}")
            if builtin == schema.BuiltinOperator.CUSTOM:
                name = (code.CustomCode() or b"?").decode()
            types = [type_names.get(subgraph.Tensors(operator.Inputs(k)).Type()) if operator.Inputs(k) >= 0 else None
                     for k in range(operator.InputsLength())]
            result.append((name, types))
    return result


def _takes_x(info):
    return any("x" in spec["inputs"] for spec in info["signatures"].values())


def _metadata_text(model, name):
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name().decode() == name:
            return bytes(model.Buffers(entry.Buffer()).DataAsNumpy()).rstrip(b"\0").decode()
    return None


def _tensor(position, detail):
    scale, zero_point = detail["quantization"]
    shape = [int(size) for size in detail["shape_signature"]]
    entry = {
        "position": position,
        "tensor_index": int(detail["index"]),
        "name": detail["name"],
        "dtype": np.dtype(detail["dtype"]).name,
        "shape": shape,
        "resizable_dims": [axis for axis, size in enumerate(shape) if size == -1],
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
    }
    if position is None:  # a signature's tensor: found by name, not by position
        del entry["position"]
    return entry


# --------------------------------------------------------------------- rendering


def render(result):
    """`FILES.md`: the table as Markdown."""
    lines = ["# The files of this folder", "",
             "Generated by `export.describe` from the files themselves: do not edit.", ""]
    lines += _overview(result["files"])
    for row in result["files"]:
        lines += ["", f"## {row['file']}", ""] + _file_section(row)
    return "\n".join(lines) + "\n"


def _overview(rows):
    lines = ["| file | size (bytes) | signatures | runtime without signatures | min runtime | TFLite Micro | "
             "GPU delegate |", "|---|---:|---|---|---|---|---|"]
    for row in rows:
        plain = "no: needs a signature runner" if row["signature_runner_required"] else "yes"
        lines.append(f"| `{row['file']}` | {row['size_bytes']:,} | {', '.join(row['signatures'])} | {plain} | "
                     f"{row['min_runtime_version']} | {_tflm_word(row['tflm'])} | {_gpu_word(row['gpu_delegate'])} |")
    return lines


def _file_section(row):
    lines = []
    sub = row["subgraph_0"] or {}
    if row["signature_runner_required"]:
        lines.append(f"{row['subgraphs']} subgraphs, one per signature ({', '.join(row['signatures'])}): needs a "
                     "signature-aware runtime. A runtime that runs the first subgraph only runs "
                     f"`{sub.get('signature')}`; the tensors below are that subgraph's.")
    else:
        lines.append(f"One subgraph (`{sub.get('signature')}`): read it by tensor position or name, "
                     "output 0 is the primary output.")
    lines += ["", "| tensor | position | index | name | dtype | shape | resizable dims | quantization |",
              "|---|---:|---:|---|---|---|---|---|"]
    for side in ("inputs", "outputs"):
        for tensor in row[side]:
            quantization = (f"scale {tensor['quantization']['scale']:.6g}, zero point "
                            f"{tensor['quantization']['zero_point']}" if tensor["quantization"] else "none")
            lines.append(f"| {side[:-1]} | {tensor['position']} | {tensor['tensor_index']} | `{tensor['name']}` | "
                         f"{tensor['dtype']} | {_shape(tensor['shape'])} | {_dims(tensor['resizable_dims'])} | "
                         f"{quantization} |")
    if row["signature_runner_required"]:
        lines += ["", "Signatures (a signature runner finds the tensors by name):", ""]
        for key, tensors in row["signature_tensors"].items():
            lines.append(f"- `{key}`: " + ", ".join(f"`{t['name']}` {t['dtype']} {_shape(t['shape'])}"
                                                   for t in tensors["inputs"])
                         + " -> " + ", ".join(f"`{t['name']}` {t['dtype']} {_shape(t['shape'])}"
                                              for t in tensors["outputs"]))
    raw = row["raw_input"]
    if raw:
        lines += ["", f"Raw input `x`: {raw['dtype']} {_shape(raw['shape'])}, {raw['layout']}; "
                  + (f"values {_number(raw['range'][0])} to {_number(raw['range'][1])} as in training"
                     if raw["range"] else "range not recorded (the model has no scaling)")
                  + (f"; the graph binarizes: a raw value above {_number(raw['binarized_above_raw'])} is on, "
                     "anything else off" if raw["binarized_above_raw"] is not None else "") + "."]
    lines += ["", "Ops: " + ", ".join(f"{name} x{count}" for name, count in row["ops"].items()) + "."]
    micro = _tflm_text(row["tflm"])
    if row["signature_runner_required"]:
        micro += f" Micro runs subgraph 0 (`{sub.get('signature')}`) only."
    lines += ["", f"`min_runtime_version`: {row['min_runtime_version']}. TensorFlow Lite Micro: "
              f"{micro} GPU delegate: {_gpu_text(row['gpu_delegate'])}"]
    if row["probes"]:
        lines += ["", "What `score` gives for inputs sent by mistake (one row each):", ""] + _probe_table(row)
    if row["score_thresholds"]:
        rates = ", ".join(f"{value:.4g} at a false-positive rate of {float(rate):.0%}"
                          for rate, value in row["score_thresholds"].items())
        lines += ["", f"Score thresholds (nats): {rates}; computed on {row['thresholds_computed_on']}."]
    return lines


def _probe_table(row):
    threshold = (row["score_thresholds"] or {}).get("0.01")
    blank, at_maximum = row["probes"][0]["score"], row["probes"][3]["score"]
    lines = ["| input | score (nats) | scores as | flagged at the 1% threshold"
             + (f" ({threshold:.4g})" if threshold else "") + " |", "|---|---:|---|---|"]
    for index, probe in enumerate(row["probes"]):
        score = "NaN" if probe["score"] is None else f"{probe['score']:.4g}"
        same = ("" if index in (0, 3, 6) else "the blank image: read as background"
                if probe["score"] == blank else "the first feature at the maximum: read as ink"
                if probe["score"] == at_maximum else "neither")
        flagged = {True: "yes", False: "no", None: "no threshold"}[probe["flagged"]]
        lines.append(f"| {probe['input']} | {score} | {same} | {flagged} |")
    return lines


def _tflm_word(tflm):
    return {True: "yes", False: "no", None: "unchecked"}[tflm["supported"]]


def _tflm_text(tflm):
    if tflm["supported"] is False:
        text = "no: " + "; ".join(tflm["refused"]) + "."
    elif tflm["supported"] is None:
        text = "unchecked ops " + ", ".join(tflm["unchecked"]) + "."
    else:
        text = f"every op's kernel accepts its input type; at {tflm['batch']}."
    return text


def _gpu_word(gpu):
    return "unchecked" if gpu is None else "yes" if gpu["compatible"] else "partly (some ops on the CPU)"


def _gpu_text(gpu):
    if gpu is None:
        return "unchecked (no TensorFlow where the table was made)."
    if gpu["compatible"]:
        return "every op is accepted (TensorFlow's GPU compatibility checker)."
    return "not every op: " + "; ".join(gpu["findings"]) + " (TensorFlow's GPU compatibility checker)."


def _shape(shape):
    return "(" + ", ".join("n" if size == -1 else str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def _dims(dims):
    return ", ".join(str(axis) for axis in dims) or "none"


def _number(value):
    return f"{value:g}"


# ------------------------------------------------------------------ docs/phone.md

#: How docs/phone.md is made; printed at its top.
REGENERATE = ("tfvae train --data digits && tfvae-export all runs/digits && "
              "cp runs/digits/export/files.json docs/phone_files.json && "
              "python -m export.describe docs/phone_files.json docs/phone.md")


def phone_doc(result):
    """docs/phone.md: fixed text around the example export's table `result` and the metadata schema."""
    rows = {row["file"]: row for row in result["files"]}
    single = [row for row in result["files"] if not row["signature_runner_required"]]
    multi = [row for row in result["files"] if row["signature_runner_required"]]
    example = next((row for row in result["files"] if row["raw_input"]), None)
    lines = [
        "# The phone side: raw pixels in, score and threshold out",
        "",
        "<!-- Generated by export.describe.phone_doc from docs/phone_files.json, the files.json of a",
        f"default digits export: do not edit. To regenerate: {REGENERATE} -->",
        "",
        "Every export folder describes itself: `tfvae-export all RUN` (and each `export.tflite` call) "
        "writes `FILES.md` and `files.json` beside the files, generated from the files themselves. "
        "The tables below are that description for `tfvae train --data digits && tfvae-export all "
        "runs/digits` with the defaults; sizes, thresholds and scores change with every training run, "
        "so read your own folder's `FILES.md`.",
        "",
        "## Which file",
        "",
    ]
    lines += _overview(result["files"])
    lines += [
        "",
        "A runtime with signature support (LiteRT / TensorFlow Lite's signature runner, Java "
        "`runSignature`) takes any file. A runtime without it (the C API, TensorFlow Lite Micro, "
        "engines and plugins that load the first subgraph) needs a single-signature file: "
        + ", ".join(f"`{row['file']}`" for row in single) + ".",
    ]
    for row in multi:
        sub = row["subgraph_0"] or {}
        lines += ["", f"`{row['file']}` holds {row['subgraphs']} subgraphs, one per signature, and says so in its "
                  "metadata (`signature_runner_required: true`): a runtime that runs the first subgraph only runs "
                  f"`{sub.get('signature')}` (`{', '.join(sub.get('inputs', []))}` -> "
                  f"`{', '.join(sub.get('outputs', []))}`), whatever you meant."]
    lines += ["", "## Reading a file without signatures", "",
              "In each single-signature file, input tensor 0 is the input and output tensor 0 the primary "
              "output; every tensor is named as in the signature, so `get_output_details()` (Python), "
              "`TfLiteInterpreterGetOutputTensor(interpreter, 0)` and `TfLiteTensorName` (C) or "
              "`interpreter.output(0)` (Micro) find them by position or name:", ""]
    lines += ["| file | tensor | position | name | dtype | shape | resizable dims |", "|---|---|---:|---|---|---|---|"]
    for row in single:
        for side in ("inputs", "outputs"):
            for tensor in row[side]:
                lines.append(f"| `{row['file']}` | {side[:-1]} | {tensor['position']} | `{tensor['name']}` | "
                             f"{tensor['dtype']} | {_shape(tensor['shape'])} | {_dims(tensor['resizable_dims'])} |")
    if example:
        raw = example["raw_input"]
        lines += ["", "## The raw input", "",
                  f"`x` is float32 of shape {_shape(raw['shape'])}, {raw['layout']}: for an 8x8 digit, "
                  "`x[0, 8 * row + column]` is the pixel at that row and column. Send the values as the "
                  f"scanner gives them, {_number(raw['range'][0])} to {_number(raw['range'][1])}: the graph "
                  "scales them itself"
                  + (f" and binarizes them (a raw value above {_number(raw['binarized_above_raw'])} is ink, "
                     "anything else background)" if raw["binarized_above_raw"] is not None else "") + ". "
                  "The same numbers are in the metadata, `model.preprocessing` (see below)."]
    lines += ["", "## A batch of more than one row", "",
              "Tensors are allocated at batch 1 (shape signature -1, shape 1). To send n rows with the plain "
              "tensor API, resize the input and allocate again before `set_tensor`; otherwise it fails with "
              "\"Dimension mismatch. Got n but expected 1\". Only Python's signature runner resizes by itself. "
              "TensorFlow Lite Micro cannot resize: it runs batch 1.", "",
              "```python",
              "from ai_edge_litert.interpreter import Interpreter",
              "",
              "interpreter = Interpreter(model_path=\"score_int8.tflite\")",
              "x = interpreter.get_input_details()[0]",
              "interpreter.resize_tensor_input(x[\"index\"], pixels.shape)   # pixels: float32 (n, 64), raw",
              "interpreter.allocate_tensors()",
              "interpreter.set_tensor(x[\"index\"], pixels)",
              "interpreter.invoke()",
              "scores = interpreter.get_tensor(interpreter.get_output_details()[0][\"index\"])   # (n,)",
              "```",
              "", "In C: `TfLiteInterpreterResizeInputTensor(interpreter, 0, dims, 2)` then "
              "`TfLiteInterpreterAllocateTensors(interpreter)`; in Java: `interpreter.resizeInput(0, new int[] {n, 64})`.",
              "", "## Threads", "",
              "An interpreter (and its signature runner) is not thread-safe: it owns its tensors, and two threads "
              "invoking one interpreter overwrite each other's input. Create one interpreter per thread (each "
              "loads the same file; the weights are read-only).",
              "", "## Inputs a phone will get", "",
              "Wrong shapes are refused, with messages that do not say much: 63 values, or an 8x8 array instead "
              "of a row of 64, make `set_tensor` fail with \"Cannot set tensor: Dimension mismatch\" and the "
              "Python signature runner fail with \"XNNPack delegate failed to reshape\". A float64 array is "
              "refused (\"Got value of type FLOAT64 but expected type FLOAT32\"). Reshape an image to "
              "(1, 64), row by row, as float32.", "",
              "Wrong values are not refused: each file computes a score for them. What the score files give "
              "(one row each):"]
    for name in ("score.tflite", "score_int8.tflite"):
        if name in rows and rows[name]["probes"]:
            lines += ["", f"`{name}`:", ""] + _probe_table(rows[name])
    if example and example["raw_input"]["binarized_above_raw"] is not None:
        cut = _number(example["raw_input"]["binarized_above_raw"])
        lines += ["", f"Since the graph binarizes at a raw {cut}, digits pre-scaled to 0..1 are all background "
                  f"(a blank image, whatever the digit), and pixels in 0..255 are ink wherever they exceed {cut} "
                  "in the encoder, while the score files flag every row with a pixel above the raw maximum: "
                  "scale neither, send the raw range above."]
    lines += ["", "## With a signature runner", "",
              "```python",
              "import numpy as np",
              "from ai_edge_litert.interpreter import Interpreter",
              "",
              "interpreter = Interpreter(model_path=\"vae_int8.tflite\")   # one per thread",
              "score = interpreter.get_signature_runner(\"score\")",
              "pixels = np.asarray(raw_image, np.float32).reshape(1, 64)   # 8x8 digit, row by row, raw values",
              "value = score(x=pixels)[\"score\"][0]                          # anomaly score in nats",
              "is_anomaly = value > threshold   # a threshold from the file's metadata (below)",
              "```", "",
              "The runner resizes for any batch. On Android (LiteRT Java API): "
              "`interpreter.runSignature(mapOf(\"x\" to pixels), mapOf(\"score\" to out), \"score\")` with "
              "`pixels` a `FloatArray` of the raw values, row by row. The other signatures: "
              "`encode(x) -> z_mean, z_log_sigma`, `reconstruct(x) -> x_mean`, `decode(z) -> x_mean`, "
              "`sample(epsilon) -> x_mean` (epsilon drawn by the app from N(0, I)). "
              "`notebooks/digits_to_edge.ipynb` walks through training, export and scoring."]
    lines += ["", "## Runtimes and delegates", "",
              "Per file, from its ops and tensor types:", "",
              "| file | min_runtime_version | TensorFlow Lite Micro | GPU delegate |", "|---|---|---|---|"]
    for row in result["files"]:
        micro = _tflm_text(row["tflm"])
        if row["signature_runner_required"]:
            micro += f" Micro runs subgraph 0 (`{(row['subgraph_0'] or {}).get('signature')}`) only."
        lines.append(f"| `{row['file']}` | {row['min_runtime_version']} | {micro} | {_gpu_text(row['gpu_delegate'])} |")
    lines += ["",
              "`min_runtime_version` is what the converter stored in the file (the metadata entry of that name): "
              "the oldest TensorFlow Lite runtime whose kernels have every op version the file uses. "
              "TensorFlow Lite Micro's column comes from its kernels' sources: each op's kernel in "
              f"[tensorflow/tflite-micro]({TFLM_SOURCE}) checks the type of its input, and the table "
              "`export.describe.TFLM_KERNELS` records what each accepts. The GPU column is TensorFlow's own "
              "checker (`tf.lite.experimental.Analyzer.analyze(..., gpu_compatibility=True)`): it says the "
              "delegate accepts the ops, not that it is faster for a model this small."]
    lines += _metadata_section(rows)
    return "\n".join(lines) + "\n"


def _metadata_section(rows):
    schema = metadata.schema()
    lines = ["", "## The metadata, from any language", "",
             "Each file carries its metadata as the buffer named `tfvae` in the TensorFlow Lite schema's "
             "`Model.metadata` list (UTF-8 JSON): any flatbuffer reader of the schema finds it "
             "(`Model.metadata[i].name == \"tfvae\"` -> `Model.buffers[buffer].data`). Its specification is the "
             "JSON schema `export/metadata_schema.json`, shipped with the package "
             "(`export.metadata.schema()`).", "",
             f"**The promise of `format_version` {schema['properties']['format_version']['const']}:** "
             + _capitalized(schema["description"].split("Stability promise: ", 1)[-1].split(" Units:")[0]), "",
             "Units: " + schema["description"].split(" Units: ", 1)[-1], "",
             "| key | type | unit | meaning |", "|---|---|---|---|"]
    for key, spec in _schema_keys(schema):
        lines.append(f"| `{key}` | {_schema_type(spec)} | {spec.get('unit', '')} | "
                     f"{spec.get('description', '').replace('|', '/')} |")
    lines += ["", "A reader in C++ is in `export/reader/`: `tflite_metadata.fbs` declares the three tables of "
              "TensorFlow Lite's schema that it needs (with that schema's field ids), `flatc` generates the "
              "reader, and flatbuffers' JSON parser reads the buffer. On Debian or Ubuntu:", "",
              "```sh",
              "apt-get install flatbuffers-compiler libflatbuffers-dev g++",
              "sh export/reader/build.sh build && build/read_metadata runs/digits/export/vae_int8.tflite",
              "```", "",
              "It prints `format_version`, whether a signature runner is required, the preprocessing and the "
              "thresholds, one `key value` line each, then the JSON; a test checks that its output equals what "
              "Python's `export.metadata.read` returns."]
    with_thresholds = [row for row in rows.values() if row["score_thresholds"]]
    if with_thresholds:
        row = rows.get("vae_int8.tflite", with_thresholds[0])
        rates = ", ".join(f"{value:.4g} nats at {float(rate):.0%}" for rate, value in row["score_thresholds"].items())
        lines += ["", f"In the example, `{row['file']}` stores the thresholds {rates} (computed on "
                  f"{row['thresholds_computed_on']}): flag an input when its score is above one. They move with "
                  "every training run: read them from the file."]
    return lines


def _schema_keys(schema, prefix=""):
    for key, spec in schema["properties"].items():
        yield prefix + key, spec
        if key in ("model", "preprocessing", "subgraph_0"):
            yield from _schema_keys(spec, prefix + key + ".")
        elif key == "score_thresholds":
            yield from _schema_keys(next(option for option in spec["oneOf"] if "properties" in option),
                                    prefix + key + ".")
        elif key == "by_false_positive_rate":
            (pattern, rate), = spec["patternProperties"].items()
            yield prefix + key + '."0.01"', {**rate, "description": "The threshold at that false-positive rate; "
                                              f"the key is a string matching {pattern} (\"0.01\", \"0.05\")."}
        elif key == "signatures":
            yield from _schema_keys(metadata.schema()["$defs"]["tensor"], prefix + key + ".SIGNATURE.inputs.NAME.")


def _capitalized(text):
    return text[:1].upper() + text[1:]


def _schema_type(spec):
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return " / ".join(f"`{json.dumps(value)}`" for value in spec["enum"])
    kinds = spec.get("type") or [option.get("type") for option in spec.get("oneOf", [])]
    return " or ".join(kinds) if isinstance(kinds, list) else kinds


def main(argv=None):
    """`python -m export.describe TABLE.json OUT.md`: renders docs/phone.md from a files.json."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m export.describe FILES.json PHONE.md", file=sys.stderr)
        return 2
    with open(args[0]) as handle:
        result = json.load(handle)
    pathlib.Path(args[1]).write_text(phone_doc(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
