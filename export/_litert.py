"""Running and inspecting `.tflite` models with the LiteRT interpreter.

Uses `ai_edge_litert` (the successor of the deprecated `tf.lite.Interpreter`)
and the flatbuffer schema it ships, so the op list is read from the file
itself rather than from an interpreter whose delegate may have fused nodes.
"""

import collections

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from export import metadata

_BUILTIN_NAMES = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}


def ops(content):
    """The operators of a `.tflite` model and how often each is used.

    Args:
        content: the model's bytes.

    Returns:
        `{name: count}`; builtin ops by their builtin name (`"FULLY_CONNECTED"`),
        custom ops (including Select-TF `"Flex..."` ops) by their custom code.
    """
    model = schema.Model.GetRootAs(content, 0)
    names = []
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.append((code.CustomCode() or b"?").decode())
        else:
            names.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    counts = collections.Counter()
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            counts[names[subgraph.Operators(op_index).OpcodeIndex()]] += 1
    return dict(counts)


def non_builtin(op_counts):
    """The names among `ops(...)` that are not TFLite builtins (Flex or custom ops)."""
    return sorted(name for name in op_counts if name not in _BUILTIN_NAMES.values())


def signatures(content):
    """The signatures of a `.tflite` model as metadata entries.

    Returns:
        `{signature: {"inputs": {name: entry}, "outputs": {name: entry}}}`
        with tensor index, shape (-1 for the dynamic batch), dtype and
        per-tensor quantization (see `export.metadata.tensor`).
    """
    interpreter = Interpreter(model_content=content)
    result = {}
    for key, names in interpreter.get_signature_list().items():
        runner = interpreter.get_signature_runner(key)
        details = {"inputs": runner.get_input_details(), "outputs": runner.get_output_details()}
        result[key] = {
            side: {name: _entry(name, details[side][name]) for name in names[side]}
            for side in ("inputs", "outputs")
        }
    return result


def run(content, signature, feeds):
    """Runs one signature on float inputs and returns float outputs.

    Integer (quantized) inputs are quantized with their scale and zero
    point, integer outputs dequantized, so the results compare directly with
    the Keras model. Inputs that are integer by nature (`labels`) pass as is.

    Args:
        content: the model's bytes.
        signature: the signature key, e.g. `"encode"`.
        feeds: `{input name: numpy array}`, any batch size.

    Returns:
        `{output name: float32 numpy array}`.
    """
    runner = Interpreter(model_content=content).get_signature_runner(signature)
    inputs = runner.get_input_details()
    outputs = runner(**{name: _to_tensor(value, inputs[name]) for name, value in feeds.items()})
    details = runner.get_output_details()
    return {name: _to_real(value, details[name]) for name, value in outputs.items()}


def _entry(name, detail):
    scale, zero_point = detail["quantization"]
    return metadata.tensor(name, detail["shape_signature"], detail["dtype"], detail["index"], scale, zero_point)


def _to_tensor(value, detail):
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if scale and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        value = np.clip(np.round(np.asarray(value, np.float64) / scale) + zero_point, info.min, info.max)
    return np.asarray(value).astype(dtype)


def _to_real(value, detail):
    scale, zero_point = detail["quantization"]
    if scale:
        return ((np.asarray(value, np.float64) - zero_point) * scale).astype(np.float32)
    return np.asarray(value, np.float32)
