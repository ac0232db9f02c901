"""A whole training epoch in one compiled function, behind the ordinary `fit`.

On a CPU a small VAE's training step costs far more in per-step overhead
(a `tf.function` call, the `tf.data` iterator, Python callbacks) than in
arithmetic: a 64-128-128-8 MLP at batch 64 spends a few percent of each
Keras step multiplying matrices. `EpochLoop.fit` therefore runs, for data
held in memory, one `tf.function` per epoch:

    order = argsort(stateless_uniform([n], seed))    # a fresh shuffle
    for i in tf.range(ceil(n / batch_size)):          # an in-graph loop
        train_step(gather(data, order[i*b:(i+1)*b]))   # Adam applied inside

and validation on in-memory `validation_data` the same way (one compiled
call per epoch over `test_step`, no shuffle), instead of Keras' `evaluate`
with its data adapter and iterator each epoch; `evaluate` on arrays (with
`verbose=0, return_dict=True`) reuses that function. The validation
function is traced in a thread while the first epoch's compiled call runs
(it leaves Python free), after the training step's own trace. The step is traced once
(for any batch size, without autograph for tfvae's own steps). The epoch's
own call resets the metrics at its start (Keras' `reset_metrics` before it
only marks them for that) and returns their results at its end, which Keras
reads next (`get_metrics_result`).

Whether the full batches run under XLA (`jit_compile="auto"`, Keras'
default) is decided during each fit, by measuring:

* never with op determinism on (as Keras' own "auto"), or when the traced
  step contains a convolution or pooling op (`SLOW_UNDER_XLA`: any op type
  whose name holds one of those words, whatever layer or custom code
  emitted it), and never for validation (a few batches an epoch);
* otherwise the fit starts without XLA and times the epochs after the
  first (as many as take 0.25 s, 1 to 5). When the remaining epochs would
  take `AUTO_XLA_MIN_SECONDS` or more at the fastest timed speed, XLA is
  compiled in the next epoch and its epochs are timed: it is kept as soon
  as one beats the fastest epoch without it, and given up after as many as
  were timed without it, and at least 2, that did not (`_TimedXLAChoice`).
  Under XLA the loop takes the full batches and the partial last batch
  runs after it without XLA, so that XLA compiles one step, not two;
* when the fit may use XLA, the step is traced (not compiled) inside an
  XLA function, so that both loops share one trace: TensorFlow builds the
  gradients of loops and branches (a recurrent layer, `keras.ops.cond`)
  for XLA only there, and they run without XLA too (a GRU VAE's plain
  epochs ran about 5% slower from that trace than from one made without
  XLA; a second trace would cost seconds instead). A step TensorFlow
  refuses to trace there is traced without XLA and kept off it; a step
  that XLA cannot compile (an op without an XLA kernel, such as
  `tf.numpy_function`, or a `tf.while_loop` without `maximum_iterations`)
  fails before it runs, and the fit goes on without XLA.

Measured on this 2-core CPU (bench/run.py, docs/benchmarks.md): XLA runs
dense models' epochs a third to a half faster (the digits MLP, the
784-512-512-32 MLP) but compiling costs about 2 s more, which a 150-epoch
fit on the digits (2 to 3 s of epochs) does not repay and a 450-epoch one
does; XLA's CPU convolutions and their
gradients are far slower than TensorFlow's kernels (the Keras example's
ConvNet: over 20x slower with XLA). `compile(jit_compile=True)` always uses
XLA and `jit_compile=False` never does. After `fit`, `model.fit_path` says
which loop ran the last epochs: `"epoch loop + XLA"`, `"epoch loop"` or
`"keras"`.

Keras' own `fit` loop still drives everything else (callbacks, progress bar,
History, `stop_training`): it is handed a dummy dataset that is never read
and `steps_per_epoch = ceil(n / batch_size)`; for the duration of the call
`steps_per_execution = steps_per_epoch`, and this class's
`make_train_function` and `evaluate` (overrides of Keras' methods) hand it
the epoch function and the fast validation. So the progress bar counts whole
epochs and batch-level callbacks see the last step of each epoch, as with
Keras' `compile(steps_per_execution=...)`.

The fast path is taken when `x` (and `y`, `sample_weight`) are arrays, and
none of `class_weight`, `validation_split`, `steps_per_epoch`,
`run_eagerly`, a `steps_per_execution` other than 1, or a `tf.distribute`
strategy is in use, and Keras is a version this loop was tested with
(`TESTED_KERAS`): with another version it warns once and falls back to
`keras.Model.fit`, as it does for every other input. The step is the model's
own `train_step`: without XLA the results equal Keras' per-step loop up to
float rounding; XLA draws other (equally standard-normal) noise from the
same seeds, see tests/test_epoch_loop.py. `bench/run.py` measures the speed.
"""

import inspect
import math
import threading
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

try:  # no public API tells whether op determinism is on; Keras' trainer reads the same
    from tensorflow.python.framework.config import is_op_determinism_enabled
except ImportError:  # pragma: no cover - a TensorFlow without it: assume on, so "auto" skips XLA
    def is_op_determinism_enabled():
        return True

#: With jit_compile="auto", XLA is tried when the fit's remaining epochs would
#: take at least this many seconds without it (see `_TimedXLAChoice`). Measured
#: on the digits MLP (2-core CPU): XLA's whole fits caught up with the plain
#: loop's at about 200 epochs (3 s of timed plain epochs) and won by 22% at
#: 450 and 30% at 600 (7 and 9.4 s), which 10 s had left without XLA. Trying
#: costs about 1-2 s (a plain first epoch, the timed ones, compiling), so fits
#: just past the line lose some: the default ran the 784-512-512-32 MLP's 16
#: epochs and the GRU VAE's 10 (docs/benchmarks.md) at 0.84 of the best path's
#: speed, against 0.94 and 0.81 with 10 s.
AUTO_XLA_MIN_SECONDS = 5.0

#: Words in TensorFlow op type names that "auto" keeps out of XLA (Conv2D,
#: Conv2DBackpropInput/Filter, DepthwiseConv2dNative, MaxPool, AvgPoolGrad...).
SLOW_UNDER_XLA = ("Conv", "Pool")

#: Keras major.minor versions whose `fit` this loop drives (setup.py pins the same).
TESTED_KERAS = ("3.15",)

# Arguments the fast path consumes itself; the rest go to keras.Model.fit.
_OWN_ARGUMENTS = ("self", "x", "y", "sample_weight", "batch_size", "shuffle", "steps_per_epoch", "class_weight",
                  "validation_split")

# What this loop expects of keras.Model: fit's arguments, and the methods it overrides.
_EXPECTED_FIT_ARGUMENTS = {*_OWN_ARGUMENTS, "epochs", "verbose", "callbacks", "validation_data", "initial_epoch",
                           "validation_steps", "validation_batch_size", "validation_freq"}


def keras_mismatch():
    """Why this Keras cannot run the epoch loop, or None when it can.

    Returns:
        None for a tested Keras on the TensorFlow backend, else a sentence.

    Example:

    >>> keras_mismatch() is None   # Keras 3.15 with TensorFlow
    True
    """
    version = ".".join(keras.version().split(".")[:2])
    if keras.backend.backend() != "tensorflow":
        return f"the Keras backend is {keras.backend.backend()!r}, not 'tensorflow'"
    if version not in TESTED_KERAS:
        return f"Keras {keras.version()} is not a version it was tested with ({', '.join(TESTED_KERAS)})"
    missing = _EXPECTED_FIT_ARGUMENTS - set(inspect.signature(keras.Model.fit).parameters)
    if missing or not all(hasattr(keras.Model, name) for name in ("make_train_function", "evaluate")):
        return f"keras.Model.fit lacks {sorted(missing) or 'make_train_function'}"
    return None


def any_rows(value):
    """The `tf.TensorSpec` of a batch like `value` with any number of rows (None for None).

    A `tf.function` traced for these specs serves every batch size, the
    smaller last batch included, instead of tracing again for it.

    Args:
        value: a tensor or array of rows, or None.

    Returns:
        `tf.TensorSpec([None, *value.shape[1:]], value.dtype)`, or None.

    Example:

    >>> any_rows(np.zeros((64, 8), "float32"))
    TensorSpec(shape=(None, 8), dtype=tf.float32, name=None)
    """
    if value is None:
        return None
    return tf.TensorSpec([None, *value.shape[1:]], tf.as_dtype(value.dtype))


class EpochLoop:
    """Mixin for a `keras.Model` subclass: `compile` and a faster `fit`.

    The model must provide `train_step`, `test_step`, `_sampling_seed()` (a
    fresh stateless seed pair per call, from a `keras.random.SeedGenerator`,
    so that shuffling and sampling are reproducible under XLA, whose stateful
    random ops ignore `keras.utils.set_random_seed`) and `_step_logs()` (the
    logs `train_step` returns, read after the epoch's last step).

    Attributes:
        fit_path: after `fit`, the loop it ran: `"epoch loop + XLA"`,
            `"epoch loop"` or `"keras"` (Keras' per-step loop); None before.
    """

    fit_path = None
    _epoch_run = None  # set only while `fit` runs the epoch loop
    _epoch_results = None  # the metrics' results at the end of the last training epoch, until read
    _epoch_validation = None
    _metrics_reset_pending = False  # `reset_metrics` was called during `fit`; the next epoch call resets

    def compile(self, *args, jit_compile="auto", **kwargs):
        # Keras resolves "auto" to no XLA on the CPU for its per-step
        # functions; the epoch function decides for itself (see the module
        # docstring). jit_compile=False turns XLA off for both.
        self._epoch_jit_compile = jit_compile
        self._epoch_functions = {}
        return super().compile(*args, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose class overrides
        # `compile` unless it also overrides this; the config is Keras' own.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, **kwargs):
        arguments = inspect.signature(keras.Model.fit).bind(self, *args, **kwargs).arguments
        arrays = self._epoch_loop_arrays(arguments)
        if arrays is not None:
            mismatch = keras_mismatch()
            if mismatch:
                warnings.warn(f"tfvae trains with Keras' own (slower) loop: {mismatch}.", RuntimeWarning,
                              stacklevel=2)
                arrays = None
        if arrays is None:
            self.fit_path = "keras"
            return super().fit(*args, **kwargs)
        batch_size = arguments.get("batch_size") or 32
        steps = math.ceil(int(arrays[0].shape[0]) / batch_size)
        epochs = max(1, int(arguments.get("epochs", 1)) - int(arguments.get("initial_epoch", 0)))
        shuffle = bool(arguments.get("shuffle", True))
        choice = self._xla_choice("train")
        epoch = self._epoch_function_for("train", arrays, batch_size, shuffle, choice is True)
        if choice == "try":
            def make_xla():  # the step's graph is read only for a fit long enough to try XLA
                step = self._traced_step("train", arrays)
                if not step.traced_for_xla or _slow_under_xla(step.get_concrete_function()):
                    return None
                return self._epoch_function_for("train", arrays, batch_size, shuffle, True)

            epoch = _TimedXLAChoice(epoch, make_xla, epochs)
        rest = {name: value for name, value in arguments.items() if name not in _OWN_ARGUMENTS}
        # Keras' evaluate would default to batches of 32: keep the user's.
        rest["validation_batch_size"] = arguments.get("validation_batch_size") or batch_size
        never_read = tf.data.Dataset.from_tensors(tf.zeros([0])).repeat()
        saved = self.steps_per_execution, self.train_function
        validation = self._fast_validation(rest)

        def run_epoch(iterator):  # the data are captured tensors, not the iterator
            if validation is not None and not validation.started:
                # The validation function is traced in a thread while the first epoch runs (its
                # execution leaves Python free); after the training step's trace, which may build
                # what both use.
                epoch.trace()
                validation.start_tracing()
            logs, self._epoch_results = epoch()
            self._metrics_reset_pending = False
            return logs

        self._epoch_run, self._epoch_validation = run_epoch, validation
        self.steps_per_execution = steps
        try:
            history = super().fit(never_read, steps_per_epoch=steps, shuffle=False, **rest)
        finally:
            if validation is not None:
                validation.join(raise_error=False)  # if fit stopped before validating
            self._epoch_run = self._epoch_validation = self._epoch_results = None
            if self._metrics_reset_pending:  # fit stopped between Keras' reset and the epoch's call
                self._metrics_reset_pending = False
                super().reset_metrics()
            self.steps_per_execution, self.train_function = saved
        uses_xla = epoch.uses_xla if choice == "try" else choice
        self.fit_path = "epoch loop + XLA" if uses_xla else "epoch loop"
        return history

    def make_train_function(self, force=False):
        """Keras' `make_train_function`; during the epoch loop's `fit`, the epoch function."""
        if self._epoch_run is not None:
            self.train_function = self._epoch_run
            return self.train_function
        return super().make_train_function(force)

    def reset_metrics(self):
        """Keras' `reset_metrics`; during the epoch loop's `fit`, done by the next compiled call.

        Keras resets the metrics before each epoch's training call, and that
        call (the epoch function) resets them at its start: a compiled call
        less per epoch (0.23-0.3 ms on this 2-core CPU, and the trace of that
        call). Until it runs, `get_metrics_result` reads zeros (it resets them
        first); a metric's own `result()`, read in a callback's
        `on_epoch_begin`, still gives the values of the last epoch or
        validation.
        """
        if self._epoch_run is None:
            return super().reset_metrics()
        self._metrics_reset_pending = True

    def get_metrics_result(self):
        """Keras' `get_metrics_result`; during the epoch loop's `fit`, read by the epoch's own call.

        Keras reads the metrics right after each epoch's training call, which
        computed them at its end: the first read after an epoch takes those
        values (one compiled call less per epoch: a digits MLP epoch with
        validation took 16.9 ms against 18.0 ms); later reads run one
        compiled call.
        """
        if self._epoch_run is None:
            return super().get_metrics_result()
        results, self._epoch_results = self._epoch_results, None
        if results is None:
            if self._metrics_reset_pending:
                self._metrics_reset_pending = False
                self._compiled("reset_metrics", super().reset_metrics)()
            results = self._compiled("get_metrics_result", super().get_metrics_result)()
        return {name: float(value) for name, value in results.items()}

    def _compiled(self, name, function):
        """`function` as a `tf.function`, kept until the next `compile` (the metrics may change there)."""
        if name not in self._epoch_functions:
            self._epoch_functions[name] = tf.function(function, autograph=False)
        return self._epoch_functions[name]

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        """Keras' `evaluate`; on arrays, as one compiled call (also `fit`'s per-epoch validation).

        The compiled call is used for `fit`'s validation on arrays, and for
        `evaluate(x_arrays, ..., verbose=0, return_dict=True)` without
        `steps` or callbacks when `fit` would take its epoch loop; it reuses
        the function of `fit`'s validation on the same data and batch size.
        Everything else goes to Keras' `evaluate`.
        """
        if self._epoch_validation is not None and kwargs.get("_use_cached_eval_dataset"):
            return self._epoch_validation(callbacks)
        arrays = None
        if return_dict and verbose == 0 and not callbacks and steps is None and not kwargs:
            arrays = self._epoch_loop_arrays({"x": x, "y": y, "sample_weight": sample_weight})
        if arrays is not None and keras_mismatch() is None:
            epoch = self._epoch_function_for("test", arrays, batch_size or 32, False, self._xla_choice("test"))
            return {name: float(value) for name, value in epoch().items()}
        return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                steps=steps, callbacks=callbacks, return_dict=return_dict, **kwargs)

    def _fast_validation(self, fit_arguments):
        """What `evaluate` runs for `fit`'s validation on arrays, or None (Keras' evaluate)."""
        validation_data = fit_arguments.get("validation_data")
        if validation_data is None or fit_arguments.get("validation_steps") is not None:
            return None
        arrays = keras.utils.unpack_x_y_sample_weight(validation_data)
        if not _is_array(arrays[0]) or any(value is not None and not _is_array(value) for value in arrays[1:]):
            return None
        arrays = tuple(None if value is None else tf.convert_to_tensor(value) for value in arrays)
        batch_size = fit_arguments["validation_batch_size"]
        epoch = self._epoch_function_for("test", arrays, batch_size, False, self._xla_choice("test"))
        return _FastValidation(epoch, math.ceil(int(arrays[0].shape[0]) / batch_size) - 1)

    def _epoch_loop_arrays(self, arguments):
        """`(x, y, sample_weight)` as tensors when the fast path applies, else None."""
        data = [arguments.get(name) for name in ("x", "y", "sample_weight")]
        if not _is_array(data[0]) or any(value is not None and not _is_array(value) for value in data[1:]):
            return None
        if (
            arguments.get("class_weight") is not None
            or arguments.get("validation_split")
            or arguments.get("steps_per_epoch") is not None
            or self.run_eagerly
            or self.steps_per_execution != 1
            or tf.distribute.has_strategy()
            or getattr(self, "_distribute_strategy", None) is not None
            or not hasattr(self, "_epoch_functions")
        ):
            return None
        return tuple(None if value is None else tf.convert_to_tensor(value) for value in data)

    def _epoch_function_for(self, kind, arrays, batch_size, shuffle, uses_xla):
        """`run()`, which takes `kind`'s step over all batches of `arrays`.

        `kind` is "train" (returns the training logs) or "test" (the metrics);
        `uses_xla` is True to run the full batches under XLA.

        The Python step is traced once, for batches of any size, and the
        batches run in an in-graph loop. Without XLA the loop takes every
        batch, so the epoch's graph holds the step once (TensorFlow optimizes
        that graph before its first run: about 0.5 s less for the digits MLP
        than with a second copy for the partial batch). Under XLA the loop
        takes the full batches (XLA needs static shapes) and the partial last
        batch calls the same traced step after it, without XLA, so that XLA
        compiles one step, not two.
        """
        present = tuple(value is not None for value in arrays)
        data = tuple(value for value in arrays if value is not None)
        n = int(data[0].shape[0])
        looped = n // batch_size if uses_xla is True else math.ceil(n / batch_size)
        step = self._traced_step(kind, arrays)
        key = (kind, batch_size, shuffle, present, n, uses_xla is True, step.input_signature)
        if key not in self._epoch_functions:

            def batches(data, order):
                # Batch i is order[i*b:(i+1)*b] (the slice ends at n). Under XLA, `order` is a
                # static [looped, batch_size]: XLA pads a slice of dynamic size to its bound.
                def body(i):
                    index = order[i] if uses_xla is True else order[i * batch_size:(i + 1) * batch_size]
                    step(*(tf.gather(value, index) for value in data))
                    return (i + 1,)

                tf.while_loop(lambda i: i < looped, body, (tf.constant(0),))

            loop = tf.function(batches, jit_compile=uses_xla is True, autograph=False)

            def epoch(data):
                # Keras resets the metrics before a training epoch (see `reset_metrics`) and evaluate
                # before its batches: done here, in the same compiled call.
                for metric in self.metrics:
                    metric.reset_state()
                order = self._epoch_order(n, shuffle)
                if looped:
                    loop(data, tf.reshape(order[: looped * batch_size], [looped, batch_size]) if uses_xla is True
                         else order)
                if looped * batch_size < n:  # the partial last batch, under XLA
                    step(*(tf.gather(value, order[looped * batch_size:]) for value in data))
                results = super(EpochLoop, self).get_metrics_result()  # Keras' own read of the metrics
                # Training: the step's logs, and the results Keras' `get_metrics_result` reads next.
                return (self._step_logs(), results) if kind == "train" else results

            self._epoch_functions[key] = tf.function(epoch, autograph=False)
        return _EpochRun(self._epoch_functions[key], data)

    def _traced_step(self, kind, arrays):
        """`kind`'s step as a `tf.function` of the batches of `arrays` not None, traced once for any batch size.

        A training step that may run under XLA (see `_xla_choice`) is traced
        here, inside an XLA function that is never compiled, so that the
        loops with and without XLA share one trace. The function's
        `traced_for_xla` says whether that worked; if not, it is traced
        without XLA by its first caller, and kept off XLA.
        """
        present = tuple(value is not None for value in arrays)
        data = tuple(value for value in arrays if value is not None)
        specs = tuple(any_rows(value) for value in data)
        key = ("step", kind, present, specs)
        if key in self._epoch_functions:
            return self._epoch_functions[key]
        step = self.train_step if kind == "train" else self.test_step
        if kind == "train" and self.built and not self.optimizer.built:
            # Built here, a tf.function that creates variables is traced twice.
            self.optimizer.build(self.trainable_variables)

        def one_step(*batch):
            rows = iter(batch)
            step(tuple(next(rows) if is_present else None for is_present in present))

        # tfvae's own steps hold no tensor-dependent Python control flow, and
        # converting them cost seconds; a subclass's override is converted.
        own = getattr(step, "__func__", step).__module__.startswith("tfvae.")
        function = tf.function(one_step, input_signature=specs, autograph=not own)
        function.traced_for_xla = kind == "train" and self._xla_choice(kind) is not False and _trace_for_xla(function)
        self._epoch_functions[key] = function
        return function

    def _xla_choice(self, kind):
        """True, False or "try" (time it, see `_TimedXLAChoice`): XLA for `kind`'s full batches.

        `compile(jit_compile=True/False)` decides. With "auto": False with op
        determinism on, and for "test" (validation is a few batches an
        epoch); otherwise "try", where a convolution or pooling op in the
        step rules XLA out once the fit is long enough to consider it, and
        a step XLA cannot compile goes on without it.
        """
        if self._epoch_jit_compile != "auto":
            return bool(self._epoch_jit_compile)
        return False if kind != "train" or is_op_determinism_enabled() else "try"

    def _epoch_order(self, n, shuffle):
        if not shuffle:
            return tf.range(n)
        # A stateless shuffle from the model's seed generator: reproducible
        # under XLA (tf.random.shuffle is stateful; stateless_shuffle has no
        # XLA kernel). Philox named: see latent.reparameterized_sample.
        return tf.argsort(tf.random.stateless_uniform([n], seed=self._sampling_seed(), alg="philox"))


class _EpochRun:
    """`run()`: one epoch function called on its data; `trace()` traces it without running it."""

    def __init__(self, function, data):
        self.function, self.data = function, data

    def __call__(self):
        return self.function(self.data)

    def trace(self):
        self.function.get_concrete_function(self.data)


class _FastValidation:
    """`fit`'s validation on arrays: one compiled call over all batches, whose trace can run in a thread.

    Args:
        run: the `_EpochRun` of the test epoch.
        last_batch: the index of its last batch (what the callbacks are told).
    """

    def __init__(self, run, last_batch):
        self.run, self.last_batch = run, last_batch
        self.started = False
        self._thread = self._error = None

    def start_tracing(self):
        """Traces the function in a thread: call it when a long TensorFlow call is about to run."""

        def trace():
            try:
                self.run.trace()
            except BaseException as error:  # noqa: BLE001 - raised by `join` in the caller's thread
                self._error = error

        self.started = True
        self._thread = threading.Thread(target=trace, name="tfvae-trace-validation", daemon=True)
        self._thread.start()

    def join(self, raise_error=True):
        """Waits for `start_tracing`'s thread; raises what the trace raised (if `raise_error`)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None and raise_error:
            raise error

    def __call__(self, callbacks):
        self.join()
        # The callbacks see one call of all the batches, as with steps_per_execution.
        callbacks.on_test_begin()
        callbacks.on_test_batch_begin(0)
        logs = {name: float(value) for name, value in self.run().items()}
        callbacks.on_test_batch_end(self.last_batch, logs)
        callbacks.on_test_end(logs)
        return logs


class _TimedXLAChoice:
    """The epoch function of `fit` under `jit_compile="auto"`: without XLA, then XLA if it pays.

    The first epoch runs without XLA (it traces the step). The next ones are
    timed: as many as take `TIMED_SECONDS` at the speed of the first of them,
    between 1 and `MAX_TIMED_EPOCHS` (one epoch of a small model is a few
    milliseconds, and the machine's noise alone can make one run slower than
    another). If the fit's remaining epochs would take `AUTO_XLA_MIN_SECONDS`
    or more at the fastest timed speed, XLA is compiled during the next
    epoch and its epochs are timed: XLA is kept for the rest of the fit as
    soon as one of them beats the fastest epoch without it, and given up
    after as many as were timed without it, and at least
    `MIN_XLA_LOSSES`, that did not (noise only slows an epoch down: one fast
    epoch is proof, one slow epoch is not). Shorter fits never pay XLA's
    compile time. A step XLA cannot compile (an op without an XLA kernel,
    such as `tf.numpy_function`) raises in the compiling epoch before it
    runs; that epoch then runs without XLA, and so does the rest of the fit
    (`xla_error` keeps the error).

    Args:
        plain: `run()` of the epoch without XLA.
        make_xla: `() -> run()` of the same epoch under XLA (built on demand),
            or None when XLA is ruled out (a convolution or pooling op).
        epochs: the epochs this fit runs.
    """

    #: Seconds of epochs timed without XLA (at least one epoch, at most MAX_TIMED_EPOCHS).
    TIMED_SECONDS = 0.25
    MAX_TIMED_EPOCHS = 5
    #: XLA epochs slower than the fastest plain one before XLA is given up. With one, a
    #: noisy XLA epoch kept the plain loop in 1 of 3 fits of the 784-512-512-32 MLP
    #: (16.95 s against 12.4-13.2 s for XLA); the second costs one slow epoch, and only
    #: when XLA loses.
    MIN_XLA_LOSSES = 2

    def __init__(self, plain, make_xla, epochs):
        self.plain, self.make_xla, self.epochs = plain, make_xla, epochs
        self.calls = 0
        self.timed = None  # plain epochs timed, set by the first timed epoch
        self.plain_seconds, self.xla_seconds = [], []
        self.xla = self.xla_error = self.compiled_at = None
        self.uses_xla = False

    def trace(self):
        """Traces the function the first call runs (the plain one)."""
        self.plain.trace()

    def __call__(self):
        self.calls += 1
        if self.uses_xla:
            return self.xla()
        if self.xla is not None and self.calls == self.compiled_at:  # a step XLA cannot compile stays off it
            try:
                return self.xla()
            except tf.errors.OpError as error:  # raised before XLA ran a step (or the plain epoch raises it too)
                self.xla, self.xla_error = None, error
        if self.xla is not None and len(self.xla_seconds) < self._xla_epochs_at_most:
            logs = self._timed(self.xla, self.xla_seconds)
            self.uses_xla = self.xla_seconds[-1] < min(self.plain_seconds)
            return logs
        if self.calls == 1 or self.compiled_at is not None or len(self.plain_seconds) == self.timed:
            return self.plain()  # the first epoch (it traces), or the choice is made
        logs = self._timed(self.plain, self.plain_seconds)
        if self.timed is None:
            self.timed = min(self.MAX_TIMED_EPOCHS, max(1, math.ceil(self.TIMED_SECONDS / self.plain_seconds[0])))
        remaining = self.epochs - self.calls
        if (len(self.plain_seconds) == self.timed and remaining > self._xla_epochs_at_most + 1
                and remaining * min(self.plain_seconds) >= AUTO_XLA_MIN_SECONDS):
            self.xla, self.compiled_at = self.make_xla(), self.calls + 1
        return logs

    @property
    def _xla_epochs_at_most(self):
        """XLA epochs timed before it is given up: as many as the plain ones, at least MIN_XLA_LOSSES."""
        return max(self.timed, self.MIN_XLA_LOSSES)

    @staticmethod
    def _timed(run, seconds):
        start = time.perf_counter()
        logs = run()
        seconds.append(time.perf_counter() - start)
        return logs


def _trace_for_xla(step):
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


def _slow_under_xla(concrete_function):
    """Whether a traced function (its loop bodies included) holds an op named in `SLOW_UNDER_XLA`."""
    graph = concrete_function.graph.as_graph_def()
    op_types = {node.op for node in graph.node}
    op_types.update(node.op for function in graph.library.function for node in function.node_def)
    return any(word in op_type for op_type in op_types for word in SLOW_UNDER_XLA)


def _is_array(value):
    if isinstance(value, np.ndarray):
        return True
    return tf.is_tensor(value) and not isinstance(value, (tf.SparseTensor, tf.RaggedTensor))
