"""A full disk during training, the final save, `tfvae evaluate` and `tfvae-export`: one line, exit 1, nothing partial.

Each test mounts a small tmpfs (root only; skipped otherwise) and lets the
real file system run out of space, as a user's disk would.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tfvae import run_folder

#: Every test here runs the commands in processes of their own.
pytestmark = pytest.mark.slow

SMALL = ["--epochs", "2", "--hidden", "16", "--latent-dim", "2"]


@pytest.fixture
def small_disk(tmp_path):
    """A function `mount(kilobytes)` giving the path of a fresh tmpfs of that size."""
    mounted = []

    def mount(kilobytes):
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], capture_output=True)


def _fill(directory):
    """Writes a filler file into `directory` until its file system is full."""
    with open(os.path.join(directory, "filler"), "wb", buffering=0) as handle:  # unbuffered: close cannot fail
        try:
            while True:
                handle.write(bytes(4096))
        except OSError:
            pass


def _partial_files(directory):
    return [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names
            if ".tmp-" in name]


def _one_line_error(done, command, names):
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: error:"), done.stderr[-3000:]
    assert "No space left on device" in lines[0] and any(name in lines[0] for name in names), lines[0]


def test_training_on_a_full_disk(small_disk, tmp_path):
    disk = small_disk(24)  # run.json and history.csv fit, the first backup (35 KB) does not
    done = subprocess.run([sys.executable, "-m", "tfvae", "train", *SMALL, "--out", str(disk / "run")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    _one_line_error(done, "tfvae train", ["weights-000001.npz"])
    assert _partial_files(disk) == []
    assert not os.listdir(disk / "run" / "backup")
    assert (disk / "run" / "run.json").exists()


FILL_BEFORE_SAVE = textwrap.dedent(
    """
    import os, sys
    from tfvae import _cli

    with _cli.quiet_tensorflow():  # as the tfvae command loads it
        import keras
        from tfvae import cli, run

    class FillTheDisk(keras.callbacks.Callback):
        def on_train_end(self, logs=None):  # training done, model.keras not written yet
            with open(os.path.join(sys.argv[1], "..", "filler"), "wb", buffering=0) as handle:
                try:
                    while True:
                        handle.write(bytes(4096))
                except OSError:
                    pass

    train = run.train
    run.train = lambda **options: train(callbacks=[FillTheDisk()], **options)
    sys.exit(cli.main(["train", *sys.argv[2:], "--out", sys.argv[1]]))
    """
)


def test_final_save_on_a_full_disk_keeps_the_backup_and_resumes_once_space_is_free(small_disk, tmp_path):
    disk = small_disk(400)
    run = disk / "run"
    done = subprocess.run([sys.executable, "-c", FILL_BEFORE_SAVE, str(run), *SMALL], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    _one_line_error(done, "tfvae train", ["model.keras"])
    assert _partial_files(disk) == [] and not (run / "model.keras").exists()
    assert (run / "backup" / "training_metadata.json").exists()  # the finished training is not lost
    os.unlink(disk / "filler")
    resumed = subprocess.run([sys.executable, "-m", "tfvae", "train", *SMALL, "--out", str(run), "--resume"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Epoch 1/2" not in resumed.stdout and "Epoch 2/2" not in resumed.stdout  # nothing trained again
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()] == ["epoch", "0", "1"]
    assert (run / "model.keras").exists() and not (run / "backup").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finished")
    done = subprocess.run([sys.executable, "-m", "tfvae", "train", *SMALL, "--out", "run"], cwd=folder,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "run"


def _copy_and_fill(finished_run, disk):
    run = disk / "run"
    run.mkdir()
    for name in (run_folder.RUN_JSON, run_folder.MODEL):
        shutil.copy(finished_run / name, run / name)
    _fill(disk)
    return run


def test_evaluate_on_a_full_disk(small_disk, finished_run, tmp_path):
    run = _copy_and_fill(finished_run, small_disk(200))
    done = subprocess.run([sys.executable, "-m", "tfvae", "evaluate", str(run), "--importance-samples", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    _one_line_error(done, "tfvae evaluate", ["evaluation.json"])
    assert sorted(os.listdir(run)) == [run_folder.MODEL, run_folder.RUN_JSON]


def test_export_on_a_full_disk(small_disk, finished_run, tmp_path):
    run = _copy_and_fill(finished_run, small_disk(200))
    done = subprocess.run([sys.executable, "-m", "export", "all", str(run)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    _one_line_error(done, "tfvae-export", ["export", "saved_model", ".tflite"])
    assert _partial_files(run) == [] and not (run / "export").exists()


def test_an_unwritable_folder_is_one_line_for_train_and_evaluate(small_disk, finished_run, tmp_path):
    disk = small_disk(200)
    run = disk / "run"
    run.mkdir()
    for name in (run_folder.RUN_JSON, run_folder.MODEL):
        shutil.copy(finished_run / name, run / name)
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    if remounted.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remounted.stderr.strip()}")
    train = subprocess.run([sys.executable, "-m", "tfvae", "train", *SMALL, "--out", str(disk / "new")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    evaluate = subprocess.run([sys.executable, "-m", "tfvae", "evaluate", str(run), "--importance-samples", "2"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
    for done, command, name in ((train, "tfvae train", "new"), (evaluate, "tfvae evaluate", "evaluation.json")):
        assert done.returncode == 1, done.stderr[-3000:]
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{command}: error:"), done.stderr[-3000:]
        assert "Read-only file system" in lines[0] and name in lines[0], lines[0]
    assert sorted(os.listdir(run)) == [run_folder.MODEL, run_folder.RUN_JSON]
