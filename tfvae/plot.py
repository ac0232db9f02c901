"""Plots a VAE user looks at: losses, reconstructions, samples, the latent space.

Every function returns a `matplotlib.figure.Figure` (built without pyplot, so
nothing opens a window and any backend works) and, given `path`, also saves
it as a PNG. Images are drawn as images: examples of shape
`(height, width)`, `(height, width, 1)` (grayscale) or `(height, width, 3)`
(colour), of any height and width, as the model's `event_shape` or
`image_shape` says; flat rows whose length is a square (64 -> 8x8) as
grayscale squares. Other tables are drawn as heat maps of rows.

>>> import numpy as np
>>> import tfvae
>>> x_rgb = np.random.default_rng(0).random((10, 24, 40, 3), "float32")   # 10 colour images, 24x40
>>> model = tfvae.conv_vae((24, 40, 3), (8, 16), 4)
>>> figure = tfvae.plot.reconstructions(model, x_rgb, path="reconstructions.png")
>>> figure.axes[0].images[0].get_array().shape   # 2 rows of 10 colour images, 1-pixel gaps
(49, 409, 3)
"""

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from tfvae import _atomic, _checks


def _save(figure, path):
    if path is not None:
        with _atomic.replacing(path) as temporary:  # whole or not at all (its name ends like `path`)
            figure.savefig(temporary, dpi=100, bbox_inches="tight")
    return figure


def _images(x, image_shape=None):
    """Returns x as `(n, height, width)` grayscale or `(n, height, width, 3)` colour images, or None for tables.

    Args:
        x: examples, `(n,) + event_shape`.
        image_shape: None (infer from x's shape), `(height, width)` or
            `(height, width, channels)` with 1 or 3 channels.

    Raises:
        ValueError: if `image_shape` does not fit x's features.
    """
    x = np.asarray(x)
    n = x.shape[0]
    if image_shape is not None:
        shape = tuple(int(size) for size in image_shape)
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (1, 3)) \
                or math.prod(shape) != math.prod(x.shape[1:]):
            raise ValueError(_checks.invalid(
                "image_shape", f"(height, width) or (height, width, 1 or 3 channels) with "
                f"{math.prod(x.shape[1:])} values in all, as x's examples of shape {x.shape[1:]} have",
                image_shape))
        x = x.reshape((n,) + shape)
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        return x[..., 0] if x.shape[-1] == 1 else x
    if x.ndim == 3:
        return x
    side = math.isqrt(x.shape[-1]) if x.ndim == 2 else 0
    if side >= 4 and side * side == x.shape[-1]:
        return x.reshape(n, side, side)
    return None


def _montage(ax, images, columns):
    """Draws `images` `(n, height, width[, 3])` on one axes, row by row, `columns` a row, with thin gaps.

    One image on one axes: a figure of one axes per image is slow to build
    and save. Grayscale images are drawn dark on light, values in
    [0, max(1, largest)]; colour images as RGB, divided by 255 when a value
    exceeds 1 (raw pixels) and clipped to [0, 1]. Returns the centres
    `(xs, ys)` of the columns and rows.
    """
    n, height, width = images.shape[:3]
    colour = images.ndim == 4
    rows = math.ceil(n / columns)
    gap = (0.776, 0.859, 0.937)  # #c6dbef, as the grayscale gaps
    tiled = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1) + ((3,) if colour else ()),
                    gap if colour else np.nan)  # NaN: the gaps of grayscale montages
    if colour:
        images = np.asarray(images, np.float64)
        images = np.clip(images / 255.0 if np.max(images) > 1 else images, 0.0, 1.0)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        tiled[row * (height + 1):row * (height + 1) + height, column * (width + 1):column * (width + 1) + width] = image
    if colour:
        ax.imshow(tiled, interpolation="nearest")
    else:
        colours = matplotlib.colormaps["gray_r"].with_extremes(bad="#c6dbef")
        ax.imshow(tiled, cmap=colours, vmin=0, vmax=max(1.0, float(np.max(images))), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return (np.arange(columns) * (width + 1) + (width - 1) / 2, np.arange(rows) * (height + 1) + (height - 1) / 2)


def loss_curves(history, path=None):
    """Training (and validation) loss, reconstruction and KL per epoch.

    Args:
        history: a `keras.callbacks.History` or its `.history` dict.
        path: optional PNG path.
    """
    logs = getattr(history, "history", history)
    names = [name for name in ("loss", "reconstruction", "kl") if name in logs]
    figure = Figure(figsize=(4 * len(names), 3.2))
    for i, name in enumerate(names):
        ax = figure.add_subplot(1, len(names), i + 1)
        ax.plot(np.arange(1, len(logs[name]) + 1), logs[name], label="train")
        if f"val_{name}" in logs:
            ax.plot(np.arange(1, len(logs[f"val_{name}"]) + 1), logs[f"val_{name}"], label="validation")
        ax.set_title({"loss": "loss (negative ELBO)", "reconstruction": "reconstruction -log p(x|z)",
                      "kl": "KL(q(z|x) || p(z))"}[name], fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def _montage_size(images, columns, cell=0.9, extra_height=0.0):
    """A figure size `(width, height)` in inches for a montage: `cell` inches per image row, wider images wider."""
    n, height, width = images.shape[:3]
    rows = math.ceil(n / columns)
    return columns * cell * max(1.0, width / height), rows * cell * max(1.0, height / width) + extra_height


def reconstructions(model, x, labels=None, n=10, image_shape=None, path=None):
    """Inputs (top row) above their reconstructions `decode(z_mean)` (bottom row).

    Args:
        model: a `tfvae.VAE`.
        x: examples, `(batch,) + model.event_shape`; the first `n` are drawn.
        labels: class labels of a conditional model.
        n: how many examples.
        image_shape: None (from x's shape: `(height, width, 1 or 3)` images,
            or flat rows of a square length), or `(height, width)` /
            `(height, width, channels)` to draw flat rows as such images.
        path: optional PNG path.

    Returns:
        The `matplotlib.figure.Figure`.

    Example:

    >>> import tfvae
    >>> (_, _), (x_test, _) = tfvae.datasets.load("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli")   # trained, in practice
    >>> figure = tfvae.plot.reconstructions(model, x_test, n=8, path="reconstructions.png")
    >>> figure.axes[0].images[0].get_array().shape   # 8 inputs above their reconstructions, 8x8 each
    (17, 71)
    """
    x = np.asarray(x)[:n]
    labels = None if labels is None else np.asarray(labels)[:n]
    x_mean = np.asarray(model.reconstruct(x, labels=labels))
    if _images(x_mean, image_shape) is None:
        figure = Figure(figsize=(6, 3.5))
        for i, (title, values) in enumerate((("input", x), ("reconstruction", x_mean))):
            ax = figure.add_subplot(1, 2, i + 1)
            image = ax.imshow(values.reshape(len(values), -1), aspect="auto", cmap="viridis")
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("feature")
            ax.set_ylabel("example")
            figure.colorbar(image, ax=ax)
        figure.tight_layout()
        return _save(figure, path)
    images = np.concatenate([_images(x, image_shape), _images(x_mean, image_shape)])
    figure = Figure(figsize=_montage_size(images, len(x)))
    ax = figure.add_subplot()
    _, row_centres = _montage(ax, images, len(x))
    ax.set_yticks(row_centres, ["input", "recon."], fontsize=8)
    ax.tick_params(length=0)
    return _save(figure, path)


def prior_samples(model, n=36, labels=None, image_shape=None, seed=0, path=None):
    """A grid of E[x|z] for `n` z drawn from the prior N(0, I).

    Args:
        model: a `tfvae.VAE`.
        n: how many samples.
        labels: for a conditional model, one class id or `n` of them.
        image_shape: as in `reconstructions` (None: from `model.event_shape`).
        seed: seed of the draw.
        path: optional PNG path.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    x = np.asarray(model.sample(n, seed=seed, labels=labels))
    columns = math.ceil(math.sqrt(n))
    images = _images(x, image_shape)
    if images is None:
        figure = Figure(figsize=(5, 4))
        ax = figure.add_subplot()
        figure.colorbar(ax.imshow(x.reshape(n, -1), aspect="auto"), ax=ax)
        ax.set_title("samples from the prior", fontsize=10)
        return _save(figure, path)
    figure = Figure(figsize=_montage_size(images, columns, cell=0.8))
    _montage(figure.add_subplot(), images, columns)
    return _save(figure, path)


def latent_map(model, x, labels=None, color_by=None, method="auto", path=None):
    """The posterior means of x in 2-D, coloured by label.

    Args:
        model: a `tfvae.VAE`.
        x: data to encode.
        labels: class labels, passed to a conditional model's encoder.
        color_by: values to colour points by (defaults to `labels`).
        method: `"first_two"` (latent dimensions 0 and 1), `"pca"` (first two
            principal components of the means) or `"auto"` (first two when
            latent_dim is 2, PCA otherwise).
        path: optional PNG path.
    """
    z_mean = np.asarray(model.encode(x, labels=labels if model.num_classes else None)[0])
    if method == "auto":
        method = "first_two" if z_mean.shape[1] <= 2 else "pca"
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2).fit_transform(z_mean)
        axis_names = ("PC 1 of z_mean", "PC 2 of z_mean")
    elif method == "first_two":
        points = np.pad(z_mean, ((0, 0), (0, max(0, 2 - z_mean.shape[1]))))[:, :2]
        axis_names = ("z_mean[0]", "z_mean[1]")
    else:
        raise ValueError(f"Received an invalid value for `method`: expected 'auto', 'first_two' or 'pca'. Received: method={method!r}")
    color_by = labels if color_by is None else color_by
    figure = Figure(figsize=(5, 4.2))
    ax = figure.add_subplot()
    classes = _classes(color_by)
    if classes is not None:  # class labels: one colour each, in a legend
        for i, value in enumerate(classes):
            chosen = np.asarray(color_by) == value
            ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=f"C{i % 10}", label=f"{value:g}")
        ax.legend(title="label", fontsize=7, markerscale=2, loc="best")
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=color_by, s=8)
        if color_by is not None:
            figure.colorbar(scatter, ax=ax, label="value")
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("posterior means", fontsize=10)
    return _save(figure, path)


def _classes(values):
    """The sorted distinct values if `values` look like class labels (few integers)."""
    if values is None:
        return None
    distinct = np.unique(np.asarray(values))
    is_integer = np.issubdtype(distinct.dtype, np.number) and np.all(distinct == np.round(distinct))
    return distinct if is_integer and len(distinct) <= 20 else None


def latent_traversal(model, x, dimension, values=np.linspace(-3, 3, 9), labels=None, image_shape=None, path=None):
    """Decodes z_mean(x) with one latent `dimension` set to each of `values`.

    Args:
        model: a `tfvae.VAE`.
        x: one example, shape `event_shape` or `(1,) + event_shape`.
        dimension: the latent dimension to vary.
        values: the values it takes (in prior standard deviations).
        labels: the class label of x, for a conditional model.
        image_shape: as in `reconstructions` (None: from `model.event_shape`).
        path: optional PNG path.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    if not 0 <= dimension < model.latent_dim:
        raise ValueError(f"Received an invalid value for `dimension`: expected an int in [0, {model.latent_dim}). Received: dimension={dimension!r}")
    x = np.asarray(x, np.float32).reshape((1,) + model.event_shape)
    label = None if labels is None else np.asarray(labels).reshape(1)
    z = np.repeat(np.asarray(model.encode(x, labels=label)[0]), len(values), axis=0)
    z[:, dimension] = values
    decoded = np.asarray(model.decode(z, labels=None if label is None else np.repeat(label, len(values))))
    return _strip(decoded, [f"{v:+.1f}" for v in values], f"latent dimension {dimension}", image_shape, path)


def interpolation(model, x_a, x_b, steps=9, labels=None, image_shape=None, path=None):
    """Decodes points on the straight line between z_mean(x_a) and z_mean(x_b).

    Args:
        model: a `tfvae.VAE`.
        x_a, x_b: two examples, each of shape `model.event_shape`.
        steps: how many points, both ends included.
        labels: the two class labels, for a conditional model.
        image_shape: as in `reconstructions` (None: from `model.event_shape`).
        path: optional PNG path.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    pair = np.stack([np.asarray(x_a, np.float32).reshape(model.event_shape),
                     np.asarray(x_b, np.float32).reshape(model.event_shape)])
    pair_labels = None if labels is None else np.asarray(labels).reshape(2)
    z_a, z_b = np.asarray(model.encode(pair, labels=pair_labels)[0])
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    z = (1 - weights) * z_a + weights * z_b
    step_labels = None if pair_labels is None else np.where(weights[:, 0] < 0.5, pair_labels[0], pair_labels[1])
    decoded = np.asarray(model.decode(z.astype(np.float32), labels=step_labels))
    return _strip(decoded, [f"{w:.2f}" for w in weights[:, 0]], "interpolation", image_shape, path)


def _strip(decoded, captions, title, image_shape, path):
    images = _images(decoded, image_shape)
    figure = Figure(figsize=_montage_size(images, len(images), extra_height=0.5) if images is not None
                    else (len(decoded) * 0.9, 3))
    if images is None:
        ax = figure.add_subplot()
        figure.colorbar(ax.imshow(decoded.reshape(len(decoded), -1).T, aspect="auto"), ax=ax)
        ax.set_xticks(range(len(captions)), captions, fontsize=7)
        ax.set_ylabel("feature")
    else:
        ax = figure.add_subplot()
        column_centres, _ = _montage(ax, images, len(images))
        ax.set_xticks(column_centres, captions, fontsize=7)
        ax.tick_params(length=0)
    figure.suptitle(title, fontsize=10)
    return _save(figure, path)
