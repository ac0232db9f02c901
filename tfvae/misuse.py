"""Misuse that would otherwise pass in silence: a warning or an error at `fit`, `predict` or `model(x)`.

`tfvae.fit_checks` refuses array data that cannot train (wrong shape, NaN).
This module catches data and options that would train, but not as the user
meant, and says so in one line naming the argument and what to do:

    labels given to an unconditional model   warning: `y` is ignored
    values outside [0, 1] under Bernoulli    warning: divide uint8 pixels by 255
    ModelCheckpoint(save_freq=<int>) on      warning: it counts epochs there
      the epoch loop
    a tf.data.Dataset                        its first batch gets the checks
                                             arrays get (numeric, shape, finite)
    x of the wrong shape at predict/model(x) tfvae's error, as `encode` gives

`VAE.fit` calls `check_fit`; `VAE.call` and `VAE.predict_step` check x's
shape with `check_x_shape`.
"""

import inspect
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfvae import _checks


def check_fit(model, *args, **kwargs):
    """Warns about, or refuses, what `model.fit(*args, **kwargs)` would do silently wrong.

    Call it with the arguments `fit_checks.check_fit_arguments` returned
    (arrays already checked and float32).

    Args:
        model: a `tfvae.VAE`.
        *args, **kwargs: the arguments of `keras.Model.fit`.

    Raises:
        TypeError, ValueError: if the first batch of a `tf.data.Dataset`
            `x` or `validation_data` is not numeric, has the wrong shape or
            holds NaN or infinity.

    Example:

    >>> import warnings
    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.misuse import check_fit
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     check_fit(model, np.zeros((3, 6), "float32"), np.array([0, 1, 2]))
    >>> print(caught[0].message)
    `y` (labels) is ignored: this VAE is unconditional (num_classes=None). ...
    """
    try:
        arguments = inspect.signature(keras.Model.fit).bind(model, *args, **kwargs).arguments
    except TypeError:
        return  # Keras raises its own error for a wrong call
    x, y = arguments.get("x"), arguments.get("y")
    if isinstance(x, tf.data.Dataset):
        x, y = check_dataset(model, x, "x")
    if y is not None and not model.num_classes:
        _warn(f"`y` (labels) is ignored: this VAE is unconditional (num_classes=None). Build it with "
              "num_classes=... to condition on the labels, or call fit(x) without them")
    if x is not None and not isinstance(x, (tf.data.Dataset, keras.utils.PyDataset)) and hasattr(x, "shape"):
        check_range(model, x, "x")
    validation_data = arguments.get("validation_data")
    if isinstance(validation_data, tf.data.Dataset):
        check_dataset(model, validation_data, "validation_data")
    _check_checkpoints(arguments)


def check_dataset(model, dataset, name):
    """The checks arrays get, on the first batch of a `tf.data.Dataset`; returns that batch's `(x, y)`.

    Reads one batch (a shuffled dataset fills its shuffle buffer once more
    when training starts). x must be numeric, of shape
    `(batch,) + model.event_shape` and finite; under a Bernoulli likelihood
    values outside [0, 1] are warned about.

    Args:
        model: a `tfvae.VAE`.
        dataset: a batched `tf.data.Dataset` of x, `(x,)`, `(x, y)` or
            `(x, y, sample_weight)`.
        name: the argument's name, `"x"` or `"validation_data"`.

    Returns:
        `(x, y)` of the first batch (numpy; y None when absent), or
        `(None, None)` for an empty dataset.

    Raises:
        TypeError: if the first batch's x is not numeric.
        ValueError: if it has the wrong shape (an unbatched dataset
            included) or a non-finite value.
    """
    for element in dataset.take(1):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(element)
        if isinstance(x, (tuple, list)) and len(x) == 2 and model.num_classes:
            x, y = x
        where = f"{name} (the first batch of the tf.data.Dataset)"
        x = _checks.float_array(where, x.numpy() if tf.is_tensor(x) else x, model.event_shape)
        check_range(model, x, where)
        return x, None if y is None else np.asarray(y)
    return None, None


def check_range(model, x, name="x"):
    """Warns when `x` holds values outside [0, 1] under a Bernoulli likelihood (such as uint8 pixels 0..255).

    Bernoulli log-probabilities of values above 1 are meaningless numbers
    (a loss in the thousands that still goes down), not an error.
    """
    if getattr(model, "likelihood_name", None) != "bernoulli":
        return
    values = np.asarray(x)
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        return
    low, high = float(np.min(values)), float(np.max(values))
    if low < 0.0 or high > 1.0:
        what = "divide uint8 pixels by 255" if high > 1.0 and low >= 0.0 else "scale it into [0, 1]"
        _warn(f"`{name}` holds values in [{low:g}, {high:g}], but likelihood='bernoulli' models values in "
              f"[0, 1]: {what}, or use likelihood='gaussian'")


def _check_checkpoints(arguments):
    """Warns that `ModelCheckpoint(save_freq=<int>)` counts epochs, not batches, on the epoch loop."""
    callbacks = arguments.get("callbacks") or []
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    x = arguments.get("x")
    on_epoch_loop = (
        x is not None and not isinstance(x, (tf.data.Dataset, keras.utils.PyDataset))
        and not inspect.isgenerator(x) and arguments.get("steps_per_epoch") is None
        and not arguments.get("validation_split") and arguments.get("class_weight") is None
    )
    for callback in callbacks:
        save_freq = getattr(callback, "save_freq", None)
        if on_epoch_loop and isinstance(callback, keras.callbacks.ModelCheckpoint) and isinstance(save_freq, int):
            _warn(f"`ModelCheckpoint(save_freq={save_freq})` counts calls of the training function, and fit on "
                  f"in-memory arrays runs one call per epoch: it saves every {save_freq} epochs, not batches. "
                  "Use save_freq='epoch', or pass a tf.data.Dataset to save every N batches")


def check_x_shape(model, x, name="x"):
    """Raises tfvae's error for an `x` whose static shape is not `(batch,) + model.event_shape`.

    For `model(x)` and `predict`, whose bodies would otherwise fail deep in
    Keras ("Input 0 with name ... of layer 'hidden_1' is incompatible").
    Tensors of unknown rank pass.

    Raises:
        ValueError: naming `x`, the expected shape and the received one.
    """
    try:
        shape = tf.TensorShape(getattr(x, "shape", None) if hasattr(x, "shape") else np.shape(x))
    except (TypeError, ValueError):
        return  # not array-like: the bodies say what is wrong
    if shape.rank is None:
        return
    received, expected = tuple(shape.as_list()), tuple(model.event_shape)
    if len(received) != len(expected) + 1 or any(a is not None and a != e for a, e in zip(received[1:], expected)):
        raise ValueError(_checks.invalid(
            name, f"an array of shape (batch, {', '.join(map(str, expected))})", f"<array of shape {received}>",
            f"This model takes examples of shape {expected}: pass data of that shape (a single example as x[None])"))


def _warn(message):
    # stacklevel 4: the user's call of fit (misuse -> check_fit -> VAE.fit -> caller)
    warnings.warn(message, UserWarning, stacklevel=4)
