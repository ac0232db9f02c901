"""Example rows for calibration, parity and thresholds: user arrays, synthetic rows, latent points.

Data reaches the exporters as `x`, `(x, labels)` or `{"x": x, "labels": labels}`
and is normalized here to `Examples(x, labels)`: x a float32 array of RAW
features of shape `(n,) + model.event_shape` (what the exported graphs take:
they apply `model.preprocessing` themselves), labels int32 class ids `(n,)`
for a conditional model and None otherwise (labels given to an unconditional
model are ignored, so that `(x_train, y_train)` can be passed as it comes
from `tfvae.datasets.load(name, scale=False)`).
"""

import collections

import numpy as np

from tfvae import _checks, datasets

Examples = collections.namedtuple("Examples", ["x", "labels"])

#: Number of rows used when no data is given (uniform noise over the range preprocessing maps to [0, 1]).
SYNTHETIC_ROWS = 64


def as_examples(model, data, name):
    """Normalizes user data for `model`.

    Args:
        model: a `tfvae.VAE`.
        data: `x`, `(x, labels)` or `{"x": x, "labels": labels, "name": name}`
            (`name` describes the data in reports and metadata, e.g.
            `"the digits test split"`); x of shape
            `(n,) + model.event_shape`, labels class ids `(n,)` or one-hot
            rows `(n, num_classes)`.
        name: the argument's name, for error messages.

    Returns:
        `Examples(x, labels)`.

    Raises:
        TypeError: if `data` is not numeric.
        ValueError: if x has the wrong shape or non-finite values, or labels
            are missing for a conditional model or do not fit x.

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> from export._examples import as_examples
    >>> as_examples(tfvae.mlp_vae(6, (4,), 2), (np.zeros((3, 6)), [0, 1, 2]), "parity_data")   # labels ignored
    Examples(x=array([[0., 0., 0., 0., 0., 0.], ...], dtype=float32), labels=None)
    """
    x, labels = _split(data, name)
    x = _features(model, x, name)
    if not model.num_classes:
        return Examples(x, None)
    if labels is None:
        raise ValueError(
            _checks.invalid(
                name,
                f"(x, labels) for this conditional model (num_classes={model.num_classes})",
                x,
                f"Pass {name}=(x, y) with y the class ids",
            )
        )
    return Examples(x, _class_ids(model, labels, len(x), name))


def preprocessing_constants(model):
    """`tfvae.datasets.preprocessing_arithmetic` of `model.preprocessing`, arrays shaped to broadcast over x.

    Returns:
        None for a model without preprocessing; else the dict of float32
        constants (`offset` and `scale`, or `cut` and `steepness`), each a
        scalar or of shape `model.event_shape`.
    """
    arithmetic = datasets.preprocessing_arithmetic(model.preprocessing)
    if arithmetic is None:
        return None
    shape = tuple(model.event_shape)
    return {key: value.reshape(shape) if value.size > 1 else value for key, value in arithmetic.items()}


def raw_range(model):
    """`(low, high)`: the raw values preprocessing maps to [0, 1], float32 arrays that broadcast over x.

    A divisor of 0 counts as 1, as in `tfvae.datasets.apply_preprocessing`;
    a model without preprocessing gives (0, 1).
    """
    prep = model.preprocessing or {}
    shape = tuple(model.event_shape)
    offset, divisor = (np.asarray(prep.get(key, default), np.float32)
                       for key, default in (("offset", 0.0), ("divisor", 1.0)))
    offset, divisor = (value.reshape(shape) if value.size > 1 else value for value in (offset, divisor))
    return offset, offset + np.where(divisor == 0, 1, divisor).astype(np.float32)


def raw_dtype(model):
    """The dtype of the exported raw input `x`: uint8 pixels for images, else float32.

    An image model (event shape `(height, width, channels)`) whose raw range
    (`raw_range`) is one range within 0..255 that spans more than one step
    takes uint8 pixels as a camera or an image decoder gives them; every
    other model takes float32 features.
    """
    if len(model.event_shape) != 3:
        return np.float32
    low, high = raw_range(model)
    if np.size(low) == 1 and np.size(high) == 1 and 0 <= float(low) and float(high) <= 255 and high - low > 1:
        return np.uint8
    return np.float32


def raw_input(model, x):
    """Raw examples `x` (float) as the exported input takes them: rounded to uint8 for an image model."""
    if raw_dtype(model) is np.uint8:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return np.asarray(x, np.float32)


def synthetic(model, rows=SYNTHETIC_ROWS, seed=0):
    """Raw rows that preprocess to uniform noise in [0, 1] (and random labels): parity data when none is given."""
    rng = np.random.default_rng(seed)
    unit = rng.uniform(0.0, 1.0, (rows,) + tuple(model.event_shape)).astype(np.float32)
    low, high = raw_range(model)
    x = raw_input(model, unit * (high - low) + low).astype(np.float32)
    labels = rng.integers(0, model.num_classes, rows).astype(np.int32) if model.num_classes else None
    return Examples(x, labels)


def subsample(examples, limit, seed=0):
    """At most `limit` rows of `examples`, drawn without replacement with `seed`."""
    if len(examples.x) <= limit:
        return examples
    rows = np.sort(np.random.default_rng(seed).choice(len(examples.x), limit, replace=False))
    return Examples(examples.x[rows], None if examples.labels is None else examples.labels[rows])


def latent_points(model, examples, seed=0):
    """Points where a decoder is used, for its calibration and parity.

    For n examples, 3n rows: the posterior means z_mean(x) (reconstruction),
    one posterior sample z_mean + sigma * epsilon each, and n draws from the
    model's prior (generation); labels repeat those of the examples.

    Returns:
        `(z, labels)`: float32 `(3n, latent_dim)` and int32 `(3n,)` or None.
    """
    rng = np.random.default_rng(seed)
    x = datasets.apply_preprocessing(examples.x, model.preprocessing)
    z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(x, examples.labels))
    noise = rng.standard_normal(z_mean.shape).astype(np.float32)
    prior = np.asarray(model.prior.from_noise(model, **model.prior.noise(rng, len(z_mean))))
    z = np.concatenate([z_mean, z_mean + np.exp(z_log_sigma) * noise, prior]).astype(np.float32)
    labels = None if examples.labels is None else np.tile(examples.labels, 3)
    return z, labels


def _split(data, name):
    if isinstance(data, dict):
        unknown = set(data) - {"x", "labels", "name"}
        if "x" not in data or unknown:
            raise ValueError(_checks.invalid(name, "a dict with key 'x' and optionally 'labels' and 'name'",
                                             sorted(data)))
        return data["x"], data.get("labels")
    if isinstance(data, (tuple, list)) and len(data) == 2 and not np.isscalar(data[0]) and np.ndim(data[0]) >= 2:
        return data[0], data[1]
    return data, None


def _features(model, x, name):
    if hasattr(x, "numpy"):
        x = x.numpy()
    return _checks.float_array(name, x, tuple(model.event_shape))


def _class_ids(model, labels, rows, name):
    if hasattr(labels, "numpy"):
        labels = labels.numpy()
    return _checks.class_ids(f"{name} labels", labels, model.num_classes, rows)


#: At most this many rows are used for calibration (int8) and for parity.
CALIBRATION_ROWS = 2000
PARITY_ROWS = 10000


def parity_examples(model, parity_data, fallback=None, fallback_name=None):
    """The examples parity is measured on, and a description of them.

    Args:
        model: a `tfvae.VAE`.
        parity_data: user data for parity, or None.
        fallback: `Examples` used when `parity_data` is None (e.g. the
            representative data), or None for synthetic rows.
        fallback_name: how to call `fallback` in the description.

    Returns:
        `(examples, description)`.
    """
    if parity_data is not None:
        examples = as_examples(model, parity_data, "parity_data")
        source = parity_data.get("name", "parity_data") if isinstance(parity_data, dict) else "parity_data"
    elif fallback is not None:
        examples, source = fallback, fallback_name
    else:
        examples = synthetic(model)
        return examples, f"{len(examples.x)} synthetic rows (pass parity_data for real data)"
    examples = subsample(examples, PARITY_ROWS)
    return examples, f"{len(examples.x)} rows of {source}"
