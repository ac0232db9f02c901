"""Anomaly scores and thresholds of a VAE, for Python and every exported file.

The score is `tfvae.scores.anomaly_score` (defined there once, for every
prior and likelihood; higher = more unusual, in nats). The exporters'
`score` signature computes that function, and `VAE.anomaly_score` returns
it as numpy. With `importance_samples=k`, `anomaly_score` gives instead the
importance-sampled -log p(x) of `VAE.log_likelihood` (k samples, fixed seed).

A threshold at false-positive rate r is the (1 - r) quantile of the scores
of rows known to be normal that training did not use: about r of such rows
score above it (`thresholds`). Rows given as normal are called
contaminated by ONE rule (`contaminated_share`, `check_normal_rows`): more
than 10% of them score above the 95th percentile of the training rows'
scores, where normal rows put about 5%: twice that leaves room for chance,
and a third of anomalies among the rows exceeds it (tests/test_anomaly.py
checks both on digits 0-4 as the normal class). It also
fires when the model fits its training rows far better than new normal
rows (overfitting); thresholds from held-out rows are then still the right
ones, and the warning says so.
"""

import warnings

import numpy as np

from tfvae import _checks, scores

#: The false-positive rates thresholds are computed at by default.
FALSE_POSITIVE_RATES = (0.01, 0.05)
#: The contamination rule: the share of rows above this quantile of the training rows' scores ...
TRAINING_QUANTILE = 0.95
#: ... may be at most this (twice what normal rows put there).
MAX_SHARE_ABOVE = 0.10
#: Seed of the importance samples of `anomaly_score(..., importance_samples=k)`.
IMPORTANCE_SEED = 0


def anomaly_score(model, x, labels=None, importance_samples=None, batch_size=1024):
    """`tfvae.scores.anomaly_score` as numpy, in batches, or -log p(x) with `importance_samples` (see `VAE.anomaly_score`)."""
    if importance_samples is not None:
        importance_samples = _checks.positive_int("importance_samples", importance_samples)
        return -np.asarray(model.log_likelihood(x, importance_samples=importance_samples, labels=labels,
                                                seed=IMPORTANCE_SEED), np.float32)
    batch_size = _checks.positive_int("batch_size", batch_size)
    x = _checks.float_array("x", x, tuple(model.event_shape))
    if labels is not None:
        labels = np.asarray(labels)
    parts = [scores.anomaly_score(model, x[start:start + batch_size],
                                  None if labels is None else labels[start:start + batch_size])
             for start in range(0, len(x), batch_size)]
    return np.concatenate([np.asarray(part, np.float32) for part in parts]) if parts else np.zeros([0], np.float32)


def thresholds(scores, false_positive_rates=FALSE_POSITIVE_RATES):
    """`{rate: the (1 - rate) quantile of scores}`: flag a row when its score > threshold.

    Args:
        scores: scores of rows known to be normal, shape `(n,)`.
        false_positive_rates: rates in (0, 1).

    Returns:
        A dict from float rate to float threshold.

    Example:

    >>> import numpy as np
    >>> from tfvae.anomaly import thresholds
    >>> thresholds(np.arange(100.0), (0.05,))
    {0.05: 94.05}
    """
    scores = np.asarray(_checks.float_array("scores", np.ravel(scores), ()), np.float64)
    rates = _rates(false_positive_rates)
    return {rate: float(np.quantile(scores, 1.0 - rate)) for rate in rates}


def realized_rates(scores, false_positive_rates=FALSE_POSITIVE_RATES, seed=0):
    """Each threshold's false-positive rate on normal rows that did not set it.

    The rows are split in two halves at random (with `seed`); thresholds set
    on one half flag a share of the other; the result is the mean of the two
    directions. With few rows (under 2 / rate per half) the estimate is coarse.

    Returns:
        A dict from float rate to the measured rate.
    """
    scores = np.asarray(scores, np.float64).ravel()
    order = np.random.default_rng(seed).permutation(len(scores))
    halves = (scores[order[: len(scores) // 2]], scores[order[len(scores) // 2:]])
    if min(len(half) for half in halves) == 0:
        return {rate: float("nan") for rate in _rates(false_positive_rates)}
    result = {}
    for rate in _rates(false_positive_rates):
        shares = [np.mean(other > thresholds(own, (rate,))[rate]) for own, other in (halves, halves[::-1])]
        result[rate] = float(np.mean(shares))
    return result


def contaminated_share(scores, training_scores):
    """The share of `scores` above the TRAINING_QUANTILE quantile of `training_scores`."""
    limit = np.quantile(np.asarray(training_scores, np.float64), TRAINING_QUANTILE)
    return float(np.mean(np.asarray(scores, np.float64) > limit))


def check_normal_rows(scores, training_scores, name="x_normal"):
    """Warns (`UserWarning`) when the rows given as normal look contaminated (see the module docstring).

    Args:
        scores: scores of the rows given as normal.
        training_scores: scores of (a sample of) the training rows.
        name: how to call the rows in the message.

    Returns:
        The share of rows above the training rows' 95th percentile.
    """
    share = contaminated_share(scores, training_scores)
    if share > MAX_SHARE_ABOVE:
        warnings.warn(
            f"{share:.0%} of the {len(np.ravel(scores))} rows of {name} score above the 95th percentile of the "
            f"training rows' scores, where normal rows put about 5% (the limit is {MAX_SHARE_ABOVE:.0%}): they look "
            "like they hold anomalies, and thresholds set on them flag too little. Pass rows known to be normal "
            "(such as held-out rows of the training data). If they are normal, the model fits its training rows "
            "much better than new ones (train fewer epochs or a smaller model); the thresholds stand.",
            UserWarning, stacklevel=3)
    return share


def fit_thresholds(model, x_normal, labels=None, false_positive_rates=FALSE_POSITIVE_RATES, x_train=None):
    """Thresholds of `model`'s default score on rows known to be normal (see `VAE.fit_thresholds`).

    `x_train` is None, training rows x, or `(x, labels)` for a conditional model.
    """
    rates = _rates(false_positive_rates)
    scores = anomaly_score(model, x_normal, labels)
    if x_train is not None:
        train, train_labels = x_train if isinstance(x_train, tuple) else (x_train, None)
        check_normal_rows(scores, anomaly_score(model, train, train_labels), "x_normal")
    return thresholds(scores, rates)


def to_config(values):
    """`{0.01: t}` -> `{"0.01": t}` (JSON keys are strings), None stays None."""
    return None if values is None else {str(float(rate)): float(value) for rate, value in values.items()}


def from_config(values):
    """`{"0.01": t}` -> `{0.01: t}`, None stays None."""
    return None if values is None else {float(rate): float(value) for rate, value in values.items()}


def _rates(false_positive_rates):
    rates = tuple(false_positive_rates) if np.ndim(false_positive_rates) else (false_positive_rates,)
    if not rates or not all(isinstance(rate, (int, float, np.floating)) and 0 < rate < 1 for rate in rates):
        raise ValueError(_checks.invalid("false_positive_rates", "a sequence of rates in (0, 1), e.g. (0.01, 0.05)",
                                         false_positive_rates))
    return tuple(float(rate) for rate in rates)
