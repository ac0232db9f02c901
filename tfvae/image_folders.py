"""A folder of PNG/JPEG images as training data: loaded whole when it fits a memory budget, else streamed.

    paths, shape = image_folders.scan("photos/")          # every .png/.jpg/.jpeg below, sorted; (h, w, c)
    if image_folders.fits(len(paths), shape, memory_budget):
        x = image_folders.load_images(paths, shape)      # float32 (n, h, w, c) in [0, 1]: the fast path
    else:
        dataset = image_folders.stream(paths, shape, batch_size=64, shuffle=True, seed=0)

The shape is the first image's (in sorted order); others are resized to it.
Channels: 1 when the first image is grayscale, else 3 (an alpha channel is
dropped). Pixels are divided by 255 (`PREPROCESSING`, which travels with the
model so that its exports take the raw 0..255 pixels). Decoding runs in
`tf.data` (`tf.io.decode_image`), in parallel, the same way for both paths.
"""

import math
import os
import re

import numpy as np

from tfvae import _checks

#: File name endings read as images (any case).
SUFFIXES = (".png", ".jpg", ".jpeg")
#: The default memory budget of the decoded (float32) images, in bytes: 2 GiB.
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
#: How raw pixels become x (see `tfvae.datasets.apply_preprocessing`).
PREPROCESSING = {"offset": 0.0, "divisor": 255.0, "binarize_threshold": None}

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def is_image_folder(path):
    """Whether `path` is an existing directory (taken as a folder of images)."""
    return os.path.isdir(os.fspath(path))


def parse_bytes(text, name="memory_budget"):
    """A size such as `"2GB"`, `"500MB"`, `"64KB"` or `"1000"` (bytes) in bytes; units are powers of 1024.

    Raises:
        ValueError: for anything else, naming `name`.

    Example:

    >>> from tfvae.image_folders import parse_bytes
    >>> parse_bytes("2GB")
    2147483648
    """
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool) and text > 0:
        return int(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*", str(text).lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(_checks.invalid(name, "a positive size such as 2GB, 500MB or 64KB", text))
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def scan(directory, name="data"):
    """The image files below `directory` (sorted, recursively) and the shape `(height, width, channels)` of x.

    Args:
        directory: a folder holding `.png`, `.jpg` or `.jpeg` files (in
            subfolders too).
        name: the argument's name in error messages.

    Returns:
        `(paths, shape)`: a list of paths, and the first image's shape with
        1 channel if it is grayscale, else 3.

    Raises:
        ValueError: if the folder holds no image, or its first image cannot
            be decoded (naming the file).
    """
    directory = os.fspath(directory)
    paths = sorted(
        os.path.join(root, file) for root, _, files in os.walk(directory) for file in files
        if file.lower().endswith(SUFFIXES)
    )
    if not paths:
        raise ValueError(_checks.invalid(name, f"a folder holding {'/'.join(SUFFIXES)} files", directory,
                                         "It holds none: put the images there (subfolders are read too)"))
    import tensorflow as tf

    try:
        first = tf.io.decode_image(tf.io.read_file(paths[0]), expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
        raise ValueError(_checks.invalid(name, "a folder of readable PNG/JPEG images", directory,
                                         f"{paths[0]} cannot be decoded: {error.message.splitlines()[0]}")) from None
    height, width, channels = first.shape
    return paths, (int(height), int(width), 1 if channels in (1, 2) else 3)


def decoded_bytes(num_images, shape):
    """The memory `num_images` decoded float32 images of `shape` take, in bytes."""
    return int(num_images) * math.prod(shape) * 4


def fits(num_images, shape, memory_budget):
    """Whether `num_images` images of `shape`, decoded to float32, fit `memory_budget` bytes."""
    return decoded_bytes(num_images, shape) <= memory_budget


def _decoder(shape):
    """The function mapping an image file's path to a float32 `shape` array in [0, 1]."""
    import tensorflow as tf

    height, width, channels = shape

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image = tf.image.resize(image, (height, width))  # same size: the pixels unchanged
        return tf.ensure_shape(image / 255.0, shape)

    return decode


def load_images(paths, shape, chunk=256):
    """The images at `paths` as one float32 array `(n,) + shape` in [0, 1] (decoded `chunk` at a time).

    Example:

    >>> import os
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from tfvae import image_folders
    >>> os.makedirs("photos", exist_ok=True)
    >>> for i, pixels in enumerate(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), "uint8")):
    ...     tf.io.write_file(f"photos/{i}.png", tf.io.encode_png(pixels))
    >>> paths, shape = image_folders.scan("photos")
    >>> x = image_folders.load_images(paths, shape)
    >>> x.shape, float(x.max()) <= 1.0
    ((4, 8, 8, 3), True)
    """
    x = np.empty((len(paths),) + tuple(shape), np.float32)
    start = 0
    import tensorflow as tf

    decoded = tf.data.Dataset.from_tensor_slices(list(paths)).map(_decoder(shape), num_parallel_calls=tf.data.AUTOTUNE)
    for batch in decoded.batch(chunk).prefetch(1):
        x[start:start + len(batch)] = batch.numpy()
        start += len(batch)
    return x


def stream(paths, shape, batch_size, shuffle=False, seed=0):
    """The images at `paths` as a `tf.data.Dataset` of float32 batches `(batch,) + shape`, read from disk each epoch.

    Memory holds the file names and a few batches (2 prefetched), whatever
    the folder's size. With `shuffle`, the file order is reshuffled every epoch (seeded).

    Example:

    >>> import os
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> import tfvae
    >>> from tfvae import image_folders
    >>> os.makedirs("photos", exist_ok=True)
    >>> for i, pixels in enumerate(np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), "uint8")):
    ...     tf.io.write_file(f"photos/{i}.png", tf.io.encode_png(pixels))
    >>> paths, shape = image_folders.scan("photos")
    >>> model = tfvae.conv_vae(shape, (8,), 2)
    >>> model.compile()
    >>> history = model.fit(image_folders.stream(paths, shape, 2, shuffle=True), epochs=2, verbose=0)
    >>> len(history.history["loss"])
    2
    """
    import tensorflow as tf

    names = tf.data.Dataset.from_tensor_slices(list(paths))
    if shuffle:
        names = names.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # A fixed prefetch of 2 batches: tf.data's AUTOTUNE grows its buffers, and so the peak memory, with the
    # number of files, which streaming is meant to avoid.
    return names.map(_decoder(shape), num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)
