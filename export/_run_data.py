"""The command line's data: a run's own data or `--data`, RAW, split as training split it.

The exported graphs take raw features (they apply the model's
preprocessing), so calibration, parity and thresholds are fed raw rows:
`--data digits` (any name of `tfvae.datasets.NAMES`) is the raw dataset
with the split of `tfvae.datasets.load` and the run's seed; `--data PATH`
reads a `.npy`, `.npz` or `.csv` with `tfvae.datasets.load_array` (no
scaling) and splits it with `tfvae.datasets.split_rows`, as
`tfvae.run_folder.load_data` does.
The training split calibrates int8 models; the test split, which training
did not use, measures parity. The score thresholds are set on rows known to
be normal: `--normal-data FILE` (`load_rows`: every row), by default the
test split of the run's own data (held out of the rows it was trained on).
"""

import os
import pathlib

import numpy as np

from tfvae import _checks

#: File extensions `--data` accepts.
EXTENSIONS = (".npy", ".npz", ".csv")
_LABEL_KEYS = ("y", "labels")


def check_spec(spec):
    """Checks a file `--data` without loading anything (no TensorFlow import).

    A spec without a data file extension is taken for a dataset name and
    checked by `load`.

    Raises:
        ValueError: for a data file that does not exist.
    """
    if pathlib.Path(spec).suffix.lower() in EXTENSIONS and not os.path.isfile(spec):
        raise ValueError(_checks.invalid("--data", "an existing .npy/.npz/.csv file or a dataset name", spec))
    return spec


def check_file(spec, name):
    """Checks that `spec` is an existing .npy/.npz/.csv file (no TensorFlow import).

    Raises:
        ValueError: naming `name` otherwise.
    """
    if pathlib.Path(spec).suffix.lower() not in EXTENSIONS or not os.path.isfile(spec):
        raise ValueError(_checks.invalid(name, "an existing .npy/.npz/.csv file of raw rows", spec))
    return spec


def available(spec):
    """Whether `spec` (a run's `data`) can be loaded here: a dataset name or an existing file."""
    from tfvae import datasets

    return spec in datasets.NAMES or os.path.isfile(spec)


def load_rows(spec, model, name):
    """Every row of a data file, raw: `x`, or `(x, labels)` for a conditional model."""
    check_file(spec, name)
    x, y = _read_file(spec, model)
    x = _shaped(model, x)
    return x if y is None else (x, y)


def load(spec, model, seed=0):
    """Loads `--data` for `model`, raw.

    Args:
        spec: a dataset name or a file path (see `check_spec`).
        model: the `tfvae.VAE` to feed.
        seed: the split's seed (the run's `seed`).

    Returns:
        `(train, test, description)`: `train` and `test` are raw `x` or
        `(x, labels)` ready for `export.tflite` / `export.saved_model`, and
        `description` names the source, e.g. `"digits"`.
    """
    from tfvae import datasets

    if pathlib.Path(spec).suffix.lower() not in EXTENSIONS and spec not in datasets.NAMES:
        raise ValueError(
            _checks.invalid("--data", f"one of {list(datasets.NAMES)} or a .npy/.npz/.csv file", spec)
        )
    if spec in datasets.NAMES:
        (x_train, y_train), (x_test, y_test) = datasets.load(spec, scale=False, seed=seed)
    else:
        x, y = _read_file(spec, model)
        train_rows, test_rows = datasets.split_rows(len(x), seed, name="--data")
        x_train, x_test = x[train_rows], x[test_rows]
        y_train, y_test = (None, None) if y is None else (y[train_rows], y[test_rows])
    x_train, x_test = (_shaped(model, part) for part in (x_train, x_test))
    if not model.num_classes:
        return x_train, x_test, os.path.basename(os.fspath(spec))
    return (x_train, y_train), (x_test, y_test), os.path.basename(os.fspath(spec))


def _read_file(path, model):
    from tfvae import datasets

    x, _ = datasets.load_array(path)
    if not model.num_classes:
        return x, None
    if not path.lower().endswith(".npz"):
        raise ValueError(
            _checks.invalid("--data", "an .npz with arrays 'x' and 'y' (class ids) for a conditional model", path)
        )
    with np.load(path, allow_pickle=False) as archive:
        key = next((key for key in _LABEL_KEYS if key in archive.files), None)
        if key is None:
            raise ValueError(
                _checks.invalid("--data", "an .npz with class ids under 'y' or 'labels' for a conditional model",
                                path, f"It holds {archive.files}")
            )
        return x, np.asarray(archive[key])


def _shaped(model, x):
    size = int(np.prod(model.event_shape))
    if x.ndim >= 2 and int(np.prod(x.shape[1:])) == size:
        x = x.reshape((-1,) + tuple(model.event_shape))
    return x.astype(np.float32)
