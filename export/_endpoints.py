"""The serving endpoints shared by the SavedModel and LiteRT exporters.

One `Endpoint` names its inputs and outputs and computes them with the
model's public methods. The same function gives the Keras reference (called
eagerly on numpy arrays) and, traced by `keras.export.ExportArchive`, the
exported graph, so the two cannot drift apart.

    name         inputs                 outputs
    encode       x [, labels]           z_mean, z_log_sigma
    decode       z [, labels]           x_mean
    reconstruct  x [, labels]           x_mean
    sample       epsilon [, labels]     x_mean
    score        x [, labels]           score
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from export import _data

#: What every input and output means; copied into the metadata.
TENSOR_DOCS = {
    "x": "model input: one preprocessed example per row (see preprocessing)",
    "labels": "class ids in [0, num_classes), int32, one per row (conditional models only)",
    "z": "latent points, one row per example",
    "epsilon": "standard normal noise N(0, I), one row per sample; the prior is N(0, I), so z = epsilon",
    "z_mean": "mean of the posterior q(z|x): the embedding of x",
    "z_log_sigma": "log standard deviation of q(z|x) (bounded); sigma = exp(z_log_sigma)",
    "x_mean": "mean of p(x|z): probabilities in [0, 1] for a Bernoulli likelihood, means for a Gaussian one",
    "score": (
        "anomaly score: the negative ELBO in nats, deterministic (z = z_mean in the reconstruction term, "
        "i.e. -elbo(x, sample=False)); higher means less likely under the model"
    ),
}


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
    return {"score": -model.elbo(x, labels, sample=False)}


ENCODE = Endpoint("encode", ("x",), ("z_mean", "z_log_sigma"), _encode)
DECODE = Endpoint("decode", ("z",), ("x_mean",), _decode)
RECONSTRUCT = Endpoint("reconstruct", ("x",), ("x_mean",), _reconstruct)
SAMPLE = Endpoint("sample", ("epsilon",), ("x_mean",), _sample)
SCORE = Endpoint("score", ("x",), ("score",), _score)

#: SavedModel endpoints; the first one is also `serving_default`.
SAVED_MODEL = (ENCODE, DECODE, RECONSTRUCT, SAMPLE, SCORE)
#: LiteRT parts and the endpoint each one holds.
PARTS = {"encoder": ENCODE, "decoder": DECODE}


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
        return endpoint.compute(model, **dict(zip(names, args)))

    function.__name__ = endpoint.name
    return function


def reference(model, endpoint, feeds):
    """The Keras model's outputs for `feeds` (numpy in, numpy out), computed eagerly."""
    outputs = endpoint.compute(model, **feeds)
    return {name: np.asarray(outputs[name]) for name in endpoint.outputs}


def feeds(model, endpoint, examples, seed=0):
    """Inputs for `endpoint` derived from `examples` (an `_data.Examples`).

    `x` is the examples; `z` are latent points (see `_data.latent_points`);
    `epsilon` is standard normal noise, one row per example, drawn with `seed`.

    Returns:
        A dict from input name to numpy array.
    """
    result = {}
    labels = examples.labels
    if "x" in endpoint.inputs:
        result["x"] = examples.x
    if "z" in endpoint.inputs:
        result["z"], labels = _data.latent_points(model, examples, seed)
    if "epsilon" in endpoint.inputs:
        noise = np.random.default_rng(seed).standard_normal((len(examples.x), model.latent_dim))
        result["epsilon"] = noise.astype(np.float32)
    if model.num_classes:
        result["labels"] = labels
    return result
