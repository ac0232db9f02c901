"""The apps' jobs: `train` a VAE into a run folder, `evaluate_run` a run folder.

A run folder (see `tfvae.run_folder` for its files) holds everything needed
to evaluate, plot, resume and export later: `model.keras`, `run.json`,
`history.csv`, `backup/` while training (see `tfvae.resumable`),
`metrics.json` (test loss, the training objective, and test ELBO and its
parts with 100 draws of z per image) and four plots. Every file appears
whole or not at all; one process at a time holds the folder.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from tfvae import _atomic, _checks, datasets, distribute, plot, resumable, run_folder
from tfvae.builders import mlp_vae
from tfvae.callbacks import BackupAndRestore, StopOnInterrupt, TerminateOnNonFinite
from tfvae.evaluation import elbo_parts, evaluate
from tfvae.optimizers import Adam
from tfvae.saving import load_model

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


def train(data="digits", out=None, latent_dim=8, hidden=(128, 128), likelihood=None, beta=1.0, epochs=150,
          batch_size=64, learning_rate=1e-3, seed=0, verbose=1, callbacks=(), num_samples=1, conditional=False,
          strategy="default", resume=False, deterministic=False, backup_every=resumable.BACKUP_EVERY,
          overwrite=False):
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
        epochs, batch_size, learning_rate: training options (Adam: `tfvae.optimizers.Adam`,
            Keras' Adam with a smaller step graph).
        seed: seeds weights, sampling and the data split.
        verbose: Keras verbosity (1 shows the progress bar).
        callbacks: extra Keras callbacks.
        strategy: `"default"`, `"mirrored"`, `"multi-worker"` (see
            `tfvae.distribute`) or a `tf.distribute.Strategy`; the model is
            built and compiled in its scope, `batch_size` is the global batch.
        resume: continue the interrupted run in `out` from its backup
            (same options required; see `tfvae.resumable`); with no backup
            yet, start from the beginning.
        overwrite: delete the run already in `out` (its exports included)
            and train anew. Without `resume` or `overwrite`, a folder that
            holds a run is refused.
        deterministic: enable TensorFlow's op determinism, so that two runs
            with the same seed give identical weights (slower on GPUs).
        backup_every: batches between two backups of the training state
            (made at the first epoch end past the count, or mid-epoch when
            Keras' loop calls back mid-epoch).

    Returns:
        A dict with `model`, `history`, `metrics` (test loss,
        reconstruction, kl and elbo, in nats per example), `out` and
        `stopped`: None, or the message saying why training stopped early
        (a non-finite loss; the model then holds the last good weights).

    Raises:
        ValueError: for an invalid option, a folder that holds a run without
            `resume` or `overwrite`, or `resume` with other options.
        tfvae.run_folder.RunFolderBusy: if another process holds `out`.
        KeyboardInterrupt: after Ctrl-C (SIGINT), once the epoch in progress
            is finished and backed up (the message says which; `resume=True`
            continues), or at once after a second Ctrl-C.
        OSError: when a file cannot be written (full disk, unwritable
            folder), naming it; the files written before stay whole.

    Example:

    >>> result = train("digits", out="runs/digits", epochs=150)
    >>> result["metrics"]["elbo"]
    """
    # First: a multi-worker strategy must exist before TensorFlow runs an op.
    strategy = distribute.get_strategy(strategy) if isinstance(strategy, str) else strategy
    if resume and overwrite:
        raise ValueError(_checks.invalid("overwrite", "False with resume=True (resume continues the run in `out`, "
                                         "overwrite deletes it: choose one)", overwrite))
    if likelihood is None:
        likelihood = "bernoulli" if data in datasets.NAMES else "gaussian"
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    backup_every = _checks.positive_int("backup_every", backup_every)
    seed = _checks.seed("seed", seed, allow_none=False)
    (x_train, y_train), (x_test, y_test), preprocessing = run_folder.load_data(data, likelihood, seed)
    if conditional and y_train is None:
        raise ValueError(_checks.invalid("conditional", "False for a file without labels", conditional))
    num_classes = int(max(y_train.max(), y_test.max())) + 1 if conditional else None
    labels_train, labels_test = (y_train, y_test) if conditional else (None, None)
    out = out or os.path.join("runs", os.path.splitext(os.path.basename(os.fspath(data)))[0])
    options = dict(data=os.fspath(data), latent_dim=latent_dim, hidden=list(hidden), likelihood=likelihood,
                   beta=beta, num_samples=num_samples, conditional=bool(conditional), epochs=epochs,
                   batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    out = distribute.worker_dir(out, strategy)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        model = mlp_vae(x_train.shape[1], hidden, latent_dim, likelihood=likelihood, beta=beta,
                        num_samples=num_samples, num_classes=num_classes, preprocessing=preprocessing)
        # On one device: no steps_per_execution, so that fit runs tfvae.epoch_loop (one compiled
        # call per epoch; the batch callbacks, backups and the non-finite check, run at epoch
        # ends). Under a strategy Keras' loop runs `backup_every` steps per call, at most an epoch.
        per_call = min(backup_every, -(-len(x_train) // batch_size)) if tf.distribute.has_strategy() else 1
        model.compile(optimizer=Adam(learning_rate),
                      steps_per_execution=distribute.steps_per_execution(strategy, per_call))
    with run_folder.lock(out):
        try:
            return _train_in(out, model, options, resume, overwrite, (x_train, labels_train),
                             (x_test, labels_test), y_test, batch_size, verbose, backup_every, callbacks)
        finally:  # the folder is released with its queued writes done (after an error too)
            _atomic.wait_for_writes(raise_error=False)


def _train_in(out, model, options, resume, overwrite, train_data, test_data, y_test, batch_size, verbose,
              backup_every, callbacks):
    """`train`'s work inside the held run folder."""
    initial_epoch, note = resumable.prepare(out, options, resume, overwrite)
    if note and verbose:
        print(f"tfvae train: {note}", flush=True)
    if not os.path.exists(os.path.join(out, run_folder.RUN_JSON)):
        run_folder.write_json(os.path.join(out, run_folder.RUN_JSON), options)
    (x_train, labels_train), (x_test, labels_test) = train_data, test_data
    # First, so that the last good weights are back before a backup is written.
    stop = TerminateOnNonFinite(verbose=False)
    resumables = resumable.callbacks(out, resume, backup_every)
    interrupt = next(callback for callback in resumables if isinstance(callback, StopOnInterrupt))
    backup = next(callback for callback in resumables if isinstance(callback, BackupAndRestore))
    try:
        history = model.fit(
            x_train, labels_train, epochs=options["epochs"], initial_epoch=initial_epoch, batch_size=batch_size,
            validation_data=(x_test, labels_test), verbose=verbose, callbacks=[stop, *resumables, *callbacks],
        )
    except KeyboardInterrupt:  # a second Ctrl-C: keep every finished epoch
        backup.save_last_epoch()
        raise
    finally:
        interrupt.restore()
    if interrupt.stopped_epoch is not None:
        raise KeyboardInterrupt(
            f"stopped at the end of epoch {interrupt.stopped_epoch + 1} (the epoch in progress at Ctrl-C), "
            f"backed up in {resumable.backup_dir(out)}"
        )
    run_folder.save_model(model, os.path.join(out, run_folder.MODEL))
    # `loss`: the training objective on the test split (Keras' evaluate, one draw of z per image).
    metrics = model.evaluate(x_test, labels_test, batch_size=batch_size, verbose=0, return_dict=True)
    metrics = {name: float(value) for name, value in metrics.items()}
    # The ELBO and its parts as `tfvae evaluate` reports them: 100 draws per image, so that the
    # printed number does not move by a sampling error of ~0.2 nats.
    reconstruction, kl, _ = elbo_parts(model, x_test, labels_test, 100, batch_size, options["seed"])
    metrics.update(reconstruction=float(np.mean(reconstruction)), kl=float(np.mean(kl)),
                   elbo=-float(np.mean(reconstruction + kl)))
    run_folder.write_json(os.path.join(out, run_folder.METRICS), metrics)
    write_plots(model, resumable.read_history(out), x_test, y_test, out)
    resumable.finish(out)  # last: until here, --resume can redo what is missing
    return {"model": model, "history": history, "metrics": metrics, "out": out, "stopped": stop.message}


def write_plots(model, history, x_test, y_test, out):
    """Writes the run folder's four PNG plots (a conditional model gets `y_test` as labels)."""
    labels = y_test if model.num_classes else None
    sample_labels = np.arange(36) % model.num_classes if model.num_classes else None  # cycles through the classes
    loss_png, reconstructions_png, samples_png, latent_png = (os.path.join(out, name) for name in run_folder.PLOTS)
    plot.loss_curves(history, loss_png)
    plot.reconstructions(model, x_test, labels=labels, n=10, path=reconstructions_png)
    plot.prior_samples(model, n=36, labels=sample_labels, path=samples_png)
    plot.latent_map(model, x_test, labels=labels, color_by=y_test, path=latent_png)


def evaluate_run(run_dir, num_samples=1000, seed=0):
    """Evaluates the model of a `tfvae train` run folder on its test split.

    Reads `RUN_DIR/model.keras`, rebuilds the run's test split with
    `tfvae.run_folder.load_split`, runs `tfvae.evaluate` and writes the
    results to `RUN_DIR/evaluation.json` (whole or not at all).

    Args:
        run_dir: a folder written by `tfvae train` (or `tfvae.run.train`).
        num_samples: positive int k of the NLL estimate.
        seed: int seed of the estimate's samples.

    Returns:
        The dict of `tfvae.evaluate`, plus `run_dir`.

    Raises:
        ValueError: if the folder lacks `model.keras` or a readable `run.json`.
        OSError: if `evaluation.json` cannot be written (naming it); a
            previous one is then untouched.

    Example:

    >>> results = evaluate_run("runs/digits", num_samples=1000)
    >>> results["nll"]
    """
    run_dir = os.fspath(run_dir)
    model_path = os.path.join(run_dir, run_folder.MODEL)
    if not os.path.isfile(model_path):
        raise ValueError(_checks.invalid("run_dir", "a run folder written by `tfvae train` (with model.keras)",
                                         run_dir, f"{model_path} does not exist"))
    _, (x_test, y_test), _ = run_folder.load_split(run_dir)
    model = load_model(model_path)
    results = evaluate(model, x_test, labels=y_test if model.num_classes else None, num_samples=num_samples,
                       seed=seed)
    results["run_dir"] = run_dir
    run_folder.write_json(os.path.join(run_dir, run_folder.EVALUATION), results)
    return results
