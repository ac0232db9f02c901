"""Whether the epoch loop runs a fit's full batches under XLA: the rule of `tfvae.epoch_loop`.

The rule is stated once, in `tfvae.epoch_loop`'s docstring; this module
holds its constants and pieces: `choose` (from `compile`'s `jit_compile`,
the fit's number of steps and op determinism), `slow_under_xla` (from the
traced step's ops) and `XLAOrPlain` (a step XLA cannot compile goes on
without it). Nothing here times the machine.
"""

import tensorflow as tf

from tfvae import _tested_versions

#: With jit_compile="auto", a fit of fewer training steps (epochs x batches per
#: epoch) never compiles XLA: a shorter fit does not repay XLA's compile time
#: (the rule, and how to check it for a model: `tfvae.epoch_loop`).
AUTO_XLA_MIN_STEPS = 5000

#: Words in TensorFlow op type names that keep a step out of XLA under "auto":
#: convolutions and pooling (Conv2D, Conv2DBackpropInput/Filter, MaxPool,
#: AvgPoolGrad...; XLA's CPU kernels for them are far slower) and loops
#: (While, StatelessWhile: a recurrent layer).
SLOW_UNDER_XLA = ("Conv", "Pool", "While")


def op_determinism_enabled():
    """Whether `tf.config.experimental.enable_op_determinism()` is in effect (True when unknown).

    TensorFlow has no public getter for it; Keras' own `jit_compile="auto"`
    reads the same private function. It is read only on a TensorFlow of
    `tfvae._tested_versions.TESTED_TENSORFLOW`; on another one this returns
    True, so that "auto" stays off XLA (the safe side: no other noise).
    """
    if not _tested_versions.tensorflow_is_tested():
        return True
    from tensorflow.python.framework.config import is_op_determinism_enabled  # private-ok: see docs/design.md

    return is_op_determinism_enabled()


def choose(jit_compile, kind, steps):
    """XLA for `kind`'s full batches: True, False, or "graph" (decided by `slow_under_xla` on the step).

    Args:
        jit_compile: `compile`'s `jit_compile`: True, False or "auto".
        kind: "train" or "test".
        steps: the training steps the fit runs (epochs x batches per epoch).

    Returns:
        `jit_compile` itself when it is True or False; with "auto", False
        for "test", with op determinism on, or below `AUTO_XLA_MIN_STEPS`
        steps, else "graph".

    Example:

    >>> from tfvae.xla_choice import choose
    >>> choose("auto", "train", 150 * 23)   # the digits' default fit
    False
    """
    if jit_compile != "auto":
        return bool(jit_compile)
    if kind != "train" or steps < AUTO_XLA_MIN_STEPS or op_determinism_enabled():
        return False
    return "graph"


def trace_for_xla(step):
    """Traces the `tf.function` `step` inside an XLA function, not compiled; False if TensorFlow refused.

    TensorFlow builds the gradients of loops and branches (a recurrent
    layer, `keras.ops.cond`) in a form XLA compiles only when they are
    traced inside an XLA function; that form also runs without XLA.
    """
    try:
        tf.function(lambda *batch: step(*batch), input_signature=step.input_signature, jit_compile=True,
                    autograph=False).get_concrete_function()
    except Exception:  # noqa: BLE001 - traced again without XLA by its first caller, which raises a real error
        return False
    return True


def slow_under_xla(concrete_function):
    """Whether a traced function (its loop bodies included) holds an op named in `SLOW_UNDER_XLA`."""
    graph = concrete_function.graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    op_types.update(node.op for function in graph.library.function for node in function.node_def)
    return any(word in op_type for op_type in op_types for word in SLOW_UNDER_XLA)


class XLAOrPlain:
    """An epoch under XLA, or, if XLA cannot compile the step, without it for the rest of the fit.

    A step XLA cannot compile (an op without an XLA kernel, such as
    `tf.numpy_function`, or a `tf.while_loop` without `maximum_iterations`)
    raises in the first call, before any step ran; that call and the
    following ones then run without XLA, and `xla_error` keeps the error.

    Args:
        xla: `run()` of the epoch under XLA.
        make_plain: `() -> run()` of the same epoch without XLA (built on demand).
    """

    def __init__(self, xla, make_plain):
        self.xla, self.make_plain = xla, make_plain
        self.plain = self.xla_error = None
        self.uses_xla = True
        self.calls = 0

    def trace(self):
        """Traces the function the first call runs."""
        self.xla.trace()

    def __call__(self):
        self.calls += 1
        if self.uses_xla:
            try:
                return self.xla()
            except tf.errors.OpError as error:
                if self.calls > 1:  # XLA compiled and ran before: a real error of the step
                    raise
                self.uses_xla, self.xla_error, self.plain = False, error, self.make_plain()
        return self.plain()
