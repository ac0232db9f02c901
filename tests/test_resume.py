"""Interrupted training resumes from its backup; seeded deterministic runs repeat exactly."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import tfvae
from tfvae import _atomic, cli, resumable
from tfvae.callbacks import BackupAndRestore

# 1437 training digits in batches of 64: 23 batches per epoch; a backup every 5 batches (tfvae train
# runs 5 steps per compiled call, so batch callbacks see batches 4, 9, 14, 19 and, for the last
# call's three batches, 24: Keras reports a call's first batch index + 4).
ARGS = ["train", "--epochs", "4", "--hidden", "16", "--latent-dim", "2", "--backup-every", "5", "--out", "run"]

# `tfvae train` that blocks for good in its third epoch (index 2) at the first batch callback
# from batch 10 on: a backup made in epoch 2 exists, epochs 0 and 1 are in history.csv. The
# test kills it there with SIGKILL: no handler, no cleanup, as in a crash.
HANGING_TRAIN = textwrap.dedent(
    """
    import sys, time
    import keras
    from tfvae import _atomic, cli, run

    class Hang(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch >= 10:
                # The writes queued before (epoch 1's row and backup) on disk first: on a loaded machine
                # tfvae's writer thread can lag an epoch behind, and the kill would then race it.
                _atomic.wait_for_writes()
                open(sys.argv[1], "w").close()
                time.sleep(3600)

    train = run.train
    run.train = lambda **options: train(callbacks=[Hang()], **options)
    sys.exit(cli.main(sys.argv[2:]))
    """
)


def _epochs(history_csv):
    return [int(line.split(",")[0]) for line in history_csv.splitlines()[1:]]


def _losses(history_csv):
    header, *rows = history_csv.splitlines()
    column = header.split(",").index("loss")
    return [float(row.split(",")[column]) for row in rows]


def _wait_for(path, process, limit=900):
    deadline = time.monotonic() + limit  # a guard against hanging forever, not a measurement
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended before the kill: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("training never reached the kill point")
        time.sleep(0.2)


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_from_its_backup(tmp_path):
    (tmp_path / "hanging_train.py").write_text(HANGING_TRAIN)
    marker, run = tmp_path / "at_kill_point", tmp_path / "run"
    process = subprocess.Popen([sys.executable, "hanging_train.py", str(marker), *ARGS], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker, process)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL

    history_before = (run / "history.csv").read_text()
    assert _epochs(history_before) == [0, 1]
    backup = json.loads((run / resumable.BACKUP / "training_metadata.json").read_text())
    assert backup["epoch"] == 2  # killed in epoch 2, backed up in epoch 2
    assert not (run / "model.keras").exists()

    resumed = subprocess.run([sys.executable, "-m", "tfvae", *ARGS, "--resume"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 3/4" in resumed.stdout and "Epoch 1/4" not in resumed.stdout and "Epoch 2/4" not in resumed.stdout
    history_after = (run / "history.csv").read_text()
    assert history_after.startswith(history_before)  # appended, not rewritten
    assert _epochs(history_after) == [0, 1, 2, 3]
    # Continued from the backup's weights: a restart would lose what epochs 0 and 1 learned.
    losses = _losses(history_after)
    assert losses[2] < losses[1] < losses[0], losses
    assert (run / "model.keras").exists() and not (run / resumable.BACKUP).exists()
    assert "test ELBO" in resumed.stdout


class _Interrupt(keras.callbacks.Callback):
    """Raises at the first batch callback of `epoch` from `batch` on, as a kill would end the process there."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at[0] and batch >= self.at[1]:
            raise KeyboardInterrupt


@pytest.mark.parametrize("backup_class, recorded_epoch", [(BackupAndRestore, 1), (keras.callbacks.BackupAndRestore, 0)])
def test_a_backup_in_the_first_epoch_of_a_resumed_run_records_that_epoch(tmp_path, backup_class, recorded_epoch):
    # Keras' own callback records epoch 0 there (the control row): a second kill would restart the run.
    model = tfvae.mlp_vae(6, (4,), 2)
    # 3 steps per call, as tfvae train runs `backup_every` steps per call: batch callbacks after batches
    # 2, 5 and the last (Keras reports its index as 8, the call's first batch + 2).
    model.compile(optimizer="adam", steps_per_execution=3)
    x = np.random.default_rng(0).random((64, 6)).astype("float32")  # 8 batches of 8
    metadata = tmp_path / "backup" / "training_metadata.json"
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, batch_size=8, epochs=4, verbose=0,
                  callbacks=[backup_class(str(tmp_path / "backup"), save_freq=3), _Interrupt(1, 5)])
    _atomic.wait_for_writes()  # tfvae's backups queued before the exception (tfvae train waits likewise)
    assert json.loads(metadata.read_text())["epoch"] == 1
    with pytest.raises(KeyboardInterrupt):  # resumed in epoch 1; backed up after its batches 2 and 5
        model.fit(x, batch_size=8, epochs=4, verbose=0,
                  callbacks=[backup_class(str(tmp_path / "backup"), save_freq=3), _Interrupt(1, 6)])
    _atomic.wait_for_writes()
    assert json.loads(metadata.read_text())["epoch"] == recorded_epoch


@pytest.mark.parametrize("backup_class, backups", [(BackupAndRestore, 4), (keras.callbacks.BackupAndRestore, 2)])
def test_a_whole_epoch_per_call_counts_every_batch_of_it(tmp_path, backup_class, backups):
    # As tfvae train runs when an epoch is shorter than --backup-every: one call per epoch of 8
    # batches, a backup due every 8. Keras' callback counts 7 per epoch (the control row).
    class Counting(backup_class):
        saves = 0

        def _save_model(self):
            Counting.saves += 1
            super()._save_model()

    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam", steps_per_execution=8)
    x = np.random.default_rng(0).random((64, 6)).astype("float32")  # 8 batches of 8
    model.fit(x, batch_size=8, epochs=4, verbose=0,
              callbacks=[Counting(str(tmp_path / "backup"), save_freq=8, delete_checkpoint=False)])
    assert Counting.saves == backups


def test_resume_needs_the_options_the_run_was_started_with(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / resumable.BACKUP).mkdir(parents=True)
    (tmp_path / "run" / resumable.BACKUP / "training_metadata.json").write_text('{"epoch": 2, "batch": 9}')
    options = dict(data="digits", latent_dim=2, hidden=[16], likelihood="bernoulli", beta=1.0, num_samples=1,
                   conditional=False, epochs=4, batch_size=64, learning_rate=0.001, seed=0)
    (tmp_path / "run" / "run.json").write_text(json.dumps(options))
    status = cli.main([*ARGS[:2], "5", *ARGS[3:], "--resume"])  # --epochs 5 instead of 4
    captured = capsys.readouterr()
    assert status == 2 and len(captured.err.splitlines()) == 1
    assert "`epochs`: expected 4, the value recorded in" in captured.err and "epochs=5" in captured.err


def test_history_rows_of_the_epoch_to_redo_are_dropped(tmp_path):
    (tmp_path / resumable.BACKUP).mkdir()
    weights = tmp_path / resumable.BACKUP / "weights-000001.npz"
    weights.write_bytes(b"weights")
    (tmp_path / resumable.BACKUP / "training_metadata.json").write_text(json.dumps(
        {"epoch": 2, "batch": 0, "weights": weights.name, "sha256": hashlib.sha256(b"weights").hexdigest()}))
    (tmp_path / "history.csv").write_text("epoch,loss\n0,3.0\n1,2.0\n2,1.5\n3,1.")  # killed while writing 3
    assert resumable.prepare(str(tmp_path), {}, resume=True) == (2, None)
    assert (tmp_path / "history.csv").read_text() == "epoch,loss\n0,3.0\n1,2.0\n"


DETERMINISTIC_RUNS = textwrap.dedent(
    """
    import sys
    from tfvae import run

    for out in sys.argv[1:]:
        run.train(data="digits", out=out, epochs=2, hidden=(16,), latent_dim=2, batch_size=128,
                  deterministic=True, seed=3, verbose=0)
    """
)


@pytest.mark.slow
def test_two_seeded_deterministic_runs_give_identical_weights(tmp_path):
    # Op determinism is process-wide and cannot be switched off again: a subprocess of its own.
    done = subprocess.run([sys.executable, "-c", DETERMINISTIC_RUNS, "a", "b"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    first, second = (tfvae.load_model(tmp_path / name / "model.keras") for name in "ab")
    assert len(first.get_weights()) == len(second.get_weights()) > 0
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "a" / "history.csv").read_text() == (tmp_path / "b" / "history.csv").read_text()


def test_a_run_folder_of_the_previous_release_resumes_and_evaluates(tmp_path, monkeypatch, capsys):
    # The previous release recorded the data path as typed (relative to where `tfvae train` ran), the
    # IWAE k as `num_samples`, and fewer options; the same command with --resume must continue its run.
    from tfvae import run

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "table.npy", np.random.default_rng(0).random((80, 6)).astype("float32"))
    args = ["train", "--data", "table.npy", "--epochs", "3", "--hidden", "4", "--latent-dim", "2",
            "--batch-size", "16", "--num-samples", "2", "--out", "runs/table"]
    with pytest.raises(KeyboardInterrupt):
        run.train(data="table.npy", out="runs/table", epochs=3, hidden=(4,), latent_dim=2, batch_size=16,
                  iwae_samples=2, verbose=0, callbacks=[_Interrupt(1, 0)])
    _atomic.wait_for_writes()
    run_json = tmp_path / "runs" / "table" / "run.json"
    previous = dict(data="table.npy", latent_dim=2, hidden=[4], likelihood="gaussian", beta=1.0, num_samples=2,
                    conditional=False, epochs=3, batch_size=16, learning_rate=0.001, seed=0)
    run_json.write_text(json.dumps(previous))
    assert cli.main([*args, "--resume"]) == 0, capsys.readouterr().err
    assert _epochs((tmp_path / "runs" / "table" / "history.csv").read_text()) == [0, 1, 2]
    assert json.loads(run_json.read_text()) == previous  # left as it was written

    monkeypatch.chdir(tmp_path / "runs")  # elsewhere: the path is found beside the folder that holds the run
    assert cli.main(["evaluate", "table", "--num-samples", "3"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "runs" / "table" / "evaluation.json").read_text())["importance_samples"] == 3
