"""Keeps TensorFlow's native start-up chatter out of the command-line tools."""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Sends file descriptor 2 to /dev/null for the duration of the block.

    TensorFlow's C++ runtime writes notices (CUDA probes on a CPU machine,
    CPU feature flags) straight to fd 2 when it loads, which no environment
    variable of TF 2.21 silences. The CLIs import TensorFlow inside this
    block so that an error is the one line the user reads. Python-level
    exceptions still propagate; only the native writes are hidden.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
