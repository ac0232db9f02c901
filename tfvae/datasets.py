"""Data: scikit-learn's bundled digits (no download), Keras' MNISTs, user files.

Every loader returns float32 arrays. Preprocessing is explicit and described
by a small JSON-serializable dict that travels with a trained model, so that
whoever feeds the model later (a server, a phone) can repeat it:

    {"offset": 0.0, "divisor": 16.0, "binarize_threshold": 0.5}
    x = (x_raw - offset) / divisor;  then x = (x > threshold) if a threshold is set

(computed as `preprocessing_arithmetic` says, the same in Python and in the exported files).

`offset` and `divisor` are floats or per-feature lists.
"""

import os

import numpy as np

from tfvae import _checks

# name -> (maximum raw value, image shape)
_DATASETS = {"digits": (16.0, (8, 8)), "mnist": (255.0, (28, 28)), "fashion_mnist": (255.0, (28, 28))}
NAMES = tuple(_DATASETS)
#: The share of a data file's rows that `tfvae train` trains on (`split_rows`); the rest is its test split.
TRAIN_FRACTION = 0.8


def preprocessing_for(name, scale=True, binarize=False, threshold=0.5):
    """The preprocessing dict that `load(name, ...)` applies.

    Args:
        name: one of `NAMES`.
        scale: divide by the dataset's maximum raw value, into [0, 1].
        binarize: map values above `threshold` to 1 and the rest to 0.
        threshold: the binarization threshold, in scaled units if `scale`.

    Returns:
        A dict with `offset`, `divisor` and `binarize_threshold`.
    """
    _checks.one_of("name", name, _DATASETS)
    maximum = _DATASETS[name][0]
    return {
        "offset": 0.0,
        "divisor": maximum if scale else 1.0,
        "binarize_threshold": float(threshold) if binarize else None,
    }


def apply_preprocessing(x, preprocessing):
    """Applies a preprocessing dict (see the module docstring) to raw `x`.

    Computed with the float32 arithmetic of the exported graphs (see
    `preprocessing_arithmetic`), so that Python and a `.tflite` file turn
    the same raw row into the same network input, bit for bit.

    Args:
        x: raw values, any shape whose trailing dimensions the per-feature
            `offset` and `divisor` broadcast over.
        preprocessing: a preprocessing dict, or None for none.

    Returns:
        A float32 array of the same shape.

    Example:

    >>> import numpy as np
    >>> from tfvae.datasets import apply_preprocessing, preprocessing_for
    >>> apply_preprocessing(np.array([[0.0, 8.0, 9.0, 16.0]]), preprocessing_for("digits", binarize=True))
    array([[0., 0., 1., 1.]], dtype=float32)
    """
    x = np.asarray(x, np.float32)
    arithmetic = preprocessing_arithmetic(preprocessing)
    if arithmetic is None:
        return x
    if "cut" in arithmetic:
        with np.errstate(over="ignore"):  # far from the cut the product is +-inf, which the clamps map to 1 or 0
            steep = (x - arithmetic["cut"]) * arithmetic["steepness"]
        return np.minimum(np.maximum(steep, np.float32(0)), np.float32(1))
    return ((x - arithmetic["offset"]) * arithmetic["scale"]).astype(np.float32)


#: The binarization's slope: (raw - cut) * STEEPNESS, clamped to [0, 1], is exactly `raw > cut` for every
#: float32 raw value at least 2**-100 away from the cut (a power of two: the product rounds nothing away).
STEEPNESS = np.float32(2.0 ** 100)


def preprocessing_arithmetic(preprocessing):
    """The float32 constants of a preprocessing dict, as the exported graphs and `apply_preprocessing` use them.

    Both compute with subtraction, multiplication and clamps only (no
    comparison, select or division), ops every mobile runtime parses:

        scaling:       x = (raw - offset) * scale,   scale = 1 / divisor (a divisor of 0 counts as 1)
        binarization:  x = min(max((raw - cut) * steepness, 0), 1),   cut = offset + threshold * divisor

    The binarization is `(raw - offset) / divisor > threshold` written in raw
    units: a raw value above the cut by at least 2**-100 gives 1 (see
    `STEEPNESS`), one at or below it gives 0.

    Args:
        preprocessing: a preprocessing dict (see the module docstring), or None.

    Returns:
        None when the dict does nothing (no dict, offset 0, divisor 1, no
        threshold); else `{"offset", "scale"}` or, with a threshold,
        `{"cut", "steepness"}`: float32 scalars or per-feature arrays.

    Example:

    >>> from tfvae.datasets import preprocessing_arithmetic, preprocessing_for
    >>> preprocessing_arithmetic(preprocessing_for("digits", binarize=True))["cut"]
    array(8., dtype=float32)
    """
    if not preprocessing:
        return None
    offset = np.asarray(preprocessing.get("offset", 0.0), np.float64)
    divisor = np.asarray(preprocessing.get("divisor", 1.0), np.float64)
    divisor = np.where(divisor == 0, 1.0, divisor)
    threshold = preprocessing.get("binarize_threshold")
    if threshold is not None:
        return {"cut": np.asarray(offset + float(threshold) * divisor, np.float32), "steepness": STEEPNESS}
    if np.all(offset == 0) and np.all(divisor == 1):
        return None
    return {"offset": np.asarray(offset, np.float32), "scale": np.asarray(1.0 / divisor, np.float32)}


def image_shape(name):
    """The `(height, width)` of a named image dataset."""
    _checks.one_of("name", name, _DATASETS)
    return _DATASETS[name][1]


def load(name="digits", scale=True, binarize=False, threshold=0.5, flatten=True, test_size=0.2, seed=0):
    """Loads a named dataset as `(x_train, y_train), (x_test, y_test)`.

    `"digits"` is scikit-learn's bundled 1,797 8x8 handwritten digits (values
    0..16): real data, always available, split into train and test with
    stratification (1,437 / 360 with the defaults). `"mnist"` and
    `"fashion_mnist"` come from `keras.datasets` with their own split and
    need a network connection the first time.

    Args:
        name: one of `"digits"`, `"mnist"`, `"fashion_mnist"`.
        scale: scale pixel values into [0, 1].
        binarize: threshold values into {0, 1} (after scaling).
        threshold: binarization threshold.
        flatten: return x as `(n, height * width)`; otherwise
            `(n, height, width, 1)` for convolutional models.
        test_size: fraction held out for testing (digits only).
        seed: seed of the digits split.

    Returns:
        `(x_train, y_train), (x_test, y_test)`, float32 arrays; y holds
        class ids.

    Raises:
        ValueError: for an unknown name or invalid option.
        RuntimeError: when a Keras dataset cannot be downloaded.

    Example:

    >>> import tfvae
    >>> (x_train, y_train), (x_test, y_test) = tfvae.datasets.load("digits", binarize=True)
    >>> x_train.shape, x_test.shape
    ((1437, 64), (360, 64))
    """
    preprocessing = preprocessing_for(name, scale, binarize, threshold)
    if not 0 < test_size < 1:
        raise ValueError(_checks.invalid("test_size", "a fraction in (0, 1)", test_size))
    if name == "digits":
        (x_train, y_train), (x_test, y_test) = _load_digits(test_size, seed)
    else:
        (x_train, y_train), (x_test, y_test) = _load_keras(name)
    height, width = image_shape(name)
    shape = (-1, height * width) if flatten else (-1, height, width, 1)
    return (
        (apply_preprocessing(x_train, preprocessing).reshape(shape), y_train.astype(np.float32)),
        (apply_preprocessing(x_test, preprocessing).reshape(shape), y_test.astype(np.float32)),
    )


def _load_digits(test_size, seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
    )
    return (x_train, y_train), (x_test, y_test)


def _load_keras(name):
    import keras

    try:
        return getattr(keras.datasets, name).load_data()
    except Exception as error:  # urllib, SSL and socket errors differ by platform
        raise RuntimeError(
            f"Could not load {name!r} through keras.datasets (it downloads the data "
            f"the first time and needs a network connection): {error}. Offline, use "
            "load('digits') or tfvae.datasets.load_array(path) with your own file."
        ) from None


def load_array(path, key=None, scale=False, binarize=False, threshold=0.5):
    """Reads a user's numeric features from `.npy`, `.npz` or `.csv`.

    Integer data is converted to float32. A `.csv` may have one header row of
    column names; every other cell must be a number.

    Args:
        path: path to a `.npy`, `.npz` (array `key`, or its only / first
            array) or `.csv` (comma-separated) file.
        key: the array's name inside an `.npz`.
        scale: min-max scale every feature into [0, 1] (constant features
            become 0).
        binarize: threshold into {0, 1} after scaling.
        threshold: the binarization threshold.

    Returns:
        `(x, preprocessing)`: a float32 array of shape `(n, ...)` and the
        preprocessing dict that turned the file's values into it.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for an unsupported extension, an empty, ragged,
            one-dimensional or non-numeric file, or non-finite values (with
            the row index).
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    _checks.one_of("path extension", extension, {".npy", ".npz", ".csv"})
    path = _checks.existing_file("path", path)
    if extension == ".csv":
        raw = _read_csv(path)
    elif extension == ".npy":
        raw = _read_numpy(path, np.load, allow_pickle=False)
    else:
        with _read_numpy(path, np.load, allow_pickle=False) as archive:
            if key is None:
                if not archive.files:
                    raise ValueError(_checks.invalid("path", "an .npz holding an array", path, "The archive is empty"))
                key = "x" if "x" in archive.files else archive.files[0]
            if key not in archive.files:
                raise ValueError(_checks.invalid("key", f"one of {archive.files}", key))
            raw = archive[key]
    x = _checks.float_array(f"data in {path}", raw)
    if x.ndim < 2:  # one value per row: the model's input width would be undefined
        raise ValueError(
            _checks.invalid(f"data in {path}", "an array of shape (n, features) or (n, height, width[, channels])",
                            f"<array of shape {x.shape}>", "Save a single feature as shape (n, 1)")
        )
    if scale:
        preprocessing = min_max_preprocessing(x, binarize, threshold)
    else:
        preprocessing = {"offset": 0.0, "divisor": 1.0, "binarize_threshold": float(threshold) if binarize else None}
    return apply_preprocessing(x, preprocessing), preprocessing


def min_max_preprocessing(x, binarize=False, threshold=0.5):
    """The preprocessing dict that min-max scales every feature of `x` into [0, 1].

    Fit it on training rows only and apply it (`apply_preprocessing`) to
    every split: other rows then may fall outside [0, 1], which is the point
    (nothing about them leaks into training).

    Args:
        x: float array `(n, ...)`, the rows to fit on.
        binarize: threshold into {0, 1} after scaling.
        threshold: the binarization threshold.

    Returns:
        A dict with per-feature `offset` (minimum) and `divisor` (maximum -
        minimum; a constant feature gets 0, which `apply_preprocessing` treats
        as 1) and `binarize_threshold`.

    Example:

    >>> import numpy as np
    >>> from tfvae.datasets import min_max_preprocessing
    >>> min_max_preprocessing(np.array([[0.0, 1.0], [2.0, 1.0]]))
    {'offset': [0.0, 1.0], 'divisor': [2.0, 0.0], 'binarize_threshold': None}
    """
    x = np.asarray(x, np.float32)
    minimum, maximum = x.min(axis=0), x.max(axis=0)
    return {"offset": minimum.tolist(), "divisor": (maximum - minimum).tolist(),
            "binarize_threshold": float(threshold) if binarize else None}


def split_rows(num_rows, seed=0, train_fraction=TRAIN_FRACTION, name="data"):
    """The row indices of a seeded train/test split, as `tfvae train` makes it.

    Args:
        num_rows: how many rows the data has.
        seed: seeds the permutation.
        train_fraction: the share of rows that goes to training (rounded,
            at least one).
        name: the argument named in the error.

    Returns:
        `(train_rows, test_rows)`: integer arrays, disjoint, together every row.

    Raises:
        ValueError: if the split would leave the test part empty.

    Example:

    >>> from tfvae.datasets import split_rows
    >>> train_rows, test_rows = split_rows(10, seed=0)
    >>> len(train_rows), len(test_rows)
    (8, 2)
    """
    order = np.random.default_rng(seed).permutation(num_rows)
    split = max(1, int(round(train_fraction * num_rows)))
    if split >= num_rows:
        raise ValueError(
            _checks.invalid(name, f"at least 2 rows for a {train_fraction:.0%} train / test split",
                            f"<{num_rows} row{'s' if num_rows != 1 else ''}>")
        )
    return order[:split], order[split:]


def _read_numpy(path, reader, **options):
    try:
        return reader(path, **options)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"Could not read {path!r} as a numpy file: {error}") from None


def _read_csv(path):
    # Line numbers as an editor shows them: the first line of the file (a header or not) is line 1.
    with open(path, newline="") as handle:
        lines = [(number, line.strip()) for number, line in enumerate(handle, 1) if line.strip()]
    rows = [(number, line.split(",")) for number, line in lines]
    if rows and not _is_numeric_row(rows[0][1]):
        rows = rows[1:]  # a header of column names
    if not rows:
        raise ValueError(_checks.invalid("path", "a CSV file with at least one row of numbers", path))
    width = len(rows[0][1])
    values = []
    for number, row in rows:
        if len(row) != width:
            raise ValueError(
                _checks.invalid("path", f"a rectangular CSV ({width} columns in every row)", path,
                                f"Line {number} has {len(row)} columns")
            )
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            raise ValueError(
                _checks.invalid("path", "a CSV of numbers", path, f"Line {number} holds a non-numeric cell: {row}")
            ) from None
        if not np.isfinite(values[-1]).all():
            raise ValueError(
                _checks.invalid("path", "a CSV of finite values", path, f"Line {number} holds NaN or infinity: "
                                f"{row}. Remove or impute rows with NaN or infinity before training")
            )
    return np.asarray(values, np.float32)


def _is_numeric_row(row):
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True
