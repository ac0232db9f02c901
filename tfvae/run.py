"""The apps' jobs: `train` a VAE into a run folder, `evaluate_run` a run folder.

A run folder (see `tfvae.run_folder` for its files) holds everything needed
to evaluate, plot, resume and export later: `model.keras`, `run.json`,
`history.csv`, `backup/` while training (see `tfvae.resumable`),
`metrics.json` (test loss, the training objective, and test ELBO and its
parts with 100 draws of z per image) and four plots. Every file appears
whole or not at all; one process at a time holds the folder.
"""

import inspect
import os

import keras
import numpy as np
import tensorflow as tf

from tfvae import _atomic, _checks, _renamed, datasets, distribute, image_folders, objectives, plot, resumable
from tfvae import run_folder
from tfvae.builders import conv_vae, mlp_vae
from tfvae.callbacks import BackupAndRestore, StopOnInterrupt, TerminateOnNonFinite
from tfvae.evaluation import elbo_parts, evaluate
from tfvae.optimizers import Adam
from tfvae.saving import load_model

#: Bodies `train` builds: "auto" is "conv" for a folder of images, "mlp" otherwise.
BODIES = ("auto", "conv", "mlp")


@_renamed.keywords(num_samples="iwae_samples")
def train(data="digits", out=None, latent_dim=8, hidden=(128, 128), likelihood=None, beta=1.0, epochs=150,
          batch_size=64, learning_rate=1e-3, seed=0, verbose=1, callbacks=(), iwae_samples=1, conditional=False,
          strategy="default", resume=False, deterministic=False, backup_every=resumable.BACKUP_EVERY,
          overwrite=False, body="auto", filters=(32, 64), validation_split=0.0, early_stopping=None,
          memory_budget="2GB", prior="standard_normal", objective=None):
    """Trains `mlp_vae` or `conv_vae` on `data` and writes a run folder.

    Args:
        data: a name from `tfvae.datasets.NAMES`, a `.npy/.npz/.csv` path or
            a folder of PNG/JPEG images (see `tfvae.image_folders`); its
            absolute path is recorded in `run.json`.
        out: the run folder; default `runs/<dataset name>`.
        latent_dim, hidden, beta: model options (see `tfvae.mlp_vae`).
        body: `"mlp"`, `"conv"` (`tfvae.conv_vae` with `filters`; named
            datasets become 1-channel images) or `"auto"` (conv for a folder
            of images, mlp otherwise).
        filters: the convolutions of a conv body.
        validation_split: the share of the training rows held out to
            validate on (0: validate on the test split, for the curves only).
        early_stopping: None, or the patience in epochs: stop when the
            validation loss has not improved for that many epochs and keep
            the best weights. Needs `validation_split` > 0 (the test split
            must not choose the model).
        memory_budget: bytes (or a size such as `"2GB"`) that a folder's
            decoded images may take: within it they are loaded whole onto
            the fast in-memory path, beyond it streamed from disk.
        iwae_samples: k > 1 trains on the k-sample IWAE bound (`num_samples`
            is its deprecated old name).
        conditional: train a conditional VAE on the dataset's class labels
            (`num_classes` = largest label + 1); named datasets only.
        likelihood: a name of `tfvae.likelihoods.LIKELIHOODS`: `"bernoulli"`
            (default for named image datasets, which are then binarized, and
            for folders of images), `"gaussian"` (default for files),
            `"gaussian_per_pixel"`, or `"poisson"` (raw counts, unscaled).
        prior: a name of `tfvae.priors.PRIORS`.
        objective: None (the ELBO, IWAE for iwae_samples > 1) or a name of
            `tfvae.objectives.OBJECTIVES`, built with `beta`, `iwae_samples`
            and the training set's size where it takes them.
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

    >>> from tfvae.run import train
    >>> result = train("digits", out="runs/tiny", epochs=1, hidden=(8,), latent_dim=2, verbose=0)
    >>> sorted(result["metrics"]), result["stopped"]
    (['elbo', 'kl', 'loss', 'reconstruction'], None)
    """
    # First: a multi-worker strategy must exist before TensorFlow runs an op.
    strategy = distribute.get_strategy(strategy) if isinstance(strategy, str) else strategy
    if resume and overwrite:
        raise ValueError(_checks.invalid("overwrite", "False with resume=True (resume continues the run in `out`, "
                                         "overwrite deletes it: choose one)", overwrite))
    if likelihood is None:  # pixels in [0, 1] for named datasets and image folders; tables are real values
        likelihood = "bernoulli" if data in datasets.NAMES or image_folders.is_image_folder(data) else "gaussian"
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    learning_rate = _checks.positive_float("learning_rate", learning_rate)
    backup_every = _checks.positive_int("backup_every", backup_every)
    seed = _checks.seed("seed", seed, allow_none=False)
    body = _checks.one_of("body", body, BODIES)
    validation_split = _validation_split(validation_split)
    if early_stopping is not None:
        early_stopping = _checks.positive_int("early_stopping", early_stopping)
        if not validation_split:
            raise ValueError(_checks.invalid("early_stopping", "None unless validation_split > 0", early_stopping,
                                             "Stopping on the test split would choose the model on the test data: "
                                             "add --validation-split 0.1"))
    memory_budget = image_folders.parse_bytes(memory_budget)
    (x_train, y_train), (x_test, y_test), preprocessing = run_folder.load_data(data, likelihood, seed, memory_budget)
    if conditional and y_train is None:
        raise ValueError(_checks.invalid("conditional", "False for a file or folder without labels", conditional))
    num_classes = int(max(y_train.max(), y_test.max())) + 1 if conditional else None
    labels_train, labels_test = (y_train, y_test) if conditional else (None, None)
    body = ("conv" if image_folders.is_image_folder(data) else "mlp") if body == "auto" else body
    out = out or os.path.join("runs", os.path.splitext(os.path.basename(os.path.normpath(os.fspath(data))))[0])
    options = dict(data=os.fspath(data) if data in datasets.NAMES else os.path.abspath(data),
                   latent_dim=latent_dim, hidden=list(hidden), likelihood=likelihood,
                   beta=beta, iwae_samples=iwae_samples, conditional=bool(conditional), epochs=epochs,
                   batch_size=batch_size, learning_rate=learning_rate, seed=seed, body=body,
                   filters=list(filters), validation_split=validation_split, early_stopping=early_stopping,
                   memory_budget=memory_budget)
    event_shape = _event_shape(body, data, x_train)
    x_train, x_test = (_shaped(x, event_shape) for x in (x_train, x_test))
    validation = None
    if validation_split:
        rows, held_out = datasets.split_rows(len(x_train), seed, 1 - validation_split, name="validation_split")
        validation = _rows(x_train, labels_train, held_out)
        x_train, labels_train = _rows(x_train, labels_train, rows)
    # Written only when not the defaults: a default run's run.json keeps the previous release's keys.
    options.update({name: value for name, value in (("prior", prior), ("objective", objective))
                    if value != DEFAULTS[name]})
    shortcuts = dict(beta=beta, iwae_samples=iwae_samples)
    if objective is not None:  # an IWAE objective calls its k `num_samples`
        objective = objectives.get(objective, dataset_size=len(x_train), beta=beta, num_samples=iwae_samples)
        shortcuts = {}
    out = distribute.worker_dir(out, strategy)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        shared = dict(likelihood=likelihood, num_classes=num_classes, preprocessing=preprocessing, prior=prior,
                      objective=objective, **shortcuts)
        model = (conv_vae(event_shape, filters, latent_dim, **shared) if body == "conv"
                 else mlp_vae(event_shape[0], hidden, latent_dim, **shared))
        # On one device: no steps_per_execution, so that fit runs tfvae.epoch_loop (one compiled
        # call per epoch; the batch callbacks, backups and the non-finite check, run at epoch
        # ends). Under a strategy Keras' loop runs `backup_every` steps per call, at most an epoch.
        per_call = min(backup_every, -(-len(x_train) // batch_size)) if tf.distribute.has_strategy() else 1
        model.compile(optimizer=Adam(learning_rate),
                      steps_per_execution=distribute.steps_per_execution(strategy, per_call))
    with run_folder.lock(out):
        try:
            if early_stopping is not None:
                callbacks = [*callbacks, keras.callbacks.EarlyStopping(patience=early_stopping,
                                                                       restore_best_weights=True)]
            return _train_in(out, model, options, resume, overwrite, (x_train, labels_train),
                             (x_test, labels_test), y_test, batch_size, verbose, backup_every, callbacks,
                             validation)
        finally:  # the folder is released with its queued writes done (after an error too)
            _atomic.wait_for_writes(raise_error=False)


#: `train`'s defaults, read from its signature (the one place they are written); `tfvae train`'s flags take them.
TRAIN_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(train).parameters.items()
                  if name not in ("verbose", "callbacks")}
#: The options `run.json` records, with their defaults.
DEFAULTS = {name: TRAIN_DEFAULTS[name] for name in (
    "data", "out", "latent_dim", "hidden", "likelihood", "beta", "iwae_samples", "prior", "objective",
    "conditional", "epochs", "batch_size", "learning_rate", "seed", "body", "filters", "validation_split",
    "early_stopping", "memory_budget")}


def _train_in(out, model, options, resume, overwrite, train_data, test_data, y_test, batch_size, verbose,
              backup_every, callbacks, validation=None):
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
            *_fit_data(x_train, labels_train, batch_size, True, options["seed"]), epochs=options["epochs"],
            initial_epoch=initial_epoch,
            batch_size=None if isinstance(x_train, run_folder.ImageFiles) else batch_size,
            shuffle=not isinstance(x_train, run_folder.ImageFiles),  # a stream shuffles its files itself
            validation_data=_fit_data(*(validation or (x_test, labels_test)), batch_size, False),
            verbose=verbose, callbacks=[stop, *resumables, *callbacks],
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
    metrics = model.evaluate(*_fit_data(x_test, labels_test, batch_size, False),
                             batch_size=None if isinstance(x_test, run_folder.ImageFiles) else batch_size,
                             verbose=0, return_dict=True)
    metrics = {name: float(value) for name, value in metrics.items()}
    # The ELBO and its parts as `tfvae evaluate` reports them: 100 draws per image, so that the
    # printed number does not move by a sampling error of ~0.2 nats. Streamed images a batch at a time.
    # At most ELBO_VALUES decoded values at a time: 100 draws of a 64x64x3 image are 1.2 M values.
    elbo_batch = max(1, min(batch_size, ELBO_VALUES // (100 * int(np.prod(model.event_shape)))))
    parts = [elbo_parts(model, x, labels, 100, elbo_batch, options["seed"])[:2]
             for x, labels in _chunks(x_test, labels_test, batch_size)]
    reconstruction, kl = (np.concatenate([part[i] for part in parts]) for i in (0, 1))
    metrics.update(reconstruction=float(np.mean(reconstruction)), kl=float(np.mean(kl)),
                   elbo=-float(np.mean(reconstruction + kl)))
    run_folder.write_json(os.path.join(out, run_folder.METRICS), metrics)
    if isinstance(x_test, run_folder.ImageFiles):  # plots of at most PLOTTED streamed test images
        x_test = _shaped(image_folders.load_images(x_test.paths[:PLOTTED], x_test.shape), model.event_shape)
    write_plots(model, resumable.read_history(out), x_test, y_test, out)
    resumable.finish(out)  # last: until here, --resume can redo what is missing
    return {"model": model, "history": history, "metrics": metrics, "out": out, "stopped": stop.message}


#: The most values (draws x examples x features) the test ELBO decodes at once (64 MB of float32): large
#: images times 100 draws would otherwise take hundreds of MB a tensor.
ELBO_VALUES = 2**24
#: How many streamed test images the plots show (the latent map encodes them all); bounded, so that the
#: memory a streamed run takes does not grow with the folder.
PLOTTED = 256


def _validation_split(value):
    value = _checks.non_negative_float("validation_split", value)
    if value >= 1:
        raise ValueError(_checks.invalid("validation_split", "a share of the training rows in [0, 1)", value))
    return value


def _event_shape(body, data, x_train):
    """The shape of one x for `body`: images for a conv body, flat rows for an MLP."""
    shape = tuple(x_train.shape) if isinstance(x_train, run_folder.ImageFiles) else tuple(x_train.shape[1:])
    if body == "mlp":
        return (int(np.prod(shape)),)
    if len(shape) == 3:
        return shape
    if data in datasets.NAMES:
        return tuple(datasets.image_shape(data)) + (1,)
    if len(shape) == 2:
        return shape + (1,)
    raise ValueError(_checks.invalid("body", "'mlp' for a table (a conv body needs images)", body,
                                     f"The data's rows have shape {shape}: use --body mlp"))


def _shaped(x, event_shape):
    """`x` reshaped to `(n,) + event_shape` (streamed files are reshaped as they are read)."""
    if isinstance(x, run_folder.ImageFiles):
        return run_folder.ImageFiles(x.paths, x.shape, event_shape)
    return x.reshape((len(x),) + tuple(event_shape))


def _rows(x, labels, rows):
    if isinstance(x, run_folder.ImageFiles):
        return run_folder.ImageFiles([x.paths[row] for row in rows], x.shape, x.event_shape), None
    return x[rows], None if labels is None else labels[rows]


def _fit_data(x, labels, batch_size, shuffle, seed=0):
    """`(x, labels)` for `fit`/`evaluate`: arrays as they are, image files as a streamed `tf.data.Dataset`."""
    if not isinstance(x, run_folder.ImageFiles):
        return x, labels
    dataset = image_folders.stream(x.paths, x.shape, batch_size, shuffle, seed)
    if x.event_shape != x.shape:  # an MLP body: flat rows
        dataset = dataset.map(lambda batch: tf.reshape(batch, (-1,) + x.event_shape))
    return dataset, None


def _chunks(x, labels, batch_size):
    """`(x, labels)` whole for arrays; a batch at a time for streamed image files."""
    if not isinstance(x, run_folder.ImageFiles):
        yield x, labels
        return
    for batch in _fit_data(x, None, batch_size, False)[0]:
        yield batch.numpy(), None


def _as_trained(model, x, run_dir):
    """`x` in the shape `model` takes; a clear error when the run's data changed shape since training."""
    if int(np.prod(x.shape[1:])) != int(np.prod(model.event_shape)):
        data = run_folder.read_options(run_dir)["data"]
        raise ValueError(_checks.invalid(
            "data", f"rows of shape {tuple(model.event_shape)}, as the run's model takes", data,
            f"Its rows now have shape {tuple(x.shape[1:])}: the data changed since training. Restore the data "
            "the run was trained on, or train a new run on this data"))
    return x.reshape((len(x),) + tuple(model.event_shape))


def write_plots(model, history, x_test, y_test, out):
    """Writes the run folder's four PNG plots (a conditional model gets `y_test` as labels)."""
    labels = y_test if model.num_classes else None
    sample_labels = np.arange(36) % model.num_classes if model.num_classes else None  # cycles through the classes
    loss_png, reconstructions_png, samples_png, latent_png = (os.path.join(out, name) for name in run_folder.PLOTS)
    plot.loss_curves(history, loss_png)
    plot.reconstructions(model, x_test, labels=labels, n=10, path=reconstructions_png)
    plot.prior_samples(model, n=36, labels=sample_labels, path=samples_png)
    plot.latent_map(model, x_test, labels=labels, color_by=y_test, path=latent_png)


@_renamed.keywords(num_samples="importance_samples")
def evaluate_run(run_dir, importance_samples=1000, seed=0):
    """Evaluates the model of a `tfvae train` run folder on its test split.

    Reads `RUN_DIR/model.keras`, rebuilds the run's test split with
    `tfvae.run_folder.load_split`, runs `tfvae.evaluate` and writes the
    results to `RUN_DIR/evaluation.json` (whole or not at all).

    Args:
        run_dir: a folder written by `tfvae train` (or `tfvae.run.train`).
        importance_samples: positive int k of the NLL estimate (`num_samples`
            is its deprecated old name).
        seed: int seed of the estimate's samples.

    Returns:
        The dict of `tfvae.evaluate`, plus `run_dir`.

    Raises:
        ValueError: if the folder lacks `model.keras` or a readable `run.json`.
        OSError: if `evaluation.json` cannot be written (naming it); a
            previous one is then untouched.

    Example:

    >>> from tfvae.run import evaluate_run, train
    >>> _ = train("digits", out="runs/digits", epochs=1, hidden=(8,), latent_dim=2, verbose=0)
    >>> results = evaluate_run("runs/digits", importance_samples=10)
    >>> results["importance_samples"], results["num_examples"]
    (10, 360)
    """
    run_dir = os.fspath(run_dir)
    model_path = os.path.join(run_dir, run_folder.MODEL)
    if not os.path.isfile(model_path):
        raise ValueError(_checks.invalid("run_dir", "a run folder written by `tfvae train` (with model.keras)",
                                         run_dir, f"{model_path} does not exist"))
    _, (x_test, y_test), _ = run_folder.load_split(run_dir)
    model = load_model(model_path)
    x_test = _as_trained(model, x_test, run_dir)
    results = evaluate(model, x_test, labels=y_test if model.num_classes else None,
                       importance_samples=importance_samples,
                       seed=seed)
    results["run_dir"] = run_dir
    run_folder.write_json(os.path.join(run_dir, run_folder.EVALUATION), results)
    return results
