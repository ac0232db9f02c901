"""Keras callbacks that keep a run's work when training goes wrong.

`TerminateOnNonFinite` stops at the first non-finite loss and puts back the
last weights that gave a finite one (`keras.callbacks.TerminateOnNaN` stops
but leaves the broken weights in the model). `BackupAndRestore` is Keras'
callback of that name whose backups appear whole or not at all, in two
generations, with the right epoch after a resume. `HistoryCSV` is Keras'
`CSVLogger` whose file is rewritten whole after each epoch end.
`StopOnInterrupt` turns Ctrl-C into a stop at the next epoch end, with a
backup.
"""

import csv
import hashlib
import io
import json
import math
import os
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from tfvae import _atomic


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and restores the last good weights.

    Before every batch the weights are copied (in one compiled read); the loss
    Keras reports after a batch was computed with those weights. When it is
    NaN or infinite, training stops and the model gets back the weights of
    the last batch whose loss was finite, so what is saved afterwards is a
    usable model. With `compile(steps_per_execution=k)` Keras calls batch
    callbacks every k steps: the check, and the weights restored, are then
    those of k-step chunks. `message` then says what happened (and is printed if
    `verbose`); it stays None while training is fine.

    Args:
        verbose: print the message when training is stopped.

    Example:

    >>> stop = TerminateOnNonFinite()
    >>> model.fit(dataset, epochs=10, callbacks=[stop])
    >>> stop.message is None   # False if the loss became NaN: model holds the last good weights
    """

    def __init__(self, verbose=True):
        super().__init__()
        self.verbose = verbose
        self.message = None
        self.stopped_epoch = None
        self.stopped_batch = None
        self._epoch = 0
        self._before_batch = None
        self._good = None
        self._read = _VariableReader()

    def on_train_begin(self, logs=None):
        self.message = self.stopped_epoch = self.stopped_batch = None
        self._good = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._before_batch = self._read(self.model.weights)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(loss).reshape(-1)[0])
        if math.isfinite(value):
            self._good = self._before_batch
            return
        self.model.stop_training = True
        # With steps_per_execution > 1, Keras reports the last batch index of a call, which
        # can pass the end of the epoch.
        steps = (self.params or {}).get("steps")
        batch = min(batch, steps - 1) if steps else batch
        self.stopped_epoch, self.stopped_batch = self._epoch, batch
        where = f"epoch {self._epoch + 1}, batch {batch + 1}"
        if self._good is not None:
            self.model.set_weights(self._good)
            kept = "the model holds the weights of the last batch with a finite loss"
        elif all(np.isfinite(weight).all() for weight in self._before_batch):
            # The first batch (or chunk of steps_per_execution batches) already failed.
            self.model.set_weights(self._before_batch)
            kept = "no batch had a finite loss, so the model holds the weights it started with"
        else:
            kept = "the weights were not finite before training either, so they are as they are"
        self.message = (
            f"Training stopped at {where}: the loss is not finite ({value}); {kept}. "
            "Lower the learning rate or scale the data (a tf.data pipeline is not checked for NaN)."
        )
        if self.verbose:
            print(self.message)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups survive a kill, a full disk and each other.

    Keras' callback rewrites `latest.weights.h5` in place: a kill or a full
    disk during the write leaves half a file and no way to resume (and h5py
    crashes the process with a segmentation fault when the disk fills up
    while it writes). Here each backup is a new file `weights-NNNNNN.npz`
    holding the model's variables and the optimizer's (numpy, built in
    memory: a full disk is a plain `OSError`), written to a temporary
    sibling, flushed and renamed, and then `training_metadata.json`
    (likewise atomic) records its epoch, batch, file name and SHA-256. The
    previous metadata is kept as `training_metadata.json.bkp` with its
    weights, so two whole generations exist after the first two backups
    (`double_checkpoint=True`); older weights files are removed.
    `latest_backup` picks the newest generation whose weights match their
    checksum, and says so when it has to fall back.

    The variables are read in one compiled call when a backup falls due;
    the files are written by tfvae's writer thread (`tfvae._atomic.in_background`)
    while the next batches train, after the writes queued before them
    (`HistoryCSV`'s row of the epoch). A backup still waiting in the queue
    when the next one falls due is dropped (on a slow disk, training does
    not wait and the newest state is written). `on_train_end` and
    `save_last_epoch` wait until they are on disk; a write's error (a full
    disk) is raised at the next backup or at the end of training.

    Keras counts epochs from 0 in every `fit` and learns the epoch only at an
    epoch's end, so a mid-epoch backup written in the first epoch of a resumed
    run would record epoch 0; this subclass takes the epoch from
    `on_epoch_begin`. It also counts the batches of an epoch's first compiled
    call in full. A backup that falls due at an epoch's last batch is written
    at the epoch's end instead (after `HistoryCSV` wrote the epoch's row, if
    it comes first in the callbacks), recording the next epoch: nothing is
    redone on resume. A backup is also written at the end of the last epoch
    and whenever training is about to stop (`model.stop_training`, e.g. after
    Ctrl-C with `StopOnInterrupt`).

    Args:
        backup_dir: the directory of the backup (used by nothing else).
        save_freq: `"epoch"` or a number of batches between backups.
        double_checkpoint: keep the previous generation too.
        delete_checkpoint: remove `backup_dir` when `fit` ends normally.

    Example:

    >>> backup = BackupAndRestore("run/backup", save_freq=50)
    >>> model.fit(x, epochs=150, callbacks=[backup])   # killed? the same call continues
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=True, delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=double_checkpoint,
                         delete_checkpoint=delete_checkpoint)
        self.restored = None
        self._generation = 0
        self._read = _VariableReader()
        self._due_at_epoch_end = False
        self._unsaved_epoch_end = None  # the epoch whose end the model holds, if no backup holds it
        self._write = None  # the last backup queued

    @staticmethod
    def latest_backup(backup_dir):
        """The newest whole backup in `backup_dir`, without loading anything.

        Args:
            backup_dir: a directory written by this callback (or by Keras' own,
                whose weights file carries no checksum and is taken as it is).

        Returns:
            `(metadata, weights_path, note)`: the backup's metadata dict
            (`epoch`, `batch`, ...) and weights file, or `(None, None, note)`
            when there is no usable backup; `note` is None, or says which
            backup was damaged and what is used instead.
        """
        problems = []
        for number, (metadata_name, legacy_weights) in enumerate(
            ((_METADATA, "latest.weights.h5"), (_METADATA + ".bkp", "latest.weights.h5.bkp"))
        ):
            metadata_path = os.path.join(backup_dir, metadata_name)
            if not os.path.exists(metadata_path):
                if number == 0 and os.path.exists(metadata_path + ".bkp"):
                    problems.append(f"{metadata_path} is missing (the process stopped while writing it)")
                continue
            try:
                with open(metadata_path) as handle:
                    metadata = json.load(handle)
                epoch = int(metadata["epoch"])
                weights = os.path.join(backup_dir, metadata.get("weights", legacy_weights))
                if "sha256" in metadata and _sha256(weights) != metadata["sha256"]:
                    raise ValueError(f"{weights} does not match its checksum (damaged)")
                if "sha256" not in metadata and not os.path.exists(weights):
                    weights = None  # Keras' metadata alone: restores the epoch only
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
        metadata, weights, _ = self.latest_backup(self.backup_dir)
        self.restored = metadata
        if metadata is None:
            return
        self._generation = int(metadata.get("generation", 0))
        if weights is not None and weights.endswith(".npz"):
            variables = self._variables()
            with np.load(weights, allow_pickle=False) as archive:
                values = [archive[f"v{number:05d}"] for number in range(len(archive.files))]
            if [tuple(value.shape) for value in values] != [tuple(variable.shape) for variable in variables]:
                raise ValueError(f"{weights} holds the state of another model (other variables); "
                                 "resume with the options the run was started with")
            for variable, value in zip(variables, values):
                variable.assign(value)
        elif weights is not None:  # written by keras.callbacks.BackupAndRestore
            self._variables()
            self.model.load_weights(weights)
        self.model._initial_epoch = int(metadata["epoch"])

    def _variables(self):
        """The model's variables, then the optimizer's (built if needed): what a backup holds."""
        optimizer = self.model.optimizer
        if optimizer is None:
            return list(self.model.weights)
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return list(self.model.weights) + list(optimizer.variables)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        self._last_batch_seen = -1  # the batch "before" index 0: the next call adds batch + 1
        self._due_at_epoch_end = False

    def on_train_batch_end(self, batch, logs=None):
        if not self._should_save_on_batch(batch):
            return
        steps = (self.params or {}).get("steps")
        if steps and batch >= steps - 1:
            self._due_at_epoch_end = True  # the epoch is done: back it up whole at its end
        else:
            self._save_model()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        last = epoch + 1 >= (self.params or {}).get("epochs", math.inf)
        self._unsaved_epoch_end = epoch + 1  # the model holds this epoch's end until the next call
        if self.save_freq == "epoch" or self._due_at_epoch_end or last or self.model.stop_training:
            self._save_model()
        self._due_at_epoch_end = False

    def on_train_batch_begin(self, batch, logs=None):
        self._unsaved_epoch_end = None  # the state moves past the epoch's end

    def on_train_end(self, logs=None):
        self.save_last_epoch()  # stopped after on_epoch_end had run; waits for the queued writes
        super().on_train_end(logs)

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
            self._current_epoch, self._last_batch_seen = self._unsaved_epoch_end, 0
            self._save_model()
        _atomic.wait_for_writes()
        return saved

    def _save_model(self):
        self._generation += 1
        # A snapshot read now; the files are written by tfvae's writer thread while training goes on.
        values = self._read(self._variables())
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
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
        current = os.path.join(self.backup_dir, _METADATA)
        if os.path.exists(current):
            if self.double_checkpoint:
                os.replace(current, current + ".bkp")  # a kill right here: the .bkp generation is whole
            else:
                os.unlink(current)
        _atomic.replace_text(current, json.dumps(metadata))
        self._remove_unreferenced()

    def _remove_unreferenced(self):
        keep = set()
        for name in (_METADATA, _METADATA + ".bkp"):
            try:
                with open(os.path.join(self.backup_dir, name)) as handle:
                    keep.add(json.load(handle).get("weights"))
            except (OSError, ValueError, AttributeError):
                pass
        for name in os.listdir(self.backup_dir):
            if name not in keep and (name.startswith("weights-") or name.startswith(".tmp-")
                                     or name.startswith("latest.weights.h5")):
                try:
                    os.unlink(os.path.join(self.backup_dir, name))
                except OSError:
                    pass


_METADATA = "training_metadata.json"


class _VariableReader:
    """Reads a list of variables in one compiled call (copying them one by one cost ~0.2 ms each).

    The tensors returned keep their values when the variables are updated
    afterwards (TensorFlow copies a variable's buffer before updating it in
    place while a read of it is alive).
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


class HistoryCSV(keras.callbacks.Callback):
    """Per-epoch metrics in a CSV file rewritten whole (temporary sibling, flush, rename) after each epoch end.

    The columns are those of `keras.callbacks.CSVLogger`: `epoch`, then the
    logged metrics in sorted order. A kill, a full disk or Ctrl-C leaves the
    file of an earlier epoch, never a cut row. The file is written by
    tfvae's writer thread while the next epoch trains (in order with
    `BackupAndRestore`'s backups); epochs that end while a write waits in
    the queue are written by that write, with all their rows, so a slow disk
    does not make the queue grow. It is whole on disk when `fit` returns.

    Args:
        path: the CSV file.
        append: keep the rows already in `path` (a resumed run) instead of
            starting a new file.

    Example:

    >>> model.fit(x, epochs=10, callbacks=[HistoryCSV("run/history.csv")])
    """

    def __init__(self, path, append=False):
        super().__init__()
        self.path = os.fspath(path)
        self.append = append
        self._header = None
        self._rows = []
        self._write = None  # the last write queued

    def on_train_begin(self, logs=None):
        _atomic.wait_for_writes()  # an earlier fit's rows, before reading them back
        self._header, self._rows = None, []
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="") as handle:
                lines = list(csv.reader(handle))
            if lines:
                self._header, self._rows = lines[0], lines[1:]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._header is None:
            self._header = ["epoch", *sorted(logs)]
        values = {"epoch": epoch, **logs}
        self._rows.append([_csv_value(values.get(name, "NA")) for name in self._header])
        if not _atomic.pending(self._write):  # else that write, not yet started, writes this row too
            self._write = _atomic.in_background(self._write_rows)

    def _write_rows(self):
        # Every row so far, read when the write runs (rows are only appended while `fit` runs).
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([self._header, *self._rows])
        _atomic.replace_text(self.path, text.getvalue())

    def on_train_end(self, logs=None):
        _atomic.wait_for_writes()


def _csv_value(value):
    if isinstance(value, (int, str)):
        return str(value)
    return repr(float(np.asarray(value).reshape(-1)[0]))


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C stops training at the next epoch end, with a backup; a second Ctrl-C stops at once.

    While `fit` runs (in the main thread), SIGINT no longer raises
    `KeyboardInterrupt` at a random point (possibly inside a backup write): the
    first one is noted and, at the next epoch end, `model.stop_training` is
    set, which makes `BackupAndRestore` (placed after this callback) write a
    backup of the finished epoch. A second SIGINT raises `KeyboardInterrupt`
    as usual (the atomic backups stay whole; `tfvae train` then writes the
    last finished epoch with `BackupAndRestore.save_last_epoch` when the
    model holds it, so only the epoch in progress is lost). The previous handler is put
    back at the end of `fit` or by `restore()`. A process that ignores SIGINT
    (started with `nohup` or as a shell's background job) keeps ignoring it.

    Attributes:
        stopped_epoch: the epoch (0-based) after which training stopped, or None.
        delay: seconds from the moment Python ran the handler of the first
            Ctrl-C to the stop, or None. (Python runs signal handlers only
            between its own instructions: while an epoch runs in one compiled
            call, at that call's end.)

    Example:

    >>> stop = StopOnInterrupt()
    >>> try:
    ...     model.fit(x, epochs=150, callbacks=[stop, BackupAndRestore("run/backup")])
    ... finally:
    ...     stop.restore()
    >>> stop.stopped_epoch   # None unless Ctrl-C was pressed
    """

    def __init__(self):
        super().__init__()
        self.stopped_epoch = self.delay = None
        self._requested_at = None
        self._previous = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = self.delay = self._requested_at = None
        if (threading.current_thread() is threading.main_thread() and self._previous is None
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            # A process started with SIGINT ignored (`nohup`, a shell's background job) keeps ignoring it.
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame):
        if self._requested_at is not None:
            raise KeyboardInterrupt
        self._requested_at = time.monotonic()
        # os.write, not print: the handler may run inside a print of the progress bar.
        os.write(2, b"\nCtrl-C: stopping at the end of this epoch with a backup (Ctrl-C again to stop at once)\n")

    def on_epoch_end(self, epoch, logs=None):
        if self._requested_at is not None and self.stopped_epoch is None:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            self.delay = time.monotonic() - self._requested_at

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self):
        """Puts the SIGINT handler that was there before `fit` back."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
