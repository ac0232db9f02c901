"""Keras' public multi-step loop against tfvae's epoch loop, on the digits MLP and the Keras example ConvNet.

    python bench/loops.py            # 3 paired repeats of whole fits per case; writes bench/results/loops.json
    python bench/loops.py --quick    # a few epochs, to check that it runs (timings meaningless)

Issue 36 asks whether Keras' own `compile(steps_per_execution=N)`, N = the
batches of an epoch (one compiled call per epoch, as the epoch loop makes),
with or without `jit_compile=True`, trains as fast as tfvae's epoch loop
(`tfvae/epoch_loop.py`, the default `compile()` on arrays), so that the
epoch loop could be deleted. Each repeat fits a fresh model (seed = repeat)
with each loop, one after the other in an order that rotates between
repeats, so that a change in the machine's load falls on every loop; the
ratio of each Keras loop's whole-fit time to the epoch loop's in the same
repeat is the result (above 1: Keras' loop is slower). Measure on a quiet
machine: the table is only as good as the machine was idle.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import numpy as np  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_example_vae as reference  # noqa: E402
import cases as bench_cases  # noqa: E402 - the benchmark's data
import render  # noqa: E402 - the results contract
import runner  # noqa: E402 - the machine's description
import tfvae  # noqa: E402

#: The loops compared: a name, and compile()'s keyword arguments given the batches per epoch.
LOOPS = {
    "epoch loop (tfvae default)": lambda steps: {},
    "Keras, steps_per_execution=N": lambda steps: {"steps_per_execution": steps, "jit_compile": False},
    "Keras, steps_per_execution=N, jit_compile=True": lambda steps: {"steps_per_execution": steps,
                                                                      "jit_compile": True},
}
BASELINE = "epoch loop (tfvae default)"


def cases(quick):
    """[(label, build(seed) -> model, x, batch_size, epochs)]: the digits MLP and the Keras example ConvNet."""
    x, _, _, _ = reference.load_digits_binarized()
    images, _ = bench_cases.digit_images()

    def mlp(seed):
        keras.utils.set_random_seed(seed)
        return tfvae.mlp_vae(64, (128, 128), 8, likelihood="bernoulli")

    def conv(seed):
        keras.utils.set_random_seed(seed)
        return tfvae.VAE(reference.conv_encoder_body(), reference.conv_decoder(), 2, likelihood="bernoulli")

    return [("digits MLP 64-128-128-8, batch 64", mlp, x, 64, 3 if quick else 150),
            ("Keras example ConvNet (28x28 digits), batch 128", conv, images, 128, 1 if quick else 10)]


def fit_seconds(build, x, batch_size, epochs, seed, loop):
    """Seconds of one whole `fit` (tracing and compiling included) with `loop`, and the loop `fit` ran."""
    model = build(seed)
    steps = -(-len(x) // batch_size)
    model.compile(**LOOPS[loop](steps))
    start = time.perf_counter()
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    return time.perf_counter() - start, model.fit_path


def measure(quick, repeats):
    rows = []
    for label, build, x, batch_size, epochs in cases(quick):
        seconds, paths = {loop: [] for loop in LOOPS}, {}
        names = list(LOOPS)
        for repeat in range(repeats):
            order = names[repeat % len(names):] + names[:repeat % len(names)]  # rotates between repeats
            for loop in order:
                value, paths[loop] = fit_seconds(build, x, batch_size, epochs, repeat, loop)
                seconds[loop].append(value)
            print(f"{label}, repeat {repeat + 1}: " + ", ".join(f"{loop} {seconds[loop][-1]:.2f} s" for loop in names),
                  flush=True)
        for loop in names:
            ratios = np.array(seconds[loop]) / np.array(seconds[BASELINE])  # paired, repeat by repeat
            rows.append([label, epochs, f"{loop} ({paths[loop]})", f"{np.median(seconds[loop]):.2f}",
                         f"{np.median(ratios):.2f} ({ratios.min():.2f}-{ratios.max():.2f})"])
            print(f"  {loop}: median {np.median(seconds[loop]):.2f} s, time / epoch loop's {np.median(ratios):.2f} "
                  f"(range {ratios.min():.2f}-{ratios.max():.2f}) [{paths[loop]}]", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs: checks that it runs")
    parser.add_argument("--repeats", type=int, default=3, help="paired repeats per case (at least 3)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "loops.json"))
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error(f"--repeats must be at least 3 (paired repeats), got {args.repeats}")
    rows = measure(args.quick, args.repeats)
    command = "python bench/loops.py" + (" --quick" if args.quick else "") + (
        f" --repeats {args.repeats}" if args.repeats != 3 else "")
    result = {
        **render.header("Keras' steps_per_execution loop against tfvae's epoch loop", command,
                        f"{platform.machine()} ({runner.cpu_model()}), {os.cpu_count()} cores",
                        versions_found={"tensorflow": tf.__version__, "keras": keras.version(),
                                        "numpy": np.__version__, "tfvae": tfvae.__version__}),
        "sections": [{
            "heading": "Whole fits, Keras' public loop against the epoch loop",
            "text": (
                "Each row: the median of {repeats} whole `fit` calls (tracing and compiling included) of a fresh "
                "model, the loops alternating in a rotating order; the ratio is each repeat's time over the epoch "
                "loop's in the same repeat (median, then the range): above 1, Keras' loop is slower. N is the "
                "number of batches of an epoch, so both run one compiled call per epoch. In brackets, the path "
                "`fit` took (`model.fit_path`)."
            ).format(repeats=args.repeats),
            "table": {"columns": ["case", "epochs", "loop", "seconds (median)", "time / epoch loop's"],
                      "rows": rows},
        }],
    }
    render.write_result(result, args.out)


if __name__ == "__main__":
    main()
