"""Training under tf.distribute: MirroredStrategy matches one device, two workers stay in sync.

Both tests run in subprocesses: logical devices must be configured, and a
multi-worker strategy created, before TensorFlow initializes its runtime.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfvae
from tfvae import distribute

# Two logical CPUs; the same model, initial weights and global batches of 64 on one device and on
# the two replicas of a MirroredStrategy (32 examples each). A fair comparison needs the same
# sampling noise: each replica draws its own epsilon, which cannot match the single device's
# draw for the same examples. So epsilon is made a fixed function of the example (through its
# z_mean, gradient stopped) in both runs; z = z_mean + sigma * epsilon and every other part of
# the loss, the gradient and the update are the package's own. SGD, because Adam's update is
# nearly invariant to the gradient's scale and would hide a missing division by the replicas.
MIRRORED = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import tfvae
    from tfvae import latent

    def reparameterized_sample(posterior, seed=None, sample_shape=()):
        z_mean = posterior.mean()
        epsilon = tf.stop_gradient(tf.sin(3.0 * z_mean + tf.range(z_mean.shape[-1], dtype=z_mean.dtype)))
        return posterior.bijector.forward(epsilon)

    latent.reparameterized_sample = reparameterized_sample

    class StepLosses(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.losses = []

        def on_train_batch_begin(self, batch, logs=None):
            self.model.reset_metrics()  # the logs of a batch are then that step's loss alone

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))

    (x, _), _ = tfvae.datasets.load("digits", binarize=True)
    x = x[:512]
    keras.utils.set_random_seed(0)
    initial = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli").get_weights()

    def train(strategy, divide_by_replicas=True):
        with strategy.scope():
            model = tfvae.mlp_vae(64, (16,), 3, likelihood="bernoulli")
            model.compile(optimizer=keras.optimizers.SGD(0.05))
        model.set_weights(initial)
        if not divide_by_replicas:  # the bug this test must catch: replicas' gradients summed, not averaged
            replicas = strategy.num_replicas_in_sync
            model.optimizer.scale_loss = lambda loss: loss * replicas
        steps = StepLosses()
        model.fit(x, batch_size=64, epochs=2, shuffle=False, verbose=0, callbacks=[steps])
        return {"replicas": strategy.num_replicas_in_sync, "losses": steps.losses,
                "weights": [w.ravel().tolist() for w in model.get_weights()]}

    devices = ["/cpu:0", "/cpu:1"]
    results = {
        # OneDeviceStrategy: one replica, and Keras' per-step loop as under MirroredStrategy.
        "one_device": train(tf.distribute.OneDeviceStrategy("/cpu:0")),
        "mirrored": train(tf.distribute.MirroredStrategy(devices)),
        "mirrored_without_division": train(tf.distribute.MirroredStrategy(devices), divide_by_replicas=False),
    }
    json.dump(results, open(sys.argv[1], "w"))
    """
)


def _flat(weights):
    return np.concatenate([np.asarray(w, np.float64) for w in weights])


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device_step_by_step(tmp_path):
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "results.json")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    single, mirrored, wrong = results["one_device"], results["mirrored"], results["mirrored_without_division"]
    assert (single["replicas"], mirrored["replicas"]) == (1, 2)
    assert len(single["losses"]) == len(mirrored["losses"]) == 16  # 512 / 64 per epoch, 2 epochs
    # Float32 sums in another order (two halves, then the all-reduce): ~1e-7 relative per step.
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-5)
    np.testing.assert_allclose(_flat(mirrored["weights"]), _flat(single["weights"]), rtol=1e-4, atol=1e-5)
    assert single["losses"][-1] < single["losses"][0]  # it did train
    # The comparison can fail: summing instead of averaging the replicas' gradients is caught.
    assert wrong["losses"][0] == pytest.approx(single["losses"][0], rel=1e-5)  # same start
    assert not np.allclose(wrong["losses"], single["losses"], rtol=1e-5)
    assert not np.allclose(_flat(wrong["weights"]), _flat(single["weights"]), rtol=1e-4, atol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_two_workers_end_with_identical_weights(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        # Each worker gets another seed, hence another train/test split and other sampling noise: only
        # all-reduced gradients (and initial weights broadcast from worker 0) make them end identical.
        command = [sys.executable, "-m", "tfvae", "train", "--strategy", "multi-worker", "--epochs", "2",
                   "--hidden", "16", "--latent-dim", "2", "--batch-size", "128", "--seed", str(index),
                   "--out", "run", "--backup-every", "4"]
        processes.append(subprocess.Popen(command, cwd=tmp_path, env=dict(os.environ, TF_CONFIG=tf_config),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=900))
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert "test ELBO" in stdout
    chief, worker = tmp_path / "run", tmp_path / "run" / "worker-1"
    assert json.loads((chief / "run.json").read_text())["seed"] == 0
    assert json.loads((worker / "run.json").read_text())["seed"] == 1
    chief_model, worker_model = (tfvae.load_model(path / "model.keras") for path in (chief, worker))
    for a, b in zip(chief_model.get_weights(), worker_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    chief_history, worker_history = ((path / "history.csv").read_text().splitlines() for path in (chief, worker))
    assert len(chief_history) == 3 and chief_history[0] == worker_history[0]
    # The training columns are global means over both workers, hence equal on both.
    columns = [i for i, name in enumerate(chief_history[0].split(",")) if not name.startswith("val_")]
    for row_a, row_b in zip(chief_history[1:], worker_history[1:]):
        a, b = (np.array(row.split(","), float)[columns] for row in (row_a, row_b))
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_multi_worker_strategy_needs_tf_config(monkeypatch):
    for value in (None, "not json", '{"cluster": {}}'):
        if value is None:
            monkeypatch.delenv("TF_CONFIG", raising=False)
        else:
            monkeypatch.setenv("TF_CONFIG", value)
        with pytest.raises(ValueError, match=r"`TF_CONFIG`.*JSON cluster description"):
            distribute.get_strategy("multi-worker")
    with pytest.raises(ValueError, match=r"`strategy`.*'mirrored'.*strategy='tpu'"):
        distribute.get_strategy("tpu")


def test_step_logs_are_unchanged_outside_multi_worker_training():
    import tensorflow as tf

    logs = {"loss": tf.constant(1.5)}
    assert distribute.step_logs(logs) is logs
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert distribute.step_logs(logs) is logs
        assert distribute.worker_count(tf.distribute.get_strategy()) == 1
    assert distribute.worker_count(tf.distribute.get_strategy()) == 1


def test_run_train_builds_the_model_in_the_strategy_scope(tmp_path):
    import tensorflow as tf

    from tfvae import run

    result = run.train(data="digits", out=str(tmp_path / "run"), epochs=1, hidden=(8,), latent_dim=2,
                       strategy="mirrored", verbose=0)
    model = result["model"]
    assert isinstance(model.distribute_strategy, tf.distribute.MirroredStrategy)
    assert all(isinstance(v.value, tf.distribute.DistributedValues) for v in model.trainable_variables)
    assert result["stopped"] is None and np.isfinite(result["metrics"]["elbo"])
    assert (tmp_path / "run" / "model.keras").exists()
