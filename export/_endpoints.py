"""The serving endpoints shared by the SavedModel and LiteRT exporters.

One `Endpoint` names its inputs and outputs and computes them with the
model's public methods. Every input `x` is RAW data, as the run read it
(digits: pixel values 0..16): the exported graph applies the model's
`preprocessing` itself (`preprocess`), so an app never re-implements it.
`reference` computes the same outputs with Keras eagerly, preprocessing
with numpy (`tfvae.datasets.apply_preprocessing`), which checks the graph's
preprocessing too.

    name         inputs                 outputs
    encode       x [, labels]           z_mean, z_log_sigma
    decode       z [, labels]           x_mean
    reconstruct  x [, labels]           x_mean
    score        x [, labels]           score
    sample       epsilon [, u] [, labels]   x_mean

Both ask the model: `score` is `tfvae.scores.anomaly_score` (the networks
first, then the density terms inside the name scope `FLOAT_SCOPE`, which an
int8 conversion keeps in float32, see `export._tflite`); `sample` decodes
`model.prior.from_noise(epsilon, u)`, a deterministic function of noise the
client draws (`u`, which picks a mixture prior's component, only for such
priors), so no exported graph holds a random op.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from export import _examples
from tfvae import datasets, scores

#: Name scope of the score's density terms, which int8 models keep in float32.
FLOAT_SCOPE = scores.DENSITY_SCOPE
#: Name scope of the raw-input preprocessing (and the score's range check), which int8 models keep in float32.
RAW_SCOPE = "raw"
#: The score of a row the model cannot judge (NaN, or raw values outside the range binarization expects):
#: the largest float32, above every threshold.
OUT_OF_RANGE_SCORE = float(np.finfo(np.float32).max)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A named function of the model with named inputs and outputs.

    Attributes:
        name: the signature name, e.g. `"encode"`.
        inputs: names of the data inputs (`labels` is added for conditional models).
        outputs: names of the outputs, in a stable order.
        compute: `compute(model, **inputs) -> dict` of output tensors.
    """

    name: str
    inputs: tuple
    outputs: tuple
    compute: object

    def input_names(self, model):
        """The inputs of this endpoint for `model`: `epsilon` stands for the prior's noise inputs, `labels` last."""
        names = tuple(name for given in self.inputs
                      for name in (model.prior.noise_names if given == "epsilon" else (given,)))
        return names + (("labels",) if model.num_classes else ())


def preprocess(model, raw):
    """The model's `preprocessing` as graph ops: raw x in, the network's x out.

    The float32 arithmetic of `tfvae.datasets.preprocessing_arithmetic`,
    which `tfvae.datasets.apply_preprocessing` computes in numpy: scaling is
    `(raw - offset) * scale` (SUB, MUL), binarization
    `min(max((raw - cut) * steepness, 0), 1)` (SUB, MUL, MAXIMUM, MINIMUM).
    No comparison, select, division or log: the encoder and decoder files
    parse on runtimes with a small op set (Arm NN's TfLite parser). uint8
    pixels are cast to float32 first (CAST). The ops are in the name scope
    `RAW_SCOPE`, which int8 files keep in float32: one int8 scale cannot
    serve raw columns whose ranges differ by orders of magnitude.

    Args:
        model: a `tfvae.VAE`.
        raw: a float32 or uint8 tensor `(batch,) + event_shape`.

    Returns:
        A float32 tensor of the same shape.
    """
    arithmetic = _examples.preprocessing_constants(model)
    with tf.name_scope(RAW_SCOPE):
        x = tf.cast(raw, tf.float32) if raw.dtype != tf.float32 else raw
        if arithmetic is None:
            return x
        # Short names: they are stored in every file, and the int8 encoder has a size target.
        if "cut" in arithmetic:
            above = tf.subtract(x, tf.constant(arithmetic["cut"], name="cut"), name="sub")
            steep = tf.multiply(above, tf.constant(arithmetic["steepness"], name="steep"), name="mul")
            return tf.minimum(tf.maximum(steep, tf.constant(0.0, name="zero"), name="max"),
                              tf.constant(1.0, name="one"), name="min")
        centred = tf.subtract(x, tf.constant(arithmetic["offset"], name="offset"), name="sub")
        return tf.multiply(centred, tf.constant(arithmetic["scale"], name="scale"), name="mul")


def flag_out_of_range(model, raw, score):
    """`score`, or `OUT_OF_RANGE_SCORE` for rows whose raw values the preprocessing would hide.

    A row holding NaN, and for a binarizing model (whose binarization would
    clip it silently) a raw value below or above `_examples.raw_range`,
    scores above every threshold: an app that flags `score > threshold`
    flags it. NaN itself never compares greater, hence a finite value. Uses
    comparisons (NOT_EQUAL, LESS, GREATER, SELECT_V2, REDUCE_MAX), which only the
    score files hold; they stay float32 in int8 files (`RAW_SCOPE`).

    Args:
        model: a `tfvae.VAE`.
        raw: the raw input tensor `(batch,) + event_shape`.
        score: the score tensor `(batch,)`.

    Returns:
        A float32 tensor `(batch,)`.
    """
    with tf.name_scope(RAW_SCOPE):
        x = tf.cast(raw, tf.float32) if raw.dtype != tf.float32 else raw
        bad = tf.not_equal(x, x)  # NaN
        if model.preprocessing and model.preprocessing.get("binarize_threshold") is not None:
            low, high = _examples.raw_range(model)
            bad = bad | (x < tf.constant(low)) | (x > tf.constant(high))
        axes = list(range(1, len(model.event_shape) + 1))
        # A float max over the features, not REDUCE_ANY, which TensorFlow Lite Micro has no kernel for.
        flags = tf.reduce_max(tf.where(bad, tf.constant(1.0), tf.constant(0.0)), axis=axes)
        return tf.where(flags > tf.constant(0.5), tf.constant(OUT_OF_RANGE_SCORE), score)


def _encode(model, x, labels=None):
    z_mean, z_log_sigma = model.encode(x, labels)
    return {"z_mean": z_mean, "z_log_sigma": z_log_sigma}


def _decode(model, z, labels=None):
    return {"x_mean": model.decode(z, labels)}


def _reconstruct(model, x, labels=None):
    return {"x_mean": model.reconstruct(x, labels)}


def _sample(model, epsilon, u=None, labels=None):
    return {"x_mean": model.decode(model.prior.from_noise(model, epsilon, u), labels)}


def _score(model, x, labels=None):
    return {"score": scores.anomaly_score(model, x, labels)}


ENCODE = Endpoint("encode", ("x",), ("z_mean", "z_log_sigma"), _encode)
DECODE = Endpoint("decode", ("z",), ("x_mean",), _decode)
RECONSTRUCT = Endpoint("reconstruct", ("x",), ("x_mean",), _reconstruct)
SAMPLE = Endpoint("sample", ("epsilon",), ("x_mean",), _sample)
SCORE = Endpoint("score", ("x",), ("score",), _score)

#: SavedModel endpoints; the first one is also `serving_default`.
SAVED_MODEL = (ENCODE, DECODE, RECONSTRUCT, SCORE, SAMPLE)
#: LiteRT parts and the endpoints each one holds: `vae` all five, the others one each.
PARTS = {"vae": SAVED_MODEL, "encoder": (ENCODE,), "decoder": (DECODE,), "score": (SCORE,)}


def input_specs(model, endpoint):
    """The `tf.TensorSpec`s of `endpoint`'s inputs for `model`, batch size dynamic."""
    shapes = {
        "x": (None,) + tuple(model.event_shape),
        "z": (None, model.latent_dim),
        "epsilon": (None, model.latent_dim),
        "u": (None,),
        "labels": (None,),
    }
    dtypes = {"labels": tf.int32, "x": tf.as_dtype(_examples.raw_dtype(model))}
    return [
        tf.TensorSpec(shapes[name], dtypes.get(name, tf.float32), name=name)
        for name in endpoint.input_names(model)
    ]


def archive(model, endpoints):
    """A `keras.export.ExportArchive` of `model` with one endpoint each.

    Args:
        model: a `tfvae.VAE`.
        endpoints: a sequence of `Endpoint`; the first is also registered
            as `serving_default` when written.

    Returns:
        The archive, ready for `write_out(path, verbose=False)`.
    """
    result = keras.export.ExportArchive()
    # No `result.track(model)`: the archive saves the variables the endpoints
    # use anyway, and tracking the model too stores every weight twice.
    for endpoint in endpoints:
        result.add_endpoint(endpoint.name, _traceable(model, endpoint), input_signature=input_specs(model, endpoint))
    return result


def _traceable(model, endpoint):
    names = endpoint.input_names(model)

    def function(*args):
        inputs = dict(zip(names, args))
        raw = inputs.get("x")
        if raw is not None:
            inputs["x"] = preprocess(model, raw)
        outputs = endpoint.compute(model, **inputs)
        if endpoint is SCORE:
            outputs = {**outputs, "score": flag_out_of_range(model, raw, outputs["score"])}
        return outputs

    function.__name__ = endpoint.name
    return function


def reference(model, endpoint, feeds):
    """The Keras model's outputs for `feeds` (raw numpy in, numpy out), computed eagerly."""
    inputs = dict(feeds)
    if "x" in inputs:
        inputs["x"] = datasets.apply_preprocessing(inputs["x"], model.preprocessing)
    outputs = endpoint.compute(model, **inputs)
    return {name: np.asarray(outputs[name]) for name in endpoint.outputs}


def feeds(model, endpoint, examples, seed=0):
    """Inputs for `endpoint` derived from `examples` (an `_examples.Examples` of raw x).

    `x` is the examples; `z` are latent points (see `_examples.latent_points`);
    `epsilon` (and `u`) the prior's noise (`model.prior.noise`), one row per example, drawn with `seed`.

    Returns:
        A dict from input name to numpy array.
    """
    result = {}
    labels = examples.labels
    if "x" in endpoint.inputs:
        result["x"] = _examples.raw_input(model, examples.x)
    if "z" in endpoint.inputs:
        result["z"], labels = _examples.latent_points(model, examples, seed)
    if "epsilon" in endpoint.inputs:
        result.update(model.prior.noise(np.random.default_rng(seed), len(examples.x)))
    if model.num_classes:
        result["labels"] = labels
    return result
