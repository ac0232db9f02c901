"""Do the encoder and decoder files parse and agree in Arm NN's TfLite parser?

    python bench/armnn_reference.py RUN_DIR               # in the virtual environment: reference outputs
    /usr/bin/python3 bench/armnn_check.py RUN_DIR/export  # the system Python with Debian's Arm NN

Arm NN (Debian's `python3-pyarmnn` and `libarmnn-cpuref-backend22`, release
20.08: `apt-get install python3-pyarmnn libarmnn-cpuref-backend22`) is an
engine on many Arm phones and boards. This script parses
`encoder.tflite`, `encoder_int8.tflite` and `decoder.tflite` with its
TfLite parser, runs them on the CpuRef backend one row at a time over the
reference inputs, and compares with the LiteRT interpreter and with Keras
(the `.npz` files that `armnn_reference.py` wrote beside the export folder,
in RUN_DIR/armnn_reference). It imports neither TensorFlow nor tfvae.

A file agrees with LiteRT when every output is within 1e-4 of max(1, |output|)
plus two of the output's quantization steps (int8 kernels of two engines
may round an intermediate differently), and with Keras when a float32 file
is within 1e-3 of max(1, |output|) and an int8 file meets the acceptance
rule of `export.acceptance`. Exit status 0 when every file parses and
agrees, 1 otherwise.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

FILES = ("encoder.tflite", "encoder_int8.tflite", "decoder.tflite")
#: Relative tolerance of a float32 file against Keras (as `export.tflite` itself checks).
FLOAT32_TOLERANCE = 1e-3
#: Relative tolerance against LiteRT, and how many output quantization steps may differ.
LITERT_TOLERANCE, LITERT_STEPS = 1e-4, 2


def check(export_dir, reference_dir=None):
    """Checks every file of `FILES`; returns `{file: result dict}` (see `_check_file`)."""
    import pyarmnn as ann

    export_dir = pathlib.Path(export_dir)
    reference_dir = pathlib.Path(reference_dir or export_dir.parent / "armnn_reference")
    runtime = ann.IRuntime(ann.CreationOptions())
    results = {"armnn": ann.ARMNN_VERSION}
    for name in FILES:
        with np.load(reference_dir / f"{name}.npz") as stored:
            reference = {key: stored[key] for key in stored.files}
        results[name] = _check_file(ann, runtime, export_dir / name, reference)
    return results


def _check_file(ann, runtime, path, reference):
    legend = json.loads(str(reference.pop("legend")))
    inputs = {key.split("/", 1)[1]: value for key, value in reference.items() if key.startswith("input/")}
    parser = ann.ITfLiteParser()
    try:
        network = parser.CreateNetworkFromBinaryFile(str(path))
    except RuntimeError as error:  # Arm NN's ParseException: the first operator it cannot read
        return {"parses": False, "error": str(error).splitlines()[0][:300]}
    graph = 0
    input_bindings = {name: parser.GetNetworkInputBindingInfo(graph, name)
                      for name in parser.GetSubgraphInputTensorNames(graph)}
    output_names = list(parser.GetSubgraphOutputTensorNames(graph))
    output_bindings = [parser.GetNetworkOutputBindingInfo(graph, name) for name in output_names]
    optimized, _ = ann.Optimize(network, [ann.BackendId("CpuRef")], runtime.GetDeviceSpec(), ann.OptimizerOptions())
    network_id, _ = runtime.LoadNetwork(optimized)
    rows = len(next(iter(inputs.values())))
    outputs = {name: [] for name in output_names}
    for row in range(rows):  # the parser fixes the batch at the file's stored shape, one row
        tensors = ann.make_input_tensors(list(input_bindings.values()),
                                         [np.ascontiguousarray(inputs[name][row:row + 1]) for name in input_bindings])
        output_tensors = ann.make_output_tensors(output_bindings)
        runtime.EnqueueWorkload(network_id, tensors, output_tensors)
        for name, value in zip(output_names, ann.workload_tensors_to_ndarray(output_tensors)):
            outputs[name].append(np.asarray(value, np.float32).reshape(reference[f"litert/{name}"].shape[1:]))
    runtime.UnloadNetwork(network_id)
    armnn = {name: np.stack(values) for name, values in outputs.items()}
    return {"parses": True, "rows": rows, **_agreement(path.name, armnn, reference, legend)}


def _agreement(name, armnn, reference, legend):
    by_tensor = {tensor: key for key, tensor in legend["outputs"].items()}
    versus_litert, versus_keras = {}, {}
    litert_ok = keras_ok = True
    for tensor, value in armnn.items():
        output = by_tensor[tensor]
        litert, keras = reference[f"litert/{tensor}"], reference[f"keras/{tensor}"]
        error = float(np.max(np.abs(value - litert)))
        limit = LITERT_TOLERANCE * max(1.0, float(np.max(np.abs(litert)))) + LITERT_STEPS * legend["steps"][tensor]
        versus_litert[output] = error
        litert_ok &= error <= limit
        versus_keras[output] = float(np.max(np.abs(value - keras)))
        if "int8" not in name:
            keras_ok &= versus_keras[output] <= FLOAT32_TOLERANCE * max(1.0, float(np.max(np.abs(keras))))
    result = {"max_abs_vs_litert": versus_litert, "max_abs_vs_keras": versus_keras}
    if "int8" in name:
        keras_ok, result["acceptance"] = _acceptance(name, armnn, reference, by_tensor)
    return {**result, "agrees_with_litert": bool(litert_ok), "agrees_with_keras": bool(keras_ok)}


def _acceptance(name, armnn, reference, by_tensor):
    """The acceptance rule of `export.acceptance` (numpy only) applied to Arm NN's outputs."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from export import acceptance, report

    keras = {by_tensor[tensor]: reference[f"keras/{tensor}"] for tensor in armnn}
    exported = {by_tensor[tensor]: value for tensor, value in armnn.items()}
    rows = report.compare("encode", keras, exported, sigma_units=True)
    failed = acceptance.failures(rows)
    measured = {f"{row.signature}.{row.output}": acceptance.measure(row)[0] for row in rows if acceptance.measure(row)}
    return not failed, measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="the folder `tfvae-export all RUN_DIR` wrote")
    parser.add_argument("--reference", metavar="DIR", help="default: EXPORT_DIR/../armnn_reference")
    args = parser.parse_args(argv)
    results = check(args.export_dir, args.reference)
    print(json.dumps(results, indent=2))
    ok = all(r["parses"] and r["agrees_with_litert"] and r["agrees_with_keras"]
             for key, r in results.items() if key in FILES)
    print("every file parses and agrees" if ok else "FAILED: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
