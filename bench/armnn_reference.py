"""Reference inputs and outputs for `bench/armnn_check.py`, written from the virtual environment.

    python bench/armnn_reference.py RUN_DIR        # after `tfvae-export all RUN_DIR`

For each of `encoder.tflite`, `encoder_int8.tflite` and `decoder.tflite` in
RUN_DIR/export, writes RUN_DIR/armnn_reference/FILE.npz: the inputs (the
run's test split, raw; for the decoder its latent points), the outputs of
the LiteRT interpreter run through its plain tensor API (no signature
runner) and the Keras model's outputs, each keyed by the file's tensor
names, and each output's quantization step. `armnn_check.py` runs the same
inputs through Arm NN with the system Python, which has neither TensorFlow
nor tfvae.
"""

import argparse
import json
import pathlib

import numpy as np
from ai_edge_litert.interpreter import Interpreter

#: The files Arm NN is checked on, and their signature.
FILES = {"encoder.tflite": "encode", "encoder_int8.tflite": "encode", "decoder.tflite": "decode"}


def write(run_dir):
    """Writes RUN_DIR/armnn_reference/FILE.npz for every file of `FILES`; returns the folder."""
    import tfvae
    from export import _endpoints, _examples, _litert, _run_data
    from tfvae import run_folder

    run_dir = pathlib.Path(run_dir)
    model = tfvae.load_model(run_dir / run_folder.MODEL)
    data = run_folder.read_options(run_dir)["data"]
    _, test, _ = _run_data.load(data, model, int(run_folder.read_options(run_dir).get("seed", 0)))
    examples = _examples.as_examples(model, test, "test split")
    out = run_dir / "armnn_reference"
    out.mkdir(exist_ok=True)
    for name, signature in FILES.items():
        content = (run_dir / run_folder.EXPORT / name).read_bytes()
        endpoint = next(e for e in _endpoints.SAVED_MODEL if e.name == signature)
        feeds = _endpoints.feeds(model, endpoint, examples)
        keras_outputs = _endpoints.reference(model, endpoint, feeds)
        interpreter = Interpreter(model_content=content)
        runner = interpreter.get_signature_runner(signature)
        names = {detail["index"]: detail["name"] for detail in interpreter.get_tensor_details()}
        inputs = {names[d["index"]]: feeds[key] for key, d in runner.get_input_details().items()}
        outputs = {key: names[d["index"]] for key, d in runner.get_output_details().items()}
        steps = _litert.output_steps(content, signature)
        arrays = {f"input/{tensor}": value for tensor, value in inputs.items()}
        arrays.update({f"litert/{tensor}": value for tensor, value in _plain_run(content, inputs).items()})
        arrays.update({f"keras/{outputs[key]}": value for key, value in keras_outputs.items()})
        legend = {"outputs": outputs, "steps": {outputs[key]: step for key, step in steps.items()}}
        np.savez(out / f"{name}.npz", legend=json.dumps(legend), **arrays)
    return out


def _plain_run(content, inputs):
    """Runs a model through the interpreter's tensor API at the inputs' batch size; `{output tensor: array}`."""
    interpreter = Interpreter(model_content=content)
    details = {detail["name"]: detail for detail in interpreter.get_input_details()}
    for tensor, value in inputs.items():
        interpreter.resize_tensor_input(details[tensor]["index"], value.shape, strict=True)
    interpreter.allocate_tensors()
    for tensor, value in inputs.items():
        interpreter.set_tensor(details[tensor]["index"], value)
    interpreter.invoke()
    return {detail["name"]: interpreter.get_tensor(detail["index"]).astype(np.float32)
            for detail in interpreter.get_output_details()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder after `tfvae-export all RUN_DIR`")
    print(f"references written to {write(parser.parse_args(argv).run_dir)}")


if __name__ == "__main__":
    main()
