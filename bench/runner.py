"""The benchmark's measurements: each function times one thing and returns plain numbers (JSON-ready).

Ratios are taken within a case, the runners alternating in one process over several repeats, so the load
of a shared machine cancels out as far as it can. Timings go through `time.perf_counter`; samples/s of an
epoch is examples / the median steady epoch time (on_epoch_end to on_epoch_end, after a warm-up `fit`
epoch that absorbs tracing and compiling).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

import keras_example_vae as reference
import tfvae
from cases import (DIGITS, GRU_CASE, HEAVY, KERAS_ADAM, PATHS, bf16_model, build, case_label, digit_images,
                   dtype_policy, sine_sequences, tiled_images)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

class EpochClock(keras.callbacks.Callback):
    """Records the time at the start of training and at every epoch end."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (bfloat16 and XLA speeds differ between CPUs), or "unknown"."""
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown"



_PEAK_CHILD = r"""
import json, os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
out = {}
for n in SIZES:
    a = tf.random.normal([n, n]); b = tf.random.normal([n, n])
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    reps = max(3, int(1e10 / (2 * n ** 3)))
    rates = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            c = f(a, b)
        c.numpy()
        rates.append(2 * n ** 3 * reps / (time.perf_counter() - t))
    out[n] = float(np.median(rates))
print(json.dumps(out))
"""


def matmul_peak(sizes=(512, 1024, 2048, 3072)):
    """``{n: FLOP/s}`` of float32 tf.matmul (n x n), in a clean child process."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    code = _PEAK_CHILD.replace("SIZES", repr(tuple(sizes)))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def throughput(runners, batch_size, epochs, repeats, after_repeat=None):
    """Interleaved fits of several models; medians of samples/s.

    Args:
        runners: ``{name: {"build": () -> compiled model, "x": array,
            "dataset": feed a tf.data dataset (Keras' per-step loop),
            "repeats": fewer repeats for a slow runner, "epochs": ...}}``.
        after_repeat: optional ``() -> peak FLOP/s`` called after each repeat.

    Returns:
        ``{name: {"epoch": samples/s, "fit": samples/s, "warmup_s": s,
        "path": model.fit_path, "rates": [epoch samples/s per repeat]}}``
        and, with ``after_repeat``, ``"peaks"``.
    """
    models, out = {}, {}
    for name, runner in runners.items():
        start = time.perf_counter()
        models[name] = runner["build"]()
        _fit(models[name], runner, batch_size, 1)
        out[name] = {"warmup_s": time.perf_counter() - start, "rates": [], "fits": [],
                     "path": getattr(models[name], "fit_path", None)}
        print(f"  warm {name}: {out[name]['warmup_s']:.1f}s ({out[name]['path']})", flush=True)
    peaks = []
    names = list(runners)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            runner = runners[name]
            if r >= runner.get("repeats", repeats):
                continue
            n_epochs = runner.get("epochs", epochs)
            clock = EpochClock()
            start = time.perf_counter()
            _fit(models[name], runner, batch_size, n_epochs, callbacks=[clock])
            out[name]["fits"].append(n_epochs * len(runner["x"]) / (time.perf_counter() - start))
            steady = np.diff(clock.times[1:]) if n_epochs > 1 else np.diff(clock.times)
            out[name]["rates"].append(len(runner["x"]) / float(np.median(steady)))
        if after_repeat:
            peaks.append(after_repeat())
    for row in out.values():
        row.update(epoch=float(np.median(row["rates"])), fit=float(np.median(row["fits"])))
    if after_repeat:
        out["peaks"] = peaks
    return out


def case_throughput(key, quick):
    """The throughput row of (a) "digits", (b) "conv" or (c) "heavy"; `measure` runs it in a fresh process."""
    repeats = 2 if quick else 3
    if key == "digits":
        x = reference.load_digits_binarized()[0]
        runners = tfvae_runners(DIGITS, x)
        runners[KERAS_ADAM] = {"build": lambda: build("tfvae", DIGITS, optimizer=keras.optimizers.Adam), "x": x}
        row = throughput(runners, 64, 5, repeats)
        row.update(key="digits", name="(a) digits MLP 64-128-128-8", batch=64)
        return row
    tiled = tiled_images()
    if key == "conv":
        few_images = tiled[:256 if quick else 512]
        one_epoch = {"x": few_images, "repeats": 1, "epochs": 1}
        runners = tfvae_runners("conv", tiled, **{"epoch loop + XLA": one_epoch})
        runners["bfloat16"] = {"build": lambda: bf16_model("conv"), **one_epoch}
        row = throughput(runners, 128, 3, repeats)
        row["conv_layers"] = conv_layers_alone(128, 10 if quick else 30)
        row.update(key="conv", name="(b) Keras example ConvNet", batch=128, few_images=len(few_images),
                   note=f"(b)'s epoch loop + XLA and its bfloat16 default ran 1 repeat on {len(few_images):,} of "
                        f"the {len(tiled):,} images")
        return row
    flat = tiled.reshape(len(tiled), -1)
    runners = tfvae_runners(HEAVY, flat)
    runners["bfloat16"] = {"build": lambda: bf16_model(HEAVY), "x": flat}
    row = throughput(runners, 128, 2, repeats, after_repeat=lambda: max(matmul_peak((1024, 2048)).values()))
    row.update(key="heavy", name="(c) MLP 784-512-512-32", batch=128)
    return row


def conv_layers_alone(batch_size, calls):
    """(b)'s convolutions without the rest of the step: `layers_alone` of the ConvNet's bodies.

    Their sum is the time any float32 loop spends in these kernels per step:
    no loop around them trains faster than `batch_size / sum` samples/s.
    """
    return layers_alone((reference.conv_encoder_body(), reference.conv_decoder()), batch_size, calls,
                        (keras.layers.Conv2D, keras.layers.Conv2DTranspose))


def layers_alone(bodies, batch_size, calls, kinds):
    """The layers of `kinds` in the Sequential `bodies`, each alone: `[{"layer", "ms", "calls", "gflops"}]`.

    Each runs in its own compiled call at `batch_size` on random inputs of
    its shape: its forward pass and the gradients a training step takes (of
    its kernel and bias, and of its input except for the first body's first
    layer, whose input is the data); the median of `calls` calls, as the
    epochs' medians. FLOP: 2 per multiply-add, for each pass.

    Example (the matmuls of (c)'s 784-512-512-32, its two heads as one layer of 64):

        cd bench && python -c "import runner, keras; D = keras.layers.Dense; S = lambda n, *l: keras.Sequential(
            [keras.Input((n,)), *l]); print(runner.layers_alone((S(784, D(512), D(512), D(64)), S(32, D(512),
            D(512), D(784))), 128, 30, (D,)))"
    """
    out = []
    for index, body in enumerate(bodies):
        x = tf.random.normal((batch_size, *body.inputs[0].shape[1:]))
        for position, layer in enumerate(body.layers):
            y = layer(x)
            if isinstance(layer, kinds):
                data = index == 0 and position == 0
                run = _forward_and_gradients(layer, x, tf.random.normal(y.shape), input_gradient=not data)
                seconds = float(np.median(time_calls(run, calls)))
                spatial = x.shape[1:-1] if isinstance(layer, keras.layers.Conv2DTranspose) else y.shape[1:-1]
                multiply_adds = int(np.prod(spatial)) * int(np.prod(layer.kernel.shape)) * batch_size
                passes = 2 if data else 3  # forward, kernel gradient (and input gradient)
                name = getattr(layer, "filters", None) or getattr(layer, "units", None)
                out.append({"layer": f"{type(layer).__name__}({name})", "ms": seconds * 1e3, "calls": calls,
                            "gflops": passes * 2 * multiply_adds / seconds / 1e9})
            x = y
    return out


def _forward_and_gradients(layer, x, upstream, input_gradient):
    """A compiled call: `layer(x)` and the gradients of its variables (and of `x` if `input_gradient`)."""

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            output = layer(x)
        wrt = layer.trainable_variables + ([x] if input_gradient else [])
        gradients = tape.gradient(output, wrt, output_gradients=upstream)
        if any(gradient is None for gradient in gradients):
            raise ValueError(f"{layer.name}: a gradient is None")
        return gradients

    return run


def child_json(argv, what, cwd=HERE, env=None):
    """Runs `python *argv` in a child process: `(the JSON of its last stdout line, its wall seconds)`.

    The child's other stdout lines are printed. Raises RuntimeError, naming `what` and quoting the end of
    the child's stderr, when it fails or prints nothing.
    """
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise RuntimeError(f"{what} failed in its child process:\n{done.stderr[-3000:]}")
    for line in lines[:-1]:
        print(line, flush=True)
    return json.loads(lines[-1]), wall


def in_fresh_process(function, *args, tree=ROOT):
    """`function(*args)`, a function of this module, run in a child process; its result (through JSON).

    The child imports tfvae from `tree` (this source tree by default; bench/regression.py passes another).

    The Keras-example pattern's per-step loop slows down as a process accumulates models (tfvae's does
    not), so the throughput cases each run in a process of their own.
    """
    code = ("import json, sys; sys.path[:0] = sys.argv[1:3]; import runner; "
            f"print(json.dumps(runner.{function.__name__}(*json.loads(sys.argv[3])), default=runner.jsonable))")
    return child_json(["-c", code, HERE, tree, json.dumps(args)], f"{function.__name__}{args} in {tree}")[0]


def jsonable(value):
    """A numpy value as plain Python, for `json.dumps(default=...)`."""
    return np.asarray(value).tolist()


def whole_fits(case, x, batch_size, epoch_counts, repeats, keras_loop=True):
    """Whole fits, compiling included: seconds per path of PATHS for each epoch count.

    A fresh model per fit, the paths alternating; Keras' per-step loop (if
    `keras_loop`) only at the first epoch count. Returns ``[{"case", "batch",
    "epochs", "steps", "seconds": {path: median s}, "path": what the default
    chose, "steady": {path: samples/s}}]``; "steady" is the median epoch of
    each fit's last third (after the default's choice), median over the
    repeats.
    """
    out = []
    for count in epoch_counts:
        names = [name for name in PATHS if name != "keras per-step loop" or (keras_loop and count == epoch_counts[0])]
        seconds, steady, chosen = {name: [] for name in names}, {name: [] for name in names}, None
        for r in range(repeats):
            for name in names if r % 2 == 0 else names[::-1]:
                model = build("tfvae", case, seed=r, path=name)
                clock = EpochClock()
                start = time.perf_counter()
                _fit(model, {"x": x, "dataset": name == "keras per-step loop"}, batch_size, count, callbacks=[clock])
                seconds[name].append(time.perf_counter() - start)
                last_third = np.diff(clock.times)[-max(1, count // 3):]
                steady[name].append(len(x) / float(np.median(last_third)))
                chosen = model.fit_path if name == "default" else chosen
        out.append({"case": case_label(case), "batch": batch_size, "epochs": count,
                    "steps": count * (len(x) // batch_size), "path": chosen,
                    "seconds": {name: float(np.median(values)) for name, values in seconds.items()},
                    "steady": {name: float(np.median(values)) for name, values in steady.items()}})
        print(f"  {count} epochs: " + ", ".join(f"{name} {value:.1f}s" for name, value in out[-1]["seconds"].items())
              + f" (default: {chosen})", flush=True)
    return out


def _fit(model, runner, batch_size, epochs, callbacks=()):
    x = runner["x"]
    if runner.get("dataset"):
        data = tf.data.Dataset.from_tensor_slices(x).shuffle(len(x)).batch(batch_size)
        return model.fit(data, epochs=epochs, verbose=0, shuffle=False, callbacks=list(callbacks))
    return model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=list(callbacks))


def tfvae_runners(case, x, **options):
    """The four tfvae paths of PATHS on `case`, beside the reference."""
    runners = {"reference": {"build": lambda: build("reference", case), "x": x}}
    for path in PATHS:
        runners[path] = {"build": lambda path=path: build("tfvae", case, path=path), "x": x,
                         "dataset": path == "keras per-step loop", **options.get(path, {})}
    return runners


def tfvae_log_likelihood(model, x, num_samples=1000):
    return model.log_likelihood(x, num_samples, seed=0)  # positional: the baseline tree calls it num_samples


def quality(x, x_test, epochs, seeds, num_samples):
    """Test log p(x) (IWAE, k=num_samples) after `epochs` epochs at batch 64, per seed, and fit rates."""
    out = {"reference": [], "tfvae": []}
    fit_rates = {"reference": [], "tfvae": []}
    for seed in seeds:
        for kind in out:
            model = build(kind, DIGITS, seed)
            start = time.perf_counter()
            model.fit(x, epochs=epochs, batch_size=64, verbose=0)
            fit_rates[kind].append(epochs * len(x) / (time.perf_counter() - start))
            if kind == "reference":
                out[kind].append(float(np.mean(reference.log_likelihood(model, x_test, num_samples))))
            else:
                out[kind].append(float(np.mean(tfvae_log_likelihood(model, x_test, num_samples))))
    return {"nll": out, "fit_rates": fit_rates}


def bf16_quality(x, x_test, epochs, num_samples):
    """Test log p(x) of the 784-512-512-32 model trained in float32 and in mixed_bfloat16.

    Both are scored in float32 (the bfloat16-trained weights copied into a
    float32 model), so the difference is what bfloat16 training costs.
    """
    out = {}
    for policy in ("float32", "mixed_bfloat16"):
        with dtype_policy(policy):
            model = build("tfvae", HEAVY, 0)
            model.fit(x, epochs=epochs, batch_size=128, verbose=0)
        scorer = build("tfvae", HEAVY, 0)
        scorer.set_weights(model.get_weights())
        out[policy] = float(np.mean(tfvae_log_likelihood(scorer, x_test, num_samples)))
    return out


def train_parts(tree, out_dir, options):
    """Runs bench/train_parts.py with `tree`'s tfvae in a child process; its JSON plus `wall`."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    parts, wall = child_json([os.path.join(HERE, "train_parts.py"), os.path.join(out_dir, "run"), *options],
                             f"train_parts.py with {tree}", cwd=out_dir, env={**os.environ, "PYTHONPATH": tree})
    return {**parts, "wall": wall}


def reference_fit(epochs):
    """The Keras-example pattern's whole fit on the digits in a child process: its JSON (`training`: seconds)."""
    return child_json([os.path.join(HERE, "keras_example_vae.py"), str(epochs)], "keras_example_vae.py")[0]


def main_job(baseline, workdir, epochs, repeats):
    """(d): `tfvae train` of this tree and of `baseline`, and the reference's fit, in turns; medians of each part.

    The reference (the Keras-example pattern, a whole fit at the same epochs and batch in a fresh
    process, timed around `fit`) runs in the same rounds, so that the training phase's ratio is
    of runs made under the same machine load.
    """
    options = ["--epochs", str(epochs)]
    runs = {"this": [], "previous": [], "reference": []}
    trees = {"this": ROOT, "previous": baseline}
    order = ("this", "previous", "reference")
    for r in range(repeats):
        for name in order[r % 3:] + order[:r % 3]:
            if name == "reference":
                runs[name].append(reference_fit(epochs))
                print(f"  reference fit: {runs[name][-1]['training']:.1f}s", flush=True)
                continue
            runs[name].append(train_parts(trees[name], os.path.join(workdir, f"{name}{r}"), options))
            print(f"  tfvae train ({name}): {runs[name][-1]['wall']:.1f}s", flush=True)
    parts = ("wall", "import", "setup", "training", "evaluation", "plots", "saving")
    medians = {name: {part: float(np.median([run[part] for run in runs[name]])) for part in parts}
               for name in ("this", "previous")}
    medians["reference"] = {"training": float(np.median([run["training"] for run in runs["reference"]]))}
    return {"runs": runs, "median": medians, "epochs": epochs, "run_dir": os.path.join(workdir, "this0", "run")}


def evaluate_job(run_dir, x_test, num_samples):
    """(e): `tfvae evaluate RUN_DIR` and `VAE.log_likelihood` alone, examples x k per second."""
    import tfvae.cli

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = tfvae.cli.main(["evaluate", run_dir, "--importance-samples", str(num_samples)])
    command = time.perf_counter() - start
    with open(os.path.join(run_dir, "evaluation.json")) as handle:
        examples = int(json.load(handle).get("num_examples", len(x_test)))
    model = tfvae.load_model(os.path.join(run_dir, "model.keras"))
    model.log_likelihood(x_test[:8], num_samples=num_samples, seed=0)  # traces
    start = time.perf_counter()
    model.log_likelihood(x_test, num_samples=num_samples, seed=0)
    alone = time.perf_counter() - start
    return {"status": status, "command_s": command, "examples": examples,
            "command_rate": examples * num_samples / command, "alone_rate": len(x_test) * num_samples / alone,
            "num_samples": num_samples}


def time_calls(fn, calls):
    """Seconds per call of ``fn()`` (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.asarray(times)


def litert_encoder(path):
    """A callable ``x -> outputs`` on a LiteRT file's encode signature."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    runner = interpreter.get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return lambda x: runner(**{name: x})


def litert_invoke(path, x):
    """A callable running one ``invoke`` on input ``x`` already in place.

    This is what an app pays per call on the device: the signature runner's
    Python work (copying inputs in and outputs out, building dicts) is left
    out. XNNPACK is the interpreter's default delegate.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    return interpreter.invoke


def inference(model, x_train, x_test, calls, workdir):
    """Encoder latency rows: (name, size_bytes or None, {1: s[], 256: s[]})."""
    import export

    one = x_test[:1]
    batch = np.resize(x_test, (256, x_test.shape[1])).astype("float32")
    rows = []
    encoders = {"Keras model.encode": lambda x: model.encode(x)}
    try:
        path = os.path.join(workdir, "saved_model")
        report = export.saved_model(model, path, parity_data=x_test)
        signature = tf.saved_model.load(path).signatures["encode"]
        encoders["SavedModel encode signature"] = lambda x: signature(x=tf.constant(x))
        sizes = {"SavedModel encode signature": report.size_bytes}
    except Exception as error:  # exporter missing or failing: say so, go on
        print(f"SavedModel export skipped: {error!r}")
        sizes = {}
    for quantize in (None, "float16", "dynamic", "int8"):
        label = f"LiteRT encoder {quantize or 'float32'}"
        try:
            path = os.path.join(workdir, f"encoder_{quantize or 'float32'}.tflite")
            report = export.tflite(model, path, part="encoder", quantize=quantize,
                                   representative_data=x_train, parity_data=x_test)
            encoders[label] = litert_encoder(path)
            sizes[label] = report.size_bytes
        except Exception as error:
            print(f"{label} skipped: {error!r}")
    for label, fn in encoders.items():
        times = {
            1: time_calls(lambda: fn(one), calls),
            256: time_calls(lambda: fn(batch), max(20, calls // 5)),
        }
        if label.startswith("LiteRT"):
            path = os.path.join(workdir, f"encoder_{label.split()[-1]}.tflite")
            times["invoke 1"] = time_calls(litert_invoke(path, one), calls * 10)
            times["invoke 256"] = time_calls(litert_invoke(path, batch), calls)
        rows.append((label, sizes.get(label), times))
    return rows



def _best_own_rate(row):
    return max(row[p]["epoch"] for p in PATHS if p != "default" and p in row)


def measure(quick, baseline):
    """Every measurement of the benchmark, in order: a JSON-ready dict (bench/report.py reads it).

    Args:
        quick: fewer repeats, epochs and samples (a smoke run: same tables, numbers not meaningful).
        baseline: a source tree of the previous release, for (d)'s `tfvae train` against it.
    """
    quality_epochs = 5 if quick else 150
    seeds = (0,) if quick else (0, 1, 2)
    k = 50 if quick else 1000
    calls = 30 if quick else 300
    x, x_test, _, _ = reference.load_digits_binarized()
    images, images_test = digit_images()
    flat = tiled_images().reshape(-1, 28 * 28)
    results = {"machine": f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} cores",
               "quality_epochs": quality_epochs, "quality_k": k, "train_rows": len(x)}
    start = time.perf_counter()

    def progress(what, value=None):
        print(f"{what} ({time.perf_counter() - start:.0f}s)", flush=True)
        if what.endswith("throughput"):
            row = results["throughput"][-1]
            print("  " + ", ".join(f"{name}: {row[name]['epoch']:,.0f}/s" for name in ("reference", *PATHS)
                                   if name in row)
                  + f"; default/reference {row['default']['epoch'] / row['reference']['epoch']:.2f}x, "
                  f"default/best own {row['default']['epoch'] / _best_own_rate(row):.2f}", flush=True)
        elif value is not None:
            print(f"  {value}", flush=True)

    results["peak"] = matmul_peak()
    progress("matmul peak")
    results["throughput"] = [in_fresh_process(case_throughput, "digits", quick)]
    progress("(a) throughput")
    results["whole_fits"] = whole_fits(DIGITS, x, 64, (5, 20) if quick else (150, 600), 1 if quick else 3)
    progress("(a) whole fits")
    results["throughput"].append(in_fresh_process(case_throughput, "conv", quick))
    progress("(b) throughput")
    results["throughput"].append(in_fresh_process(case_throughput, "heavy", quick))
    progress("(c) throughput")
    results["whole_fits"] += whole_fits(HEAVY, flat, 128, (3,) if quick else (30,), 1 if quick else 2,
                                        keras_loop=False)
    progress("(c) whole fits")
    results["whole_fits"] += whole_fits(GRU_CASE, sine_sequences(), 64, (3,) if quick else (20,), 1 if quick else 2,
                                        keras_loop=False)
    progress("GRU whole fits")
    results["bf16_epochs"] = 3 if quick else 50
    results["bf16_nll"] = bf16_quality(images.reshape(len(images), -1), images_test.reshape(len(images_test), -1),
                                       results["bf16_epochs"], k)
    progress("(c) bfloat16 quality", results["bf16_nll"])
    results["quality"] = quality(x, x_test, quality_epochs, seeds, k)
    progress("(a) quality", results["quality"])
    workdir = tempfile.mkdtemp(prefix="tfvae_bench_")
    try:
        results["main_job"] = main_job(baseline, workdir, 5 if quick else 150, 1 if quick else 3)
        progress("(d) tfvae train", results["main_job"]["median"])
        results["evaluate"] = evaluate_job(results["main_job"]["run_dir"], x_test, k)
        progress("(e) tfvae evaluate", results["evaluate"])
        model = build("tfvae", DIGITS)
        model.fit(x, epochs=quality_epochs, batch_size=64, verbose=0)
        results["inference"] = inference(model, x, x_test, calls, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    progress("inference")
    return json.loads(json.dumps(results, default=jsonable))
