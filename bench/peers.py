"""tfvae beside the same VAEs written in JAX and PyTorch, as each ecosystem's own example writes them.

    pip install -e ".[bench]"           # JAX, Flax and Optax (the library does not need them)
    pip install torch==2.13.0           # optional: PyTorch's CPU build; without it its rows are skipped
    python bench/peers.py               # writes bench/results/peers.json; python bench/render.py renders it
    python bench/peers.py --quick       # a smoke run: same tables, numbers not meaningful

Every fit runs in a fresh child process (one framework per process, none warm from another), the
systems in turn within each repeat (the order rotated), so the machine's load falls on all of them
alike; ratios are taken within a repeat and summarized by their median and range.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import render  # bench/render.py: the results contract

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: The model families: the README's digits MLP and the Keras example's ConvNet.
FAMILIES = {
    "mlp": {"label": "digits MLP 64-128-128-8, batch 64", "batch_size": 64, "latent_dim": 8},
    "conv": {"label": "Keras example ConvNet, 28x28 digits, z = 2, batch 128", "batch_size": 128, "latent_dim": 2},
}
#: system -> (label, families it runs, how its package is found)
SYSTEMS = {
    "tfvae": ("tfvae, default `compile()`", ("mlp", "conv"), "tensorflow"),
    "tfvae_cached": ("tfvae, default `compile()`, persistent XLA cache warm (as `tfvae train` runs)", ("mlp",),
                     "tensorflow"),
    "tfvae_xla": ("tfvae, `compile(jit_compile=True)`", ("mlp",), "tensorflow"),
    "jax_scan": ("JAX + Flax, a whole epoch as one jitted `lax.scan`", ("mlp", "conv"), "jax"),
    "jax_step": ("JAX + Flax, one jitted step, Python loop (the Flax example)", ("mlp",), "jax"),
    "torch_eager": ("PyTorch eager, `DataLoader` (the pytorch/examples VAE)", ("mlp", "conv"), "torch"),
    "torch_compile": ("PyTorch, `torch.compile`d step", ("mlp",), "torch"),
}
LEARNING_RATE = 1e-3
#: Training rows of the digits split (the steady throughputs are rows per epoch second).
TRAIN_ROWS = 1437

METHOD = """\
Each system trains the same architecture (the benchmark checks that the trainable parameter counts are
equal) with Adam at 1e-3 on the binarized scikit-learn digits (1,437 training and 360 test images, the
split of `tfvae.datasets.load("digits", binarize=True)`), reshuffled every epoch, Bernoulli likelihood,
N(0, I) prior, one posterior sample per example, the loss averaged over the batch. The peers are written
as their ecosystem's own examples write them: Flax's VAE example (a `flax.linen` module, `optax.adam`, a
`jax.jit` train step called from a Python loop) and, faster, the same step scanned over a whole epoch in one
jitted call; the pytorch/examples VAE (`nn.Linear` layers, a `DataLoader`, eager autograd) and that step
under `torch.compile`. tfvae is a user's code: `tfvae.mlp_vae(64, (128, 128), 8, likelihood="bernoulli")`,
`compile()`, `fit(x, epochs, batch_size)`.

A "whole fit" is timed from the first batch to the end of the last epoch in a fresh process, tracing and
compiling included. The steady throughput is training examples over the median epoch time of the second
half of the 600-epoch fit (the ConvNet: of its epochs after the first). The test NLL is -log p(x) by
importance sampling, one numpy estimator for every system fed each system's encoder outputs and decoder
logits (k = 1000 for the MLP, 100 for the ConvNet, the same draws for all), averaged over the test images
and then over the seeds.
"""


# ------------------------------------------------------------------ data and the shared estimator

def make_data(path):
    """Writes the digits (flat, binarized) and their 28x28 images to `path` (npz), computed once with TF."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path[:0] = [ROOT]
    import tensorflow as tf

    import tfvae

    (x_train, y_train), (x_test, y_test) = tfvae.datasets.load("digits", binarize=True)
    images = {}
    for name, x in (("train", x_train), ("test", x_test)):
        grey = tfvae.datasets.load("digits")[0 if name == "train" else 1][0].reshape(-1, 8, 8, 1)
        images[name] = (tf.image.resize(grey, (28, 28)).numpy() > 0.5).astype("float32")
    np.savez(path, x_train=x_train, x_test=x_test, images_train=images["train"], images_test=images["test"])


def importance_sampled_nll(encode, decode_logits, x, k, seed=0, chunk=50):
    """Mean of -log p(x) over `x`, k importance samples each, with the same numpy draws for every system.

    `encode(x) -> (z_mean, z_log_sigma)` and `decode_logits(z) -> logits` are numpy functions of a trained
    model; the prior is N(0, I) and the posterior N(z_mean, diag(exp(z_log_sigma))^2).
    """
    from scipy.special import logsumexp
    from scipy.stats import norm

    z_mean, z_log_sigma = (np.asarray(a, "float64") for a in encode(x))
    sigma = np.exp(z_log_sigma)
    rng = np.random.default_rng(seed)
    flat_x = x.reshape(len(x), -1).astype("float64")
    log_weights = []
    for done in range(0, k, chunk):
        draws = min(chunk, k - done)
        eps = rng.standard_normal((draws,) + z_mean.shape)
        z = z_mean + sigma * eps
        logits = np.asarray(decode_logits(z.reshape(-1, z.shape[-1]).astype("float32")), "float64")
        logits = logits.reshape(draws, len(x), -1)
        log_px = np.sum(flat_x * logits - np.logaddexp(0.0, logits), axis=-1)
        log_pz = norm.logpdf(z).sum(-1)
        log_qz = norm.logpdf(z, z_mean, sigma).sum(-1)
        log_weights.append(log_px + log_pz - log_qz)
    log_weights = np.concatenate(log_weights)
    return float(-np.mean(logsumexp(log_weights, axis=0) - np.log(k)))


# ------------------------------------------------------------------ the systems (each in its own process)

def run_tfvae(family, x, x_test, epochs, seed, jit_compile="auto"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path[:0] = [ROOT, HERE]
    import keras

    import tfvae

    keras.utils.set_random_seed(seed)
    if family == "mlp":
        model = tfvae.mlp_vae(64, (128, 128), 8, likelihood="bernoulli")
    else:
        import keras_example_vae as reference

        model = tfvae.VAE(reference.conv_encoder_body(), reference.conv_decoder(), 2, likelihood="bernoulli")
    model.compile(jit_compile=jit_compile)
    clock = _KerasClock()
    start = time.perf_counter()  # fit builds the model, traces and compiles: all of it is the user's wait
    model.fit(x, epochs=epochs, batch_size=FAMILIES[family]["batch_size"], verbose=0, callbacks=[clock])
    clock.times.insert(0, start)
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    def encode(rows):
        z_mean, z_log_sigma = model.encode(rows)
        return z_mean.numpy(), z_log_sigma.numpy()

    return clock.times, params, encode, lambda z: model.decoder(z).numpy()


class _KerasClock:
    """A Keras callback (built lazily, so this module imports without Keras) noting when each epoch ends."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter())

        return Clock()


def _flax_modules(family, latent_dim):
    import flax.linen as nn
    import jax.numpy as jnp

    class Encoder(nn.Module):
        @nn.compact
        def __call__(self, x):
            if family == "mlp":
                h = nn.relu(nn.Dense(128)(x))
                h = nn.relu(nn.Dense(128)(h))
            else:
                h = nn.relu(nn.Conv(32, (3, 3), strides=2, padding="SAME")(x))
                h = nn.relu(nn.Conv(64, (3, 3), strides=2, padding="SAME")(h))
                h = nn.relu(nn.Dense(16)(h.reshape(h.shape[0], -1)))
            return nn.Dense(latent_dim, name="z_mean")(h), nn.Dense(latent_dim, name="z_log_sigma")(h)

    class Decoder(nn.Module):
        @nn.compact
        def __call__(self, z):
            if family == "mlp":
                h = nn.relu(nn.Dense(128)(z))
                h = nn.relu(nn.Dense(128)(h))
                return nn.Dense(64)(h)
            h = nn.relu(nn.Dense(7 * 7 * 64)(z)).reshape(z.shape[0], 7, 7, 64)
            h = nn.relu(nn.ConvTranspose(64, (3, 3), strides=(2, 2), padding="SAME")(h))
            h = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2), padding="SAME")(h))
            return nn.ConvTranspose(1, (3, 3), padding="SAME")(h)

    class VAE(nn.Module):
        def setup(self):
            self.encoder, self.decoder = Encoder(), Decoder()

        def __call__(self, x, key):
            import jax

            z_mean, z_log_sigma = self.encoder(x)
            z = z_mean + jnp.exp(z_log_sigma) * jax.random.normal(key, z_mean.shape)
            return self.decoder(z), z_mean, z_log_sigma

        def encode(self, x):
            return self.encoder(x)

        def decode(self, z):
            return self.decoder(z)

    return VAE()


def run_jax(family, x, x_test, epochs, seed, scan):
    import jax
    import jax.numpy as jnp
    import optax

    batch_size, latent_dim = FAMILIES[family]["batch_size"], FAMILIES[family]["latent_dim"]
    model = _flax_modules(family, latent_dim)
    key = jax.random.PRNGKey(seed)
    params = model.init(key, jnp.asarray(x[:1]), key)["params"]
    optimizer = optax.adam(LEARNING_RATE)
    opt_state = optimizer.init(params)

    def loss_fn(params, batch, key):
        logits, z_mean, z_log_sigma = model.apply({"params": params}, batch, key)
        flat = logits.reshape(logits.shape[0], -1)
        reconstruction = optax.sigmoid_binary_cross_entropy(flat, batch.reshape(batch.shape[0], -1)).sum(-1)
        kl = 0.5 * jnp.sum(jnp.exp(2 * z_log_sigma) + z_mean**2 - 1.0 - 2 * z_log_sigma, axis=-1)
        return jnp.mean(reconstruction + kl)

    def step(state, batch_and_key):
        params, opt_state = state
        batch, key = batch_and_key
        grads = jax.grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    data = jnp.asarray(x)
    n = len(x)
    full = n // batch_size

    @jax.jit
    def epoch(state, key):
        shuffle_key, noise_key = jax.random.split(key)
        order = jax.random.permutation(shuffle_key, n)
        keys = jax.random.split(noise_key, full + 1)
        batches = data[order[: full * batch_size]].reshape((full, batch_size) + data.shape[1:])
        state, _ = jax.lax.scan(step, state, (batches, keys[:full]))
        if n % batch_size:
            state, _ = step(state, (data[order[full * batch_size:]], keys[full]))
        return state

    jitted_step = jax.jit(step)
    rng = np.random.default_rng(seed)
    state = (params, opt_state)
    times = [time.perf_counter()]
    for _ in range(epochs):
        key, epoch_key = jax.random.split(key)
        if scan:
            state = epoch(state, epoch_key)
        else:
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                epoch_key, batch_key = jax.random.split(epoch_key)
                state, _ = jitted_step(state, (data[order[start:start + batch_size]], batch_key))
        jax.block_until_ready(state)
        times.append(time.perf_counter())
    params = state[0]
    count = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    encode = jax.jit(lambda rows: model.apply({"params": params}, rows, method=model.encode))
    decode = jax.jit(lambda z: model.apply({"params": params}, z, method=model.decode))
    return (times, count, lambda rows: tuple(np.asarray(a) for a in encode(jnp.asarray(rows))),
            lambda z: np.asarray(decode(jnp.asarray(z))))


def _torch_modules(family, latent_dim):
    import torch
    from torch import nn

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            if family == "mlp":
                self.body = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
                width = 128
                self.decoder = nn.Sequential(nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                             nn.Linear(128, 64))
            else:
                self.body = nn.Sequential(
                    nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1),
                    nn.ReLU(), nn.Flatten(), nn.Linear(7 * 7 * 64, 16), nn.ReLU())
                width = 16
                self.decoder = nn.Sequential(
                    nn.Linear(latent_dim, 7 * 7 * 64), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                    nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                    nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                    nn.ConvTranspose2d(32, 1, 3, padding=1))
            self.z_mean = nn.Linear(width, latent_dim)
            self.z_log_sigma = nn.Linear(width, latent_dim)

        def encode(self, x):
            h = self.body(x)
            return self.z_mean(h), self.z_log_sigma(h)

        def forward(self, x):
            z_mean, z_log_sigma = self.encode(x)
            z = z_mean + torch.exp(z_log_sigma) * torch.randn_like(z_mean)
            return self.decoder(z), z_mean, z_log_sigma

    return VAE()


def run_torch(family, x, x_test, epochs, seed, compiled):
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    batch_size, latent_dim = FAMILIES[family]["batch_size"], FAMILIES[family]["latent_dim"]
    channels_first = (lambda a: a.transpose(0, 3, 1, 2)) if family == "conv" else (lambda a: a)
    model = _torch_modules(family, latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def step(batch):
        optimizer.zero_grad()
        logits, z_mean, z_log_sigma = model(batch)
        reconstruction = F.binary_cross_entropy_with_logits(
            logits.flatten(1), batch.flatten(1), reduction="none").sum(-1)
        kl = 0.5 * torch.sum(torch.exp(2 * z_log_sigma) + z_mean**2 - 1.0 - 2 * z_log_sigma, dim=-1)
        loss = torch.mean(reconstruction + kl)
        loss.backward()
        optimizer.step()
        return loss

    if compiled:
        step = torch.compile(step)
    loader = DataLoader(TensorDataset(torch.from_numpy(channels_first(x))), batch_size=batch_size, shuffle=True)
    model.train()
    times = [time.perf_counter()]
    for _ in range(epochs):
        for (batch,) in loader:
            step(batch)
        times.append(time.perf_counter())
    model.eval()
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def encode(rows):
        with torch.no_grad():
            return tuple(a.numpy() for a in model.encode(torch.from_numpy(channels_first(rows))))

    def decode(z):
        with torch.no_grad():
            logits = model.decoder(torch.from_numpy(z))
            return (logits.permute(0, 2, 3, 1) if family == "conv" else logits).numpy()

    return times, count, encode, decode


RUNNERS = {
    "tfvae": lambda *a: run_tfvae(*a),
    "tfvae_cached": lambda *a: run_tfvae(*a),  # run_child points TF_XLA_FLAGS at the bench's cache
    "tfvae_xla": lambda *a: run_tfvae(*a, jit_compile=True),
    "jax_scan": lambda *a: run_jax(*a, scan=True),
    "jax_step": lambda *a: run_jax(*a, scan=False),
    "torch_eager": lambda *a: run_torch(*a, compiled=False),
    "torch_compile": lambda *a: run_torch(*a, compiled=True),
}


def child(system, family, epochs, seed, data_path, k):
    """One fit in this process; prints a JSON line: times, parameter count, test NLL."""
    data = np.load(data_path)
    x, x_test = ((data["x_train"], data["x_test"]) if family == "mlp"
                 else (data["images_train"], data["images_test"]))
    times, params, encode, decode = RUNNERS[system](family, x, x_test, epochs, seed)
    epoch_seconds = np.diff(times)
    steady = epoch_seconds[len(epoch_seconds) // 2:] if family == "mlp" else epoch_seconds[1:]
    result = {"system": system, "family": family, "epochs": epochs, "seed": seed, "params": params,
              "whole_fit": times[-1] - times[0],
              "steady_per_s": len(x) / float(np.median(steady)) if len(steady) else None,
              "nll": importance_sampled_nll(encode, decode, x_test, k) if k else None}
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------ the parent: runs, checks, tables

def available(system):
    package = SYSTEMS[system][2]
    probe = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True)
    return probe.returncode == 0


def run_child(system, family, epochs, seed, data_path, k):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_XLA_FLAGS", None)
    if system == "tfvae_cached":  # the one line tfvae.xla_cache's docs give Python users
        env["TF_XLA_FLAGS"] = "--tf_xla_persistent_cache_directory=" + os.path.join(os.path.dirname(data_path), "xla")
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", system, family, str(epochs),
                           str(seed), data_path, str(k)], capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        return {"system": system, "family": family, "epochs": epochs, "seed": seed, "error": tail}
    return json.loads(lines[-1])


#: Multiply-adds of one MLP training example: the dense layers' (inputs, outputs), encoder then decoder.
MLP_LAYERS = ((64, 128), (128, 128), (128, 16), (8, 128), (128, 128), (128, 64))
#: Forward, then backward (two matrix products per layer: input and weight gradients): 3 products of 2 flops.
MLP_FLOPS_PER_EXAMPLE = 6 * sum(inputs * outputs for inputs, outputs in MLP_LAYERS)


def matmul_peak(size=2048, repeats=5):
    """The machine's float32 matrix product rate (flop/s), best of `repeats` numpy products of size x size."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def fixed_seconds(run, rows):
    """A fit's cost outside its steady epochs: whole fit minus epochs x (rows / steady throughput)."""
    return run["whole_fit"] - run["epochs"] * rows / run["steady_per_s"]


def profile_section(runs, peak):
    """Each system's steady MLP throughput as matrix-product flop/s against the machine's peak, and fixed costs."""
    mlp = [r for r in runs if r["family"] == "mlp" and "error" not in r and r.get("steady_per_s")]
    lengths = sorted({r["epochs"] for r in mlp})
    rows = []
    for system in SYSTEMS:
        rates = [r["steady_per_s"] for r in mlp if r["system"] == system and r["epochs"] == lengths[-1]]
        if rates:
            rate = float(np.median(rates))
            flops = rate * MLP_FLOPS_PER_EXAMPLE
            fixed = [_median_range([fixed_seconds(r, TRAIN_ROWS) for r in mlp
                                    if r["system"] == system and r["epochs"] == epochs], "{:.2f} s")
                     for epochs in lengths]
            rows.append([SYSTEMS[system][0], f"{rate:,.0f}", f"{flops / 1e9:.1f}", f"{100 * flops / peak:.0f}%",
                         *fixed])
    text = (f"The digits MLP does {MLP_FLOPS_PER_EXAMPLE:,} flops of matrix products per training example "
            f"(forward and backward). This machine multiplies float32 matrices at {peak / 1e9:.0f} Gflop/s "
            "(the best of five numpy 2048x2048 products, measured in this run). A system's steady throughput "
            "times the flops per example, over that peak, is the share of the machine the model's arithmetic "
            "uses; the rest of each step is per-call overhead (kernel launches, small matrices, the optimizer's "
            "elementwise updates), which is where the systems differ. A fit's fixed cost is its whole time minus "
            "its epochs at the steady rate: tracing, graph optimization and (under XLA) compiling, paid once. "
            "tfvae's default runs a fit below `tfvae.xla_choice.AUTO_XLA_MIN_STEPS` steps (the 150-epoch fit) "
            "without XLA, so there its steady epochs are slower than the JAX scan's compiled ones, and it only "
            "ties that scan; from that many steps on it compiles with XLA, whose compile is most of its fixed "
            "cost, and a persistent XLA cache (`tfvae.xla_cache`) removes it from every fit after the first.")
    columns = (["system", "steady samples/s", "Gflop/s", "share of peak"]
               + [f"fixed cost, {epochs}-epoch fit" for epochs in lengths])
    return {"heading": "Profile: the digits MLP against the machine's matmul peak", "text": text,
            "table": {"columns": columns, "rows": rows}}


def _median_range(values, fmt):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def summarize(runs, plan):
    """The page's sections: per family and fit length, each system's numbers and tfvae's paired ratios."""
    sections = [{"heading": "Method", "text": METHOD}]
    checks = []
    for family, lengths in plan.items():
        ok = [r for r in runs if r["family"] == family and "error" not in r]
        systems = [s for s in SYSTEMS if any(r["system"] == s for r in ok)]
        counts = {s: {r["params"] for r in ok if r["system"] == s} for s in systems}
        reference = counts.get("tfvae", set())
        for system in systems:
            same = counts[system] == reference
            checks.append(f"{family}: {system} trains {sorted(counts[system])} parameters"
                          f"{'' if same else ' — NOT the same architecture as tfvae ' + str(sorted(reference))}")
        rows = []
        for system in systems:
            row = [SYSTEMS[system][0]]
            for epochs in lengths:
                mine = [r for r in ok if r["system"] == system and r["epochs"] == epochs]
                row.append(_median_range([r["whole_fit"] for r in mine], "{:.2f} s"))
            longest = [r for r in ok if r["system"] == system and r["epochs"] == lengths[-1]]
            row.append(_median_range([r["steady_per_s"] for r in longest], "{:,.0f}"))
            nlls = {r["seed"]: r["nll"] for r in longest if r["nll"] is not None}
            row.append(f"{np.mean(list(nlls.values())):.2f} ({len(nlls)} seeds)" if nlls else "—")
            rows.append(row)
        columns = (["system"] + [f"whole {e}-epoch fit" for e in lengths]
                   + [f"steady samples/s ({lengths[-1]} epochs)", f"test NLL ({lengths[-1]} epochs)"])
        sections.append({"heading": FAMILIES[family]["label"], "table": {"columns": columns, "rows": rows}})
        references = [s for s in ("tfvae", "tfvae_cached") if s in systems]
        ratio_rows = []
        for peer in systems:
            if peer.startswith("tfvae"):
                continue
            row = [SYSTEMS[peer][0]]
            for reference in references:
                for epochs in lengths:
                    paired = []
                    for r in ok:
                        if r["system"] == peer and r["epochs"] == epochs:
                            mine = [t for t in ok if t["system"] == reference and t["epochs"] == epochs
                                    and t["repeat"] == r["repeat"]]
                            if mine:
                                paired.append(r["whole_fit"] / mine[0]["whole_fit"])
                    row.append(_median_range(paired, "{:.2f}x"))
            ratio_rows.append(row)
        if ratio_rows:
            names = {"tfvae": "default", "tfvae_cached": "cache warm"}
            sections.append({
                "heading": f"{FAMILIES[family]['label']}: tfvae against each peer",
                "text": "The peer's whole-fit time over tfvae's in the same repeat (above 1: tfvae is faster); "
                        "median and range of the repeats.",
                "table": {"columns": ["peer"] + [f"{names[ref]}, {e} epochs" for ref in references for e in lengths],
                          "rows": ratio_rows}})
        tfvae_nll = [r["nll"] for r in ok if r["system"] == "tfvae" and r["epochs"] == lengths[-1] and r["nll"]]
        for peer in systems:
            nll = [r["nll"] for r in ok if r["system"] == peer and r["epochs"] == lengths[-1] and r["nll"]]
            if family == "mlp" and tfvae_nll and nll and peer != "tfvae":
                gap = np.mean(nll) - np.mean(tfvae_nll)
                checks.append(f"{family}: {peer}'s test NLL {np.mean(nll):.2f} is {gap:+.2f} nats from tfvae's "
                              f"{np.mean(tfvae_nll):.2f}: {'within' if abs(gap) <= 0.3 else 'NOT within'} 0.3")
        nll_by_system = {system: [r["nll"] for r in ok if r["system"] == system and r["epochs"] == lengths[-1]
                                  and r["nll"]] for system in systems}
        peer_nll = {system: np.mean(v) for system, v in nll_by_system.items() if v and not system.startswith("tfvae")}
        if family == "mlp" and tfvae_nll and peer_nll:
            best = min(peer_nll, key=peer_nll.get)
            gap = np.mean(tfvae_nll) - peer_nll[best]
            checks.append(f"{family}: tfvae's test NLL {np.mean(tfvae_nll):.2f} is {gap:+.2f} nats from the best "
                          f"peer's ({best}, {peer_nll[best]:.2f}): {'within' if gap <= 0.2 else 'NOT within'} 0.2")
    failed = [r for r in runs if "error" in r]
    text = "\n".join(f"- {line}" for line in checks)
    if failed:
        text += "\n" + "\n".join(f"- {r['system']} ({r['family']}, {r['epochs']} epochs) failed: "
                                 f"{r['error'].splitlines()[-1] if r['error'] else 'no output'}" for r in failed)
    sections.insert(1, {"heading": "Checks", "text": text})
    return sections, checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few epochs and repeats")
    parser.add_argument("--repeats", type=int, default=5, help="paired repeats per family and fit length")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "peers.json"))
    parser.add_argument("--resummarize", action="store_true",
                        help="rebuild --out's tables from the runs it stores (after a change to this summary)")
    parser.add_argument("--child", nargs=6, metavar=("SYSTEM", "FAMILY", "EPOCHS", "SEED", "DATA", "K"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        system, family, epochs, seed, data_path, k = args.child
        return child(system, family, int(epochs), int(seed), data_path, int(k))
    if args.resummarize:
        with open(args.out) as handle:
            result = json.load(handle)
        plan = {}
        for r in result["runs"]:
            plan.setdefault(r["family"], set()).add(r["epochs"])
        result["sections"], _ = summarize(result["runs"], {f: tuple(sorted(e)) for f, e in plan.items()})
        result["sections"].append(profile_section(result["runs"], result["matmul_peak"]))
        return render.write_result(result, args.out)
    repeats = 1 if args.quick else args.repeats
    plan = {"mlp": (3, 6) if args.quick else (150, 600), "conv": (2,) if args.quick else (6,)}
    nll_k = {"mlp": 20 if args.quick else 1000, "conv": 10 if args.quick else 100}
    systems = []
    for system in args.systems.split(","):
        if system not in SYSTEMS:
            parser.error(f"--systems: unknown system {system!r}; expected some of {', '.join(SYSTEMS)}")
        if available(system):
            systems.append(system)
        else:
            print(f"{system}: skipped, `import {SYSTEMS[system][2]}` fails in this environment", flush=True)
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="tfvae_peers_") as workdir:
        data_path = os.path.join(workdir, "digits.npz")
        make_data(data_path)
        for family, lengths in plan.items():
            mine = [s for s in systems if family in SYSTEMS[s][1]]
            for epochs in lengths:
                if "tfvae_cached" in mine:  # a first run fills the cache (not counted), as a user's first would
                    run_child("tfvae_cached", family, epochs, 0, data_path, 0)
                for repeat in range(repeats):
                    order = mine[repeat % len(mine):] + mine[:repeat % len(mine)]
                    for system in order:
                        seed = repeat % 3
                        k = nll_k[family] if epochs == lengths[-1] else 0
                        result = run_child(system, family, epochs, seed, data_path, k)
                        result["repeat"] = repeat
                        runs.append(result)
                        shown = (f"{result['whole_fit']:.2f} s, {result['steady_per_s'] or 0:,.0f}/s"
                                 + (f", NLL {result['nll']:.2f}" if result.get("nll") else "")
                                 if "error" not in result else "FAILED: " + result["error"][-300:])
                        print(f"[{time.perf_counter() - start:5.0f}s] {family} {epochs} epochs, repeat {repeat}, "
                              f"{system}: {shown}", flush=True)
    sections, checks = summarize(runs, plan)
    peak = matmul_peak()
    sections.append(profile_section(runs, peak))
    print("\n".join(checks))
    result = {
        **render.header("tfvae beside JAX and PyTorch", "python bench/peers.py" + (" --quick" if args.quick else ""),
                        packages=("tensorflow", "keras", "tensorflow-probability", "jax", "flax", "optax", "torch",
                                  "numpy")),
        "sections": sections,
        "runs": runs,
        "matmul_peak": peak,
    }
    render.write_result(result, args.out)


if __name__ == "__main__":
    main()
