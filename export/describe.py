"""What each `.tflite` file of an export folder is, read from the files themselves.

`write(folder)` writes `files.json` (the table) and `FILES.md` (the same, for
people, rendered by `export._files_md`) beside the files; `export.tflite`
calls it after every file it writes, so `tfvae-export all RUN` leaves
`RUN/export/FILES.md`. Nothing in
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

`export._phone_page.phone_doc(table)` renders docs/phone.md from a table
(the committed docs/phone_files.json); tests check that the table matches its
files and that the page equals the renderer's output. To regenerate the page:

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

from export import _files_md, _phone_page, metadata

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
    _atomic.replace_text(folder / FILES_MD, _files_md.render(result))
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


def main(argv=None):
    """`python -m export.describe TABLE.json OUT.md`: renders docs/phone.md from a files.json."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m export.describe FILES.json PHONE.md", file=sys.stderr)
        return 2
    with open(args[0]) as handle:
        result = json.load(handle)
    pathlib.Path(args[1]).write_text(_phone_page.phone_doc(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
