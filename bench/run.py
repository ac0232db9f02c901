"""tfvae benchmarks: training speed on the workloads users bring, quality, inference.

    python bench/run.py                 # full run (31 min measured on the shared, loaded 2-core machine)
    python bench/run.py --quick         # smoke run, same tables, numbers not meaningful

Prints the tables and writes them to docs/benchmarks.md, with a chart
docs/benchmarks.png, the command and the date.

The reference compiles with ``keras.optimizers.Adam(1e-3)``, as the Keras
example does; tfvae with its default ``compile()``, which is Adam at 1e-3 too
(``tfvae.optimizers.Adam``: Keras' Adam updates, bit for bit below
``tfvae.optimizers.FUSED_MIN_SIZE`` elements a variable, a smaller step
graph); (a) also runs tfvae's default path compiled with
``keras.optimizers.Adam(1e-3)``. Both train with ``fit(x, epochs,
batch_size)``. The throughput table's cases each run in a
fresh child process (``in_fresh_process``: the reference's Keras loop slows
down as a process accumulates models, tfvae's does not), the models of a case
alternating in it over several repeats; samples/s = examples / median steady
epoch time (on_epoch_end to on_epoch_end, after a warm-up ``fit`` epoch that
absorbs tracing and XLA compilation). Ratios are taken within a case, so the
load of the shared machine cancels out as far as it can. For each case tfvae
runs four ways: the default ``compile()`` (what a user gets; the epoch loop
decides about XLA, see tfvae/epoch_loop.py), ``compile(jit_compile=True)``
and ``compile(jit_compile=False)`` (the epoch loop with and without XLA),
and Keras' per-step loop (the same model fed a ``tf.data`` dataset). The
reference is the official Keras VAE example's pattern
(bench/keras_example_vae.py) with the same bodies.

(a) digits MLP 64-128-128-8, batch 64, binarized sklearn digits (1,437
    training rows); whole fits of 150 and 600 epochs on a fresh model per
    path, compiling included (what the default's XLA rule weighs; also 30
    epochs of (c), and 20 epochs of a recurrent VAE, ``GRU_CASE``: GRU(64)
    encoder and decoder on 2,000 noisy sine sequences of 32 steps x 4
    features, batch 64, Gaussian likelihood, made in this file);
    quality: test log p(x) (IWAE, k=1000) after 150 epochs, 3 seeds, both
    models.
(b) the Keras example's ConvNet (Conv2D 32, 64 / Dense 16 / z=2 / Dense 7x7x64
    / Conv2DTranspose 64, 32, 1) on 28x28 binary images (the digits resized
    with tf.image.resize and binarized: offline), batch 128. XLA's
    convolutions are slow on this CPU, so the XLA path is timed on fewer images.
    Then each convolution alone, forward and gradients (``conv_layers_alone``):
    the time of a step no float32 loop can go below.
(c) 784-512-512-32 MLP, batch 128, on the same images flattened; achieved
    FLOP/s against the float32 matmul peak measured after each repeat (and,
    in its 30-epoch whole fits, the default's last third of epochs against
    the peak measured at the start); and
    tfvae under ``keras.mixed_precision.set_global_policy("mixed_bfloat16")``:
    its speed, and the test log p(x) (k=1000, computed in float32) of the
    model trained that way against float32 training; and that policy's speed
    on (b)'s ConvNet.
(d) ``tfvae train`` on digits (150 epochs, the defaults) end to end, in a child
    process per run (bench/train_parts.py), this tree against the previous
    release (``git worktree add /tmp/S/baseline 5a38960``, or --baseline),
    in turns: wall time and its parts. Its training phase (epochs x
    training rows / seconds in fit, compiling, validation and backups
    included) is set against the Keras-example pattern's whole fit at the
    same epochs and batch, run in a child process in the same rounds
    (bench/keras_example_vae.py, timed around ``fit``), and also against
    that pattern's rate in the quality runs of (a).
(e) ``tfvae evaluate`` (k=1000) of that run: examples x k per second, of the
    whole command and of ``VAE.log_likelihood`` alone, against the decoder's
    matmul bound (the matmul peak / the decoder's FLOP per sample).
Then encoder inference latency (Keras, SavedModel, LiteRT) as before.

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
import contextlib
import datetime
import io
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
import tfvae.epoch_loop  # noqa: E402
import tfvae.xla_choice  # noqa: E402

DIGITS = (64, (128, 128), 8)
HEAVY = (784, (512, 512), 32)
#: tfvae's training paths, each a `compile(jit_compile=...)` and a way of feeding fit.
PATHS = {"default": "auto", "epoch loop + XLA": True, "epoch loop": False, "keras per-step loop": "auto"}
#: (a)'s extra runner: the default path compiled with `keras.optimizers.Adam(1e-3)` (the default is tfvae's Adam).
KERAS_ADAM = "default, keras.optimizers.Adam"
#: A model family of loops: a GRU VAE on sequences (steps, features), z of size 4, whole fits only.
GRU_CASE = "GRU(64) VAE, 32x4 sequences"


# ---------------------------------------------------------------- helpers

def train_flops_per_example(case):
    """6 * multiply-adds of one forward pass (encoder, both heads, decoder)."""
    d, hidden, latent = case
    enc = list(zip((d,) + hidden, hidden + (2 * latent,)))
    dec = list(zip((latent,) + hidden[::-1], hidden[::-1] + (d,)))
    return 6 * sum(i * o for i, o in enc + dec)


def decoder_flops_per_sample(case):
    """2 * multiply-adds of the decoder for one z."""
    d, hidden, latent = case
    return 2 * sum(i * o for i, o in zip((latent,) + hidden[::-1], hidden[::-1] + (d,)))


class EpochClock(keras.callbacks.Callback):
    """Records the time at the start of training and at every epoch end."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())


def digit_images():
    """Binarized sklearn digits resized to 28x28x1: (train, test) split as `reference.load_digits_binarized`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = tf.image.resize(digits.images[..., None] / 16.0, (28, 28)).numpy()
    images = (images > 0.5).astype("float32")
    train, test = train_test_split(images, test_size=0.2, stratify=digits.target, random_state=0)
    return train, test


def sine_sequences(n=2000, steps=32, features=4, seed=0):
    """`n` noisy sine waves of random frequency and phase per feature: float32 (n, steps, features)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, steps)[None, :, None]
    waves = np.sin(t * rng.uniform(0.5, 2, (n, 1, features)) + rng.uniform(0, 2 * np.pi, (n, 1, features)))
    return (waves + 0.1 * rng.normal(size=(n, steps, features))).astype("float32")


def gru_vae(steps=32, features=4):
    """GRU_CASE's tfvae model: GRU(64) + Dense(64) encoder; RepeatVector, GRU(64) sequences, Dense decoder."""
    layers = keras.layers
    encoder = keras.Sequential([keras.Input((steps, features)), layers.GRU(64), layers.Dense(64, activation="relu")])
    decoder = keras.Sequential([keras.Input((4,)), layers.RepeatVector(steps), layers.GRU(64, return_sequences=True),
                                layers.Dense(features)])
    return tfvae.VAE(encoder, decoder, 4, likelihood="gaussian")


def case_label(case):
    """A case's name in the tables: GRU_CASE itself, or an MLP's layer sizes joined by dashes."""
    return case if case == GRU_CASE else "-".join(map(str, (case[0], *case[1], case[2])))


def build(kind, case, seed=0, path="default", optimizer=None):
    """A reference or tfvae model, compiled as a user would (`path`: a key of PATHS).

    The reference compiles with Keras' Adam at 1e-3; tfvae with its default optimizer (Adam at 1e-3), or
    `optimizer(1e-3)` if given.
    """
    keras.utils.set_random_seed(seed)
    if case == "conv":
        if kind == "reference":
            return reference.build_conv_reference()
        model = tfvae.VAE(reference.conv_encoder_body(), reference.conv_decoder(), 2, likelihood="bernoulli")
    elif case == GRU_CASE:
        model = gru_vae()
    elif kind == "reference":
        return reference.build_reference(*case)
    else:
        model = tfvae.mlp_vae(case[0], case[1], case[2], likelihood="bernoulli")
    model.compile(optimizer=optimizer and optimizer(1e-3), jit_compile=PATHS[path])
    return model


def bf16_model(case):
    """tfvae's default on `case`, built and compiled under the `mixed_bfloat16` policy."""
    with dtype_policy("mixed_bfloat16"):
        return build("tfvae", case)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (bfloat16 and XLA speeds differ between CPUs), or "unknown"."""
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown"


def percentile_ms(seconds, q):
    return float(np.percentile(seconds, q) * 1e3)


@contextlib.contextmanager
def dtype_policy(name):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)



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
    """The throughput row of (a) "digits", (b) "conv" or (c) "heavy"; `main` runs it in a fresh process."""
    repeats = 2 if quick else 3
    if key == "digits":
        x = reference.load_digits_binarized()[0]
        runners = tfvae_runners(DIGITS, x)
        runners[KERAS_ADAM] = {"build": lambda: build("tfvae", DIGITS, optimizer=keras.optimizers.Adam), "x": x}
        row = throughput(runners, 64, 5, repeats)
        row.update(key="digits", name="(a) digits MLP 64-128-128-8", batch=64)
        return row
    images, _ = digit_images()
    tiled = np.concatenate([images] * 3)  # 4,311 images: 33 full batches of 128
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

        cd bench && python -c "import run, keras; D = keras.layers.Dense; S = lambda n, *l: keras.Sequential(
            [keras.Input((n,)), *l]); print(run.layers_alone((S(784, D(512), D(512), D(64)), S(32, D(512),
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


def in_fresh_process(function, *args):
    """`function(*args)`, a function of this module, run in a child process; its result (through JSON).

    The Keras-example pattern's per-step loop slows down as a process accumulates models (a 30-epoch
    digits fit took 6.6 s in a fresh process and 9.8 s after 50 fits in it, while tfvae's took 4.0 s
    and 3.7 s), so the throughput cases each run in a process of their own.
    """
    code = ("import json, sys; sys.path[:0] = sys.argv[1:3]; import run; "
            f"print(json.dumps(run.{function.__name__}(*json.loads(sys.argv[3])), default=run._jsonable))")
    return child_json(["-c", code, HERE, ROOT, json.dumps(args)], f"{function.__name__}{args}")[0]


def _jsonable(value):
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


# ----------------------------------------------------------------- quality

def tfvae_log_likelihood(model, x, num_samples=1000):
    return model.log_likelihood(x, num_samples=num_samples, seed=0)


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


# ------------------------------------------------------------ tfvae train

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
        status = tfvae.cli.main(["evaluate", run_dir, "--num-samples", str(num_samples)])
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

def _best_own(row):
    """The fastest of tfvae's non-default paths, and its rate."""
    name = max((p for p in PATHS if p != "default" and p in row), key=lambda p: row[p]["epoch"])
    return name, row[name]["epoch"]


def format_report(results, command):
    peak = max(results["peak"].values())
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{command}`  ",
        f"Date: {results['date']}  ",
        f"Machine: {results['machine']}; TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "",
        "Generated by `bench/run.py` (its docstring says how each number is measured). The reference",
        "is the official Keras VAE example's pattern (`bench/keras_example_vae.py`) with the same",
        "bodies, compiled with `keras.optimizers.Adam(1e-3)` as the example is; tfvae with its default",
        "`compile()`, which is Adam at 1e-3 too (`tfvae.optimizers.Adam`: Keras' Adam updates, bit for bit",
        f"below {tfvae.optimizers.FUSED_MIN_SIZE:,} elements a variable, a smaller step graph). Both train with",
        "`fit(x, epochs, batch_size)`, alternating in one process, medians of several repeats. Absolute numbers move",
        "between runs (the machine may be shared with other jobs); the ratios within a table are the",
        "result.",
        "",
        "## How `fit` trains, and how the default decides",
        "",
        "For arrays held in memory, `VAE.fit` runs each epoch as one compiled TensorFlow function",
        "(shuffle, an in-graph loop over the batches, Adam inside) and array `validation_data` as one",
        "compiled call per epoch, while Keras' own `fit` still drives callbacks, the progress bar and",
        "History (`tfvae/epoch_loop.py`). The step is traced once; each epoch's call resets the metrics",
        "at its start and returns their results for Keras to read. With the default",
        "`compile()` (`jit_compile=\"auto\"`), the full batches run under XLA when the fit runs at least",
        f"`AUTO_XLA_MIN_STEPS` = {tfvae.xla_choice.AUTO_XLA_MIN_STEPS} training steps, its traced step holds no op",
        "whose type name contains " + ", ".join(f"`{word}`" for word in tfvae.xla_choice.SLOW_UNDER_XLA),
        "(convolutions and pooling: on this CPU XLA's are far slower, table below, (b); loops) and op",
        "determinism is off; nothing is timed (the rule: `tfvae/epoch_loop.py`). The partial last batch and",
        "validation always run without XLA. A step XLA cannot compile (an op without an XLA kernel) goes on",
        "without it.",
        "`compile(jit_compile=True)` or `False` overrides the rule; after `fit`, `model.fit_path` says which loop ran",
        "(`\"epoch loop + XLA\"`, `\"epoch loop\"`, or `\"keras\"` for Keras' per-step loop, used for",
        "datasets, generators, `validation_split`, `class_weight`, `steps_per_execution`, a",
        "`tf.distribute` strategy, or a Keras version outside the tested one, with a warning).",
        "",
        "`tfvae train` compiles without `steps_per_execution` on one device, so it trains on this",
        "loop: its batch callbacks run once per epoch, so the non-finite check restores the last good",
        "epoch's weights and backups are written at the first epoch end past `--backup-every` batches.",
        "",
        "## Training throughput: tfvae's default against the Keras example and against its own paths",
        "",
        "Samples/s of steady epochs. *default* is `compile()` with nothing else; *epoch loop + XLA* is",
        "`compile(jit_compile=True)`, *epoch loop* `compile(jit_compile=False)`, *keras per-step loop*",
        "the same model fed a `tf.data` dataset. \"default / best own\" is the default over the fastest",
        "of the three others (at least 0.90 means the default never loses by more than 10%).",
        "",
        "| case | batch | reference | default (path chosen) | epoch loop + XLA | epoch loop | keras per-step loop "
        "| default / reference | default / best own | warm-up s (ref / default) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["throughput"]:
        best_name, best = _best_own(row)
        cells = [f"{row[p]['epoch']:,.0f}" if p in row else "" for p in list(PATHS)[1:]]
        lines.append(
            f"| {row['name']} | {row['batch']} | {row['reference']['epoch']:,.0f} | "
            f"{row['default']['epoch']:,.0f} ({row['default']['path']}) | {' | '.join(cells)} | "
            f"{row['default']['epoch'] / row['reference']['epoch']:.2f}x | "
            f"{row['default']['epoch'] / best:.2f} (vs {best_name}) | "
            f"{row['reference']['warmup_s']:.1f} / {row['default']['warmup_s']:.1f} |"
        )
    lines += [
        "",
        "default / reference repeat by repeat (the two fit back to back in each repeat): "
        + "; ".join(f"{row['name'].split()[0]} " + ", ".join(
            f"{default / reference:.2f}x" for default, reference in zip(row["default"]["rates"],
                                                                         row["reference"]["rates"]))
                    for row in results["throughput"]) + ".",
        "",
        "Steady epochs leave out the seconds spent tracing and compiling, which the default weighs:",
        "the short fits above (a warm-up epoch, then a few epochs) run the default without XLA, since",
        "they would not repay compiling it. Whether that rule never loses is measured on whole fits:",
        "",
        "### Whole fits, compiling included: (a)'s digits MLP, (c)'s 784-512-512-32 and a GRU VAE",
        "",
        "Seconds for `fit(x, epochs, batch_size)` on a fresh model, median of the repeats, paths",
        "alternating. \"best own / default\" is the fastest other path's time over the default's (at",
        "least 0.90 means the default never loses by more than 10%).",
        "",
        "The last column is the speed of the last third of the epochs (median epoch, median over the",
        "repeats), after the default's choice: the default's, and in brackets `jit_compile=True`'s in",
        "the same fits.",
        "",
        "| model, batch | epochs (full batches) | default (path chosen) | epoch loop + XLA | epoch loop "
        "| keras per-step loop | best own / default | last third, samples/s: default (XLA) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fit in results["whole_fits"]:
        times = fit["seconds"]
        best = min(value for name, value in times.items() if name != "default")
        cells = [f"{times[name]:.2f}" if name in times else "not run" for name in list(PATHS)[1:]]
        lines.append(f"| {fit['case']}, {fit['batch']} | {fit['epochs']} ({fit['steps']:,}) | "
                     f"{times['default']:.2f} ({fit['path']}) | "
                     f"{' | '.join(cells)} | {best / times['default']:.2f} | {fit['steady']['default']:,.0f} "
                     f"({fit['steady']['epoch loop + XLA']:,.0f}) |")
    heavy = next(row for row in results["throughput"] if row["key"] == "heavy")
    digits = next(row for row in results["throughput"] if row["key"] == "digits")
    conv = next(row for row in results["throughput"] if row["key"] == "conv")
    flops = train_flops_per_example(HEAVY)
    fractions = [rate * flops / p for rate, p in zip(heavy["default"]["rates"], heavy["peaks"])]
    lines += [
        "",
        "Notes: " + "; ".join(row["note"] for row in results["throughput"] if row.get("note")) + ".",
        "",
        *conv_kernels_lines(conv),
        "",
        "Compiled with `keras.optimizers.Adam(1e-3)` in place of the default `tfvae.optimizers.Adam`",
        "(Keras' Adam computing its bias correction once per step: the same updates, a smaller step graph),",
        f"(a)'s default path ran {digits[KERAS_ADAM]['epoch']:,.0f} samples/s in the same rounds: "
        f"{digits[KERAS_ADAM]['epoch'] / digits['reference']['epoch']:.2f}x the reference "
        f"({digits[KERAS_ADAM]['path']}).",
        "",
        "### (c) 784-512-512-32 against the matmul peak, and bfloat16",
        "",
        "Matmul peak (float32 `tf.matmul`, n x n) at the start: " + ", ".join(
            f"n={n}: {v / 1e9:.1f}" for n, v in results["peak"].items()) + f" GFLOP/s (best {peak / 1e9:.1f}); "
        "measured again after each repeat of (c): " + ", ".join(f"{p / 1e9:.0f}" for p in heavy["peaks"]) +
        " GFLOP/s.",
        f"Training FLOP/example = 6 x forward multiply-adds = {flops / 1e6:.2f} MFLOP.",
        "",
        "| tfvae on (c) | samples/s | GFLOP/s | % of the peak measured after the same repeat (median) | test log p(x), k=1000 |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| float32 (default) | {heavy['default']['epoch']:,.0f} | {heavy['default']['epoch'] * flops / 1e9:.1f} | "
        f"{100 * float(np.median(fractions)):.0f}% | {results['bf16_nll']['float32']:.2f} |",
        f"| mixed_bfloat16 (default compile) | {heavy['bfloat16']['epoch']:,.0f} | "
        f"{heavy['bfloat16']['epoch'] * flops / 1e9:.1f} | "
        f"{100 * float(np.median([r * flops / p for r, p in zip(heavy['bfloat16']['rates'], heavy['peaks'])])):.0f}% "
        f"(of the float32 peak) | {results['bf16_nll']['mixed_bfloat16']:.2f} |",
        "",
        "The rows above are (c)'s short fits (2 epochs, after a warm-up epoch), which the default runs",
        "without XLA. " + heavy_whole_fit_line(results, flops, peak),
        "",
        f"bfloat16 / float32 speed: {heavy['bfloat16']['epoch'] / heavy['default']['epoch']:.2f}x. The test log p(x) "
        f"is of models trained {results['bf16_epochs']} epochs on the 1,437 training images (28x28, flattened) and "
        "scored in float32 on the 360 test images.",
        "",
        f"The same policy on (b)'s ConvNet: {conv['bfloat16']['epoch']:,.0f} samples/s against "
        f"{conv['default']['epoch']:,.0f} for the float32 default "
        f"({conv['bfloat16']['epoch'] / conv['default']['epoch']:.2f}x; {conv['bfloat16']['path']}, 1 epoch of "
        f"{conv['few_images']:,} images).",
        "",
        f"## Quality (a): test log p(x) after {results['quality_epochs']} epochs, batch 64, digits",
        "",
        f"IWAE estimate with k={results['quality_k']} per test example (360 examples), nats; higher is better.",
        "",
        "| model | mean over seeds | per seed | whole-fit samples/s (mean) |",
        "| --- | ---: | --- | ---: |",
    ]
    for kind, values in results["quality"]["nll"].items():
        rate = float(np.mean(results["quality"]["fit_rates"][kind]))
        lines.append(f"| {kind} | {np.mean(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} | {rate:,.0f} |")
    differences = np.subtract(results["quality"]["nll"]["tfvae"], results["quality"]["nll"]["reference"])
    if len(differences) > 1:
        standard_error = float(np.std(differences, ddof=1) / np.sqrt(len(differences)))
        lines += [
            "",
            f"tfvae minus the reference, seed by seed (same seed): {', '.join(f'{d:+.2f}' for d in differences)}; "
            f"mean {np.mean(differences):+.2f} nats, standard error {standard_error:.2f} ({len(differences)} seeds).",
        ]
    job = results["main_job"]
    this, previous = job["median"]["this"], job["median"]["previous"]
    quality_reference_rate = float(np.mean(results["quality"]["fit_rates"]["reference"]))
    reference_rate = job["epochs"] * results["train_rows"] / job["median"]["reference"]["training"]
    train_rate = job["epochs"] * results["train_rows"] / this["training"]
    lines += [
        "",
        f"## (d) `tfvae train` on digits ({job['epochs']} epochs, defaults), end to end",
        "",
        f"Seconds, median of {len(job['runs']['this'])} runs each, in turns with the reference's fit, in "
        "child processes (`bench/train_parts.py`, `bench/keras_example_vae.py`); *previous* is commit 5a38960.",
        "",
        "| part | this | previous | this / previous |",
        "| --- | ---: | ---: | ---: |",
    ]
    for part in ("wall", "import", "setup", "training", "evaluation", "plots", "saving"):
        lines.append(f"| {part} | {this[part]:.2f} | {previous[part]:.2f} | {this[part] / previous[part]:.2f} |")
    lines += [
        "",
        f"Training phase: {train_rate:,.0f} samples/s ({job['epochs']} x {results['train_rows']:,} rows / "
        f"{this['training']:.1f} s, compiling, per-epoch validation, backups and history.csv included) = "
        f"**{train_rate / reference_rate:.2f}x** the Keras-example pattern's whole fit at the same epochs and "
        f"batch in the same rounds ({reference_rate:,.0f} samples/s: "
        + ", ".join(f"{run['training']:.1f}" for run in job["runs"]["reference"]) +
        f" s in fresh processes, timed around `fit`); {train_rate / quality_reference_rate:.2f}x its rate in (a)'s "
        f"quality runs earlier in this process ({quality_reference_rate:,.0f} samples/s). Previous release's "
        f"training phase: {job['epochs'] * results['train_rows'] / previous['training']:,.0f} samples/s. "
        "Round by round (the reference's fit against `tfvae train`'s training phase in the same round): "
        + ", ".join(f"{reference['training'] / run['training']:.2f}x"
                    for run, reference in zip(job["runs"]["this"], job["runs"]["reference"])) + ".",
        "",
    ]
    ev = results["evaluate"]
    bound = peak / decoder_flops_per_sample(DIGITS)
    lines += [
        f"## (e) `tfvae evaluate` (k={ev['num_samples']}) on the digits test split",
        "",
        "| what | examples x k per second | % of the decoder's matmul bound |",
        "| --- | ---: | ---: |",
        f"| `tfvae evaluate RUN_DIR` (whole command in-process: load, ELBO with 100 draws, NLL, files; "
        f"{ev['command_s']:.1f} s) | {ev['command_rate']:,.0f} | {100 * ev['command_rate'] / bound:.1f}% |",
        f"| `VAE.log_likelihood(x_test, {ev['num_samples']})` alone | {ev['alone_rate']:,.0f} | "
        f"{100 * ev['alone_rate'] / bound:.1f}% |",
        "",
        f"Decoder matmul bound: the peak {peak / 1e9:.1f} GFLOP/s over {decoder_flops_per_sample(DIGITS) / 1e3:.1f} "
        f"kFLOP per z (8-128-128-64) = {bound:,.0f} samples/s.",
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


def conv_kernels_lines(conv):
    """(b): what the ConvNet's convolutions alone take per step, and the speed they bound."""
    layers = conv["conv_layers"]
    seconds = sum(layer["ms"] for layer in layers) / 1e3
    bound = conv["batch"] / seconds
    return [
        f"(b)'s convolutions alone (`conv_layers_alone`: each layer's forward pass and the gradients a step takes, "
        f"in its own compiled call, median of {layers[0]['calls']} calls, batch {conv['batch']}): "
        + ", ".join(f"{layer['layer']} {layer['ms']:.1f} ms ({layer['gflops']:.0f} GFLOP/s)" for layer in layers)
        + f"; {seconds * 1e3:.1f} ms in all, against {conv['batch'] / conv['default']['epoch'] * 1e3:.1f} ms for "
        f"the default's whole step and {conv['batch'] / conv['reference']['epoch'] * 1e3:.1f} ms for the "
        f"reference's. No float32 loop around these kernels trains faster than {bound:,.0f} samples/s, "
        f"{bound / conv['reference']['epoch']:.2f}x the reference.",
    ]


def heavy_whole_fit_line(results, flops, peak):
    """A sentence: the default's last-third epochs in (c)'s whole fits, against `peak` (the matmul peak at the start)."""
    fits = [fit for fit in results["whole_fits"] if fit["case"] == case_label(HEAVY)]
    return " ".join(
        f"In the {fit['epochs']}-epoch whole fits (table above) the default's path was {fit['path']}; its last third "
        f"of epochs trained {fit['steady']['default']:,.0f} samples/s, {fit['steady']['default'] * flops / 1e9:.1f} "
        f"GFLOP/s, {100 * fit['steady']['default'] * flops / peak:.0f}% of the peak measured at the start "
        f"(`jit_compile=True` in the same fits: {fit['steady']['epoch loop + XLA']:,.0f} samples/s, "
        f"{100 * fit['steady']['epoch loop + XLA'] * flops / peak:.0f}%)."
        for fit in fits)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    rows = results["throughput"]
    series = ["reference", *PATHS]
    width = 0.8 / len(series)
    pos = np.arange(len(rows))
    for i, name in enumerate(series):
        values = [row[name]["epoch"] if name in row else np.nan for row in rows]
        label = "Keras example pattern" if name == "reference" else f"tfvae {name}"
        ax1.bar(pos + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax1.set_xticks(pos, [f"{row['name'].replace(' ', chr(10), 1)}\nbatch {row['batch']}" for row in rows], fontsize=8)
    ax1.set_ylabel("training samples/s (steady epochs)")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    ax1.set_title("Training throughput, compile + fit")
    job = results["main_job"]["median"]
    parts = ("import", "setup", "training", "evaluation", "plots", "saving")
    left = np.zeros(2)
    for part in parts:
        values = np.array([job["this"][part], job["previous"][part]])
        ax2.barh([0, 1], values, left=left, label=part)
        left += values
    ax2.set_yticks([0, 1], ["this tree", "previous release"])
    ax2.set_xlabel("seconds")
    ax2.legend(fontsize=8)
    ax2.set_title(f"tfvae train, digits, {results['main_job']['epochs']} epochs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats/epochs (smoke run)")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    parser.add_argument("--baseline", default="/tmp/S/baseline",
                        help="a checkout of the previous release (git worktree add PATH 5a38960)")
    args = parser.parse_args(argv)
    command = "python bench/run.py" + (" --quick" if args.quick else "")
    if not os.path.isdir(os.path.join(args.baseline, "tfvae")):
        parser.error(f"--baseline {args.baseline} holds no tfvae: run `git worktree add {args.baseline} 5a38960`")
    quality_epochs = 5 if args.quick else 150
    seeds = (0,) if args.quick else (0, 1, 2)
    k = 50 if args.quick else 1000
    calls = 30 if args.quick else 300

    x, x_test, _, _ = reference.load_digits_binarized()
    images, images_test = digit_images()
    tiled = np.concatenate([images] * 3)  # 4,311 images: 33 full batches of 128
    results = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} ({cpu_model()}), {os.cpu_count()} cores",
        "quality_epochs": quality_epochs, "quality_k": k, "train_rows": len(x),
    }
    t0 = time.perf_counter()

    def progress(what):
        print(f"{what} ({time.perf_counter() - t0:.0f}s)", flush=True)
        if what.endswith("throughput"):
            row = results["throughput"][-1]
            print("  " + ", ".join(f"{name}: {row[name]['epoch']:,.0f}/s" for name in ("reference", *PATHS)
                                   if name in row) + f"; default/reference {row['default']['epoch'] / row['reference']['epoch']:.2f}x, "
                  f"default/best own {row['default']['epoch'] / _best_own(row)[1]:.2f}", flush=True)

    results["peak"] = matmul_peak()
    progress("matmul peak")
    results["throughput"] = [in_fresh_process(case_throughput, "digits", args.quick)]
    progress("(a) throughput")
    results["whole_fits"] = whole_fits(DIGITS, x, 64, (5, 20) if args.quick else (150, 600), 1 if args.quick else 3)
    progress("(a) whole fits")
    results["throughput"].append(in_fresh_process(case_throughput, "conv", args.quick))
    progress("(b) throughput")
    flat = tiled.reshape(len(tiled), -1)
    results["throughput"].append(in_fresh_process(case_throughput, "heavy", args.quick))
    progress("(c) throughput")
    results["whole_fits"] += whole_fits(HEAVY, flat, 128, (3,) if args.quick else (30,), 1 if args.quick else 2,
                                        keras_loop=False)
    progress("(c) whole fits")
    results["whole_fits"] += whole_fits(GRU_CASE, sine_sequences(), 64, (3,) if args.quick else (20,),
                                        1 if args.quick else 2, keras_loop=False)
    progress("GRU whole fits")
    results["bf16_epochs"] = 3 if args.quick else 50
    results["bf16_nll"] = bf16_quality(images.reshape(len(images), -1), images_test.reshape(len(images_test), -1),
                                       results["bf16_epochs"], k)
    progress("(c) bfloat16 quality")
    print(f"  {results['bf16_nll']}", flush=True)
    results["quality"] = quality(x, x_test, quality_epochs, seeds, k)
    progress("(a) quality")
    print(f"  {results['quality']}", flush=True)
    workdir = tempfile.mkdtemp(prefix="tfvae_bench_")
    try:
        results["main_job"] = main_job(args.baseline, workdir, 5 if args.quick else 150, 1 if args.quick else 3)
        progress("(d) tfvae train")
        print(f"  {results['main_job']['median']}", flush=True)
        results["evaluate"] = evaluate_job(results["main_job"]["run_dir"], x_test, k)
        progress("(e) tfvae evaluate")
        print(f"  {results['evaluate']}", flush=True)
        model = build("tfvae", DIGITS)
        model.fit(x, epochs=quality_epochs, batch_size=64, verbose=0)
        results["inference"] = inference(model, x, x_test, calls, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    progress("inference")
    text = format_report(results, command)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(results, f, default=lambda value: np.asarray(value).tolist())
    plot(results, os.path.join(os.path.dirname(args.out), "benchmarks.png"))
    print(f"wrote {args.out} and benchmarks.png ({time.perf_counter() - t0:.0f}s total)")


if __name__ == "__main__":
    main()
