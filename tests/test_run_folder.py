"""The run folder: one process at a time, no silent replacement, resumes that always finish, a clean import."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest

import tfvae
from tfvae import _atomic, cli, datasets, run_folder
from tfvae.callbacks import BackupAndRestore, HistoryCSV

SMALL = ["--epochs", "2", "--hidden", "16", "--latent-dim", "2"]


def _train(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "tfvae", "train", *SMALL, "--out", "run", *extra], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_import_tfvae_leaves_fd_2_and_the_tf_cpp_variables_alone(tmp_path):
    # A fresh interpreter: fd 2 must never be redirected (os.dup2 onto it) while TensorFlow loads,
    # and TF_CPP_* must be as the user left them, also after TensorFlow is in use.
    script = textwrap.dedent(
        """
        import json, os, sys
        redirected = []
        dup2 = os.dup2
        os.dup2 = lambda source, target, *rest: (redirected.append(target), dup2(source, target, *rest))[1]
        before = {key: value for key, value in os.environ.items() if key.startswith("TF_CPP")}
        inode = os.fstat(2).st_ino
        import tfvae
        light = "tensorflow" not in sys.modules
        model = tfvae.mlp_vae(6, (4,), 2)  # loads TensorFlow, Keras and TFP
        model(__import__("numpy").zeros((1, 6), "float32"))
        after = {key: value for key, value in os.environ.items() if key.startswith("TF_CPP")}
        print(json.dumps({"light": light, "tf": "tensorflow" in sys.modules, "redirected": redirected,
                          "same_fd2": os.fstat(2).st_ino == inode, "before": before, "after": after}))
        """
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["light"] and report["tf"]
    assert 2 not in report["redirected"] and report["same_fd2"]
    assert report["before"] == report["after"] == {}


@pytest.mark.slow
def test_pure_python_modules_import_where_tensorflow_cannot(tmp_path):
    script = textwrap.dedent(
        """
        import sys

        class NoTensorFlow:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "tensorflow_probability"):
                    raise ImportError(f"{name} is blocked in this test")

        sys.meta_path.insert(0, NoTensorFlow())
        import tfvae, tfvae._atomic, tfvae._checks, tfvae._cli, tfvae.datasets, tfvae.run_folder
        print(tfvae.run_folder.read_options(sys.argv[1])["data"])
        """
    )
    (tmp_path / "run.json").write_text('{"data": "digits"}')
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "digits"


def test_a_csv_runs_preprocessing_is_fitted_on_its_training_rows_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).normal(size=(50, 3))
    train_rows, test_rows = datasets.split_rows(len(x), seed=0)
    x[test_rows[0]] = [100.0, -100.0, 50.0]  # a test row far outside the training range
    np.savetxt(tmp_path / "table.csv", x, delimiter=",", header="a,b,c", comments="")
    status = cli.main(["train", "--data", "table.csv", "--epochs", "1", "--hidden", "4", "--latent-dim", "2",
                       "--out", "run"])
    assert status == 0, capsys.readouterr().err
    preprocessing = tfvae.load_model(tmp_path / "run" / "model.keras").preprocessing
    np.testing.assert_allclose(preprocessing["offset"], x[train_rows].min(axis=0), rtol=1e-6)
    np.testing.assert_allclose(preprocessing["divisor"], np.ptp(x[train_rows], axis=0), rtol=1e-5)
    (x_train, _), (x_test, _), again = run_folder.load_split(tmp_path / "run")
    assert again["offset"] == preprocessing["offset"]
    assert x_train.min() == 0 and x_train.max() == 1  # the training rows span [0, 1] exactly
    assert x_test.max() > 10 and x_test.min() < -10  # the test outlier was not used to fit the scaling


def test_csv_errors_name_the_line_as_an_editor_shows_it(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(ValueError, match="Line 3 holds a non-numeric cell"):
        datasets.load_array(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("1,2\n\n3,4\n5\n")  # a blank line still counts
    with pytest.raises(ValueError, match="Line 4 has 1 columns"):
        datasets.load_array(tmp_path / "ragged.csv")


@pytest.mark.parametrize("content, words", [(None, "does not exist"), ("{not json", "cannot be read"),
                                             ('{"seed": 0}', "does not record `data`")])
def test_read_options_names_the_file_and_what_is_wrong(tmp_path, content, words):
    if content is not None:
        (tmp_path / "run.json").write_text(content)
    with pytest.raises(ValueError, match="`run_dir`") as error:
        run_folder.read_options(tmp_path)
    assert str(tmp_path / "run.json") in str(error.value) and words in str(error.value)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from tfvae import run_folder

    with run_folder.lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_second_process_is_refused_and_a_killed_holder_blocks_nothing(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for extra in ([], ["--resume"]):
            status = cli.main(["train", *SMALL, "--out", str(tmp_path / "run"), *extra])
            err = capsys.readouterr().err
            assert status == 1 and len(err.splitlines()) == 1, err
            assert f"in use by process {holder.pid}" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "run" / run_folder.LOCK).read_text().strip() == str(holder.pid)  # stale: its holder is dead
    with run_folder.lock(tmp_path / "run"):
        assert (tmp_path / "run" / run_folder.LOCK).read_text().strip() == str(os.getpid())


@pytest.mark.slow
def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path):
    assert _train(tmp_path).returncode == 0
    run = tmp_path / "run"
    (run / "export").mkdir()
    (run / "export" / "encoder.tflite").write_bytes(b"an export of the old model")
    model_before = (run / "model.keras").read_bytes()
    for extra in ([], ["--resume"]):
        again = _train(tmp_path, *extra)
        assert again.returncode == 2 and len(again.stderr.splitlines()) == 1, again.stderr
        assert "finished run" in again.stderr and "--overwrite" in again.stderr
    assert (run / "model.keras").read_bytes() == model_before and (run / "export" / "encoder.tflite").exists()

    replaced = _train(tmp_path, "--overwrite", "--seed", "1")
    assert replaced.returncode == 0, replaced.stderr
    assert not (run / "export").exists()  # the old model's exports went with it
    assert json.loads((run / "run.json").read_text())["seed"] == 1
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()] == ["epoch", "0", "1"]


@pytest.mark.slow
def test_resume_before_the_first_backup_starts_from_the_beginning(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": "digits"}))  # killed in its first seconds
    assert _train(tmp_path).returncode == 2  # without --resume: refused, the folder holds a run
    resumed = _train(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "training starts from the beginning" in resumed.stdout
    assert "Epoch 1/2" in resumed.stdout
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()] == ["epoch", "0", "1"]


def test_a_damaged_latest_backup_falls_back_to_the_previous_one(tmp_path):
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    backup_dir = str(tmp_path / "backup")
    # Each backup on disk before the next epoch (a backup still queued when the next falls due is dropped).
    written = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: _atomic.wait_for_writes())
    model.fit(x, batch_size=8, epochs=3, verbose=0,
              callbacks=[BackupAndRestore(backup_dir, delete_checkpoint=False), written])
    metadata, weights, note = BackupAndRestore.latest_backup(backup_dir)
    assert metadata["epoch"] == 3 and note is None
    with open(weights, "r+b") as handle:  # damage the latest generation's weights
        handle.seek(100)
        handle.write(b"\0garbage\0")
    metadata, weights, note = BackupAndRestore.latest_backup(backup_dir)
    assert metadata["epoch"] == 2 and "damaged" in note and "continues with epoch 3" in note
    resumed = tfvae.mlp_vae(6, (4,), 2)
    resumed.compile(optimizer="adam")
    history = resumed.fit(x, batch_size=8, epochs=4, verbose=0, callbacks=[BackupAndRestore(backup_dir)])
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 again, from the older backup
    assert not os.path.exists(backup_dir)


def test_a_backup_restores_the_optimizer_state_too(tmp_path):
    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=2, verbose=0,
              callbacks=[BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)])
    restored = tfvae.mlp_vae(6, (4,), 2)
    restored.compile(optimizer="adam")
    callback = BackupAndRestore(str(tmp_path / "b"))
    callback.set_model(restored)
    callback.on_train_begin()
    assert int(restored.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 16
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_a_second_ctrl_c_loses_only_the_epoch_in_progress(tmp_path):
    # Backups every 1000 batches (none due in 4 epochs); KeyboardInterrupt, as a second Ctrl-C raises it,
    # at the start of the fifth epoch: the four finished epochs are backed up, nothing more.
    class SecondCtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 4:
                raise KeyboardInterrupt

    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    backup = BackupAndRestore(str(tmp_path / "b"), save_freq=1000, delete_checkpoint=False)
    with pytest.raises(KeyboardInterrupt):
        try:
            model.fit(x, batch_size=8, epochs=10, verbose=0, callbacks=[backup, SecondCtrlC()])
        except KeyboardInterrupt:
            assert backup.save_last_epoch()
            raise
    metadata, weights, note = BackupAndRestore.latest_backup(str(tmp_path / "b"))
    assert metadata["epoch"] == 4 and note is None
    with np.load(weights) as archive:
        np.testing.assert_array_equal(archive["v00000"], model.weights[0].numpy())
    assert not backup.save_last_epoch()  # written once


def test_background_writes_run_in_order_and_a_failed_one_drops_the_rest_and_is_raised():
    done = []

    def write(name, seconds=0.0):
        threading.Event().wait(seconds)
        done.append(name)

    def fail():
        raise OSError(28, "No space left on device", "run/history.csv")

    for name, seconds in (("a", 0.2), ("b", 0.0), ("c", 0.1)):
        _atomic.in_background(write, name, seconds)
    _atomic.wait_for_writes()
    assert done == ["a", "b", "c"]
    _atomic.in_background(fail)
    _atomic.in_background(write, "dropped")  # queued after the failure: a backup must not land after it
    with pytest.raises(OSError, match="No space left on device"):
        _atomic.wait_for_writes()
    assert done == ["a", "b", "c"]
    _atomic.wait_for_writes()  # raised once
    _atomic.in_background(write, "d")
    _atomic.wait_for_writes()
    assert done == ["a", "b", "c", "d"]


def test_a_write_that_replaces_one_not_started_drops_it_and_one_started_finishes_first():
    done = []
    busy, started = threading.Event(), threading.Event()

    def write(name):
        done.append(name)

    def block():
        started.set()
        busy.wait()
        done.append("busy")

    running = _atomic.in_background(block)
    stale = _atomic.in_background(write, "stale")
    assert started.wait(30) and _atomic.pending(stale) and not _atomic.pending(running)
    newer = _atomic.in_background(write, "newer", replaces=stale)
    _atomic.in_background(write, "after", replaces=running)  # running: it finishes first
    busy.set()
    _atomic.wait_for_writes()  # no error for the dropped one
    assert done == ["busy", "newer", "after"] and not _atomic.pending(newer)


def test_on_a_slow_disk_training_does_not_wait_and_the_newest_backup_and_every_row_land(tmp_path):
    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    history = HistoryCSV(str(tmp_path / "history.csv"))
    backup = BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)  # a backup every epoch
    callbacks = keras.callbacks.CallbackList([history, backup], model=model, epochs=20, steps=8)
    callbacks.on_train_begin()
    disk = threading.Event()  # the disk is busy until the epochs below are done (or 60 s, not to hang)
    timer = threading.Timer(60, disk.set)
    timer.start()
    _atomic.in_background(disk.wait)
    for epoch in range(12):
        callbacks.on_epoch_begin(epoch)
        model.weights[0].assign(np.full(model.weights[0].shape, epoch, "float32"))  # training goes on
        callbacks.on_epoch_end(epoch, {"loss": float(epoch)})
    assert not disk.is_set(), "training waited for the disk"
    disk.set()
    timer.cancel()
    _atomic.wait_for_writes()
    with open(tmp_path / "history.csv") as handle:
        assert [line.split(",")[:2] for line in handle.read().split()] == [
            ["epoch", "loss"], *[[str(epoch), repr(float(epoch))] for epoch in range(12)]]
    metadata, weights, note = BackupAndRestore.latest_backup(str(tmp_path / "b"))
    assert metadata["epoch"] == 12 and note is None
    with np.load(weights) as archive:
        np.testing.assert_array_equal(archive["v00000"], np.full(model.weights[0].shape, 11, "float32"))
    # The backups that fell due while the disk was busy were replaced by the newest one in the queue.
    assert sorted(os.listdir(tmp_path / "b")) == ["training_metadata.json", os.path.basename(weights)]


def test_a_backup_holds_the_weights_of_the_moment_it_fell_due_though_written_later(tmp_path):
    x = np.random.default_rng(0).random((64, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    backup = BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    backup.set_model(model)
    backup.on_epoch_begin(0)
    due = [weight.numpy() for weight in model.weights]
    release = threading.Event()
    _atomic.in_background(release.wait)  # the writer is busy: the backup waits in the queue
    backup._save_model()
    for weight in model.weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))  # training goes on
    assert not os.path.exists(tmp_path / "b" / "training_metadata.json")
    release.set()
    _atomic.wait_for_writes()
    metadata, weights, note = BackupAndRestore.latest_backup(str(tmp_path / "b"))
    assert metadata["epoch"] == 0 and note is None
    with np.load(weights) as archive:
        for number, value in enumerate(due):
            np.testing.assert_array_equal(archive[f"v{number:05d}"], value)
