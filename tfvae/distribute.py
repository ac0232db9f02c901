"""Training on several devices and machines with TensorFlow's `tf.distribute`.

    name            strategy                                  runs on
    "default"       tf.distribute.get_strategy()              one device
    "mirrored"      tf.distribute.MirroredStrategy()          every GPU of this machine (or its CPU)
    "multi-worker"  tf.distribute.MultiWorkerMirroredStrategy every machine listed in TF_CONFIG

Build and compile the model inside `strategy.scope()`; `fit`'s `batch_size`
is then the global batch, split evenly over the replicas. `VAE.train_step`
divides each replica's mean loss by `num_replicas_in_sync`, so the gradients
that the strategy sums over replicas are those of the global mean loss: the
same update as on one device with the same global batch.

A multi-worker job is the same program started on every machine, each with
its own `TF_CONFIG` (see docs/distributed.md). The strategy must be created
before TensorFlow runs its first op; `import tfvae` runs none when
`TF_CONFIG` is set.
"""

import json
import os

import tensorflow as tf

from tfvae import _checks

STRATEGIES = ("default", "mirrored", "multi-worker")


def get_strategy(name="default"):
    """Creates the `tf.distribute` strategy called `name`.

    Args:
        name: `"default"`, `"mirrored"` or `"multi-worker"`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: for an unknown name, or `"multi-worker"` without a valid
            `TF_CONFIG` environment variable.
        RuntimeError: for `"multi-worker"` when TensorFlow already ran an op
            in this process.

    Example:

    >>> import tfvae
    >>> from tfvae.distribute import get_strategy
    >>> strategy = get_strategy("mirrored")   # every local GPU; the CPU alone on a machine without one
    >>> with strategy.scope():
    ...     model = tfvae.mlp_vae(64, (16,), 2)
    ...     model.compile()
    >>> strategy.num_replicas_in_sync >= 1
    True
    """
    _checks.one_of("strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    tf_config = _tf_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "The multi-worker strategy must be created before TensorFlow runs its first op in this process "
            f"(task {tf_config['task']}): call tfvae.distribute.get_strategy('multi-worker') right after "
            "`import tfvae`, with TF_CONFIG set before the import."
        ) from None


def is_chief(strategy):
    """Whether this process writes the shared outputs of a run.

    True on one device, for a mirrored strategy, and on the chief of a
    multi-worker job (task `chief`, or `worker` 0 when there is no chief).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_dir(out, strategy):
    """Where this process writes a run: `out` on the chief, `out/worker-<i>` on other workers.

    Every worker of a multi-worker job trains the same model and writes a
    complete run folder (its backups are what it restores from on resume);
    the subfolder keeps them apart when `out` is on a shared file system.
    """
    if is_chief(strategy):
        return out
    resolver = strategy.cluster_resolver
    return os.path.join(out, f"{resolver.task_type}-{resolver.task_id}")


def step_logs(logs):
    """Makes a train/test step's logs reducible across workers.

    Keras 3 reduces the logs of a step over a multi-worker strategy with
    `strategy.reduce("MEAN", value, axis=0)`, which fails for the scalar
    metric results every step returns ("Invalid reduction dimension 0 for
    input with 0 dimensions", tensorflow/tensorflow#72388). Given shape
    `(1,)`, they reduce to the mean over replicas, a scalar again. Elsewhere
    the logs are returned unchanged.

    Args:
        logs: dict of scalar tensors.

    Returns:
        The dict to return from `train_step` / `test_step`.
    """
    if worker_count(tf.distribute.get_strategy()) > 1:
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def worker_count(strategy):
    """The number of machines (chief and workers) that `strategy` trains on: 1 but in a multi-worker job.

    Read from the strategy's public `cluster_resolver`, as TensorFlow counts
    them for `MultiWorkerMirroredStrategy` (a multi-worker strategy made
    without `TF_CONFIG` trains on this machine alone).

    Example:

    >>> import tensorflow as tf
    >>> from tfvae.distribute import worker_count
    >>> worker_count(tf.distribute.get_strategy())
    1
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return max(1, sum(len(cluster.get(task_type, ())) for task_type in ("chief", "worker")))


def _tf_config():
    text = os.environ.get("TF_CONFIG", "")
    expected = ('a JSON cluster description such as {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}')
    try:
        tf_config = json.loads(text)
    except ValueError:
        tf_config = None
    if not isinstance(tf_config, dict) or not isinstance(tf_config.get("cluster"), dict) or not isinstance(
        tf_config.get("task"), dict
    ):
        raise ValueError(
            _checks.invalid("TF_CONFIG", expected, text, "Set it on every machine of a multi-worker run")
        )
    return tf_config


def steps_per_execution(strategy, steps):
    """How many training steps one compiled call may run under `strategy`.

    Keras 3.15 cannot run several steps per call under a
    `MultiWorkerMirroredStrategy` (its multi-step loop fails with "Attempt to
    convert a value (PerReplica...)"): there it is 1, elsewhere `steps`.
    """
    return 1 if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else steps
