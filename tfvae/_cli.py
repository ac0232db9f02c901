"""What the command-line tools (`tfvae`, `tfvae-export`) share: usage errors, quiet start-up, one-line errors.

A library import changes nothing global; a command may. Both CLIs:

- parse with `Parser`, whose errors are `UsageError` (exit status 2) instead
  of argparse's usage block and `SystemExit`;
- import TensorFlow inside `quiet_tensorflow()`, which hides its native
  start-up chatter (fd 2 and `TF_CPP_MIN_LOG_LEVEL`) in the CLI process only;
- turn every exception into one line on stderr and an exit status with
  `exit_status`: 2 for bad input, 1 for a failure (a full disk, an unwritable
  folder, a busy run folder, any other error), 130 for Ctrl-C.

In a process of its own (`main()` without an argument list), each command
also imports outside the garbage collector and freezes what its imports leave
(`start_up_outside_gc`), and holds a Ctrl-C until its imports are done
(`ctrl_c_held`) and keeps the programs XLA compiles for the next run
(`tfvae.xla_cache`): all through `command_start_up`.

    def main(argv=None):
        try:
            args = Parser(prog="tfvae").parse_args(argv)
            ...
        except BaseException as error:
            return exit_status("tfvae train", error)
"""

import argparse
import contextlib
import gc
import os
import signal
import sys
import threading

from tfvae import xla_cache

#: Exit statuses of the CLIs.
OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad command line, reported as one line like every other error (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose errors raise `UsageError` naming `PROG --help`; `--help` shows defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


@contextlib.contextmanager
def quiet_tensorflow():
    """Imports TensorFlow with its native start-up notices hidden; for CLIs only.

    TensorFlow's C++ runtime writes CUDA probes and CPU-feature notices
    straight to file descriptor 2 when it loads, which no environment
    variable of TF 2.21 silences; they would bury a CLI's one-line error.
    Inside this block fd 2 points to /dev/null while TensorFlow is imported
    (and its runtime started); `TF_CPP_MIN_LOG_LEVEL` defaults to 2 (errors
    only) for the rest of the process unless the user set it. Python-level
    exceptions propagate unchanged.

    Example:

    >>> from tfvae._cli import quiet_tensorflow
    >>> with quiet_tensorflow():
    ...     import tensorflow   # loaded and started without its start-up lines
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_output_hidden((2,)):
        import tensorflow as tf

        # The first op initializes the runtime, which logs too. Not in a multi-worker job
        # (TF_CONFIG set): MultiWorkerMirroredStrategy has to configure collective ops first.
        if not os.environ.get("TF_CONFIG"):
            tf.constant(0.0) + 1.0
        yield


@contextlib.contextmanager
def command_start_up(own_process):
    """A command's imports: in its own process inside `ctrl_c_held` and `start_up_outside_gc`, else as they are.

    Args:
        own_process: True when the command runs in a process of its own
            (its `main` was called without an argument list), False when
            called from Python.

    Example:

    >>> from tfvae._cli import command_start_up, quiet_tensorflow
    >>> argv = ["evaluate", "runs/digits"]   # main(argv) called from Python: not the command's own process
    >>> with command_start_up(own_process=argv is None), quiet_tensorflow():
    ...     from tfvae import run
    """
    if not own_process:
        yield
        return
    xla_cache.enable()  # the command's process is its own: XLA programs are kept across runs
    with ctrl_c_held(), start_up_outside_gc():
        yield


@contextlib.contextmanager
def start_up_outside_gc():
    """A command's start-up (its imports) without cyclic garbage collection; what it leaves is frozen after.

    For a command's own process only. Importing TensorFlow, Keras and
    TensorFlow Probability creates about half a million objects that live as
    long as the process, and Python's collector keeps walking them: full
    collections during the imports, and one more after them, cost a
    noticeable part of a command's start-up. In this block the
    collector is off; at its end the objects alive are frozen (`gc.freeze`,
    left out of every later collection) and the collector is switched back
    on for newer objects, at the price of the little garbage the imports
    leave being kept for good. Never in a
    library call: a caller's objects frozen here could not be collected once
    they become garbage in a reference cycle.

    Example:

    >>> import gc
    >>> from tfvae._cli import start_up_outside_gc
    >>> with start_up_outside_gc():
    ...     import tensorflow   # in a command's own process, before its work
    >>> gc.isenabled(), gc.get_freeze_count() > 0   # on again; the start-up's objects left out of collections
    (True, True)
    >>> gc.unfreeze()   # here, in a session of yours: give them back to the collector
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def ctrl_c_held():
    """Holds a Ctrl-C (SIGINT) that arrives in the block and raises it as `KeyboardInterrupt` at the block's end.

    For a command's imports, in its own process. Some modules run code
    through CPython's `PyRun_*` functions while they load; a
    `KeyboardInterrupt` raised inside such code leaves a flag behind, and
    the interpreter then ends the process with SIGINT (status -2 to a
    parent such as `subprocess`) even after the command caught the
    interrupt and returned 130 (rare: a Ctrl-C at a random moment of the
    imports). Held until the imports are done, the
    interrupt is raised in the command's own code, which reports it and
    exits with 130. The block runs as it is where Python does not deliver
    SIGINT as `KeyboardInterrupt` (ignored, or another handler installed) or
    off the main thread.

    Example:

    >>> from tfvae._cli import ctrl_c_held
    >>> with ctrl_c_held():
    ...     import tensorflow   # a Ctrl-C here is raised after the import
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def native_output_hidden(descriptors=(1, 2)):
    """Points the file `descriptors` at /dev/null for the block; for CLIs only.

    Hides what native code (TensorFlow's runtime, the LiteRT converter)
    writes straight to the descriptors; Python-level exceptions propagate.

    Example:

    >>> import os
    >>> from tfvae._cli import native_output_hidden
    >>> with native_output_hidden():
    ...     written = os.write(2, b"fully_quantize: 0")   # as the converter's native code writes: not shown
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved = [os.dup(descriptor) for descriptor in descriptors]
    devnull = os.open(os.devnull, os.O_WRONLY)
    for descriptor in descriptors:
        os.dup2(devnull, descriptor)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for descriptor, copy in zip(descriptors, saved):
            os.dup2(copy, descriptor)
            os.close(copy)
        os.close(devnull)


def one_line(error):
    """The message of `error` on one line; an `OSError` names its file and cause.

    Example:

    >>> from tfvae._cli import one_line
    >>> one_line(OSError(28, "No space left on device", "runs/x/model.keras"))
    "'runs/x/model.keras': No space left on device (errno 28)"
    """
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{os.fspath(error.filename)!r}: {' '.join(error.strerror.split())} (errno {error.errno})"
    return " ".join(str(error).split()) or type(error).__name__


def exit_status(command, error, bad_input=(UsageError, ValueError, TypeError), stream=None):
    """Reports `error` as one line `COMMAND: error: ...` on stderr and returns the exit status.

    Args:
        command: the name the line starts with, e.g. `"tfvae train"`.
        error: the exception that ended the command.
        bad_input: the exception types that mean bad input (exit status 2).
        stream: where to write (default `sys.stderr`).

    Returns:
        2 for `bad_input`, 130 for `KeyboardInterrupt` (its own message is
        printed if it has one), the code of a `SystemExit` (`--help`), else
        1 (`OSError` such as a full disk, and anything else).
    """
    stream = stream or sys.stderr
    if isinstance(error, SystemExit):
        return error.code or 0
    if isinstance(error, KeyboardInterrupt):
        print(f"{command}: interrupted{': ' + one_line(error) if str(error) else ''}", file=stream, flush=True)
        return INTERRUPTED
    known = isinstance(error, (*bad_input, OSError, RuntimeError))
    message = one_line(error) if known else f"{type(error).__name__}: {one_line(error)}"
    print(f"{command}: error: {message}", file=stream, flush=True)
    return BAD_INPUT if isinstance(error, bad_input) else FAILED
