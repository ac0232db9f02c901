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
    python -m export.describe docs/phone_files.json > docs/phone.md
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
    "SELECT_V2": (1, ("float32", "int8", "int16"), "select.cc"),
    "SQUARE": (0, ("float32",), "elementwise.cc"),
    "SQUARED_DIFFERENCE": (0, ("float32", "int32", "int8", "int16"), "squared_difference.cc"),
    "SUB": (0, ("float32", "int32", "int8", "int16"), "sub.cc"),
    "SUM": (0, ("float32", "int8", "int16"), "reduce_common.cc"),
    "TANH": (0, ("float32", "int8", "int16"), "tanh.cc"),
}
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
    if row["score_thresholds"]:
        rates = ", ".join(f"{value:.4g} at a false-positive rate of {float(rate):.0%}"
                          for rate, value in row["score_thresholds"].items())
        lines += ["", f"Score thresholds (nats): {rates}; computed on {row['thresholds_computed_on']}."]
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
