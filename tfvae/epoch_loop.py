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
(it leaves Python free), after the training step's own trace. The step is
traced once (for any batch size, without autograph for tfvae's own steps).
The epoch's own call resets the metrics at its start (Keras'
`reset_metrics` before it only marks them for that) and returns their
results at its end, which Keras reads next (`get_metrics_result`).

The XLA rule. With `compile(jit_compile="auto")` (Keras' default) a fit's
full batches run under XLA when all of these hold, and otherwise without
it; nothing is timed, so the same model, data and arguments always take
the same path:

* the fit runs at least `tfvae.xla_choice.AUTO_XLA_MIN_STEPS` (5000)
  training steps (`epochs` x batches per epoch): XLA's compile time is not
  repaid by shorter fits (`tfvae train`'s default digits run, 150 epochs of
  23 batches, is 3,450 steps);
* the traced step holds no op whose type name contains a word of
  `tfvae.xla_choice.SLOW_UNDER_XLA` (`Conv`, `Pool`, `While`): XLA's CPU
  convolutions and pooling are far slower than TensorFlow's kernels, and
  loops (a recurrent layer) are kept
  off too, whatever layer or custom code emitted them;
* op determinism is off (as with Keras' own "auto"); validation never uses
  XLA (a few batches an epoch).

`compile(jit_compile=True)` always uses XLA and `jit_compile=False` never
does. A step XLA cannot compile (an op without an XLA kernel, such as
`tf.numpy_function`) fails in the first epoch before it runs, and the fit
goes on without XLA. Under XLA the loop takes the full batches and the
partial last batch runs after it without XLA, so that XLA compiles one
step, not two. When the fit may use XLA the step is traced (not compiled)
inside an XLA function, so that both loops share one trace: TensorFlow
builds the gradients of loops and branches (`keras.ops.cond`) for XLA only
there, and they run without XLA too. After `fit`, `model.fit_path` says
which loop ran: `"epoch loop + XLA"`, `"epoch loop"` or `"keras"`.

Keras' own `fit` loop still drives everything else (callbacks, progress bar,
History, `stop_training`): it is handed a dummy dataset that is never read
and `steps_per_epoch = ceil(n / batch_size)`; for the duration of the call
`steps_per_execution = steps_per_epoch`, and this class's
`make_train_function` and `evaluate` (overrides of Keras' public methods)
hand it the epoch function and the fast validation. So the progress bar
counts whole epochs and batch-level callbacks see the last step of each
epoch, as with Keras' `compile(steps_per_execution=...)`. The loop's state
lives in a `FastFit` object (`model.fast_fit`), not in attributes of the
model.

The fast path is taken when `x` (and `y`, `sample_weight`) are arrays, and
none of `class_weight`, `validation_split`, `steps_per_epoch`,
`run_eagerly`, a `steps_per_execution` other than 1, or a `tf.distribute`
strategy is in use, and Keras is a version this loop was tested with
(`TESTED_KERAS`): with another version it warns once and falls back to
`keras.Model.fit`, as it does for every other input. The step is the model's
own `train_step`: without XLA the results equal Keras' per-step loop up to
float rounding; XLA draws other (equally standard-normal) noise from the
same seeds, see tests/test_epoch_loop.py. `bench/run.py` and
`bench/loops.py` measure the speed.
"""


import keras

from tfvae.fast_fit import TESTED_KERAS, FastFit, any_rows, keras_mismatch  # noqa: F401 - public names of this module

__all__ = ["EpochLoop", "FastFit", "TESTED_KERAS", "any_rows", "keras_mismatch"]


class EpochLoop:
    """Mixin for a `keras.Model` subclass: `compile` and a faster `fit`, delegating to a `FastFit`.

    The model must provide `train_step`, `test_step`, `_sampling_seed()` (a
    fresh stateless seed pair per call, from a `keras.random.SeedGenerator`,
    so that shuffling and sampling are reproducible under XLA, whose stateful
    random ops ignore `keras.utils.set_random_seed`) and `_step_logs()` (the
    logs `train_step` returns, read after the epoch's last step).

    Attributes:
        fast_fit: the `FastFit` made by the last `compile` (None before).
        fit_path: after `fit`, the loop it ran: `"epoch loop + XLA"`,
            `"epoch loop"` or `"keras"` (Keras' per-step loop); None before.
    """

    fast_fit = None

    @property
    def fit_path(self):
        return None if self.fast_fit is None else self.fast_fit.fit_path

    def compile(self, *args, jit_compile="auto", **kwargs):
        # Keras resolves "auto" to no XLA on the CPU for its per-step
        # functions; the epoch function decides for itself (see the module
        # docstring). jit_compile=False turns XLA off for both.
        self.fast_fit = FastFit(self, jit_compile, keras_methods=super())
        return super().compile(*args, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compiling a loaded model whose class overrides
        # `compile` unless it also overrides this; the config is Keras' own.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, **kwargs):
        if self.fast_fit is None:
            return super().fit(*args, **kwargs)  # Keras' error for a model not compiled
        return self.fast_fit.fit(*args, **kwargs)

    def make_train_function(self, force=False):
        """Keras' `make_train_function`; during the epoch loop's `fit`, the epoch function."""
        if self.fast_fit is not None and self.fast_fit.running is not None:
            self.train_function = self.fast_fit.running
            return self.train_function
        return super().make_train_function(force)

    def reset_metrics(self):
        """Keras' `reset_metrics`; during the epoch loop's `fit`, done by the next compiled call (see `FastFit`)."""
        if self.fast_fit is None or not self.fast_fit.defer_reset_metrics():
            super().reset_metrics()

    def get_metrics_result(self):
        """Keras' `get_metrics_result`; during the epoch loop's `fit`, read by the epoch's own call (see `FastFit`)."""
        if self.fast_fit is None or self.fast_fit.running is None:
            return super().get_metrics_result()
        return self.fast_fit.metrics_result()

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        """Keras' `evaluate`; on arrays, as one compiled call (also `fit`'s per-epoch validation).

        The compiled call is used for `fit`'s validation on arrays, and for
        `evaluate(x_arrays, ..., verbose=0, return_dict=True)` without
        `steps` or callbacks when `fit` would take its epoch loop; it reuses
        the function of `fit`'s validation on the same data and batch size.
        Everything else goes to Keras' `evaluate`.
        """
        if self.fast_fit is not None:
            logs = self.fast_fit.evaluate(x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict,
                                          kwargs)
            if logs is not None:
                return logs
        return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, sample_weight=sample_weight,
                                steps=steps, callbacks=callbacks, return_dict=return_dict, **kwargs)
