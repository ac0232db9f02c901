"""Atomic writes: artifacts appear whole or not at all.

Each artifact is written to a temporary sibling (`.NAME.tmp-XXXX`, same
directory, hence the same file system) and renamed into place only when
everything succeeded. Several targets (for example a file and the folder
it describes) can be committed together: if one rename fails, the ones already done are rolled
back and the previous artifacts restored. On any failure no partial artifact
and no temporary file is left, and an existing artifact is untouched.

    with Staging([saved_model_dir], overwrite=False) as staging:
        model.export(staging.temp(saved_model_dir))
    # renamed into place here

A single file is replaced in one rename (`replacing`): a reader, or a kill,
sees the old file or the new one, never a mix and never neither.

    with replacing(path) as temporary:
        model.save(temporary)   # the temporary name ends with the file's own name

Writes made while training runs (backups, history.csv) can be queued with
`in_background`: one thread runs them in order while the next epoch trains,
and `wait_for_writes` blocks until they are on disk.
"""

import collections
import concurrent.futures
import contextlib
import os
import pathlib
import shutil
import threading
import uuid

# Queued writes not yet known to be done (called from one thread, the one that trains); a write
# that failed is raised by the next call. Backups replace each other and history.csv is written
# once for any number of epochs that end while it waits, so a slow disk never fills the queue:
# the bound is a guard for other writers.
MAX_QUEUED_WRITES = 4
_queue = collections.deque()
_state = {"executor": None, "error": None}
_state_lock = threading.Lock()


def check_targets(targets, overwrite):
    """Raises if a target exists and `overwrite` is False.

    Raises:
        FileExistsError: naming the path and `overwrite`.
    """
    for target in targets:
        if not overwrite and os.path.lexists(target):
            raise FileExistsError(
                f"{os.fspath(target)!r} already exists; pass overwrite=True (tfvae-export: --overwrite) "
                "to replace it, or choose another path. It was left untouched."
            )


class Staging:
    """Context manager that stages artifacts and commits them atomically.

    Args:
        targets: the final paths (files or directories).
        overwrite: whether existing targets may be replaced.

    Raises:
        FileExistsError: on entry and again at commit, if a target exists
            and `overwrite` is False.
    """

    def __init__(self, targets, overwrite):
        self.targets = [pathlib.Path(target) for target in targets]
        self.overwrite = overwrite
        self._temps = {}
        self._created_dirs = []

    def temp(self, target):
        """The temporary sibling to write `target` to (not created)."""
        target = pathlib.Path(target)
        if target not in self._temps:
            self._temps[target] = _sibling(target, "tmp")
        return self._temps[target]

    def __enter__(self):
        check_targets(self.targets, self.overwrite)
        for target in self.targets:
            self._make_parents(target.parent)
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            try:
                self._commit()
            except BaseException:
                self._discard()
                raise
        else:
            self._discard()
        return False

    def _make_parents(self, directory):
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            path.mkdir()
            self._created_dirs.append(path)

    def _commit(self):
        check_targets(self.targets, self.overwrite)
        for target in self.targets:
            if target not in self._temps or not os.path.lexists(self._temps[target]):
                raise RuntimeError(f"internal error: nothing was staged for {os.fspath(target)!r}")
        done = []  # (target, backup or None)
        try:
            for target in self.targets:
                backup = None
                if os.path.lexists(target):
                    backup = _sibling(target, "old")
                    os.replace(target, backup)
                done.append((target, backup))
                os.replace(self._temps[target], target)
        except BaseException:
            _roll_back(done)
            raise
        for _, backup in done:
            if backup is not None:
                _remove(backup)
        _sync_dirs({target.parent for target in self.targets})

    def _discard(self):
        for temp in self._temps.values():
            _remove(temp)
        for directory in reversed(self._created_dirs):
            try:
                directory.rmdir()
            except OSError:
                pass


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary sibling to write `path`'s new content to; renames it over `path` on success.

    The temporary file is in the same directory (the same file system), hidden
    (`.tmp-XXXXXXXX.NAME`: it ends with the target's own name, so writers that
    check the extension, such as `keras.Model.save`, accept it), flushed to disk
    before the rename, and removed if the block raises (including
    `KeyboardInterrupt`). The previous `path`, if any, stays untouched until
    the rename.

    Args:
        path: the file to write.

    Yields:
        The temporary path (a `pathlib.Path`, not created).

    Raises:
        OSError: from the writer, the flush or the rename (full disk,
            unwritable folder); `path` is then as it was.

    Example:

    >>> from tfvae._atomic import replacing, write_text
    >>> with replacing("metrics.json") as temporary:
    ...     write_text(temporary, '{"elbo": -18.2}')
    >>> open("metrics.json").read()
    '{"elbo": -18.2}'
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}.{path.name}")
    try:
        yield temporary
        _fsync_file(temporary)
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        # Name the file the user knows (not the temporary one, nor none: h5py's errors name no file).
        raise OSError(error.errno, error.strerror or " ".join(str(error).split()), os.fspath(path)) from error
    except BaseException:
        _remove(temporary)
        raise
    _sync_dirs({path.parent})


def in_background(write, *args, replaces=None):
    """Queues `write(*args)` to run in tfvae's writer thread, after the writes queued before it.

    The caller's thread goes on at once (the write must own its data: a
    snapshot, not something the caller changes afterwards). A write that
    makes an earlier one pointless (a newer backup) names it in `replaces`:
    if that one has not started, it is dropped, so a slow disk makes the
    queue skip stale writes instead of growing or holding up training. At
    most `MAX_QUEUED_WRITES` writes wait; one more waits for the oldest
    first. A write that raises drops the writes queued after it (so that,
    for example, no backup lands after a history.csv that failed), and its
    error is raised by the next `in_background` or `wait_for_writes` call.
    The thread finishes the queue before the interpreter exits; a kill
    loses the writes not done, each whole or absent (they are atomic).

    Args:
        write: a function, usually one that writes files with `replacing`.
        *args: its arguments.
        replaces: None, or what an earlier call returned: that write is
            dropped if it has not started (else it runs to its end first).

    Returns:
        A handle of this write, for `replaces` and `pending`.

    Raises:
        OSError (or whatever a queued write raised): the error of an earlier
            write, which then did not happen.

    Example:

    >>> from tfvae._atomic import in_background, replace_text, wait_for_writes
    >>> handle = in_background(replace_text, "history.csv", "epoch,loss")
    >>> wait_for_writes()   # history.csv is on disk
    >>> open("history.csv").read()
    'epoch,loss'
    """
    _raise_failure()
    with _state_lock:
        if _state["executor"] is None:
            _state["executor"] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tfvae-writes")
        executor = _state["executor"]
    if replaces is not None and replaces.cancel():  # False once it runs: it then finishes first
        _queue.remove(replaces)  # (a cancelled handle's `result` raises)
    while _queue and _queue[0].done():
        _queue.popleft()
    while len(_queue) >= MAX_QUEUED_WRITES:
        _queue.popleft().result()
    handle = executor.submit(_run_queued, write, args)
    _queue.append(handle)
    return handle


def pending(handle):
    """Whether the write of `handle` (from `in_background`) is queued and has not started."""
    return handle is not None and not (handle.running() or handle.done())


def wait_for_writes(raise_error=True):
    """Blocks until every write queued with `in_background` is done.

    Args:
        raise_error: raise the error of a write that failed (else it is
            dropped: for a caller already handling another error).

    Raises:
        OSError (or whatever the write raised): if a queued write failed.
    """
    while _queue:
        _queue[0].result()  # a Ctrl-C here leaves the write queued
        _queue.popleft()
    if raise_error:
        _raise_failure()
    else:
        _state["error"] = None


def _run_queued(write, args):
    if _state["error"] is not None:
        return  # an earlier write failed: the later ones are dropped
    try:
        write(*args)
    except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
        _state["error"] = error


def _raise_failure():
    if _state["error"] is None:
        return
    while _queue:  # the writes queued after the failed one are being dropped
        _queue.popleft().result()
    error, _state["error"] = _state["error"], None
    raise error


def write_bytes(path, data):
    """Writes `data` to `path` and flushes it to disk."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path, text):
    """Writes UTF-8 `text` to `path` and flushes it to disk."""
    write_bytes(path, text.encode("utf-8"))


def replace_text(path, text):
    """Writes UTF-8 `text` to `path`, whole or not at all (see `replacing`)."""
    with replacing(path) as temporary:
        write_text(temporary, text)


def tree_size(path):
    """Bytes of a file, or of all files under a directory."""
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _fsync_file(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sibling(target, tag):
    return target.with_name(f".{target.name}.{tag}-{uuid.uuid4().hex[:8]}")


def _roll_back(done):
    for target, backup in reversed(done):
        # Whatever is at `target` now is the new artifact: the old one, if
        # any, was moved to `backup` before.
        _remove(target)
        if backup is not None:
            os.replace(backup, target)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _sync_dirs(directories):
    for directory in directories:
        try:
            descriptor = os.open(directory, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)
