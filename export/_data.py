"""Example data for calibration and parity: user arrays, synthetic rows, latent points.

Data reaches the exporters as `x`, `(x, labels)` or `{"x": x, "labels": labels}`
and is normalized here to `Examples(x, labels)`: x a float32 array of shape
`(n,) + model.event_shape`, labels int32 class ids `(n,)` for a conditional
model and None otherwise (labels given to an unconditional model are ignored,
so that `(x_train, y_train)` can be passed as it comes from
`tfvae.datasets.load`).
"""

import collections

import numpy as np

from export import _checks

Examples = collections.namedtuple("Examples", ["x", "labels"])

#: Number of rows used when no data is given (uniform noise in [0, 1]).
SYNTHETIC_ROWS = 64


def as_examples(model, data, name):
    """Normalizes user data for `model`.

    Args:
        model: a `tfvae.VAE`.
        data: `x`, `(x, labels)` or `{"x": x, "labels": labels}`; x of shape
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

    >>> as_examples(tfvae.mlp_vae(6, (4,), 2), np.zeros((3, 6)), "parity_data").x.shape
    (3, 6)
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


def synthetic(model, rows=SYNTHETIC_ROWS, seed=0):
    """Uniform noise in [0, 1] (and random labels): parity data when none is given."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (rows,) + tuple(model.event_shape)).astype(np.float32)
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
    prior N(0, I) (generation); labels repeat those of the examples.

    Returns:
        `(z, labels)`: float32 `(3n, latent_dim)` and int32 `(3n,)` or None.
    """
    rng = np.random.default_rng(seed)
    z_mean, z_log_sigma = (np.asarray(t) for t in model.encode(examples.x, examples.labels))
    noise = rng.standard_normal(z_mean.shape).astype(np.float32)
    prior = rng.standard_normal(z_mean.shape).astype(np.float32)
    z = np.concatenate([z_mean, z_mean + np.exp(z_log_sigma) * noise, prior]).astype(np.float32)
    labels = None if examples.labels is None else np.tile(examples.labels, 3)
    return z, labels


def _split(data, name):
    if isinstance(data, dict):
        unknown = set(data) - {"x", "labels"}
        if "x" not in data or unknown:
            raise ValueError(_checks.invalid(name, "a dict with key 'x' and optionally 'labels'", sorted(data)))
        return data["x"], data.get("labels")
    if isinstance(data, (tuple, list)) and len(data) == 2 and not np.isscalar(data[0]) and np.ndim(data[0]) >= 2:
        return data[0], data[1]
    return data, None


def _features(model, x, name):
    if hasattr(x, "numpy"):
        x = x.numpy()
    try:
        array = np.asarray(x)
    except ValueError:
        raise ValueError(_checks.invalid(name, "a rectangular numeric array", "<ragged sequence>")) from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(_checks.invalid(name, "a numeric array (or (x, labels))", x))
    expected = (None,) + tuple(model.event_shape)
    if array.ndim != len(expected) or tuple(array.shape[1:]) != expected[1:] or len(array) == 0:
        raise ValueError(
            _checks.invalid(
                name,
                f"an array of shape (n, {', '.join(map(str, model.event_shape))}) with n >= 1, like the model's input",
                array,
                "Preprocess the data as for training (see model.preprocessing)",
            )
        )
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))[0])
        raise ValueError(_checks.invalid(name, "finite values", f"<non-finite value in row {row}>"))
    return array


def _class_ids(model, labels, rows, name):
    if hasattr(labels, "numpy"):
        labels = labels.numpy()
    labels = np.asarray(labels)
    expected = f"{rows} class ids in [0, {model.num_classes}) or {rows} one-hot rows of width {model.num_classes}"
    if not np.issubdtype(labels.dtype, np.number) or len(labels) != rows:
        raise ValueError(_checks.invalid(f"{name} labels", expected, labels))
    if labels.ndim == 2 and labels.shape[1] == model.num_classes:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or np.any(labels != np.round(labels)) or np.any(labels < 0) or np.any(
        labels >= model.num_classes
    ):
        raise ValueError(_checks.invalid(f"{name} labels", expected, labels))
    return labels.astype(np.int32)


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
        examples, source = as_examples(model, parity_data, "parity_data"), "parity_data"
    elif fallback is not None:
        examples, source = fallback, fallback_name
    else:
        examples = synthetic(model)
        return examples, f"{len(examples.x)} synthetic rows, uniform in [0, 1] (pass parity_data for real data)"
    examples = subsample(examples, PARITY_ROWS)
    return examples, f"{len(examples.x)} rows of {source}"
