"""tfvae benchmarks: training throughput, quality, inference latency.

    python bench/run.py                 # full run (< 10 min on 2 cores)
    python bench/run.py --quick         # smoke run (~2 min), same tables

Prints the tables and writes them to docs/benchmarks.md, with a chart
docs/benchmarks.png, the command and the date.

What is measured (issue 6):

1. Training throughput of ``tfvae.mlp_vae(64, (128, 128), 8,
   likelihood="bernoulli")`` on binarized digits beside the reference in the
   pattern of the official Keras VAE example (bench/keras_example_vae.py),
   both through the user's ordinary ``compile(optimizer=Adam(1e-3))`` and
   ``fit(x, epochs=E, batch_size=B, verbose=0)``: at batch 64 and 512, and a
   compute-heavy case (784-512-512-32 on random binary 784-dim data, batch
   128) whose achieved FLOP/s is set against the measured matmul peak.
   Samples/s = examples / median steady epoch time (on_epoch_end to
   on_epoch_end, after a warm-up ``fit`` epoch that absorbs tracing and XLA
   compilation); the whole-``fit`` rate (wall time of a ``fit`` call of E
   epochs) is shown too.  The models alternate, several repeats, medians;
   the ratio is tfvae / reference within this one process.
2. Quality at equal epochs: test negative ELBO (nats per example) of both,
   same estimator: closed-form KL plus 10 reparameterized draws of the
   reconstruction term per example.
3. Inference: encoder latency for one example and for a batch of 256
   (median and p95) for the Keras ``model.encode`` call, the SavedModel
   ``encode`` signature, and LiteRT ``.tflite`` encoders (float32, float16,
   dynamic-range and int8, XNNPACK default delegate), plus file sizes.

Training FLOPs: an MLP with layer sizes d_0..d_L does ``M = sum d_i *
d_{i+1}`` multiply-adds per example forward (both latent heads counted);
training costs ~3 forward passes (forward, input gradient, weight
gradient): ``6 * M`` FLOP per example.  The matmul peak is the best of
``tf.matmul`` float32 on square matrices of several sizes, measured in a
child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its
environment.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

import numpy as np  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_example_vae as reference  # noqa: E402
import tfvae  # noqa: E402

DIGITS = (64, (128, 128), 8)
HEAVY = (784, (512, 512), 32)


# ---------------------------------------------------------------- helpers

def train_flops_per_example(case):
    """6 * multiply-adds of one forward pass (encoder, both heads, decoder)."""
    d, hidden, latent = case
    enc = list(zip((d,) + hidden, hidden + (2 * latent,)))
    dec = list(zip((latent,) + hidden[::-1], hidden[::-1] + (d,)))
    return 6 * sum(i * o for i, o in enc + dec)


class EpochClock(keras.callbacks.Callback):
    """Records the time at the start of training and at every epoch end."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())


def build(kind, case, seed=0):
    """The reference or the tfvae model, compiled as a user would."""
    keras.utils.set_random_seed(seed)
    d, hidden, latent = case
    if kind == "reference":
        return reference.build_reference(d, hidden, latent)
    model = tfvae.mlp_vae(d, hidden, latent, likelihood="bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def percentile_ms(seconds, q):
    return float(np.percentile(seconds, q) * 1e3)


# ------------------------------------------------------------- matmul peak

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


# ------------------------------------------------------------- throughput

def throughput(case, x, batch_size, epochs, repeats, measure_peak=False):
    """Alternating reference/tfvae fits; medians of samples/s.

    With ``measure_peak``, the matmul peak is measured again after every
    repeat (the machine is shared: the peak moves with the load), and the
    fraction of peak is the median over repeats of tfvae's FLOP/s in that
    repeat over the peak measured right after it.

    Returns ``{kind: {"epoch": samples/s, "fit": samples/s, "warmup_s": s}}``
    plus ``"peak_fraction"`` and ``"peaks"`` with ``measure_peak``.
    """
    kinds = ("reference", "tfvae")
    models, warmup = {}, {}
    for kind in kinds:
        start = time.perf_counter()
        models[kind] = build(kind, case)
        models[kind].fit(x, epochs=1, batch_size=batch_size, verbose=0)
        warmup[kind] = time.perf_counter() - start
    peaks, fractions = [], []
    epoch_rates = {k: [] for k in kinds}
    fit_rates = {k: [] for k in kinds}
    for r in range(repeats):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            clock = EpochClock()
            start = time.perf_counter()
            models[kind].fit(x, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[clock])
            fit_rates[kind].append(epochs * len(x) / (time.perf_counter() - start))
            steady = np.diff(clock.times[1:]) if epochs > 1 else np.diff(clock.times)
            epoch_rates[kind].append(len(x) / float(np.median(steady)))
        if measure_peak:
            peaks.append(max(matmul_peak().values()))
            fractions.append(epoch_rates["tfvae"][-1] * train_flops_per_example(case) / peaks[-1])
    out = {k: {"epoch": float(np.median(epoch_rates[k])), "fit": float(np.median(fit_rates[k])),
               "warmup_s": warmup[k]} for k in kinds}
    if measure_peak:
        out.update(peak_fraction=float(np.median(fractions)), peaks=peaks)
    return out


# ----------------------------------------------------------------- quality

def negative_elbo_tfvae(model, x, n_samples=10, seed=0):
    """Test -ELBO per example with the estimator of ``reference.negative_elbo``."""
    z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(x))
    sigma = np.exp(z_log_sigma)
    kl = 0.5 * np.sum(z_mean ** 2 + sigma ** 2 - 1.0 - 2.0 * z_log_sigma, axis=1)
    rng = np.random.default_rng(seed)
    rec = np.zeros(len(x))
    for _ in range(n_samples):
        z = (z_mean + sigma * rng.standard_normal(z_mean.shape)).astype("float32")
        rec -= np.asarray(model.likelihood(z).log_prob(x), dtype="float64")
    return float(np.mean(kl + rec / n_samples))


def quality(x, x_test, epochs, seeds):
    """Median over seeds of the test -ELBO after ``epochs`` epochs at batch 64."""
    out = {"reference": [], "tfvae": []}
    for seed in seeds:
        for kind in out:
            model = build(kind, DIGITS, seed)
            model.fit(x, epochs=epochs, batch_size=64, verbose=0)
            if kind == "reference":
                out[kind].append(reference.negative_elbo(model, x_test, n_samples=10))
            else:
                out[kind].append(negative_elbo_tfvae(model, x_test, n_samples=10))
    return {k: (float(np.median(v)), v) for k, v in out.items()}


# --------------------------------------------------------------- inference

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


# ----------------------------------------------------------------- report

def format_report(results, command):
    peak = max(results["peak"].values())
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{command}`  ",
        f"Date: {results['date']}  ",
        f"Machine: {results['machine']}; TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "",
        "Generated by `bench/run.py` (see its docstring for the method). The reference is",
        "`bench/keras_example_vae.py`, the official Keras VAE example pattern. Both models are",
        "trained by the same `compile(optimizer=Adam(1e-3))` + `fit(x, epochs, batch_size)`",
        "call, alternating in one process; numbers are medians of several repeats. The machine",
        "is shared, so absolute numbers move between runs; the ratios are the result.",
        "",
        "## Training throughput",
        "",
        "| case | batch | reference samples/s | tfvae samples/s | ratio | tfvae whole-fit ratio | tfvae GFLOP/s | % of matmul peak | warm-up s (ref / tfvae) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["throughput"]:
        r, t = row["reference"], row["tfvae"]
        gflops = t["epoch"] * row["flops"] / 1e9
        fraction = row.get("peak_fraction", gflops * 1e9 / peak)
        lines.append(
            f"| {row['name']} | {row['batch']} | {r['epoch']:,.0f} | {t['epoch']:,.0f} | "
            f"{t['epoch'] / r['epoch']:.2f}x | {t['fit'] / r['fit']:.2f}x | {gflops:.1f} | "
            f"{100 * fraction:.0f}% | {r['warmup_s']:.1f} / {t['warmup_s']:.1f} |"
        )
    lines += [
        "",
        "Matmul peak (float32 `tf.matmul`, n x n): " + ", ".join(
            f"n={n}: {v / 1e9:.1f}" for n, v in results["peak"].items()) + f" GFLOP/s at the start; peak {peak / 1e9:.1f} GFLOP/s.",
        "For the 784-512-512-32 case the peak is measured again after each repeat (" + ", ".join(
            f"{p / 1e9:.0f}" for row in results["throughput"] for p in row.get("peaks", [])) +
        " GFLOP/s) and the % of peak is the median of each repeat's achieved FLOP/s over the peak measured right after it;",
        "the other rows use the start peak.",
        "Training FLOP/example = 6 x forward multiply-adds (digits MLP: "
        f"{train_flops_per_example(DIGITS) / 1e6:.2f} MFLOP; 784-512-512-32: "
        f"{train_flops_per_example(HEAVY) / 1e6:.2f} MFLOP).",
        "",
        f"## Quality at equal epochs ({results['quality_epochs']} epochs, batch 64, digits)",
        "",
        "| model | test -ELBO (nats/example, median) | per seed |",
        "| --- | ---: | --- |",
    ]
    for kind, (median, values) in results["quality"].items():
        lines.append(f"| {kind} | {median:.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    lines += [
        "",
        "## Encoder inference latency (digits model)",
        "",
        "Per call from Python (the Keras method, the SavedModel signature, the LiteRT signature",
        "runner, each copying inputs in and outputs out):",
        "",
        "| runtime | file size | 1 example median ms | p95 ms | batch 256 median ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, size, times in results["inference"]:
        size_text = "" if size is None else f"{size / 1024:.1f} KiB"
        lines.append(
            f"| {label} | {size_text} | {percentile_ms(times[1], 50):.3f} | {percentile_ms(times[1], 95):.3f} | "
            f"{percentile_ms(times[256], 50):.3f} | {percentile_ms(times[256], 95):.3f} |"
        )
    lines += [
        "",
        "LiteRT `interpreter.invoke()` alone, the input already set (what an app pays per call on",
        "the device; XNNPACK delegate), in microseconds:",
        "",
        "| encoder | 1 example median us | p95 us | batch 256 median us | p95 us | vs int8, 1 example |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    invoke_rows = [(label, times) for label, _, times in results["inference"] if "invoke 1" in times]
    int8 = next((np.median(times["invoke 1"]) for label, times in invoke_rows if label.endswith("int8")), None)
    for label, times in invoke_rows:
        relative = "" if int8 is None else f"{np.median(times['invoke 1']) / int8:.2f}x"
        lines.append(
            f"| {label} | {percentile_ms(times['invoke 1'], 50) * 1000:.1f} | "
            f"{percentile_ms(times['invoke 1'], 95) * 1000:.1f} | {percentile_ms(times['invoke 256'], 50) * 1000:.1f} | "
            f"{percentile_ms(times['invoke 256'], 95) * 1000:.1f} | {relative} |"
        )
    lines += ["", "![benchmarks](benchmarks.png)", ""]
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [f"{r['name'].split(' ')[-1]}\nbatch {r['batch']}" for r in results["throughput"]]
    ref = [r["reference"]["epoch"] for r in results["throughput"]]
    ours = [r["tfvae"]["epoch"] for r in results["throughput"]]
    pos = np.arange(len(names))
    ax1.bar(pos - 0.2, ref, 0.4, label="Keras example pattern")
    ax1.bar(pos + 0.2, ours, 0.4, label="tfvae")
    for p, a, b in zip(pos, ref, ours):
        ax1.text(p + 0.2, b, f"{b / a:.1f}x", ha="center", va="bottom")
    ax1.set_xticks(pos, names)
    ax1.set_ylabel("training samples/s (steady epochs)")
    ax1.set_yscale("log")
    ax1.legend(loc="lower left")
    ax1.set_title("Training throughput, compile + fit")
    labels = [row[0].replace("LiteRT encoder ", "LiteRT ") for row in results["inference"]]
    med1 = [percentile_ms(row[2][1], 50) for row in results["inference"]]
    med256 = [percentile_ms(row[2][256], 50) for row in results["inference"]]
    pos = np.arange(len(labels))
    ax2.barh(pos - 0.2, med1, 0.4, label="1 example")
    ax2.barh(pos + 0.2, med256, 0.4, label="batch of 256")
    ax2.set_yticks(pos, labels)
    ax2.set_xscale("log")
    ax2.set_xlabel("encoder latency, median ms")
    ax2.legend()
    ax2.set_title("Inference")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats/epochs (smoke run)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = parser.parse_args(argv)
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    repeats = 2 if args.quick else 5
    quality_epochs = 10 if args.quick else 150
    seeds = (0,) if args.quick else (0, 1, 2)
    calls = 50 if args.quick else 300

    x, x_test, _, _ = reference.load_digits_binarized()
    heavy_x = (np.random.default_rng(0).random((2048 if args.quick else 4096, 784)) > 0.5).astype("float32")
    results = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "quality_epochs": quality_epochs,
    }
    t0 = time.perf_counter()
    results["peak"] = matmul_peak()
    print(f"matmul peak measured ({time.perf_counter() - t0:.0f}s)", flush=True)
    cases = [("digits 64-128-128-8", DIGITS, x, 64, 5), ("digits 64-128-128-8", DIGITS, x, 512, 10),
             ("random 784-512-512-32", HEAVY, heavy_x, 128, 2)]
    results["throughput"] = []
    for name, case, data, batch, epochs in cases:
        row = throughput(case, data, batch, epochs, repeats, measure_peak=case is HEAVY)
        row.update(name=name, batch=batch, flops=train_flops_per_example(case))
        results["throughput"].append(row)
        print(f"throughput {name} batch {batch}: ratio {row['tfvae']['epoch'] / row['reference']['epoch']:.2f} "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)
    results["quality"] = quality(x, x_test, quality_epochs, seeds)
    print(f"quality done ({time.perf_counter() - t0:.0f}s)", flush=True)
    workdir = tempfile.mkdtemp(prefix="tfvae_bench_")
    try:
        model = build("tfvae", DIGITS)
        model.fit(x, epochs=quality_epochs, batch_size=64, verbose=0)
        results["inference"] = inference(model, x, x_test, calls, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"inference done ({time.perf_counter() - t0:.0f}s)", flush=True)
    text = format_report(results, command)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    plot(results, os.path.join(os.path.dirname(args.out), "benchmarks.png"))
    print(f"wrote {args.out} and benchmarks.png ({time.perf_counter() - t0:.0f}s total)")


if __name__ == "__main__":
    main()
