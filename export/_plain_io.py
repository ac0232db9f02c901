"""Names and orders the inputs and outputs of a `.tflite` file for runtimes without signatures.

The converter names a subgraph's tensors after the SavedModel graph that it
converted (`encode_x:0`, `StatefulPartitionedCall:0`, ...) and orders the
outputs of a signature whose function returns a dict by key, so the encoder's
output 0 is `z_log_sigma` (`"z_log_sigma" < "z_mean"`). Neither can be set
from the traced function: `tf.identity(..., name=...)` names only a node
inside the `StatefulPartitionedCall` that the converter renames. A runtime
that reads tensors by index (`interpreter.get_output_details()[0]`, the C
API's `TfLiteInterpreterGetOutputTensor(interpreter, 0)`, TensorFlow Lite
Micro's `interpreter.output(0)`) then reads the wrong tensor, and nothing
tells the two apart.

`apply` rewrites the file after conversion: each signature's tensors take
their signature names (`x`, `z_mean`, `z_log_sigma`, `z`, `x_mean`, `score`,
`epsilon`, `labels`), and the subgraph's inputs and outputs (and the
signature's own lists) follow the endpoint's order, the primary output
first. Signature runners are unaffected: they map names to tensor indices,
which do not change.
"""

import flatbuffers
from ai_edge_litert import schema_py_generated as schema


def apply(content, order):
    """A copy of the `.tflite` bytes `content` with named, ordered inputs and outputs.

    Args:
        content: the converted model's bytes.
        order: `{signature key: (input names, output names)}` in the order
            the subgraph should list them, e.g.
            `{"encode": (("x",), ("z_mean", "z_log_sigma"))}`.

    Returns:
        The new model's bytes.

    Raises:
        ValueError: if a signature's names are not exactly those of `order`.

    Example:

    >>> import tensorflow as tf
    >>> from ai_edge_litert.interpreter import Interpreter
    >>> from export._plain_io import apply
    >>> module = tf.Module()
    >>> module.encode = tf.function(lambda x: {"z_mean": x[:, :2], "z_log_sigma": x[:, 2:]}, autograph=False,
    ...                             input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    >>> converter = tf.lite.TFLiteConverter.from_concrete_functions([module.encode.get_concrete_function()], module)
    >>> content = converter.convert()
    >>> [output["name"] for output in Interpreter(model_content=content).get_output_details()]
    ['PartitionedCall:0', 'PartitionedCall:1']
    >>> content = apply(content, {"serving_default": (("x",), ("z_mean", "z_log_sigma"))})
    >>> [output["name"] for output in Interpreter(model_content=content).get_output_details()]
    ['z_mean', 'z_log_sigma']
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    for definition in model.signatureDefs or []:
        key = _text(definition.signatureKey)
        subgraph = model.subgraphs[definition.subgraphIndex]
        inputs, outputs = order[key]
        definition.inputs = _named(subgraph, definition.inputs, inputs, key, "inputs")
        definition.outputs = _named(subgraph, definition.outputs, outputs, key, "outputs")
        subgraph.inputs = [entry.tensorIndex for entry in definition.inputs]
        subgraph.outputs = [entry.tensorIndex for entry in definition.outputs]
        subgraph.name = key
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _named(subgraph, entries, names, key, side):
    by_name = {_text(entry.name): entry for entry in entries or []}
    if sorted(by_name) != sorted(names):
        raise ValueError(f"signature {key!r} has {side} {sorted(by_name)}, expected {sorted(names)}")
    for name in names:
        subgraph.tensors[by_name[name].tensorIndex].name = name
    return [by_name[name] for name in names]


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else value


def subgraph_0(content):
    """What a runtime without signatures runs: subgraph 0's signature and its tensors in order.

    Returns:
        `{"signature": key or None, "inputs": [name, ...], "outputs": [name, ...]}`.
    """
    model = schema.Model.GetRootAs(bytearray(content), 0)
    subgraph = model.Subgraphs(0)
    key = next((_text(model.SignatureDefs(index).SignatureKey()) for index in range(model.SignatureDefsLength())
                if model.SignatureDefs(index).SubgraphIndex() == 0), None)
    return {
        "signature": key,
        "inputs": [_text(subgraph.Tensors(subgraph.Inputs(k)).Name()) for k in range(subgraph.InputsLength())],
        "outputs": [_text(subgraph.Tensors(subgraph.Outputs(k)).Name()) for k in range(subgraph.OutputsLength())],
    }
