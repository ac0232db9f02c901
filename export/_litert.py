"""Running and inspecting `.tflite` models: the LiteRT interpreter and the file's flatbuffer.

Uses `ai_edge_litert` (the successor of the deprecated `tf.lite.Interpreter`)
and the flatbuffer schema it ships, so the op list and quantization steps
are read from the file itself rather than from an interpreter whose
delegate may have fused nodes. No TensorFlow.
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


def output_steps(content, signature):
    """The quantization step of each output of `signature`, 0.0 for a float output computed in float.

    An int8 output's step is its scale; a float output that a final
    `DEQUANTIZE` makes from an int8 tensor has that tensor's scale: the
    resolution two runtimes can legitimately differ by.

    Returns:
        `{output name: step}`.
    """
    model = schema.Model.GetRootAs(content, 0)
    definition, subgraph = _subgraph(model, signature)
    producers = {}
    for op_index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(op_index)
        for output in range(operator.OutputsLength()):
            producers[operator.Outputs(output)] = operator
    steps = {}
    for output_index in range(definition.OutputsLength()):
        entry = definition.Outputs(output_index)
        steps[entry.Name().decode()] = _step(model, subgraph, producers, entry.TensorIndex())
    return steps


def _step(model, subgraph, producers, tensor_index):
    quantization = subgraph.Tensors(tensor_index).Quantization()
    if quantization is not None and quantization.ScaleLength():
        return float(quantization.Scale(0))
    operator = producers.get(tensor_index)
    if operator is None:
        return 0.0
    code = model.OperatorCodes(operator.OpcodeIndex())
    if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.DEQUANTIZE:
        source = subgraph.Tensors(operator.Inputs(0)).Quantization()
        if source is not None and source.ScaleLength():
            return float(source.Scale(0))
    return 0.0


def _subgraph(model, signature):
    for index in range(model.SignatureDefsLength()):
        definition = model.SignatureDefs(index)
        if definition.SignatureKey().decode() == signature:
            return definition, model.Subgraphs(definition.SubgraphIndex())
    raise ValueError(f"no signature {signature!r} in the model")


def tensor_names(content, signature):
    """The names of the tensors the ops of `signature` compute, and of its outputs.

    Returns:
        `{"operators": [name, ...], "outputs": [name, ...]}`.
    """
    model = schema.Model.GetRootAs(content, 0)
    definition, subgraph = _subgraph(model, signature)
    operators = [
        subgraph.Tensors(subgraph.Operators(op).Outputs(k)).Name().decode()
        for op in range(subgraph.OperatorsLength()) for k in range(subgraph.Operators(op).OutputsLength())
    ]
    outputs = [subgraph.Tensors(definition.Outputs(k).TensorIndex()).Name().decode()
               for k in range(definition.OutputsLength())]
    return {"operators": operators, "outputs": outputs}


def float_ops(content, signature):
    """`{op name: count}` of the ops of `signature` that compute in float32 (QUANTIZE and DEQUANTIZE, the
    conversions at the borders, aside)."""
    model = schema.Model.GetRootAs(content, 0)
    _, subgraph = _subgraph(model, signature)
    counts = collections.Counter()
    for op_index in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(op_index)
        code = model.OperatorCodes(operator.OpcodeIndex())
        name = _BUILTIN_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        outputs = [subgraph.Tensors(operator.Outputs(k)).Type() for k in range(operator.OutputsLength())]
        if name not in ("QUANTIZE", "DEQUANTIZE") and schema.TensorType.FLOAT32 in outputs:
            counts[name] += 1
    return dict(sorted(counts.items()))
