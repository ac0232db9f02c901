"""Score thresholds of an exported artifact, from its own `score` on rows known to be normal.

An int8 file scores a little differently from Keras, so each artifact sets
its thresholds with its own scores (`tfvae.anomaly.thresholds`, the rule
`VAE.fit_thresholds` uses) on `normal_data`: raw rows the user knows to be
normal that training did not use (`tfvae-export`: held-out rows of the
run's own training data, or `--normal-data`), never a test split that may
hold anomalies. Each threshold's false-positive rate on normal rows that
did not set it is measured too (`tfvae.anomaly.realized_rates`) and
stored beside it.
"""

from export import _endpoints, _examples, metadata
from tfvae import anomaly


def normal_examples(model, normal_data):
    """`(examples, description)` of `normal_data` (`x`, `(x, labels)` or a dict with `name`), or `(None, None)`."""
    if normal_data is None:
        return None, None
    examples = _examples.subsample(_examples.as_examples(model, normal_data, "normal_data"), _examples.PARITY_ROWS)
    source = normal_data.get("name", "normal_data") if isinstance(normal_data, dict) else "normal_data"
    return examples, f"{len(examples.x)} rows of {source}"


def artifact_thresholds(model, normal_data, score_rows=None):
    """The `score_thresholds` metadata entry of an artifact, or None without `normal_data`.

    Args:
        model: the exported `tfvae.VAE`.
        normal_data: raw rows known to be normal (see `normal_examples`), or None.
        score_rows: `score_rows(feeds) -> scores` running the artifact's own
            `score` signature; None for an artifact without one (Keras' score).

    Returns:
        A dict (see `export.metadata.score_thresholds`), or None.
    """
    examples, description = normal_examples(model, normal_data)
    if examples is None:
        return None
    scores = _scores(model, examples, score_rows)
    return metadata.score_thresholds(anomaly.thresholds(scores), anomaly.realized_rates(scores), description)


def keras_scores(model, examples):
    """Keras' score of raw `Examples` (what the float32 `score` signature computes)."""
    return _scores(model, examples)


def _scores(model, examples, score_rows=None):
    feeds = _endpoints.feeds(model, _endpoints.SCORE, examples)
    if score_rows is not None:
        return score_rows(feeds)
    return _endpoints.reference(model, _endpoints.SCORE, feeds)["score"]
