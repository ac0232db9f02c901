"""Backups of a training run that appear whole or not at all: `BackupAndRestore`.

A `keras.callbacks.Callback` of its own (not a subclass of Keras' callback of
that name, whose counters and files are Keras' private business): it counts
epochs and batches itself, writes each backup as a new `weights-NNNNNN.npz`
with a checksum, keeps two generations, and puts the newest whole one back
when `fit` starts. The one thing it cannot do through Keras' public API is
tell a running `fit` to start at the restored epoch (see `BackupAndRestore`).
"""

import hashlib
import io
import json
import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from tfvae import _atomic, _checks, _tested_versions

METADATA = "training_metadata.json"


class BackupAndRestore(keras.callbacks.Callback):
    """Backs up the model and optimizer during `fit` and resumes from the newest whole backup.

    Each backup is a new file `weights-NNNNNN.npz` holding the model's
    variables and the optimizer's (numpy, built in memory: a full disk is a
    plain `OSError`), written to a temporary sibling, flushed and renamed,
    and then `training_metadata.json` (likewise atomic) records its epoch,
    batch, file name and SHA-256. The previous metadata is kept as
    `training_metadata.json.bkp` with its weights, so two whole generations
    exist after the first two backups (`double_checkpoint=True`); older
    weights files are removed. `latest_backup` picks the newest generation
    whose weights match their checksum, and says so when it has to fall back.
    (Keras' own callback rewrites `latest.weights.h5` in place: a kill or a
    full disk during the write leaves half a file, and h5py crashes the
    process when the disk fills up while it writes.)

    The variables are read in one compiled call when a backup falls due;
    the files are written by tfvae's writer thread (`tfvae._atomic.in_background`)
    while the next batches train, after the writes queued before them
    (`HistoryCSV`'s row of the epoch). A backup still waiting in the queue
    when the next one falls due is dropped (on a slow disk, training does
    not wait and the newest state is written). `on_train_end` and
    `save_last_epoch` wait until they are on disk; a write's error (a full
    disk) is raised at the next backup or at the end of training.

    The epoch is taken from `on_epoch_begin` (so a mid-epoch backup in the
    first epoch of a resumed run records that epoch), and the batches of a
    compiled call of several steps count in full. A backup that falls due at
    an epoch's last batch is written at the epoch's end instead (after
    `HistoryCSV` wrote the epoch's row, if it comes first in the callbacks),
    recording the next epoch: nothing is redone on resume. A backup is also
    written at the end of the last epoch and whenever training is about to
    stop (`model.stop_training`, e.g. after Ctrl-C with `StopOnInterrupt`).

    Resuming: `on_train_begin` restores the newest whole backup and sets
    `initial_epoch`. Keras' `fit` has no public way for a callback to move
    its first epoch, so on a tested Keras (`tfvae._tested_versions`) the
    callback hands the epoch to `fit` the way Keras' own `BackupAndRestore`
    does (the model's `_initial_epoch`, read by `fit` right after
    `on_train_begin`). On another Keras, pass `initial_epoch` to `fit`
    yourself (`tfvae train` does); a `fit` that would redo restored epochs
    stops at its first epoch with an error saying so.

    Args:
        backup_dir: the directory of the backup (used by nothing else).
        save_freq: `"epoch"` or a number of batches between backups.
        double_checkpoint: keep the previous generation too.
        delete_checkpoint: remove `backup_dir` when `fit` ends normally.

    Attributes:
        restored: the metadata of the backup restored by the last `fit`, or None.
        initial_epoch: the epoch that `fit` continues with (0 without a backup).

    Example:

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.callbacks import BackupAndRestore
    >>> x = np.random.default_rng(0).random((64, 6), "float32")
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile()
    >>> backup = BackupAndRestore("backup", delete_checkpoint=False)   # kept, as after a kill
    >>> history = model.fit(x, epochs=2, verbose=0, callbacks=[backup])
    >>> history = model.fit(x, epochs=3, verbose=0, callbacks=[backup])   # the same call again continues
    >>> backup.initial_epoch, history.epoch
    (2, [2])
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(_checks.invalid("backup_dir", "a directory", backup_dir))
        if save_freq != "epoch":
            save_freq = _checks.positive_int("save_freq", save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self.restored = None
        self.initial_epoch = 0
        self._generation = 0
        self._read = VariableReader()
        self._epoch = 0  # the epoch in progress (from on_epoch_begin), or the next one after its end
        self._last_batch = -1  # the last batch index of the epoch seen; -1 before its first
        self._batches_since_backup = 0
        self._first_epoch_seen = None
        self._due_at_epoch_end = False
        self._unsaved_epoch_end = None  # the epoch whose end the model holds, if no backup holds it
        self._write = None  # the last backup queued

    @staticmethod
    def latest_backup(backup_dir):
        """The newest whole backup in `backup_dir`, without loading anything.

        Args:
            backup_dir: a directory written by this callback.

        Returns:
            `(metadata, weights_path, note)`: the backup's metadata dict
            (`epoch`, `batch`, ...) and weights file, or `(None, None, note)`
            when there is no usable backup; `note` is None, or says which
            backup was damaged and what is used instead.
        """
        problems = []
        for number, metadata_name in enumerate((METADATA, METADATA + ".bkp")):
            metadata_path = os.path.join(backup_dir, metadata_name)
            if not os.path.exists(metadata_path):
                if number == 0 and os.path.exists(metadata_path + ".bkp"):
                    problems.append(f"{metadata_path} is missing (the process stopped while writing it)")
                continue
            try:
                with open(metadata_path) as handle:
                    metadata = json.load(handle)
                epoch = int(metadata["epoch"])
                weights = os.path.join(backup_dir, metadata["weights"])
                if _sha256(weights) != metadata["sha256"]:
                    raise ValueError(f"{weights} does not match its checksum (damaged)")
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems.append(f"{metadata_path}: {' '.join(str(error).split())}")
                continue
            note = None
            if problems:
                note = (f"the latest backup is damaged ({'; '.join(problems)}); "
                        f"resuming from the previous one, which continues with epoch {epoch + 1}")
            return metadata, weights, note
        note = f"no whole backup in {backup_dir} ({'; '.join(problems)})" if problems else None
        return None, None, note

    def on_train_begin(self, logs=None):
        _atomic.wait_for_writes()  # an earlier fit's backups
        self._batches_since_backup, self._first_epoch_seen = 0, None
        metadata, weights, _ = self.latest_backup(self.backup_dir)
        self.restored = metadata
        self.initial_epoch = 0 if metadata is None else int(metadata["epoch"])
        if metadata is None:
            return
        self._generation = int(metadata.get("generation", 0))
        variables = self._variables()
        with np.load(weights, allow_pickle=False) as archive:
            values = [archive[f"v{number:05d}"] for number in range(len(archive.files))]
        if [tuple(value.shape) for value in values] != [tuple(variable.shape) for variable in variables]:
            raise ValueError(f"{weights} holds the state of another model (other variables); "
                             "resume with the options the run was started with")
        for variable, value in zip(variables, values):
            variable.assign(value)
        hand_initial_epoch_to_fit(self.model, self.initial_epoch)

    def _variables(self):
        """The model's variables, then the optimizer's (built if needed): what a backup holds."""
        optimizer = self.model.optimizer
        if optimizer is None:
            return list(self.model.weights)
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + list(optimizer.variables)

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch_seen is None:
            self._first_epoch_seen = epoch
            if epoch < self.initial_epoch:
                raise RuntimeError(
                    f"fit starts at epoch {epoch + 1}, but the backup in {self.backup_dir} continues with epoch "
                    f"{self.initial_epoch + 1}: this Keras ({keras.version()}) takes no epoch from a callback. "
                    f"Pass initial_epoch={self.initial_epoch} to fit (the callback's `initial_epoch`)."
                )
        self._epoch = epoch
        self._last_batch = -1
        self._due_at_epoch_end = False

    def on_train_batch_begin(self, batch, logs=None):
        self._unsaved_epoch_end = None  # the state moves past the epoch's end

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # With steps_per_execution = k, Keras reports the last batch index of each call of k steps.
        self._batches_since_backup += batch - self._last_batch
        self._last_batch = batch
        if self._batches_since_backup < self.save_freq:
            return
        self._batches_since_backup = 0
        steps = (self.params or {}).get("steps")
        if steps and batch >= steps - 1:
            self._due_at_epoch_end = True  # the epoch is done: back it up whole at its end
        else:
            self._save_model()

    def on_epoch_end(self, epoch, logs=None):
        self._epoch, self._last_batch = epoch + 1, -1
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        self._unsaved_epoch_end = epoch + 1  # the model holds this epoch's end until the next call
        if self.save_freq == "epoch" or self._due_at_epoch_end or last or self.model.stop_training:
            self._save_model()
        self._due_at_epoch_end = False

    def on_train_end(self, logs=None):
        self.save_last_epoch()  # stopped after on_epoch_end had run; waits for the queued writes
        if self.delete_checkpoint:
            shutil.rmtree(self.backup_dir, ignore_errors=True)

    def save_last_epoch(self):
        """Backs up the model if it holds the end of an epoch that no backup holds yet.

        Between two compiled calls of `fit` (where Python, and so a Ctrl-C,
        gets control) the model holds the state at the end of the last
        finished epoch; `tfvae train` calls this when a second Ctrl-C stops
        `fit` at once, so that only the epoch in progress is lost. It costs
        nothing while training runs.

        Returns:
            True if a backup was written. Either way, the backups queued
            before are on disk when it returns.
        """
        saved = self._unsaved_epoch_end is not None
        if saved:
            self._epoch, self._last_batch = self._unsaved_epoch_end, -1
            self._save_model()
        _atomic.wait_for_writes()
        return saved

    def _save_model(self):
        self._generation += 1
        # A snapshot read now; the files are written by tfvae's writer thread while training goes on.
        values = self._read(self._variables())
        metadata = {"epoch": self._epoch, "batch": max(self._last_batch, 0),
                    "weights": f"weights-{self._generation:06d}.npz", "generation": self._generation}
        # Queued last (after history.csv's row of this epoch); an older backup still waiting is dropped.
        self._write = _atomic.in_background(self._write_backup, values, metadata, replaces=self._write)
        self._unsaved_epoch_end = None

    def _write_backup(self, values, metadata):
        os.makedirs(self.backup_dir, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **{f"v{number:05d}": value.numpy() for number, value in enumerate(values)})
        content = buffer.getvalue()
        with _atomic.replacing(os.path.join(self.backup_dir, metadata["weights"])) as temporary:
            _atomic.write_bytes(temporary, content)
        metadata = {**metadata, "sha256": hashlib.sha256(content).hexdigest()}
        current = os.path.join(self.backup_dir, METADATA)
        if os.path.exists(current):
            if self.double_checkpoint:
                os.replace(current, current + ".bkp")  # a kill right here: the .bkp generation is whole
            else:
                os.unlink(current)
        _atomic.replace_text(current, json.dumps(metadata))
        self._remove_unreferenced()

    def _remove_unreferenced(self):
        keep = set()
        for name in (METADATA, METADATA + ".bkp"):
            try:
                with open(os.path.join(self.backup_dir, name)) as handle:
                    keep.add(json.load(handle).get("weights"))
            except (OSError, ValueError, AttributeError):
                pass
        for name in os.listdir(self.backup_dir):
            if name not in keep and (name.startswith("weights-") or name.startswith(".tmp-")):
                try:
                    os.unlink(os.path.join(self.backup_dir, name))
                except OSError:
                    pass


def hand_initial_epoch_to_fit(model, epoch):
    """Makes the running `model.fit` start at `epoch`, on a tested Keras; returns whether it did.

    Keras' `fit` reads the model's private `_initial_epoch` right after the
    callbacks' `on_train_begin` (Keras' own `BackupAndRestore` sets it there);
    no public API does this. It is written only on a Keras of
    `tfvae._tested_versions.TESTED_KERAS` whose model has that attribute.

    Args:
        model: the `keras.Model` being fitted.
        epoch: the epoch (0-based) to continue with.

    Returns:
        True if handed over; False on another Keras (then `fit`'s own
        `initial_epoch` decides).
    """
    if not (_tested_versions.keras_is_tested() and hasattr(model, "_initial_epoch")):
        return False
    model._initial_epoch = int(epoch)  # private-ok: Keras' fit reads it after on_train_begin (see docs/design.md)
    return True


class VariableReader:
    """Reads a list of variables in one compiled call (copying them one by one costs a call each).

    The tensors returned keep their values when the variables are updated
    afterwards (TensorFlow copies a variable's buffer before updating it in
    place while a read of it is alive).

    Example:

    >>> import keras
    >>> from tfvae.backup import VariableReader
    >>> weights = [keras.Variable([1.0, 2.0]), keras.Variable([3.0])]
    >>> read = VariableReader()
    >>> snapshot = read(weights)   # a list of tensors
    >>> _ = weights[0].assign([5.0, 6.0])
    >>> snapshot[0].numpy()   # what the variable held when it was read
    array([1., 2.], dtype=float32)
    """

    def __init__(self):
        self._variables, self._function = [], None

    def __call__(self, variables):
        variables = list(variables)
        if self._function is None or list(map(id, variables)) != list(map(id, self._variables)):
            self._variables = variables  # kept alive, so their ids stay theirs
            self._function = tf.function(lambda: [tf.identity(variable) for variable in variables], autograph=False)
        return self._function()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
