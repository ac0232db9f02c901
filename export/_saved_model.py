"""Export a tfvae.VAE as a TensorFlow SavedModel for TF Serving and friends.

Signatures (tag `serve`; batch size dynamic; `labels` is an extra int32
input `(batch,)` of class ids for conditional models):

    signature        inputs                          outputs
    serving_default  x       float32 (b, *event)     z_mean, z_log_sigma  float32 (b, latent)
    encode           x       float32 (b, *event)     z_mean, z_log_sigma  float32 (b, latent)
    decode           z       float32 (b, latent)     x_mean               float32 (b, *event)
    reconstruct      x       float32 (b, *event)     x_mean               float32 (b, *event)
    score            x       float32 (b, *event)     score                float32 (b,)
    sample           epsilon float32 (b, latent)     x_mean               float32 (b, *event)
                     [u float32 (b,), mixture priors]

x is RAW data (digits: pixel values 0..16): the graph applies the model's
preprocessing, which the metadata records.

`sample` decodes a draw of the model's prior computed from noise the client
draws (`epsilon`, and `u` for a mixture prior), so samples are reproducible
and the graph has no random op. `score` is `tfvae.scores.anomaly_score`,
deterministic, in nats; higher = more anomalous.
"""

import collections

import tensorflow as tf

import tfvae
from export import _endpoints, _examples, _thresholds, metadata, report
from tfvae import _atomic, _checks

#: Largest parity error accepted before refusing to write, relative to max(1, |output|).
_PLAUSIBLE = 1e-3


def saved_model(model, path, *, overwrite=False, parity_data=None, normal_data=None):
    """Writes `model` as a SavedModel directory with serving signatures.

    The directory holds `saved_model.pb`, `variables/` and
    `assets/tfvae.json` (the metadata: input shape, latent size,
    likelihood, preprocessing, versions, every signature's tensors). It is
    written to a temporary sibling and renamed into place only after it was
    reloaded and checked against the Keras model, so a failure leaves
    nothing behind and an existing directory untouched.

    Args:
        model: a `tfvae.VAE`.
        path: the directory to create.
        overwrite: replace an existing directory at `path`.
        parity_data: optional raw `x` or `(x, labels)` to measure parity on
            (e.g. the test split); default: 64 synthetic rows.
        normal_data: optional raw `x` or `(x, labels)` known to be normal
            and unused by training (e.g. held-out training rows): the score
            thresholds are set on them with the SavedModel's own `score`;
            default: no thresholds.

    Returns:
        An `export.report.ExportReport`.

    Raises:
        TypeError: if `model` is not a `tfvae.VAE`, or an argument has the
            wrong type.
        ValueError: for a bad `path` or `parity_data`.
        FileExistsError: if `path` exists and `overwrite` is False.
        RuntimeError: if the reloaded SavedModel disagrees with Keras.

    Example:

    >>> import tensorflow as tf
    >>> import export
    >>> import tfvae
    >>> (x_train, _), (x_test, _) = tfvae.datasets.load("digits", scale=False)   # raw pixels 0..16
    >>> binarize = tfvae.datasets.preprocessing_for("digits", binarize=True)
    >>> model = tfvae.mlp_vae(64, (16,), 2, likelihood="bernoulli", preprocessing=binarize)   # then model.fit
    >>> report = export.saved_model(model, "saved_model", parity_data=x_test)
    >>> print(report)
    SavedModel: saved_model (... KiB)
    ...
    parity with the Keras model on 360 rows of parity_data:
    ...
    >>> served = tf.saved_model.load("saved_model")
    >>> served.signatures["score"](x=tf.constant(x_test))["score"].shape
    TensorShape([360])
    """
    model = _checks.instance("model", model, tfvae.VAE, "a tfvae.VAE (from tfvae.mlp_vae, tfvae.conv_vae or "
                             "tfvae.load_model('model.keras'))", "Load a saved model with `tfvae.load_model(path)` first")
    path = _checks.path("path", path, "directory")
    overwrite = _checks.boolean("overwrite", overwrite)
    examples, parity_source = _examples.parity_examples(model, parity_data)
    _atomic.check_targets([path], overwrite)
    with _atomic.Staging([path], overwrite) as staging:
        staged = staging.temp(path)
        _endpoints.archive(model, _endpoints.SAVED_MODEL).write_out(str(staged), verbose=False)
        loaded = tf.saved_model.load(str(staged))
        rows = _parity(model, loaded, examples)
        report.check_plausible(rows, _PLAUSIBLE, "SavedModel")
        thresholds = _thresholds.artifact_thresholds(model, normal_data, lambda feeds: _run(loaded, "score", feeds)["score"])
        signatures = {name: _describe(function) for name, function in loaded.signatures.items()}
        versions = {"tfvae_version": tfvae.__version__, "tensorflow_version": tf.__version__}
        info = metadata.build(model, "saved_model", signatures, versions, tags=["serve"],
                              score_thresholds=thresholds)
        metadata.asset_path(staged).parent.mkdir(exist_ok=True)
        _atomic.write_text(metadata.asset_path(staged), metadata.dumps(info))
        op_counts = _ops(loaded)
        size = _atomic.tree_size(staged)
    return report.ExportReport(
        path=str(path), format="saved_model", size_bytes=size, signatures=signatures, ops=op_counts,
        parity=rows, parity_data=parity_source, metadata_path=str(metadata.asset_path(path)), thresholds=thresholds,
    )


def _run(loaded, name, feeds):
    """The outputs of signature `name` for numpy `feeds`, as numpy."""
    outputs = loaded.signatures[name](**{key: tf.constant(value) for key, value in feeds.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def _parity(model, loaded, examples):
    rows = []
    endpoints = {endpoint.name: endpoint for endpoint in _endpoints.SAVED_MODEL}
    endpoints["serving_default"] = _endpoints.SAVED_MODEL[0]
    for name, endpoint in endpoints.items():
        feeds = _endpoints.feeds(model, endpoint, examples)
        expected = _endpoints.reference(model, endpoint, feeds)
        rows += report.compare(name, expected, _run(loaded, name, feeds))
    return rows


def _describe(function):
    _, inputs = function.structured_input_signature
    return {
        "inputs": {name: metadata.tensor(name, spec.shape, spec.dtype) for name, spec in inputs.items()},
        "outputs": {
            name: metadata.tensor(name, spec.shape, spec.dtype) for name, spec in function.structured_outputs.items()
        },
    }


def _ops(loaded):
    counts = collections.Counter()
    seen = set()
    for function in loaded.signatures.values():
        graph = function.graph.as_graph_def()
        counts.update(node.op for node in graph.node)
        for library_function in graph.library.function:
            if library_function.signature.name not in seen:
                seen.add(library_function.signature.name)
                counts.update(node.op for node in library_function.node_def)
    return dict(counts)

