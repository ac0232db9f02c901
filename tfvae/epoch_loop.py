"""A whole training epoch in one compiled function, behind the ordinary `fit`.

On a CPU a small VAE's training step costs far more in per-step overhead
(a `tf.function` call, the `tf.data` iterator, Python callbacks) than in
arithmetic: a 64-128-128-8 MLP at batch 64 spends a few percent of each
Keras step multiplying matrices. `EpochLoop.fit` therefore runs, for data
held in memory, one `tf.function` per epoch, compiled with XLA:

    order = argsort(stateless_uniform([n], seed))   # a fresh shuffle
    for i in tf.range(n // batch_size):              # an in-graph loop
        train_step(gather(data, order[i]))            # Adam applied inside
    train_step(gather(data, order[rest]))             # the partial last batch

XLA compiles the step (seconds on a small CPU) and then runs each step
several times faster, so `jit_compile="auto"`, Keras' default, uses it
when an epoch has at least `AUTO_XLA_MIN_BATCHES` full batches, where the
compile time is quickly repaid, and op determinism is off (as Keras' own
"auto" does); `compile(jit_compile=True)` always uses it and
`jit_compile=False` never does.
Keras' own `fit` loop still drives everything else (callbacks, progress bar,
validation, History, `stop_training`): it is handed a dummy dataset that is
never read, `steps_per_epoch = ceil(n / batch_size)` and, for the duration of
the call, `steps_per_execution = steps_per_epoch` and a `train_function` that
runs the epoch. So the progress bar counts whole epochs and batch-level
callbacks see the last step of each epoch, as with Keras'
`compile(steps_per_execution=...)`.

The fast path is taken when `x` (and `y`, `sample_weight`) are arrays, and
none of `class_weight`, `validation_split`, `steps_per_epoch`,
`run_eagerly`, a `steps_per_execution` other than 1, or a `tf.distribute`
strategy is in use; `compile(jit_compile=False)` keeps it without XLA.
Anything else goes to `keras.Model.fit` unchanged. The step is the model's
own `train_step`: without XLA the results equal Keras' per-step loop up to
float rounding; XLA draws other (equally standard-normal) noise from the
same seeds, see tests/test_epoch_loop.py. `bench/run.py` measures the speed.
"""

import inspect
import math

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.config import is_op_determinism_enabled  # as keras' trainer does

#: With jit_compile="auto", epochs of at least this many full batches use XLA.
AUTO_XLA_MIN_BATCHES = 16

# Arguments the fast path consumes itself; the rest go to keras.Model.fit.
_OWN_ARGUMENTS = ("self", "x", "y", "sample_weight", "batch_size", "shuffle", "steps_per_epoch", "class_weight",
                  "validation_split")


class EpochLoop:
    """Mixin for a `keras.Model` subclass: `compile` and a faster `fit`.

    The model must provide `train_step`, `_sampling_seed()` (a fresh
    stateless seed pair per call, from a `keras.random.SeedGenerator`, so
    that shuffling and sampling are reproducible under XLA, whose stateful
    random ops ignore `keras.utils.set_random_seed`) and `_step_logs()` (the
    logs `train_step` returns, read after the epoch's last step).
    """

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
        if arrays is None:
            return super().fit(*args, **kwargs)
        batch_size = arguments.get("batch_size") or 32
        steps = math.ceil(int(arrays[0].shape[0]) / batch_size)
        train_function = self._epoch_train_function(arrays, batch_size, bool(arguments.get("shuffle", True)))
        rest = {name: value for name, value in arguments.items() if name not in _OWN_ARGUMENTS}
        # Keras' evaluate would default to batches of 32: keep the user's.
        rest["validation_batch_size"] = arguments.get("validation_batch_size") or batch_size
        never_read = tf.data.Dataset.from_tensors(tf.zeros([0])).repeat()
        saved = self.steps_per_execution, self.train_function
        self.make_train_function = lambda force=False: train_function
        self.train_function, self.steps_per_execution = train_function, steps
        try:
            return super().fit(never_read, steps_per_epoch=steps, shuffle=False, **rest)
        finally:
            del self.make_train_function  # the class's method again
            self.steps_per_execution, self.train_function = saved

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

    def _epoch_train_function(self, arrays, batch_size, shuffle):
        """What Keras' loop calls once per epoch: runs it, returns the logs."""
        present = tuple(value is not None for value in arrays)
        data = tuple(value for value in arrays if value is not None)
        epoch = self._epoch_function_for(batch_size, shuffle, present, int(data[0].shape[0]))

        def train_function(iterator):
            del iterator  # the data are the tensors above
            return epoch(data)

        return train_function

    def _epoch_function_for(self, batch_size, shuffle, present, n):
        key = (batch_size, shuffle, present, n)
        if key not in self._epoch_functions:
            num_full = n // batch_size

            def epoch(data):
                order = self._epoch_order(n, shuffle)
                if num_full:
                    # A static [num_full, batch_size] index: XLA pads a slice
                    # of dynamic size, order[i*b:(i+1)*b], to its bound (n rows).
                    index = tf.reshape(order[: num_full * batch_size], [num_full, batch_size])
                    for i in tf.range(num_full):
                        self.train_step(_rows(data, present, index[i]))
                if n % batch_size:  # the partial last batch, of static size
                    self.train_step(_rows(data, present, order[num_full * batch_size:]))
                return self._step_logs()

            self._epoch_functions[key] = tf.function(epoch, jit_compile=self._uses_xla(num_full))
        return self._epoch_functions[key]

    def _uses_xla(self, num_full):
        if self._epoch_jit_compile == "auto":
            # Like Keras' "auto": no XLA when op determinism is requested.
            deterministic = is_op_determinism_enabled()
            return num_full >= AUTO_XLA_MIN_BATCHES and not deterministic
        return bool(self._epoch_jit_compile)

    def _epoch_order(self, n, shuffle):
        if not shuffle:
            return tf.range(n)
        # A stateless shuffle from the model's seed generator: reproducible
        # under XLA (tf.random.shuffle is stateful; stateless_shuffle has no
        # XLA kernel). Philox named: see latent.reparameterized_sample.
        return tf.argsort(tf.random.stateless_uniform([n], seed=self._sampling_seed(), alg="philox"))


def _is_array(value):
    if isinstance(value, np.ndarray):
        return True
    return tf.is_tensor(value) and not isinstance(value, (tf.SparseTensor, tf.RaggedTensor))


def _rows(data, present, index):
    """`(x, y, sample_weight)` rows `index` of the arrays present, None for the rest."""
    rows = iter(tf.gather(value, index) for value in data)
    return tuple(next(rows) if is_present else None for is_present in present)
