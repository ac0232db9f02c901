"""The epoch loop's work for one compiled model: `FastFit` (see `tfvae.epoch_loop` for what it does and why).

`tfvae.epoch_loop.EpochLoop`, the mixin of `tfvae.VAE`, makes one `FastFit`
per `compile` and hands it Keras' `fit`, `evaluate` and metric reads; the
loop's functions and the state of a running `fit` live here, not in
attributes of the model.
"""

import inspect
import math
import threading
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfvae import _tested_versions, xla_choice

#: Keras major.minor versions whose `fit` this loop drives (setup.py pins the same).
TESTED_KERAS = _tested_versions.TESTED_KERAS

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

    >>> from tfvae.fast_fit import keras_mismatch
    >>> keras_mismatch() is None   # Keras 3.15 with TensorFlow
    True
    """
    if keras.backend.backend() != "tensorflow":
        return f"the Keras backend is {keras.backend.backend()!r}, not 'tensorflow'"
    if not _tested_versions.keras_is_tested():
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

    >>> import numpy as np
    >>> from tfvae.fast_fit import any_rows
    >>> any_rows(np.zeros((64, 8), "float32"))
    TensorSpec(shape=(None, 8), dtype=tf.float32, name=None)
    """
    if value is None:
        return None
    return tf.TensorSpec([None, *value.shape[1:]], tf.as_dtype(value.dtype))


class FastFit:
    """The epoch loop of one compiled model: its functions, its XLA choice and the state of a running `fit`.

    Made by `EpochLoop.compile`; the model's overrides of Keras' methods
    call it. Between fits it holds only the traced functions.

    Args:
        model: the `keras.Model` (with the `EpochLoop` mixin).
        jit_compile: `compile`'s `jit_compile`: True, False or "auto".
        keras_methods: the model's methods as Keras defines them (`super()`
            in the mixin): `fit`, `reset_metrics`, `get_metrics_result`.

    Attributes:
        fit_path: the loop the last `fit` ran (see `EpochLoop`).
        running: the epoch function handed to Keras while `fit` runs, else None.
    """

    def __init__(self, model, jit_compile, keras_methods):
        self.model, self.jit_compile, self.keras = model, jit_compile, keras_methods
        self.functions = {}
        self.fit_path = None
        self.running = None
        self.epoch_choice = None  # the last fit's `XLAOrPlain`, when it tried XLA
        self._results = None  # the metrics' results at the end of the last training epoch, until read
        self._validation = None  # (validation x as given to fit, `_FastValidation`) while fit runs
        self._reset_pending = False  # Keras' `reset_metrics` was called during fit; the next epoch call resets

    def fit(self, *args, **kwargs):
        """`keras.Model.fit` through the epoch loop (or Keras' own loop for other inputs)."""
        model = self.model
        arguments = inspect.signature(keras.Model.fit).bind(model, *args, **kwargs).arguments
        arrays = self.arrays(arguments)
        if arrays is not None:
            mismatch = keras_mismatch()
            if mismatch:
                warnings.warn(f"tfvae trains with Keras' own (slower) loop: {mismatch}.", RuntimeWarning,
                              stacklevel=3)
                arrays = None
        if arrays is None:
            self.fit_path = "keras"
            return self.keras.fit(*args, **kwargs)
        batch_size = arguments.get("batch_size") or 32
        steps = math.ceil(int(arrays[0].shape[0]) / batch_size)
        shuffle = bool(arguments.get("shuffle", True))
        # Counted from epoch 0, so that a resumed fit takes the path of the fit it resumes.
        choice = xla_choice.choose(self.jit_compile, "train", int(arguments.get("epochs", 1)) * steps)
        self.epoch_choice = None
        if choice == "graph":
            step = self._traced_step("train", arrays)
            choice = step.traced_for_xla and not xla_choice.slow_under_xla(step.get_concrete_function())
        epoch = self._epoch_function_for("train", arrays, batch_size, shuffle, choice)
        if choice:
            epoch = self.epoch_choice = xla_choice.XLAOrPlain(
                epoch, lambda: self._epoch_function_for("train", arrays, batch_size, shuffle, False))
        rest = {name: value for name, value in arguments.items() if name not in _OWN_ARGUMENTS}
        # Keras' evaluate would default to batches of 32: keep the user's.
        rest["validation_batch_size"] = arguments.get("validation_batch_size") or batch_size
        never_read = tf.data.Dataset.from_tensors(tf.zeros([0])).repeat()
        saved = model.steps_per_execution, model.train_function
        validation = self._fast_validation(rest)

        def run_epoch(iterator):  # the data are captured tensors, not the iterator
            if validation is not None and not validation.started:
                # The validation function is traced in a thread while the first epoch runs (its
                # execution leaves Python free); after the training step's trace, which may build
                # what both use.
                epoch.trace()
                validation.start_tracing()
            logs, self._results = epoch()
            self._reset_pending = False
            return logs

        self.running = run_epoch
        self._validation = None if validation is None else (rest["validation_data"], validation)
        model.steps_per_execution = steps
        try:
            history = self.keras.fit(never_read, steps_per_epoch=steps, shuffle=False, **rest)
        finally:
            if validation is not None:
                validation.join(raise_error=False)  # if fit stopped before validating
            self.running = self._validation = self._results = None
            if self._reset_pending:  # fit stopped between Keras' reset and the epoch's call
                self._reset_pending = False
                self.keras.reset_metrics()
            model.steps_per_execution, model.train_function = saved
        uses_xla = bool(choice) and self.epoch_choice.uses_xla
        self.fit_path = "epoch loop + XLA" if uses_xla else "epoch loop"
        return history

    def defer_reset_metrics(self):
        """During `fit`, marks the metrics for the next epoch call to reset; returns whether it did.

        Keras resets the metrics before each epoch's training call, and that
        call (the epoch function) resets them at its start: a compiled call
        (and its trace) less per epoch. Until it runs, `get_metrics_result` reads zeros (it resets them
        first); a metric's own `result()`, read in a callback's
        `on_epoch_begin`, still gives the values of the last epoch or
        validation.
        """
        if self.running is None:
            return False
        self._reset_pending = True
        return True

    def metrics_result(self):
        """`get_metrics_result` during `fit`: the first read after an epoch takes the epoch call's results.

        Keras reads the metrics right after each epoch's training call, which
        computed them at its end (one compiled call less per epoch); later
        reads run one compiled call.
        """
        results, self._results = self._results, None
        if results is None:
            if self._reset_pending:
                self._reset_pending = False
                self._compiled("reset_metrics", self.keras.reset_metrics)()
            results = self._compiled("get_metrics_result", self.keras.get_metrics_result)()
        return {name: float(value) for name, value in results.items()}

    def _compiled(self, name, function):
        """`function` as a `tf.function`, kept until the next `compile` (the metrics may change there)."""
        if name not in self.functions:
            self.functions[name] = tf.function(function, autograph=False)
        return self.functions[name]

    def evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict, kwargs):
        """The logs of `evaluate` by the compiled call (see `EpochLoop.evaluate`), or None for Keras' own."""
        if self._validation is not None:
            given, validation = self._validation
            # Keras' fit validates with evaluate(x=the validation x it was given, callbacks=its CallbackList).
            if isinstance(callbacks, keras.callbacks.CallbackList) and x is keras.utils.unpack_x_y_sample_weight(
                    given)[0]:
                return validation(callbacks)
        if not (return_dict and verbose == 0 and not callbacks and steps is None and not kwargs):
            return None
        arrays = self.arrays({"x": x, "y": y, "sample_weight": sample_weight})
        if arrays is None or keras_mismatch() is not None:
            return None
        epoch = self._epoch_function_for("test", arrays, batch_size or 32, False, False)
        return {name: float(value) for name, value in epoch().items()}

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
        epoch = self._epoch_function_for("test", arrays, batch_size, False, False)
        return _FastValidation(epoch, math.ceil(int(arrays[0].shape[0]) / batch_size) - 1)

    def arrays(self, arguments):
        """`(x, y, sample_weight)` as tensors when the fast path applies, else None."""
        model = self.model
        data = [arguments.get(name) for name in ("x", "y", "sample_weight")]
        if not _is_array(data[0]) or any(value is not None and not _is_array(value) for value in data[1:]):
            return None
        if (
            arguments.get("class_weight") is not None
            or arguments.get("validation_split")
            or arguments.get("steps_per_epoch") is not None
            or model.run_eagerly
            or model.steps_per_execution != 1
            or tf.distribute.has_strategy()
            or model.distribute_strategy is not tf.distribute.get_strategy()  # built in a strategy's scope
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
        that graph before its first run, which takes longer with a second
        copy for the partial batch). Under XLA the loop
        takes the full batches (XLA needs static shapes) and the partial last
        batch calls the same traced step after it, without XLA, so that XLA
        compiles one step, not two.
        """
        model, uses_xla = self.model, uses_xla is True
        present = tuple(value is not None for value in arrays)
        data = tuple(value for value in arrays if value is not None)
        n = int(data[0].shape[0])
        looped = n // batch_size if uses_xla else math.ceil(n / batch_size)
        step = self._traced_step(kind, arrays)
        key = (kind, batch_size, shuffle, present, n, uses_xla, step.input_signature)
        if key not in self.functions:

            def batches(data, order):
                # Batch i is order[i*b:(i+1)*b] (the slice ends at n). Under XLA, `order` is a
                # static [looped, batch_size]: XLA pads a slice of dynamic size to its bound.
                def body(i):
                    index = order[i] if uses_xla else order[i * batch_size:(i + 1) * batch_size]
                    step(*(tf.gather(value, index) for value in data))
                    return (i + 1,)

                tf.while_loop(lambda i: i < looped, body, (tf.constant(0),))

            loop = tf.function(batches, jit_compile=uses_xla, autograph=False)

            def epoch(data):
                # Keras resets the metrics before a training epoch (see `defer_reset_metrics`) and
                # evaluate before its batches: done here, in the same compiled call.
                for metric in model.metrics:
                    metric.reset_state()
                order = self._epoch_order(n, shuffle)
                if looped:
                    loop(data, tf.reshape(order[: looped * batch_size], [looped, batch_size]) if uses_xla else order)
                if looped * batch_size < n:  # the partial last batch, under XLA
                    step(*(tf.gather(value, order[looped * batch_size:]) for value in data))
                results = self.keras.get_metrics_result()  # Keras' own read of the metrics
                # Training: the step's logs, and the results Keras' `get_metrics_result` reads next.
                return (model._step_logs(), results) if kind == "train" else results

            self.functions[key] = tf.function(epoch, autograph=False)
        return _EpochRun(self.functions[key], data)

    def _traced_step(self, kind, arrays):
        """`kind`'s step as a `tf.function` of the batches of `arrays` not None, traced once for any batch size.

        A training step that may run under XLA (`jit_compile` not False, op
        determinism off) is traced here, inside an XLA function that is never
        compiled, so that the loops with and without XLA, and fits long and
        short, share one trace. The function's `traced_for_xla` says whether
        that worked; if not, it is traced without XLA by its first caller,
        and kept off XLA.
        """
        model = self.model
        present = tuple(value is not None for value in arrays)
        data = tuple(value for value in arrays if value is not None)
        specs = tuple(any_rows(value) for value in data)
        key = ("step", kind, present, specs)
        if key in self.functions:
            return self.functions[key]
        step = model.train_step if kind == "train" else model.test_step
        if kind == "train" and model.built and not model.optimizer.built:
            # Built here, a tf.function that creates variables is traced twice.
            model.optimizer.build(model.trainable_variables)

        def one_step(*batch):
            rows = iter(batch)
            step(tuple(next(rows) if is_present else None for is_present in present))

        # tfvae's own steps hold no tensor-dependent Python control flow, and
        # converting them cost seconds; a subclass's override is converted.
        own = getattr(step, "__func__", step).__module__.startswith("tfvae.")
        function = tf.function(one_step, input_signature=specs, autograph=not own)
        may_use_xla = kind == "train" and xla_choice.choose(self.jit_compile, kind, math.inf) is not False
        function.traced_for_xla = may_use_xla and xla_choice.trace_for_xla(function)
        self.functions[key] = function
        return function

    def _epoch_order(self, n, shuffle):
        if not shuffle:
            return tf.range(n)
        # A stateless shuffle from the model's seed generator: reproducible
        # under XLA (tf.random.shuffle is stateful; stateless_shuffle has no
        # XLA kernel). Philox named: see latent.reparameterized_sample.
        return tf.argsort(tf.random.stateless_uniform([n], seed=self.model._sampling_seed(), alg="philox"))


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


def _is_array(value):
    if isinstance(value, np.ndarray):
        return True
    return tf.is_tensor(value) and not isinstance(value, (tf.SparseTensor, tf.RaggedTensor))
