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
    sample       epsilon [, labels]     x_mean

`score` computes the networks first and then, inside the name scope
`FLOAT_SCOPE`, the likelihood sum and the KL term: an int8 conversion keeps
the ops of that scope in float32 (see `export._tflite`).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from export import _examples
from tfvae import anomaly, datasets

#: Name scope of the score's likelihood sum and KL term, which int8 models keep in float32.
FLOAT_SCOPE = anomaly.SUMS_SCOPE


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
        """The inputs of this endpoint for `model`, `labels` last if conditional."""
        return self.inputs + (("labels",) if model.num_classes else ())


def preprocess(model, raw):
    """The model's `preprocessing` as graph ops: raw x in, the network's x out.

    The same rule as `tfvae.datasets.apply_preprocessing` (a divisor of 0
    counts as 1): x = (raw - offset) / divisor, then x = 1.0 where
    x > binarize_threshold else 0.0. Binarization is one comparison of raw
    values with offset + threshold * divisor (a `SELECT_V2` in LiteRT, which
    int8 models run exactly). A model without preprocessing takes x as is.

    Args:
        model: a `tfvae.VAE`.
        raw: a float32 tensor `(batch,) + event_shape`.

    Returns:
        A float32 tensor of the same shape.
    """
    offset, divisor, threshold = _examples.preprocessing_constants(model)
    with tf.name_scope("preprocessing"):
        if threshold is not None:
            # Scalar branches: one SELECT_V2 that broadcasts, no ops that build
            # tensors of ones and zeros at run time (smaller files).
            above = raw > tf.constant(offset + np.float32(threshold) * divisor)
            return tf.where(above, tf.constant(1.0), tf.constant(0.0))
        if not np.all(offset == 0) or not np.all(divisor == 1):
            return (raw - tf.constant(offset)) / tf.constant(divisor)
        return raw


def _encode(model, x, labels=None):
    z_mean, z_log_sigma = model.encode(x, labels)
    return {"z_mean": z_mean, "z_log_sigma": z_log_sigma}


def _decode(model, z, labels=None):
    return {"x_mean": model.decode(z, labels)}


def _reconstruct(model, x, labels=None):
    return {"x_mean": model.reconstruct(x, labels)}


def _sample(model, epsilon, labels=None):
    # The prior is N(0, I), so epsilon is itself a draw of z.
    return {"x_mean": model.decode(epsilon, labels)}


def _score(model, x, labels=None):
    return {"score": anomaly.score(model, x, labels)}


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
        "labels": (None,),
    }
    return [
        tf.TensorSpec(shapes[name], tf.int32 if name == "labels" else tf.float32, name=name)
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
        if "x" in inputs:
            inputs["x"] = preprocess(model, inputs["x"])
        return endpoint.compute(model, **inputs)

    function.__name__ = endpoint.name
    return function


def reference(model, endpoint, feeds):
    """The Keras model's outputs for `feeds` (raw numpy in, numpy out), computed eagerly."""
    inputs = dict(feeds)
    if "x" in inputs:
        inputs["x"] = datasets.apply_preprocessing(inputs["x"], model.preprocessing)
    if endpoint is SCORE:  # the model's own ELBO, not the exporter's rewrite of it
        outputs = {"score": -model.elbo(inputs["x"], inputs.get("labels"), sample=False)}
    else:
        outputs = endpoint.compute(model, **inputs)
    return {name: np.asarray(outputs[name]) for name in endpoint.outputs}


def feeds(model, endpoint, examples, seed=0):
    """Inputs for `endpoint` derived from `examples` (an `_examples.Examples` of raw x).

    `x` is the examples; `z` are latent points (see `_examples.latent_points`);
    `epsilon` is standard normal noise, one row per example, drawn with `seed`.

    Returns:
        A dict from input name to numpy array.
    """
    result = {}
    labels = examples.labels
    if "x" in endpoint.inputs:
        result["x"] = examples.x
    if "z" in endpoint.inputs:
        result["z"], labels = _examples.latent_points(model, examples, seed)
    if "epsilon" in endpoint.inputs:
        noise = np.random.default_rng(seed).standard_normal((len(examples.x), model.latent_dim))
        result["epsilon"] = noise.astype(np.float32)
    if model.num_classes:
        result["labels"] = labels
    return result
