"""Single-signature .tflite files read right with the interpreter's plain tensor API (issue 42, item 1).

A runtime without signatures (the C API, TensorFlow Lite Micro, plugins) reads input 0 and output 0,
or finds tensors by name: each single-signature file names its tensors as its signature does and lists
its primary output first. Reading by position and by name is compared with Keras.
"""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from export import _endpoints, _plain_io, metadata
from tfvae import datasets

#: file -> (signature, input name, output names in order, primary output first)
SINGLE = {
    "encoder.tflite": ("encode", "x", ("z_mean", "z_log_sigma")),
    "encoder_int8.tflite": ("encode", "x", ("z_mean", "z_log_sigma")),
    "decoder.tflite": ("decode", "z", ("x_mean",)),
    "score.tflite": ("score", "x", ("score",)),
    "score_int8.tflite": ("score", "x", ("score",)),
}
ROWS = 40


def _inputs(model, signature, raw_test):
    """The file's input (raw x, or latent points for decode) and Keras' reference outputs."""
    endpoint = {"encode": _endpoints.ENCODE, "decode": _endpoints.DECODE, "score": _endpoints.SCORE}[signature]
    if signature == "decode":
        z_mean = np.asarray(model.encode(datasets.apply_preprocessing(raw_test[:ROWS], model.preprocessing))[0])
        feeds = {"z": z_mean.astype(np.float32)}
    else:
        feeds = {"x": raw_test[:ROWS]}
    return feeds, _endpoints.reference(model, endpoint, feeds)


def _invoke(path, value):
    """Plain tensor API, as a runtime without signatures uses it: resize input 0, allocate, set, invoke."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], value.shape, strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], value)
    interpreter.invoke()
    return interpreter


def _close(name, quantized, got, expected, reference):
    if not quantized:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=name)
    elif name == "z_mean":  # int8: within a tenth of the posterior sigma (test_export_tflite's bar)
        sigma = np.exp(reference["z_log_sigma"])
        assert np.max(np.abs(got - expected) / sigma) < 0.1
    elif name == "z_log_sigma":
        assert np.max(np.abs(got - expected)) < 0.1
    else:  # the int8 score: close to Keras' and ranking the rows as Keras does
        assert np.max(np.abs(got - expected) / np.abs(expected)) < 0.05
        assert np.corrcoef(np.argsort(np.argsort(got)), np.argsort(np.argsort(expected)))[0, 1] > 0.95


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_signature_files_read_by_position_and_by_name_match_keras(tiny_export, name):
    model, raw_test, folder = tiny_export
    signature, input_name, output_names = SINGLE[name]
    feeds, reference = _inputs(model, signature, raw_test)
    interpreter = _invoke(folder / name, feeds[input_name])
    assert interpreter.get_input_details()[0]["name"] == input_name
    outputs = interpreter.get_output_details()
    assert [detail["name"] for detail in outputs] == list(output_names)  # output 0 is the primary output
    by_name = {detail["name"]: detail["index"] for detail in interpreter.get_tensor_details()}
    quantized = "int8" in name
    primary = interpreter.get_tensor(outputs[0]["index"])
    _close(output_names[0], quantized, primary, reference[output_names[0]], reference)
    for output in output_names:
        _close(output, quantized, interpreter.get_tensor(by_name[output]), reference[output], reference)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_a_batch_of_5_needs_a_resize_and_gives_5_rows(tiny_export, name):
    model, raw_test, folder = tiny_export
    signature, input_name, output_names = SINGLE[name]
    feeds, reference = _inputs(model, signature, raw_test)
    five = feeds[input_name][:5]
    plain = Interpreter(model_path=str(folder / name))
    plain.allocate_tensors()
    assert list(plain.get_input_details()[0]["shape"]) == [1, five.shape[1]]  # allocated at batch 1
    with pytest.raises(ValueError, match="Dimension mismatch"):
        plain.set_tensor(plain.get_input_details()[0]["index"], five)
    interpreter = _invoke(folder / name, five)
    reference = {output: value[:5] for output, value in reference.items()}
    for detail in interpreter.get_output_details():
        rows = interpreter.get_tensor(detail["index"])
        assert rows.shape[0] == 5
        _close(detail["name"], "int8" in name, rows, reference[detail["name"]], reference)


def test_every_file_says_whether_it_needs_a_signature_runner(tiny_export):
    _, _, folder = tiny_export
    for name, (signature, input_name, output_names) in SINGLE.items():
        info = metadata.read(folder / name)
        assert info["signature_runner_required"] is False
        assert info["subgraph_0"] == {"signature": signature, "inputs": [input_name], "outputs": list(output_names)}
    for name in ("vae.tflite", "vae_int8.tflite"):
        info = metadata.read(folder / name)
        assert info["signature_runner_required"] is True
        assert "signature-aware runtime" in info["runtime_note"]
        # what a runtime that runs the first subgraph only would run
        assert info["subgraph_0"] == {"signature": "decode", "inputs": ["z"], "outputs": ["x_mean"]}


def test_apply_refuses_names_that_are_not_the_signatures(tiny_export):
    _, _, folder = tiny_export
    content = (folder / "encoder.tflite").read_bytes()
    with pytest.raises(ValueError, match="signature 'encode' has outputs"):
        _plain_io.apply(content, {"encode": (("x",), ("z_mean", "z_sigma"))})
