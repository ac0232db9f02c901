"""The benchmark's page: its method (fixed text), its tables computed from a run's measurements, its chart.

`sections(measured)` turns the dict `runner.measure` returns into the sections of the results contract
(bench/render.py), which `render.py` writes as docs/benchmarks.md; `plot` draws the chart.
"""

from __future__ import annotations

import numpy as np

from cases import DIGITS, HEAVY, KERAS_ADAM, PATHS, case_label, decoder_flops_per_sample, train_flops_per_example

#: Where the chart goes, relative to the repository root.
CHART = "docs/benchmarks/run.png"

METHOD = """\
Training speed on the workloads users bring, model quality, and inference latency. The reference is the
official Keras VAE example's pattern (`bench/keras_example_vae.py`) with the same bodies, compiled with
`keras.optimizers.Adam(1e-3)` as the example is; tfvae with its default `compile()` (Adam at 1e-3 too,
`tfvae.optimizers.Adam`). Both train with `fit(x, epochs, batch_size)`.

Each throughput case runs in a fresh child process, its models alternating in it over several repeats;
samples/s is examples / the median steady epoch time, after a warm-up epoch that absorbs tracing and
compiling. Ratios are taken within a case, so the load of a shared machine cancels out as far as it can;
absolute numbers move between runs. tfvae runs four ways: the default `compile()` (whose epoch loop
decides about XLA, as the docstring of `tfvae/epoch_loop.py` states), `compile(jit_compile=True)` (*epoch
loop + XLA*), `compile(jit_compile=False)` (*epoch loop*), and Keras' per-step loop (*keras per-step
loop*: the same model fed a `tf.data` dataset). To choose for your own model, time one epoch each way.

- (a) digits MLP 64-128-128-8, batch 64, binarized sklearn digits (1,437 training rows); whole fits of
  150 and 600 epochs on a fresh model per path, compiling included; quality: test log p(x) (IWAE,
  k=1000) after 150 epochs, 3 seeds, both models.
- (b) the Keras example's ConvNet (Conv2D 32, 64 / Dense 16 / z=2 / Dense 7x7x64 / Conv2DTranspose 64,
  32, 1) on the digits resized to 28x28 and binarized, batch 128; then each convolution alone, forward
  and gradients: the time of a step no float32 loop can go below.
- (c) 784-512-512-32 MLP, batch 128, on the same images flattened: achieved FLOP/s against the float32
  matmul peak (the best `tf.matmul` of square matrices, in a child process), and the `mixed_bfloat16`
  policy's speed and test log p(x) (scored in float32) against float32 training. Training FLOP per
  example: 6 x the forward pass's multiply-adds (forward, input gradient, weight gradient).
- A GRU VAE (GRU(64) encoder and decoder, 2,000 noisy sine sequences of 32 steps x 4 features, batch
  64, Gaussian likelihood): whole fits, compiling included.
- (d) `tfvae train` on digits (150 epochs, the defaults) end to end, in a child process per run
  (`bench/train_parts.py`), this tree against the previous release (`--baseline`), in turns with the
  Keras-example pattern's whole fit at the same epochs and batch.
- (e) `tfvae evaluate` (k=1000) of that run, against the decoder's matmul bound.
- Encoder inference latency of the digits model: Keras, SavedModel, LiteRT (float32, float16, dynamic,
  int8)."""


def _rate(value):
    return f"{value:,.0f}"


def _best_own(row):
    """The fastest of tfvae's non-default paths, and its rate."""
    name = max((p for p in PATHS if p != "default" and p in row), key=lambda p: row[p]["epoch"])
    return name, row[name]["epoch"]


def _ms(seconds, q):
    return float(np.percentile(seconds, q) * 1e3)


def throughput_section(measured):
    rows = []
    for row in measured["throughput"]:
        best_name, best = _best_own(row)
        rows.append([row["name"], row["batch"], _rate(row["reference"]["epoch"]),
                     f"{_rate(row['default']['epoch'])} ({row['default']['path']})",
                     *[_rate(row[p]["epoch"]) if p in row else "" for p in list(PATHS)[1:]],
                     f"{row['default']['epoch'] / row['reference']['epoch']:.2f}x",
                     f"{row['default']['epoch'] / best:.2f} (vs {best_name})",
                     f"{row['reference']['warmup_s']:.1f} / {row['default']['warmup_s']:.1f}"])
    by_repeat = "; ".join(
        f"{row['name'].split()[0]} " + ", ".join(f"{d / r:.2f}x" for d, r in zip(row["default"]["rates"],
                                                                                 row["reference"]["rates"]))
        for row in measured["throughput"])
    notes = "; ".join(row["note"] for row in measured["throughput"] if row.get("note"))
    digits = _row(measured, "digits")
    text = (
        "Samples/s of steady epochs. *default / best own* is the default over the fastest of tfvae's three "
        "other paths (at least 0.90: the default never loses by more than 10%).\n\n"
        f"default / reference repeat by repeat (back to back in each repeat): {by_repeat}."
        + (f" Notes: {notes}." if notes else "")
        + f"\n\nCompiled with `keras.optimizers.Adam(1e-3)` in place of the default `tfvae.optimizers.Adam`, "
        f"(a)'s default path ran {_rate(digits[KERAS_ADAM]['epoch'])} samples/s in the same rounds: "
        f"{digits[KERAS_ADAM]['epoch'] / digits['reference']['epoch']:.2f}x the reference "
        f"({digits[KERAS_ADAM]['path']}).")
    columns = ["case", "batch", "reference", "default (path chosen)", *list(PATHS)[1:], "default / reference",
               "default / best own", "warm-up s (ref / default)"]
    return {"heading": "Training throughput: the default against the Keras example and tfvae's other paths",
            "text": text, "table": {"columns": columns, "rows": rows}}


def whole_fits_section(measured):
    rows = []
    for fit in measured["whole_fits"]:
        times = fit["seconds"]
        best = min(value for name, value in times.items() if name != "default")
        rows.append([f"{fit['case']}, {fit['batch']}", f"{fit['epochs']} ({fit['steps']:,})",
                     f"{times['default']:.2f} ({fit['path']})",
                     *[f"{times[name]:.2f}" if name in times else "not run" for name in list(PATHS)[1:]],
                     f"{best / times['default']:.2f}",
                     f"{_rate(fit['steady']['default'])} ({_rate(fit['steady']['epoch loop + XLA'])})"])
    text = ("Seconds for `fit(x, epochs, batch_size)` on a fresh model, compiling included, median of the "
            "repeats, paths alternating. *best own / default* is the fastest other path's time over the "
            "default's (at least 0.90: the default never loses by more than 10%). The last column is the speed "
            "of the last third of the epochs (median epoch, median over the repeats): the default's, and in "
            "brackets `jit_compile=True`'s in the same fits.")
    columns = ["model, batch", "epochs (full batches)", "default (path chosen)", *list(PATHS)[1:],
               "best own / default", "last third, samples/s: default (XLA)"]
    return {"heading": "Whole fits, compiling included: (a)'s MLP, (c)'s MLP and a GRU VAE", "text": text,
            "table": {"columns": columns, "rows": rows}}


def _row(measured, key):
    return next(row for row in measured["throughput"] if row["key"] == key)


def conv_section(measured):
    conv = _row(measured, "conv")
    layers = conv["conv_layers"]
    seconds = sum(layer["ms"] for layer in layers) / 1e3
    bound = conv["batch"] / seconds
    text = (f"Each layer's forward pass and the gradients a step takes, in its own compiled call, median of "
            f"{layers[0]['calls']} calls, batch {conv['batch']}: {seconds * 1e3:.1f} ms in all, against "
            f"{conv['batch'] / conv['default']['epoch'] * 1e3:.1f} ms for the default's whole step and "
            f"{conv['batch'] / conv['reference']['epoch'] * 1e3:.1f} ms for the reference's. No float32 loop "
            f"around these kernels trains faster than {_rate(bound)} samples/s, "
            f"{bound / conv['reference']['epoch']:.2f}x the reference.")
    rows = [[layer["layer"], f"{layer['ms']:.1f}", f"{layer['gflops']:.0f}"] for layer in layers]
    return {"heading": "(b) The ConvNet's convolutions alone", "text": text,
            "table": {"columns": ["layer", "ms", "GFLOP/s"], "rows": rows}}


def heavy_section(measured):
    heavy, conv = _row(measured, "heavy"), _row(measured, "conv")
    peaks = {int(n): value for n, value in measured["peak"].items()}
    peak = max(peaks.values())
    flops = train_flops_per_example(HEAVY)

    def fraction(name):
        return float(np.median([r * flops / p for r, p in zip(heavy[name]["rates"], heavy["peaks"])]))

    nll = measured["bf16_nll"]
    rows = [["float32 (default)", _rate(heavy["default"]["epoch"]), f"{heavy['default']['epoch'] * flops / 1e9:.1f}",
             f"{100 * fraction('default'):.0f}%", f"{nll['float32']:.2f}"],
            ["mixed_bfloat16 (default compile)", _rate(heavy["bfloat16"]["epoch"]),
             f"{heavy['bfloat16']['epoch'] * flops / 1e9:.1f}", f"{100 * fraction('bfloat16'):.0f}% (of float32's)",
             f"{nll['mixed_bfloat16']:.2f}"]]
    whole = " ".join(
        f"In the {fit['epochs']}-epoch whole fits the default's path was {fit['path']}; its last third of epochs "
        f"trained {_rate(fit['steady']['default'])} samples/s, {100 * fit['steady']['default'] * flops / peak:.0f}% "
        f"of the peak measured at the start (`jit_compile=True` in the same fits: "
        f"{_rate(fit['steady']['epoch loop + XLA'])} samples/s, "
        f"{100 * fit['steady']['epoch loop + XLA'] * flops / peak:.0f}%)."
        for fit in measured["whole_fits"] if fit["case"] == case_label(HEAVY))
    text = (
        "Matmul peak (float32 `tf.matmul`, n x n) at the start: "
        + ", ".join(f"n={n}: {v / 1e9:.1f}" for n, v in sorted(peaks.items()))
        + f" GFLOP/s; after each repeat of (c): {', '.join(f'{p / 1e9:.0f}' for p in heavy['peaks'])} GFLOP/s. "
        f"Training FLOP per example: {flops / 1e6:.2f} M. The rows are (c)'s short fits (after a warm-up epoch). "
        f"{whole}\n\n"
        f"bfloat16 / float32 speed: {heavy['bfloat16']['epoch'] / heavy['default']['epoch']:.2f}x; the test log "
        f"p(x) is of models trained {measured['bf16_epochs']} epochs on the 1,437 training images and scored in "
        f"float32 on the 360 test images. The same policy on (b)'s ConvNet: {_rate(conv['bfloat16']['epoch'])} "
        f"samples/s against {_rate(conv['default']['epoch'])} for the float32 default "
        f"({conv['bfloat16']['epoch'] / conv['default']['epoch']:.2f}x; {conv['bfloat16']['path']}, 1 epoch of "
        f"{conv['few_images']:,} images).")
    columns = ["tfvae on (c)", "samples/s", "GFLOP/s", "of the peak after the same repeat (median)",
               "test log p(x), k=1000"]
    return {"heading": "(c) 784-512-512-32 against the matmul peak, and bfloat16", "text": text,
            "table": {"columns": columns, "rows": rows}}


def quality_section(measured):
    nll, rates = measured["quality"]["nll"], measured["quality"]["fit_rates"]
    rows = [[kind, f"{np.mean(values):.2f}", ", ".join(f"{v:.2f}" for v in values), _rate(np.mean(rates[kind]))]
            for kind, values in nll.items()]
    text = f"IWAE estimate with k={measured['quality_k']} per test example (360 examples), nats; higher is better."
    differences = np.subtract(nll["tfvae"], nll["reference"])
    if len(differences) > 1:
        standard_error = float(np.std(differences, ddof=1) / np.sqrt(len(differences)))
        text += (f" tfvae minus the reference, seed by seed: {', '.join(f'{d:+.2f}' for d in differences)}; mean "
                 f"{np.mean(differences):+.2f} nats, standard error {standard_error:.2f} ({len(differences)} seeds).")
    return {"heading": f"Quality (a): test log p(x) after {measured['quality_epochs']} epochs, batch 64, digits",
            "text": text, "table": {"columns": ["model", "mean over seeds", "per seed", "whole-fit samples/s (mean)"],
                                    "rows": rows}}


def train_section(measured):
    job = measured["main_job"]
    this, previous = job["median"]["this"], job["median"]["previous"]
    rows_count = measured["train_rows"]
    reference_rate = job["epochs"] * rows_count / job["median"]["reference"]["training"]
    quality_reference_rate = float(np.mean(measured["quality"]["fit_rates"]["reference"]))
    train_rate = job["epochs"] * rows_count / this["training"]
    parts = ("wall", "import", "setup", "training", "evaluation", "plots", "saving")
    rows = [[part, f"{this[part]:.2f}", f"{previous[part]:.2f}", f"{this[part] / previous[part]:.2f}"]
            for part in parts]
    text = (
        f"Seconds, median of {len(job['runs']['this'])} runs each, in turns with the reference's fit, in child "
        "processes; *previous* is the previous release.\n\n"
        f"Training phase: {_rate(train_rate)} samples/s ({job['epochs']} x {rows_count:,} rows / "
        f"{this['training']:.1f} s, compiling, per-epoch validation, backups and history.csv included) = "
        f"**{train_rate / reference_rate:.2f}x** the Keras-example pattern's whole fit at the same epochs and batch "
        f"in the same rounds ({_rate(reference_rate)} samples/s: "
        + ", ".join(f"{run['training']:.1f}" for run in job["runs"]["reference"])
        + f" s in fresh processes, timed around `fit`); {train_rate / quality_reference_rate:.2f}x its rate in "
        f"(a)'s quality runs ({_rate(quality_reference_rate)} samples/s). Previous release's training phase: "
        f"{_rate(job['epochs'] * rows_count / previous['training'])} samples/s. Round by round: "
        + ", ".join(f"{reference['training'] / run['training']:.2f}x"
                    for run, reference in zip(job["runs"]["this"], job["runs"]["reference"])) + ".")
    return {"heading": f"(d) `tfvae train` on digits ({job['epochs']} epochs, defaults), end to end", "text": text,
            "table": {"columns": ["part", "this", "previous", "this / previous"], "rows": rows}}


def evaluate_section(measured):
    ev = measured["evaluate"]
    peak = max(measured["peak"].values())
    bound = peak / decoder_flops_per_sample(DIGITS)
    rows = [[f"`tfvae evaluate RUN_DIR` (whole command in-process: load, ELBO, NLL, files; {ev['command_s']:.1f} s)",
             _rate(ev["command_rate"]), f"{100 * ev['command_rate'] / bound:.1f}%"],
            ["`VAE.log_likelihood` of the test split alone", _rate(ev["alone_rate"]),
             f"{100 * ev['alone_rate'] / bound:.1f}%"]]
    text = (f"Decoder matmul bound: the peak {peak / 1e9:.1f} GFLOP/s over "
            f"{decoder_flops_per_sample(DIGITS) / 1e3:.1f} kFLOP per z (8-128-128-64) = {_rate(bound)} samples/s.")
    return {"heading": f"(e) `tfvae evaluate` (k={ev['num_samples']}) on the digits test split", "text": text,
            "table": {"columns": ["what", "examples x k per second", "of the decoder's matmul bound"],
                      "rows": rows}}


def inference_sections(measured):
    # JSON turns the times' integer keys (1, 256) into strings.
    inference = [(label, size, {str(key): value for key, value in times.items()})
                 for label, size, times in measured["inference"]]
    rows = [[label, "" if size is None else f"{size / 1024:.1f} KiB",
             *[f"{_ms(times[n], q):.3f}" for n in ("1", "256") for q in (50, 95)]]
            for label, size, times in inference]
    invoke = [(label, times) for label, _, times in inference if "invoke 1" in times]
    int8 = next((np.median(times["invoke 1"]) for label, times in invoke if label.endswith("int8")), None)
    invoke_rows = [[label, *[f"{_ms(times[n], q) * 1000:.1f}" for n in ("invoke 1", "invoke 256") for q in (50, 95)],
                    "" if int8 is None else f"{np.median(times['invoke 1']) / int8:.2f}x"]
                   for label, times in invoke]
    return [
        {"heading": "Encoder inference latency (digits model)",
         "text": "Per call from Python (the Keras method, the SavedModel signature, the LiteRT signature runner, "
                 "each copying inputs in and outputs out).",
         "table": {"columns": ["runtime", "file size", "1 example median ms", "p95 ms", "batch 256 median ms",
                               "p95 ms"], "rows": rows}},
        {"heading": "LiteRT `invoke()` alone",
         "text": "The input already set (what an app pays per call on the device; XNNPACK delegate), microseconds.",
         "table": {"columns": ["encoder", "1 example median us", "p95 us", "batch 256 median us", "p95 us",
                               "vs int8, 1 example"], "rows": invoke_rows}},
    ]


def sections(measured):
    """The page's sections (results contract of bench/render.py) from `runner.measure`'s dict."""
    return [
        {"heading": "Method", "text": METHOD},
        throughput_section(measured),
        whole_fits_section(measured),
        conv_section(measured),
        heavy_section(measured),
        quality_section(measured),
        train_section(measured),
        evaluate_section(measured),
        *inference_sections(measured),
        {"heading": "Chart", "image": CHART},
    ]


def plot(measured, path):
    """Writes the chart: throughput per case and path, and `tfvae train`'s parts against the previous release."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    rows = measured["throughput"]
    series = ["reference", *PATHS]
    width = 0.8 / len(series)
    positions = np.arange(len(rows))
    for i, name in enumerate(series):
        values = [row[name]["epoch"] if name in row else np.nan for row in rows]
        label = "Keras example pattern" if name == "reference" else f"tfvae {name}"
        ax1.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax1.set_xticks(positions, [f"{row['name'].replace(' ', chr(10), 1)}\nbatch {row['batch']}" for row in rows],
                   fontsize=8)
    ax1.set_ylabel("training samples/s (steady epochs)")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    ax1.set_title("Training throughput, compile + fit")
    job = measured["main_job"]["median"]
    left = np.zeros(2)
    for part in ("import", "setup", "training", "evaluation", "plots", "saving"):
        values = np.array([job["this"][part], job["previous"][part]])
        ax2.barh([0, 1], values, left=left, label=part)
        left += values
    ax2.set_yticks([0, 1], ["this tree", "previous release"])
    ax2.set_xlabel("seconds")
    ax2.legend(fontsize=8)
    ax2.set_title(f"tfvae train, digits, {measured['main_job']['epochs']} epochs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
