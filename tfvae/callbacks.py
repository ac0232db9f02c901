"""Keras callbacks that keep a run's work when training goes wrong.

`TerminateOnNonFinite` stops at the first non-finite loss and puts back the
last weights that gave a finite one (`keras.callbacks.TerminateOnNaN` stops
but leaves the broken weights in the model). `BackupAndRestore` is Keras'
callback of that name with the epoch of mid-epoch backups kept right after
a resume.
"""

import math

import keras
import numpy as np


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and restores the last good weights.

    Before every batch the weights are copied (in host memory); the loss
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

    def on_train_begin(self, logs=None):
        self.message = self.stopped_epoch = self.stopped_batch = None
        self._good = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._before_batch = self.model.get_weights()

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
            keras.utils.io_utils.print_msg(self.message)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that records the right epoch after a resume.

    Keras' callback counts epochs from 0 in every `fit` and learns the
    epoch only at an epoch's end, so a mid-epoch backup (`save_freq` an
    integer) written in the first epoch of a resumed run records epoch 0:
    a second interruption there would restart the run from its first epoch.
    This subclass takes the epoch from `on_epoch_begin`. It also counts the
    batches of an epoch's first compiled call in full: Keras starts the
    count of each epoch at batch index 0 instead of -1, so with
    `steps_per_execution` above 1 each epoch lost one batch towards
    `save_freq`.

    Keras restores the weights and optimizer state of the last backup and
    restarts the interrupted epoch from its first batch.

    Args:
        backup_dir: the directory of the backup (used by nothing else).
        save_freq: `"epoch"` or a number of batches between backups.
        **kwargs: further `keras.callbacks.BackupAndRestore` arguments.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        self._last_batch_seen = -1  # the batch "before" index 0: the next call adds batch + 1
