"""The main job: train a VAE on a dataset and write a run folder.

A run folder holds everything needed to evaluate, plot and export later:

    model.keras        the trained model (with its preprocessing)
    run.json           how it was made: data, options, seed
    history.csv        per-epoch metrics (keras.callbacks.CSVLogger)
    backup/            only while training: what `--resume` continues from (see tfvae.resumable)
    metrics.json       test loss (the training objective) and test ELBO and its parts (100 draws of z per image)
    loss.png, reconstructions.png, samples.png, latent.png
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfvae import _checks, datasets, distribute, plot, resumable
from tfvae.callbacks import TerminateOnNonFinite
from tfvae.builders import mlp_vae
from tfvae.evaluate import elbo_parts

DEFAULTS = dict(
    data="digits",
    out=None,
    latent_dim=8,
    hidden=(128, 128),
    likelihood=None,
    beta=1.0,
    num_samples=1,
    conditional=False,
    epochs=150,
    batch_size=64,
    learning_rate=1e-3,
    seed=0,
)


def load_run_data(data, likelihood, seed=0):
    """Loads a named dataset or a file the way `train` does.

    Named image datasets are scaled to [0, 1] and binarized for the
    Bernoulli likelihood; a file's features are min-max scaled to [0, 1]
    and split 80/20 into train and test with `seed`.

    Returns:
        `(x_train, y_train), (x_test, y_test), preprocessing`; y is None for files.
    """
    if data in datasets.NAMES:
        binarize = likelihood == "bernoulli"
        train, test = datasets.load(data, binarize=binarize, seed=seed)
        return train, test, {"dataset": data, **datasets.preprocessing_for(data, True, binarize)}
    if not os.path.exists(os.fspath(data)):
        raise ValueError(_checks.invalid("data", f"one of {list(datasets.NAMES)} or the path of a .npy/.npz/.csv file", data))
    x, preprocessing = datasets.load_array(data, scale=True, binarize=likelihood == "bernoulli")
    train_rows, test_rows = datasets.split_rows(len(x), seed, name="data")
    return (x[train_rows], None), (x[test_rows], None), {"dataset": os.fspath(data), **preprocessing}


def train(data="digits", out=None, latent_dim=8, hidden=(128, 128), likelihood=None, beta=1.0, epochs=150,
          batch_size=64, learning_rate=1e-3, seed=0, verbose=1, callbacks=(), num_samples=1, conditional=False,
          strategy="default", resume=False, deterministic=False, backup_every=resumable.BACKUP_EVERY):
    """Trains `mlp_vae` on `data` and writes a run folder.

    Args:
        data: a name from `tfvae.datasets.NAMES` or a `.npy/.npz/.csv` path.
        out: the run folder; default `runs/<dataset name>`.
        latent_dim, hidden, beta: model options (see `tfvae.mlp_vae`).
        num_samples: k > 1 trains on the k-sample IWAE bound.
        conditional: train a conditional VAE on the dataset's class labels
            (`num_classes` = largest label + 1); named datasets only.
        likelihood: `"bernoulli"` (default for named image datasets, which
            are then binarized) or `"gaussian"` (default for files).
        epochs, batch_size, learning_rate: Adam training options.
        seed: seeds weights, sampling and the data split.
        verbose: Keras verbosity (1 shows the progress bar).
        callbacks: extra Keras callbacks.
        strategy: `"default"`, `"mirrored"`, `"multi-worker"` (see
            `tfvae.distribute`) or a `tf.distribute.Strategy`; the model is
            built and compiled in its scope, `batch_size` is the global batch.
        resume: continue the interrupted run in `out` from its backup
            (same options required; see `tfvae.resumable`).
        deterministic: enable TensorFlow's op determinism, so that two runs
            with the same seed give identical weights (slower on GPUs).
        backup_every: batches between two backups of the training state
            (made at the end of the compiled call that reaches the count);
            also the steps run per compiled call (`steps_per_execution`),
            at most one epoch's.

    Returns:
        A dict with `model`, `history`, `metrics` (test loss,
        reconstruction, kl and elbo, in nats per example), `out` and
        `stopped`: None, or the message saying why training stopped early
        (a non-finite loss; the model then holds the last good weights).

    Raises:
        ValueError: for an invalid option, or `resume` that does not fit
            the state of `out`.
    """
    # First: a multi-worker strategy must exist before TensorFlow runs an op.
    strategy = distribute.get_strategy(strategy) if isinstance(strategy, str) else strategy
    if likelihood is None:
        likelihood = "bernoulli" if data in datasets.NAMES else "gaussian"
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    backup_every = _checks.positive_int("backup_every", backup_every)
    (x_train, y_train), (x_test, y_test), preprocessing = load_run_data(data, likelihood, seed)
    if conditional and y_train is None:
        raise ValueError(_checks.invalid("conditional", "False for a file without labels", conditional))
    num_classes = int(max(y_train.max(), y_test.max())) + 1 if conditional else None
    labels_train, labels_test = (y_train, y_test) if conditional else (None, None)
    out = out or os.path.join("runs", os.path.splitext(os.path.basename(os.fspath(data)))[0])
    options = dict(data=os.fspath(data), latent_dim=latent_dim, hidden=list(hidden), likelihood=likelihood,
                   beta=beta, num_samples=num_samples, conditional=bool(conditional), epochs=epochs,
                   batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    out = distribute.worker_dir(out, strategy)
    resumable.prepare(out, options, resume)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        model = mlp_vae(x_train.shape[1], hidden, latent_dim, likelihood=likelihood, beta=beta,
                        num_samples=num_samples, num_classes=num_classes, preprocessing=preprocessing)
        # `backup_every` steps per compiled call, at most an epoch: the batch callbacks (the
        # backup, the non-finite check) run after each call, also mid-epoch. (A call longer than
        # the epoch would make Keras' progress bar count past the epoch's end: "50/23".)
        per_call = min(backup_every, -(-len(x_train) // batch_size))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      steps_per_execution=distribute.steps_per_execution(strategy, per_call))
    os.makedirs(out, exist_ok=True)
    if not resume:
        _write_json(os.path.join(out, "run.json"), options)
    # First, so that the last good weights are back before a backup is written.
    stop = TerminateOnNonFinite(verbose=False)
    history = model.fit(
        x_train, labels_train, epochs=epochs, batch_size=batch_size, validation_data=(x_test, labels_test),
        verbose=verbose, callbacks=[stop, *resumable.callbacks(out, resume, backup_every), *callbacks],
    )
    _save_model(model, os.path.join(out, "model.keras"))
    # `loss`: the training objective on the test split (Keras' evaluate, one draw of z per image).
    metrics = model.evaluate(x_test, labels_test, batch_size=batch_size, verbose=0, return_dict=True)
    metrics = {name: float(value) for name, value in metrics.items()}
    # The ELBO and its parts as `tfvae evaluate` reports them: 100 draws per image, so that the
    # printed number does not move by a sampling error of ~0.2 nats.
    reconstruction, kl, _ = elbo_parts(model, x_test, labels_test, 100, batch_size, seed)
    metrics.update(reconstruction=float(np.mean(reconstruction)), kl=float(np.mean(kl)),
                   elbo=-float(np.mean(reconstruction + kl)))
    _write_json(os.path.join(out, "metrics.json"), metrics)
    write_plots(model, resumable.read_history(out), x_test, y_test, out)
    return {"model": model, "history": history, "metrics": metrics, "out": out, "stopped": stop.message}


def write_plots(model, history, x_test, y_test, out):
    """Writes the run folder's four PNG plots (a conditional model gets `y_test` as labels)."""
    labels = y_test if model.num_classes else None
    sample_labels = np.arange(36) % model.num_classes if model.num_classes else None  # cycles through the classes
    plot.loss_curves(history, os.path.join(out, "loss.png"))
    plot.reconstructions(model, x_test, labels=labels, n=10, path=os.path.join(out, "reconstructions.png"))
    plot.prior_samples(model, n=36, labels=sample_labels, path=os.path.join(out, "samples.png"))
    plot.latent_map(model, x_test, labels=labels, color_by=y_test, path=os.path.join(out, "latent.png"))


def _save_model(model, path):
    """`model.save(path)` through a temporary sibling: a kill never leaves half a file."""
    temporary = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _write_json(path, value):
    with open(path, "w") as handle:
        json.dump(value, handle, indent=2)
