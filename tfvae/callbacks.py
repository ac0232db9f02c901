"""Keras callbacks that keep a run's work when training goes wrong.

`TerminateOnNonFinite` stops at the first non-finite loss and puts back the
last weights that gave a finite one (`keras.callbacks.TerminateOnNaN` stops
but leaves the broken weights in the model). `BackupAndRestore` (defined in
`tfvae.backup`) backs a run up in files that appear whole or not at all, in
two generations, and resumes at the right epoch. `HistoryCSV` is Keras'
`CSVLogger` whose file is rewritten whole after each epoch end.
`StopOnInterrupt` turns Ctrl-C into a stop at the next epoch end, with a
backup.
"""

import csv
import io
import math
import os
import signal
import threading
import time

import keras
import numpy as np

from tfvae import _atomic
from tfvae.backup import BackupAndRestore, VariableReader  # BackupAndRestore: tfvae.callbacks' public name


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

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.callbacks import TerminateOnNonFinite
    >>> x = np.random.default_rng(0).random((64, 6), "float32")
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile()
    >>> stop = TerminateOnNonFinite()
    >>> history = model.fit(x, epochs=2, verbose=0, callbacks=[stop])
    >>> stop.message is None   # a sentence if the loss became NaN: the model then holds the last good weights
    True
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
        self._read = VariableReader()

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

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.callbacks import HistoryCSV
    >>> x = np.random.default_rng(0).random((64, 6), "float32")
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile()
    >>> history = model.fit(x, epochs=2, verbose=0, callbacks=[HistoryCSV("history.csv")])
    >>> print(open("history.csv").read())
    epoch,kl,loss,reconstruction
    0,...
    1,...
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

    >>> import numpy as np
    >>> import tfvae
    >>> from tfvae.callbacks import BackupAndRestore, StopOnInterrupt
    >>> x = np.random.default_rng(0).random((64, 6), "float32")
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile()
    >>> stop = StopOnInterrupt()
    >>> try:
    ...     history = model.fit(x, epochs=2, verbose=0, callbacks=[stop, BackupAndRestore("backup")])
    ... finally:
    ...     stop.restore()
    >>> print(stop.stopped_epoch)   # the epoch it stopped after, had Ctrl-C been pressed
    None
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
