"""Resumable runs: backups inside the run folder and a history that continues.

While `tfvae train` runs, `RUN_DIR/backup/` holds the weights, optimizer
state and epoch of the last two backups (`tfvae.backup.BackupAndRestore`:
at the first epoch end past every `backup_every` batches, at the last epoch
and when Ctrl-C stops the run; each written whole or not at all). The
backup is deleted only once `model.keras`, the metrics and the plots are
written. If the process is stopped, the same command with `--resume`
(`tfvae.run.train(..., resume=True)`) restores the newest whole backup
(saying so when it falls back to the previous one) and continues with the
epoch after it, keeping the rows of `history.csv` before it:

    RUN_DIR/run.json      the options; a resume must use the same ones
    RUN_DIR/backup/       training_metadata.json {"epoch": ..., "weights": ..., "sha256": ...},
                          its .bkp (the previous generation), weights-NNNNNN.npz
    RUN_DIR/history.csv   one row per finished epoch; rows of the epoch resumed
                          (or later) are dropped before resuming

`--resume` on a folder whose run stopped before its first backup (or with
no run at all) starts from the beginning and says so, as Keras'
`BackupAndRestore` does, so that a retry loop around the command finishes.
"""

import csv
import json
import os
import shutil

from tfvae import _checks, run_folder
from tfvae.callbacks import BackupAndRestore, HistoryCSV, StopOnInterrupt

BACKUP = run_folder.BACKUP
HISTORY = run_folder.HISTORY
RUN_JSON = run_folder.RUN_JSON
#: Batches between two backups: often enough to lose little, rarely enough to cost little.
BACKUP_EVERY = 50


def backup_dir(out):
    """The backup folder of the run folder `out`."""
    return os.path.join(out, BACKUP)


def prepare(out, options, resume, overwrite=False):
    """Checks that a run may start (or resume) in `out` and gets the folder ready.

    Call it while holding `run_folder.lock(out)`.

    Args:
        out: the run folder.
        options: the JSON-serializable options of the run, as written to `run.json`.
        resume: whether to continue the run in `out`.
        overwrite: whether to delete the run in `out` (its exports included) and start anew.

    Returns:
        `(epoch, note)`: the epoch training starts with (0, or the epoch of the
        backup), and None or a sentence for the user (starting from the
        beginning, falling back to the previous backup).

    Raises:
        ValueError: if `out` holds a run and neither `resume` nor `overwrite`
            is given, `resume` is given for a finished run, or
            the run was started with other options than `options`.
    """
    if overwrite:
        run_folder.clear(out)
        return 0, None
    backup = backup_dir(out)
    if not resume:
        if run_folder.holds_run(out):
            overwrite_hint = "--overwrite (overwrite=True) to delete it (exports included) and train anew"
            if not os.path.exists(backup) and os.path.exists(os.path.join(out, run_folder.MODEL)):
                hint = f"It holds a finished run. Pass {overwrite_hint}"
            else:
                state = "an interrupted run" if os.path.exists(backup) else "an unfinished run"
                hint = f"It holds {state}. Pass --resume (resume=True) to continue it, or {overwrite_hint}"
            raise ValueError(_checks.invalid("out", "a folder without a run", out, hint))
        return 0, None
    _check_same_options(out, options)
    metadata, _, note = BackupAndRestore.latest_backup(backup)
    if metadata is None:
        if os.path.exists(os.path.join(out, run_folder.MODEL)) and not os.path.exists(backup):
            raise ValueError(
                _checks.invalid("resume", f"False: {out!r} holds a finished run (model.keras)", resume,
                                "Pass --overwrite (overwrite=True) to train it anew")
            )
        reason = f"{note}, so" if note else "no backup yet (it stopped before its first one, or never started):"
        note = f"{out}: {reason} training starts from the beginning"
        for name in (HISTORY, BACKUP):
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.unlink(path)
        return 0, note
    epoch = int(metadata["epoch"])
    truncate_history(os.path.join(out, HISTORY), epoch)
    return epoch, note


def callbacks(out, resume, backup_every=BACKUP_EVERY):
    """The callbacks that make a run resumable, in the order they must run.

    Args:
        out: the run folder.
        resume: whether `history.csv` is appended to.
        backup_every: batches between two backups.

    Returns:
        `[HistoryCSV, StopOnInterrupt, BackupAndRestore]` (tfvae.callbacks):
        an epoch's row is in `history.csv` before its backup is made, and
        Ctrl-C's stop is known when the backup decides whether to write.
        Call `StopOnInterrupt.restore()` when `fit` raises.
    """
    backup_every = _checks.positive_int("backup_every", backup_every)
    return [
        HistoryCSV(os.path.join(out, HISTORY), append=resume),
        StopOnInterrupt(),
        BackupAndRestore(backup_dir(out), save_freq=backup_every, double_checkpoint=True, delete_checkpoint=False),
    ]


def finish(out):
    """Deletes the backup of a run whose final files are all written."""
    shutil.rmtree(backup_dir(out), ignore_errors=True)


def read_history(out):
    """The per-epoch metrics of `out/history.csv` as `{name: [values]}` (floats)."""
    with open(os.path.join(out, HISTORY), newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [name for name in (rows[0] if rows else {}) if name != "epoch"]
    return {name: [float(row[name]) for row in rows] for name in names}


def _check_same_options(out, options):
    path = os.path.join(out, RUN_JSON)
    recorded = run_folder.read_options(out) if os.path.exists(path) else {}
    for name, value in options.items():
        if name in recorded and json.loads(json.dumps(value)) != recorded[name]:
            raise ValueError(
                _checks.invalid(
                    name, f"{recorded[name]!r}, the value recorded in {path} for the run being resumed", value,
                    "Resume with the options the run was started with",
                )
            )


def truncate_history(path, epoch):
    """Drops the rows of epochs >= `epoch` from a history CSV (they are trained again), atomically."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    # A row cut short (a file written by an older tfvae, killed mid-row) has no newline.
    kept = lines[:1] + [line for line in lines[1:] if line.endswith("\n") and int(line.split(",", 1)[0]) < epoch]
    if kept != lines:
        run_folder.write_text(path, "".join(kept))
