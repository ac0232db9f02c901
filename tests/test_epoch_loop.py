"""The whole-epoch training function behind `VAE.fit` (tfvae/epoch_loop.py)."""

import math
import pathlib
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import epoch_loop, xla_choice


def _trained(x, jit_compile, through_dataset=False, epochs=2, batch_size=8, **fit_kwargs):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(x.shape[1], (8,), 2, likelihood="bernoulli")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
    data = tf.data.Dataset.from_tensor_slices(x).batch(batch_size) if through_dataset else x
    history = model.fit(data, epochs=epochs, batch_size=None if through_dataset else batch_size, shuffle=False,
                        verbose=0, **fit_kwargs)
    return model, history.history


def test_epoch_loop_equals_keras_per_step_training(digits):
    (x_train, _), _ = digits
    x = x_train[:100]  # 12 full batches of 8 and a partial one of 4
    reference, reference_history = _trained(x, False, through_dataset=True)  # Keras' own loop
    model, history = _trained(x, False)
    for expected, actual in zip(reference.weights, model.weights):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    for name in ("loss", "reconstruction", "kl"):
        np.testing.assert_allclose(history[name], reference_history[name], rtol=1e-5)
    assert int(model.optimizer.iterations) == int(reference.optimizer.iterations) == 2 * 13


@pytest.mark.slow  # XLA twice over the digits; the default (plain) loop: test_epoch_loop_equals_keras_per_step_training
def test_xla_epoch_trains_like_the_graph_epoch(digits):
    # XLA compiles the same train_step but draws its noise with its own
    # implementation of the stateless Philox generator: the same seeds give
    # other (equally standard-normal) numbers, so the runs agree in
    # distribution, not bit for bit. Both must learn the same.
    (x_train, _), (x_test, _) = digits
    results = {}
    for jit_compile in (False, True):
        model, history = _trained(x_train, jit_compile, epochs=8, batch_size=64)
        assert model.fit_path == ("epoch loop + XLA" if jit_compile else "epoch loop")
        elbo = np.mean([model.elbo(x_test, seed=seed).numpy().mean() for seed in range(5)])
        results[jit_compile] = (history["loss"], elbo)
    (graph_losses, graph_elbo), (xla_losses, xla_elbo) = results[False], results[True]
    np.testing.assert_allclose(xla_losses, graph_losses, rtol=0.03)
    assert abs(xla_elbo - graph_elbo) < 0.5, (xla_elbo, graph_elbo)


@pytest.mark.slow  # two XLA compiles; auto's XLA training runs unmarked in test_auto_keeps_convolutional_models_off_xla
def test_xla_training_is_reproducible_from_a_seed(digits):
    (x_train, _), _ = digits
    first, _ = _trained(x_train[:200], True)
    second, _ = _trained(x_train[:200], True)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("jit_compile, calls", [(False, 1), pytest.param(True, 2, marks=pytest.mark.slow)])
def test_the_epoch_graph_holds_the_step_once_without_xla(digits, jit_compile, calls):
    # Without XLA the in-graph loop takes the partial last batch too: TensorFlow optimizes one
    # copy of the step before the first run. Under XLA the partial batch is a second call.
    (x_train, _), _ = digits
    model, _ = _trained(x_train[:100], jit_compile, epochs=1)
    arrays = (tf.constant(x_train[:100]), None, None)
    epoch = model.fast_fit._epoch_function_for("train", arrays, 8, True, jit_compile)
    step = model.fast_fit._traced_step("train", arrays).get_concrete_function().name.decode()
    graph = epoch.function.get_concrete_function(epoch.data).graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    assert sum(node.attr["f"].func.name == step for node in nodes if "PartitionedCall" in node.op) == calls


def test_shuffling_changes_every_epoch_and_is_seeded():
    keras.utils.set_random_seed(3)
    model = tfvae.mlp_vae(4, (4,), 2)
    model.compile(optimizer="adam")
    orders = [model.fast_fit._epoch_order(10, True).numpy() for _ in range(3)]
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])
    keras.utils.set_random_seed(3)
    again = tfvae.mlp_vae(4, (4,), 2)
    again.compile(optimizer="adam")
    np.testing.assert_array_equal(again.fast_fit._epoch_order(10, True).numpy(), orders[0])


def _conv_vae():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, 2, "same", activation="relu"),
                                keras.layers.Flatten(), keras.layers.Dense(8, activation="relu")])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4 * 4 * 4, activation="relu"),
                                keras.layers.Reshape((4, 4, 4)), keras.layers.Conv2DTranspose(1, 3, 2, "same")])
    return tfvae.VAE(encoder, decoder, 2, likelihood="bernoulli")


def _xla_built(model):
    """Whether the model's last fit built an XLA epoch function (it then holds the XLA-or-plain choice)."""
    return model.fast_fit.epoch_choice is not None


def test_auto_keeps_convolutional_models_off_xla(digits, monkeypatch):
    # The stated rule (tfvae.epoch_loop): XLA only without convolution, pooling or loop ops, with op
    # determinism off, for a fit of at least AUTO_XLA_MIN_STEPS steps (lowered here). Checked through fit.
    (x_train, _), _ = digits
    monkeypatch.setattr(xla_choice, "AUTO_XLA_MIN_STEPS", 30)
    monkeypatch.setattr(time, "perf_counter", lambda: pytest.fail("timed an epoch"))  # the rule times nothing
    images = x_train.reshape(-1, 8, 8, 1)
    conv = _conv_vae()
    conv.compile(optimizer="adam")
    history = conv.fit(images[:640], epochs=3, batch_size=64, verbose=0)  # 30 steps: long enough
    assert conv.fit_path == "epoch loop" and not _xla_built(conv)
    assert np.all(np.isfinite(history.history["loss"]))
    mlp = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    mlp.compile(optimizer="adam")
    mlp.fit(x_train[:640], epochs=2, batch_size=64, verbose=0)  # 20 steps: too short
    assert mlp.fit_path == "epoch loop" and not _xla_built(mlp)
    mlp.fit(x_train[:640], epochs=3, batch_size=64, verbose=0)
    assert mlp.fit_path == "epoch loop + XLA" and _xla_built(mlp)
    assert int(mlp.optimizer.iterations) == 5 * 10  # every epoch trained, whichever ran it
    mlp.compile(optimizer="adam", jit_compile=False)
    mlp.fit(x_train[:640], epochs=3, batch_size=64, verbose=0)
    assert mlp.fit_path == "epoch loop" and not _xla_built(mlp)
    conv.compile(optimizer="adam", jit_compile=True)  # the user's choice overrides the rule
    conv.fit(images[:64], epochs=1, batch_size=32, verbose=0)
    assert conv.fit_path == "epoch loop + XLA"


@pytest.mark.slow  # two XLA compiles; test_auto_keeps_convolutional_models_off_xla checks that nothing is timed
def test_the_choice_depends_on_the_fit_not_on_the_machine(digits, monkeypatch):
    # The same model, data and arguments take the same path, however slow the machine is: the
    # epoch functions are never timed.
    (x_train, _), _ = digits
    monkeypatch.setattr(xla_choice, "AUTO_XLA_MIN_STEPS", 30)
    monkeypatch.setattr(time, "perf_counter", lambda: pytest.fail("timed an epoch"))
    paths = []
    for _ in range(2):
        model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
        model.compile()
        model.fit(x_train[:640], epochs=3, batch_size=64, verbose=0)
        paths.append(model.fit_path)
    assert paths == ["epoch loop + XLA"] * 2


class _Branch(keras.layers.Layer):
    def call(self, h):
        return keras.ops.cond(keras.ops.sum(h) > 0, lambda: 2.0 * h, lambda: keras.ops.tanh(h))


class _NumpyIdentity(keras.layers.Layer):
    def call(self, h):  # an op XLA has no kernel for
        return tf.ensure_shape(tf.numpy_function(lambda a: a, [h], h.dtype, stateful=False), h.shape)


class _UnboundedLoop(keras.layers.Layer):
    def call(self, h):  # no maximum_iterations: XLA cannot compile the gradient's accumulators
        return tf.while_loop(lambda i, a: i < tf.shape(a)[0], lambda i, a: (i + 1, tf.tanh(a) * a), (0, h))[1]


def _dense_then(layer):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(3), layer])


def _fit_sequences(model_class, body, monkeypatch, **compile_kwargs):
    """`model_class` with `body` as encoder, fitted 4 epochs (3 batches each), every fit long enough for XLA."""
    monkeypatch.setattr(xla_choice, "AUTO_XLA_MIN_STEPS", 0)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(40, 4, 2)).astype("float32")
    encoder = keras.Sequential([keras.Input((4, 2)), body])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8), keras.layers.Reshape((4, 2))])
    model = model_class(encoder, decoder, 2)
    model.compile(**compile_kwargs)
    history = model.fit(x, epochs=4, batch_size=16, verbose=0)
    assert int(model.optimizer.iterations) == 4 * 3 and np.all(np.isfinite(history.history["loss"]))
    return model, model.fast_fit._traced_step("train", (tf.constant(x), None, None))  # the step fit traced


@pytest.mark.parametrize("body, path, xla", [
    (lambda: keras.layers.GRU(3), "epoch loop", None),  # a loop: kept off XLA by the rule, never compiled
    (lambda: _dense_then(_Branch()), "epoch loop + XLA", "ran"),  # a branch: its gradient traced for XLA
    (lambda: _dense_then(_NumpyIdentity()), "epoch loop", "failed"),  # XLA cannot compile it: goes on without
    (lambda: _dense_then(_UnboundedLoop()), "epoch loop", None),  # a loop
], ids=["gru", "cond", "numpy_function", "while_loop"])
def test_auto_uses_xla_on_branches_and_keeps_off_loops_and_what_xla_cannot_compile(body, path, xla, monkeypatch):
    model, step = _fit_sequences(tfvae.VAE, body(), monkeypatch)
    assert step.traced_for_xla and model.fit_path == path
    choice = model.fast_fit.epoch_choice
    if xla is None:  # the rule chose the plain loop: no XLA function was built
        assert choice is None
    else:  # XLA was compiled: it ran every epoch, or it failed in the first and the fit went on without
        assert choice.calls == 4 and choice.uses_xla == (xla == "ran")
        assert choice.xla_error is None if xla == "ran" else isinstance(choice.xla_error, tf.errors.OpError)


@pytest.mark.slow  # a recurrent layer compiled by XLA; auto keeps it off XLA (the gru case above, unmarked)
def test_a_loop_forced_onto_xla_trains(monkeypatch):
    # jit_compile=True overrides the rule for a recurrent layer too (its gradient traced for XLA).
    model, step = _fit_sequences(tfvae.VAE, keras.layers.GRU(3), monkeypatch, jit_compile=True)
    assert step.traced_for_xla and model.fit_path == "epoch loop + XLA"


def test_a_step_that_cannot_be_traced_for_xla_is_traced_without_it_and_kept_off_xla(monkeypatch):
    # Stands in for TensorFlow refusing a step inside an XLA function: the first trace raises.
    class RefusedOnce(tfvae.VAE):
        traces = 0

        def train_step(self, data):
            RefusedOnce.traces += 1
            if RefusedOnce.traces == 1:
                raise ValueError("refused inside an XLA function")
            return super().train_step(data)

    model, step = _fit_sequences(RefusedOnce, _dense_then(keras.layers.Activation("tanh")), monkeypatch)
    assert RefusedOnce.traces == 2 and not step.traced_for_xla
    assert not _xla_built(model)
    assert model.fit_path == "epoch loop"


def test_the_rule_is_stated_once_in_the_loop_module_with_its_constants():
    text = " ".join(epoch_loop.__doc__.split())
    assert f"`tfvae.xla_choice.AUTO_XLA_MIN_STEPS` ({xla_choice.AUTO_XLA_MIN_STEPS})" in text
    assert ", ".join(f"`{word}`" for word in xla_choice.SLOW_UNDER_XLA) in text
    root = pathlib.Path(__file__).resolve().parents[1]
    for where, other in {"README.md": (root / "README.md").read_text(),
                         "docs/training.md": (root / "docs" / "training.md").read_text(),
                         "tfvae.VAE.fit": tfvae.VAE.fit.__doc__}.items():
        other = " ".join(other.split())
        assert "tfvae.epoch_loop" in other or "tfvae/epoch_loop.py" in other, where
        assert "times a few epochs" not in other and "as many as take" not in other, where


def test_op_determinism_keeps_auto_off_xla(digits, monkeypatch):
    # TensorFlow has no public way to turn determinism off again: stand in
    # for enable_op_determinism() where the rule reads it.
    (x_train, _), _ = digits
    monkeypatch.setattr(xla_choice, "op_determinism_enabled", lambda: True)
    monkeypatch.setattr(xla_choice, "AUTO_XLA_MIN_STEPS", 0)
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam")
    model.fit(x_train[:320], epochs=2, batch_size=16, verbose=0)
    assert model.fit_path == "epoch loop" and not _xla_built(model)


def test_an_untested_keras_falls_back_to_keras_loop_with_a_warning(digits, monkeypatch):
    (x_train, _), (x_test, _) = digits
    monkeypatch.setattr(keras, "version", lambda: "3.99.0")
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam")
    with pytest.warns(RuntimeWarning, match="Keras 3.99.0 is not a version it was tested with"):
        history = model.fit(x_train[:100], epochs=2, batch_size=32, validation_data=(x_test[:40], None), verbose=0)
    assert model.fit_path == "keras"
    assert int(model.optimizer.iterations) == 2 * 4  # Keras' loop took every step
    assert len(history.history["val_loss"]) == 2
    assert model.fast_fit.functions == {}


def test_other_inputs_take_keras_own_path(digits):
    (x_train, _), _ = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam", steps_per_execution=2)
    assert model.fast_fit.arrays({"x": x_train}) is None
    model.compile(optimizer="adam")
    assert model.fast_fit.arrays({"x": x_train}) is not None
    assert model.fast_fit.arrays({"x": x_train, "validation_split": 0.1}) is None
    assert model.fast_fit.arrays({"x": tf.data.Dataset.from_tensor_slices(x_train)}) is None
    history = model.fit(x_train[:64], epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert model.fit_path == "keras"


def test_callbacks_validation_and_stop_training_work_on_the_fast_path(digits):
    (x_train, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli", kl_warmup_steps=10)
    model.compile(optimizer="adam")
    seen = []

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(sorted(logs))
            self.model.stop_training = epoch == 1

    history = model.fit(x_train[:96], epochs=5, batch_size=32, validation_data=(x_test[:32], None), verbose=0,
                        callbacks=[StopAfterTwo()])
    assert len(history.history["loss"]) == 2
    assert seen[0] == ["kl", "kl_weight", "loss", "reconstruction", "val_kl", "val_loss", "val_reconstruction"]
    assert history.history["kl_weight"] == pytest.approx([0.3, 0.6])


def test_validation_is_traced_in_a_thread_during_the_first_epoch_and_its_errors_reach_fit(digits):
    (x_train, _), (x_test, _) = digits
    traced_in = []

    class Recording(tfvae.VAE):
        fail = False

        def test_step(self, data):
            traced_in.append(threading.current_thread().name)
            if self.fail:
                raise ValueError("the test step cannot be traced")
            return super().test_step(data)

    encoder = keras.Sequential([keras.Input((64,)), keras.layers.Dense(8, activation="relu")])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64)])
    model = Recording(encoder, decoder, 2, likelihood="bernoulli")
    model.compile(optimizer="adam", jit_compile=False)
    history = model.fit(x_train[:96], epochs=2, batch_size=32, validation_data=(x_test[:50], None), verbose=0)
    assert traced_in == ["tfvae-trace-validation"] and len(history.history["val_loss"]) == 2
    model.compile(optimizer="adam", jit_compile=False)  # new functions: traced again
    model.fail = True
    with pytest.raises(ValueError, match="cannot be traced"):
        model.fit(x_train[:96], epochs=2, batch_size=32, validation_data=(x_test[:50], None), verbose=0)


def test_validation_on_the_fast_path_equals_keras_evaluate(digits):
    # fit's per-epoch validation runs as one compiled call; it must report
    # what Keras' evaluate reports on the same weights and seeds, and still
    # call the test callbacks once per validation.
    (x_train, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam", jit_compile=False)
    calls = []

    class Seen(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            calls.append("begin")

        def on_test_end(self, logs=None):
            calls.append(sorted(logs))

    history = model.fit(x_train[:96], epochs=2, batch_size=32, validation_data=(x_test[:50], None), verbose=0,
                        callbacks=[Seen()])
    assert calls == ["begin", ["kl", "loss", "reconstruction"]] * 2
    seed_state = model.seed_generator.state.numpy()
    fast = model.fast_fit._fast_validation({"validation_data": (x_test[:50], None), "validation_batch_size": 32})
    fast_logs = fast(keras.callbacks.CallbackList([], model=model))
    # evaluate on arrays (verbose=0, return_dict=True) runs the same compiled call.
    model.seed_generator.state.assign(seed_state)
    evaluate_logs = model.evaluate(x_test[:50], batch_size=32, verbose=0, return_dict=True)
    model.seed_generator.state.assign(seed_state)
    keras_logs = keras.Model.evaluate(model, x_test[:50], batch_size=32, verbose=0, return_dict=True)
    for name in ("loss", "reconstruction", "kl"):
        assert fast_logs[name] == pytest.approx(keras_logs[name], rel=1e-5)
        assert evaluate_logs[name] == pytest.approx(keras_logs[name], rel=1e-5)
    assert len(history.history["val_loss"]) == 2


def test_the_epoch_logs_are_the_metrics_at_the_end_of_each_epoch_and_later_reads_are_fresh(digits):
    # Keras reads get_metrics_result right after each training call; the epoch loop hands it the
    # values that call computed at its end. Any later read (here after validation, which reuses
    # the trackers) must read the trackers again.
    (x_train, _), (x_test, _) = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam", jit_compile=False)
    at_batch_end, at_epoch_end = [], []

    class Reads(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # before Keras' own read
            at_batch_end.append({metric.name: float(metric.result()) for metric in self.model.metrics})

        def on_epoch_end(self, epoch, logs=None):
            at_epoch_end.append((self.model.get_metrics_result(), logs))

    history = model.fit(x_train[:96], epochs=3, batch_size=32, validation_data=(x_test[:50], None), verbose=0,
                        callbacks=[Reads()])
    for epoch, (metrics, logs) in enumerate(at_epoch_end):
        for name in ("loss", "reconstruction", "kl"):
            assert history.history[name][epoch] == pytest.approx(at_batch_end[epoch][name], rel=1e-6)
            assert metrics[name] == pytest.approx(logs[f"val_{name}"], rel=1e-6)  # the validation's values
    assert history.history["loss"][0] != pytest.approx(history.history["loss"][2], rel=1e-3)


def test_the_epoch_call_resets_the_metrics_and_a_read_before_it_sees_zeros(digits):
    # Keras resets the metrics before each epoch; the epoch loop leaves that to the epoch's own
    # compiled call (no call of its own), unless something reads the metrics first.
    (x_train, _), _ = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam", jit_compile=False)
    model.fit(x_train[:96], epochs=3, batch_size=32, verbose=0)
    assert "reset_metrics" not in model.fast_fit.functions
    at_epoch_begin = []

    class Reads(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            at_epoch_begin.append(self.model.get_metrics_result())

    history = model.fit(x_train[:96], epochs=3, batch_size=32, verbose=0, callbacks=[Reads()])
    assert [set(read.values()) for read in at_epoch_begin] == [{0.0}] * 3
    losses = history.history["loss"]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses) and losses[0] != losses[2]
    after = {name: float(value) for name, value in model.get_metrics_result().items()}
    assert after == pytest.approx({name: history.history[name][-1] for name in ("loss", "reconstruction", "kl")})
