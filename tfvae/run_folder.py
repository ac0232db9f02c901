"""The run folder: what `tfvae train` writes, how it is read back, who may write it.

A run folder holds everything needed to evaluate, plot, resume and export a run:

    run.json           how it was made: data, options, seed (`read_options`)
    history.csv        per-epoch metrics, one row per finished epoch
    backup/            only while training: what `--resume` continues from (see tfvae.resumable)
    model.keras        the trained model (with its preprocessing)
    metrics.json       test loss and test ELBO and its parts
    loss.png, reconstructions.png, samples.png, latent.png
    evaluation.json    written by `tfvae evaluate`
    export/            written by `tfvae-export all`
    .lock              the PID of the process that holds the folder (see `lock`)

Every file is written whole or not at all: to a temporary sibling, flushed
to disk and renamed (`write_json`, `write_text`, `save_model`;
the plots in `tfvae.plot`; all through `tfvae._atomic`). `load_split` rebuilds the data
exactly as training used it, with the preprocessing fitted on the training
rows only. This module imports neither TensorFlow nor Keras; the functions
that need them take the model or figure as an argument.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil

from tfvae import _atomic, _checks, _renamed

RUN_JSON = "run.json"
HISTORY = "history.csv"
BACKUP = "backup"
MODEL = "model.keras"
METRICS = "metrics.json"
EVALUATION = "evaluation.json"
EXPORT = "export"
LOCK = ".lock"
PLOTS = ("loss.png", "reconstructions.png", "samples.png", "latent.png")
#: Everything a run (and the tools that read it) write into its folder; `clear` removes these.
RUN_FILES = (RUN_JSON, HISTORY, BACKUP, MODEL, METRICS, EVALUATION, EXPORT, *PLOTS)


class RunFolderBusy(RuntimeError):
    """Another live process holds the run folder (see `lock`)."""


def read_options(run_dir):
    """The options a run was made with, from `RUN_DIR/run.json`.

    Args:
        run_dir: a folder written by `tfvae train`.

    A `run.json` of the previous release is read as this one writes it: its
    `num_samples` is `iwae_samples`, and its data path, recorded as typed
    (relative to where `tfvae train` ran), is made absolute (`data_path`).

    Returns:
        The dict of `run.json` (it has at least `data`).

    Raises:
        ValueError: if `run.json` is missing, not JSON, or does not record
            `data`; the message names the file.

    Example:

    >>> from tfvae import run, run_folder
    >>> result = run.train("digits", out="runs/digits", hidden=(16,), latent_dim=2, epochs=1, verbose=0)
    >>> options = run_folder.read_options("runs/digits")   # as `tfvae train --epochs 1 ...` writes it
    >>> options["data"], options["epochs"], options["seed"]
    ('digits', 1, 0)
    >>> import json   # a run.json of the previous release reads as this one writes it
    >>> with open("runs/digits/run.json", "w") as handle:
    ...     json.dump({"data": "digits", "num_samples": 5, "seed": 0}, handle)
    >>> run_folder.read_options("runs/digits")
    {'data': 'digits', 'seed': 0, 'iwae_samples': 5}
    """
    path = os.path.join(os.fspath(run_dir), RUN_JSON)
    expected = "a run folder written by `tfvae train` (with a readable run.json)"
    try:
        with open(path) as handle:
            options = json.load(handle)
    except FileNotFoundError:
        raise ValueError(_checks.invalid("run_dir", expected, os.fspath(run_dir), f"{path} does not exist")) from None
    except (OSError, ValueError) as error:
        raise ValueError(_checks.invalid("run_dir", expected, os.fspath(run_dir),
                                         f"{path} cannot be read: {' '.join(str(error).split())}")) from None
    if not isinstance(options, dict) or "data" not in options:
        raise ValueError(_checks.invalid("run_dir", expected, os.fspath(run_dir), f"{path} does not record `data`"))
    options = _renamed.new_keywords(options, RENAMED_OPTIONS, warn=False)
    options["data"] = data_path(options["data"], run_dir)
    return options


#: Options the previous release recorded under another name: `{old: new}`.
RENAMED_OPTIONS = {"num_samples": "iwae_samples"}


def data_path(data, run_dir):
    """The recorded `data` of a run as `tfvae train` records it today: a dataset name, or an absolute path.

    The previous release recorded a file's path as typed, relative to where
    the command ran: usually the current folder, or one that holds the run
    folder (`runs/NAME` under it). The first of these where the path exists
    is taken; if none has it, the current folder (the error then names it).

    >>> import os
    >>> from tfvae.run_folder import data_path
    >>> data_path("digits", "runs/digits")
    'digits'
    >>> data_path("data.csv", "runs/x") == os.path.abspath("data.csv")
    True
    """
    if _is_named(data) or os.path.isabs(data):
        return data
    folders, folder = [os.getcwd()], os.path.abspath(run_dir)
    while folder != os.path.dirname(folder):
        folder = os.path.dirname(folder)
        folders.append(folder)
    found = (os.path.join(folder, data) for folder in folders if os.path.exists(os.path.join(folder, data)))
    return os.path.abspath(next(found, data))


def holds_run(run_dir):
    """Whether `run_dir` holds (part of) a run: its `run.json`, backup, history or model."""
    return any(os.path.lexists(os.path.join(run_dir, name)) for name in (RUN_JSON, BACKUP, HISTORY, MODEL))


def clear(run_dir):
    """Removes what a run wrote into `run_dir` (`RUN_FILES`, exports included); other files stay.

    Raises:
        OSError: if something cannot be removed.
    """
    for name in RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


# ------------------------------------------------------------------ writing


def write_json(path, value):
    """Writes `value` as indented JSON to `path`, whole or not at all."""
    write_text(path, json.dumps(value, indent=2))


def write_text(path, text):
    """Writes UTF-8 `text` to `path`, whole or not at all."""
    _atomic.replace_text(path, text)


def save_model(model, path):
    """`model.save(path)`, whole or not at all (a kill or a full disk leaves the previous file)."""
    with _atomic.replacing(path) as temporary:
        model.save(temporary)



# ------------------------------------------------------------------ the data


def load_data(data, likelihood, seed=0, memory_budget=None):
    """Loads a named dataset, a file or a folder of images as `tfvae train` does.

    Named image datasets are scaled to [0, 1] (and binarized for the
    Bernoulli likelihood, kept as raw counts for the Poisson one) with their
    own split. A file's rows are split
    80/20 with `seed` (`tfvae.datasets.split_rows`), then every feature is
    min-max scaled with the minimum and maximum of the TRAINING rows only, so
    that nothing about the test rows leaks into the model (test values may
    fall outside [0, 1]). A folder's PNG/JPEG files are split 80/20 the same
    way and their pixels divided by 255 (`tfvae.image_folders`).

    Args:
        data: a name from `tfvae.datasets.NAMES`, a `.npy/.npz/.csv` path or
            a folder of images.
        likelihood: a name of `tfvae.likelihoods.LIKELIHOODS`: `"bernoulli"`
            binarizes, `"poisson"` keeps raw counts, the others scale.
        seed: seed of the split.
        memory_budget: for a folder, the bytes its decoded images may take
            in memory; None loads it whole whatever its size.

    Returns:
        `(x_train, y_train), (x_test, y_test), preprocessing`; y is None for
        files and folders; `preprocessing` (with `dataset`) is what the model
        applies to raw data. For a folder whose decoded images exceed
        `memory_budget`, x_train and x_test are `ImageFiles` to stream.

    Raises:
        ValueError: for data that is neither a dataset name nor an existing
            file or folder ("no such file"), or a file that cannot be used.
    """
    from tfvae import datasets, image_folders

    binarize = likelihood == "bernoulli"
    scale = likelihood != "poisson"  # a count likelihood models the raw counts
    if data in datasets.NAMES:
        train, test = datasets.load(data, scale=scale, binarize=binarize, seed=seed)
        return train, test, {"dataset": data, **datasets.preprocessing_for(data, scale, binarize)}
    path = os.fspath(data)
    if not os.path.exists(path):
        raise ValueError(_checks.invalid(
            "data", f"one of {list(datasets.NAMES)}, a .npy/.npz/.csv file or a folder of PNG/JPEG images", data,
            f"No such file or folder: {os.path.abspath(path)}; check the path (a relative one starts in "
            f"{os.getcwd()})"))
    if image_folders.is_image_folder(path):
        paths, shape = image_folders.scan(path)
        train_rows, test_rows = datasets.split_rows(len(paths), seed, name="data")
        parts = [ImageFiles([paths[row] for row in rows], shape) for rows in (train_rows, test_rows)]
        if memory_budget is None or image_folders.fits(len(paths), shape, memory_budget):
            parts = [image_folders.load_images(part.paths, shape) for part in parts]
        return (parts[0], None), (parts[1], None), {"dataset": os.path.abspath(path), **image_folders.PREPROCESSING}
    x, _ = datasets.load_array(data)
    train_rows, test_rows = datasets.split_rows(len(x), seed, name="data")
    preprocessing = datasets.min_max_preprocessing(x[train_rows], binarize=binarize) if scale else {}
    x_train, x_test = (datasets.apply_preprocessing(x[rows], preprocessing) for rows in (train_rows, test_rows))
    return (x_train, None), (x_test, None), {"dataset": os.fspath(data), **preprocessing}


class ImageFiles:
    """Image files to stream (`tfvae.image_folders.stream`): their `paths`, the `shape` of each image.

    `event_shape` is the shape the model takes them in (the image's, or
    flattened for an MLP).
    """

    def __init__(self, paths, shape, event_shape=None):
        self.paths, self.shape = list(paths), tuple(shape)
        self.event_shape = self.shape if event_shape is None else tuple(event_shape)

    def __len__(self):
        return len(self.paths)


def load_split(run_dir):
    """The data of a run exactly as its training used it (a folder of images loaded whole).

    Args:
        run_dir: a folder written by `tfvae train`.

    Returns:
        `(x_train, y_train), (x_test, y_test), preprocessing` (see `load_data`),
        with the run's data, likelihood and seed from `run.json`.

    Raises:
        ValueError: for a missing or corrupt `run.json`, or data that is not
            available here (a file or folder moved since training: the
            message names it and `run.json`).

    Example:

    >>> from tfvae import run, run_folder
    >>> result = run.train("digits", out="runs/digits", hidden=(16,), latent_dim=2, epochs=1, verbose=0)
    >>> (x_train, _), (x_test, y_test), preprocessing = run_folder.load_split("runs/digits")
    >>> x_train.shape, x_test.shape, preprocessing
    ((1437, 64), (360, 64), {'dataset': 'digits', 'offset': 0.0, 'divisor': 16.0, 'binarize_threshold': 0.5})
    """
    options = read_options(run_dir)
    data = options["data"]
    if not _is_named(data) and not os.path.exists(data):
        run_json = os.path.join(os.fspath(run_dir), RUN_JSON)
        raise ValueError(_checks.invalid(
            "data", "the data this run was trained on", data,
            f"It is no longer there (recorded in {run_json}): move it back, or set \"data\" in {run_json} "
            "to where it is now"))
    likelihood = options.get("likelihood") or ("bernoulli" if _is_named(data) else "gaussian")
    return load_data(data, likelihood, options.get("seed", 0))


def _is_named(data):
    from tfvae import datasets

    return data in datasets.NAMES


# ------------------------------------------------------------------ the lock


@contextlib.contextmanager
def lock(run_dir):
    """Holds `run_dir` for this process: a second process is refused at once.

    The lock is an advisory `flock` on `RUN_DIR/.lock`, which records the PID
    of its holder. The kernel drops it when the process ends, however it ends
    (a kill included), so a stale `.lock` file never blocks a later run.

    Args:
        run_dir: the run folder (created if missing).

    Raises:
        RunFolderBusy: naming the PID of the live process holding the folder.
        OSError: if the folder or the lock file cannot be created.

    Example:

    >>> from tfvae import run_folder
    >>> with run_folder.lock("runs/digits"):   # train, write files; meanwhile another holder is refused:
    ...     with run_folder.lock("runs/digits"):
    ...         pass
    Traceback (most recent call last):
    tfvae.run_folder.RunFolderBusy: 'runs/digits' is in use by process ... (it holds runs/digits/.lock); ...
    """
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunFolderBusy(
                f"{os.fspath(run_dir)!r} is in use by process {holder} (it holds {path}); wait for it to finish "
                f"or stop it (kill {holder}) first, then run again (with --resume to continue its run)"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the flock
