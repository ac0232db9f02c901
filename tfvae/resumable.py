"""Resumable runs: backups inside the run folder and a history that continues.

While `tfvae train` runs, `RUN_DIR/backup/` holds the weights, optimizer
state and epoch of the last backup (`tfvae.callbacks.BackupAndRestore`,
every `backup_every` batches; two generations, so a kill while writing one
still leaves the other). A finished run deletes it. If the process is
killed, the same command with `--resume` (`tfvae.run.train(..., resume=True)`)
restores the backup and continues with the epoch it was in, appending to
`history.csv`:

    RUN_DIR/run.json      the options; a resume must use the same ones
    RUN_DIR/backup/       latest.weights.h5, training_metadata.json {"epoch": ...}
    RUN_DIR/history.csv   one row per finished epoch; rows of the interrupted
                          epoch (or later) are dropped before resuming
"""

import csv
import json
import os

import keras

from tfvae import _checks
from tfvae.callbacks import BackupAndRestore

BACKUP = "backup"
HISTORY = "history.csv"
RUN_JSON = "run.json"
#: Batches between two backups: often enough to lose little, rarely enough to cost little.
BACKUP_EVERY = 50


def backup_dir(out):
    """The backup folder of the run folder `out`."""
    return os.path.join(out, BACKUP)


def prepare(out, options, resume):
    """Checks that a run may start (or resume) in `out`; drops the history of epochs to redo.

    Args:
        out: the run folder.
        options: the JSON-serializable options of the run, as written to `run.json`.
        resume: whether to continue the interrupted run in `out`.

    Returns:
        The epoch training starts with (0, or the epoch of the backup).

    Raises:
        ValueError: if `out` holds an interrupted run and `resume` is False,
            holds nothing to resume and `resume` is True, or was started with
            other options than `options`.
    """
    backup = backup_dir(out)
    interrupted = os.path.exists(os.path.join(backup, "training_metadata.json"))
    if not resume:
        if interrupted:
            raise ValueError(
                _checks.invalid(
                    "resume", f"True: {out!r} holds an interrupted run (its backup is {backup!r})", resume,
                    "Pass --resume (resume=True) to continue it, or delete the backup folder to start over",
                )
            )
        return 0
    if not interrupted:
        raise ValueError(
            _checks.invalid(
                "resume", f"False: {out!r} holds no backup to resume from", resume,
                "The run finished, or was stopped before its first backup: train without --resume",
            )
        )
    _check_same_options(out, options)
    epoch = int(_read_json(os.path.join(backup, "training_metadata.json"))["epoch"])
    _truncate_history(os.path.join(out, HISTORY), epoch)
    return epoch


def callbacks(out, resume, backup_every=BACKUP_EVERY):
    """The callbacks that make a run resumable: the backup and the CSV history.

    Args:
        out: the run folder.
        resume: whether `history.csv` is appended to.
        backup_every: batches between two backups.

    Returns:
        `[tfvae.callbacks.BackupAndRestore, keras.callbacks.CSVLogger]`.
    """
    backup_every = _checks.positive_int("backup_every", backup_every)
    return [
        BackupAndRestore(backup_dir(out), save_freq=backup_every, double_checkpoint=True),
        keras.callbacks.CSVLogger(os.path.join(out, HISTORY), append=resume),
    ]


def read_history(out):
    """The per-epoch metrics of `out/history.csv` as `{name: [values]}` (floats)."""
    with open(os.path.join(out, HISTORY), newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in rows] for name in names}


def _check_same_options(out, options):
    path = os.path.join(out, RUN_JSON)
    recorded = _read_json(path) if os.path.exists(path) else {}
    for name, value in options.items():
        if name in recorded and json.loads(json.dumps(value)) != recorded[name]:
            raise ValueError(
                _checks.invalid(
                    name, f"{recorded[name]!r}, the value recorded in {path} for the run being resumed", value,
                    "Resume with the options the run was started with",
                )
            )


def _truncate_history(path, epoch):
    """Drops the rows of epochs >= `epoch`: they are trained again."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    # A row cut short by the kill has no newline yet.
    kept = lines[:1] + [line for line in lines[1:] if line.endswith("\n") and int(line.split(",", 1)[0]) < epoch]
    with open(path, "w", newline="") as handle:
        handle.writelines(kept)


def _read_json(path):
    with open(path) as handle:
        return json.load(handle)
