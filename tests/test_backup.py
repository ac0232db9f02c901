"""tfvae.backup.BackupAndRestore: an own Keras callback, and its one guarded hand-off to `fit`.

Backups under kills, full disks and Ctrl-C are tested in test_resume.py,
test_interrupts.py, test_full_disk.py and test_run_folder.py.
"""

import json

import keras
import numpy as np
import pytest

import tfvae
from tfvae import _atomic, _tested_versions, backup, callbacks


def _fitted(tmp_path, epochs, **fit_kwargs):
    """A small VAE fitted with a backup every epoch, kept on disk; returns (model, history, backup callback)."""
    x = np.random.default_rng(0).random((32, 6)).astype("float32")
    model = tfvae.mlp_vae(6, (4,), 2)
    model.compile(optimizer="adam")
    callback = backup.BackupAndRestore(str(tmp_path / "b"), delete_checkpoint=False)
    history = model.fit(x, batch_size=8, epochs=epochs, verbose=0, callbacks=[callback], **fit_kwargs)
    _atomic.wait_for_writes()
    return model, history, callback


def test_it_is_an_own_callback_with_the_public_name_of_tfvae_callbacks():
    assert callbacks.BackupAndRestore is backup.BackupAndRestore
    assert not issubclass(backup.BackupAndRestore, keras.callbacks.BackupAndRestore)
    assert issubclass(backup.BackupAndRestore, keras.callbacks.Callback)


def test_on_a_tested_keras_fit_continues_at_the_restored_epoch(tmp_path):
    assert _tested_versions.keras_is_tested()  # the suite runs on the versions setup.py allows
    _fitted(tmp_path, epochs=2)
    _, history, callback = _fitted(tmp_path, epochs=5)
    assert callback.restored["epoch"] == 2 and callback.initial_epoch == 2
    assert len(history.history["loss"]) == 3  # epochs 2, 3 and 4 only
    assert json.loads((tmp_path / "b" / backup.METADATA).read_text())["epoch"] == 5


def test_on_another_keras_nothing_private_is_written_and_fit_needs_initial_epoch(tmp_path, monkeypatch):
    _fitted(tmp_path, epochs=2)
    monkeypatch.setattr(_tested_versions, "keras_is_tested", lambda: False)
    model = tfvae.mlp_vae(6, (4,), 2)
    assert backup.hand_initial_epoch_to_fit(model, 2) is False
    with pytest.raises(RuntimeError, match=r"continues with epoch 3.*Pass initial_epoch=2 to fit"):
        _fitted(tmp_path, epochs=5)
    metadata, _, _ = backup.BackupAndRestore.latest_backup(str(tmp_path / "b"))
    assert metadata["epoch"] == 2  # the backup is untouched by the refused fit
    _, history, _ = _fitted(tmp_path, epochs=5, initial_epoch=metadata["epoch"])
    assert len(history.history["loss"]) == 3


def test_a_backup_without_checksummed_weights_is_not_a_backup(tmp_path):
    # What Keras' own callback writes (latest.weights.h5, metadata without a weights file or checksum).
    (tmp_path / backup.METADATA).write_text('{"epoch": 2, "batch": 0}')
    (tmp_path / "latest.weights.h5").write_bytes(b"\0" * 16)
    metadata, weights, note = backup.BackupAndRestore.latest_backup(str(tmp_path))
    assert metadata is None and weights is None and "'weights'" in note


def test_save_freq_is_epoch_or_a_positive_number_of_batches(tmp_path):
    with pytest.raises(ValueError, match=r"`save_freq`.*save_freq=0"):
        backup.BackupAndRestore(str(tmp_path), save_freq=0)
    assert backup.BackupAndRestore(str(tmp_path), save_freq=3).save_freq == 3
