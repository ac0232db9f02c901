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
from tfvae import epoch_loop


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


def test_xla_training_is_reproducible_from_a_seed(digits):
    (x_train, _), _ = digits
    first, _ = _trained(x_train[:200], True)
    second, _ = _trained(x_train[:200], True)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("jit_compile, calls", [(False, 1), (True, 2)])
def test_the_epoch_graph_holds_the_step_once_without_xla(digits, jit_compile, calls):
    # Without XLA the in-graph loop takes the partial last batch too: TensorFlow optimizes one
    # copy of the step before the first run. Under XLA the partial batch is a second call.
    (x_train, _), _ = digits
    model, _ = _trained(x_train[:100], jit_compile, epochs=1)
    arrays = (tf.constant(x_train[:100]), None, None)
    epoch = model._epoch_function_for("train", arrays, 8, True, jit_compile)
    step = model._traced_step("train", arrays).get_concrete_function().name.decode()
    graph = epoch.function.get_concrete_function(epoch.data).graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    assert sum(node.attr["f"].func.name == step for node in nodes if "PartitionedCall" in node.op) == calls


def test_shuffling_changes_every_epoch_and_is_seeded():
    keras.utils.set_random_seed(3)
    model = tfvae.mlp_vae(4, (4,), 2)
    model.compile(optimizer="adam")
    orders = [model._epoch_order(10, True).numpy() for _ in range(3)]
    assert all(sorted(order) == list(range(10)) for order in orders)
    assert not np.array_equal(orders[0], orders[1])
    keras.utils.set_random_seed(3)
    again = tfvae.mlp_vae(4, (4,), 2)
    np.testing.assert_array_equal(again._epoch_order(10, True).numpy(), orders[0])


def _conv_vae():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, 2, "same", activation="relu"),
                                keras.layers.Flatten(), keras.layers.Dense(8, activation="relu")])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4 * 4 * 4, activation="relu"),
                                keras.layers.Reshape((4, 4, 4)), keras.layers.Conv2DTranspose(1, 3, 2, "same")])
    return tfvae.VAE(encoder, decoder, 2, likelihood="bernoulli")


def _xla_built(model):
    """Whether an XLA epoch function was built (keys: kind, batch, shuffle, present, n, uses_xla, signature)."""
    return any(isinstance(key, tuple) and len(key) == 7 and key[5] for key in model._epoch_functions)


def test_auto_keeps_convolutional_models_off_xla(digits, monkeypatch):
    # The stated rule: XLA is tried only without convolution/pooling ops and
    # with op determinism off, when the rest of the fit would take at least
    # AUTO_XLA_MIN_SECONDS (set to 0 here, so every fit long enough to time both paths
    # would try it). Checked through fit.
    (x_train, _), _ = digits
    monkeypatch.setattr(epoch_loop, "AUTO_XLA_MIN_SECONDS", 0.0)
    images = x_train.reshape(-1, 8, 8, 1)
    conv = _conv_vae()
    conv.compile(optimizer="adam")
    history = conv.fit(images, epochs=14, batch_size=128, verbose=0)  # long enough to time both paths
    assert conv.fit_path == "epoch loop" and not _xla_built(conv)
    assert np.all(np.isfinite(history.history["loss"]))
    mlp = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    mlp.compile(optimizer="adam")
    mlp.fit(x_train, epochs=2, batch_size=128, verbose=0)
    assert mlp.fit_path == "epoch loop" and not _xla_built(mlp)  # too short to try
    mlp.fit(x_train, epochs=14, batch_size=128, verbose=0)  # 1 + up to 5 timed plain, 1 compiling, up to 5 timed XLA
    assert _xla_built(mlp)  # tried; kept if it was faster
    assert int(mlp.optimizer.iterations) == 16 * -(-len(x_train) // 128)  # every epoch trained, whichever ran it
    mlp.compile(optimizer="adam", jit_compile=False)
    mlp.fit(x_train, epochs=5, batch_size=128, verbose=0)
    assert mlp.fit_path == "epoch loop" and not _xla_built(mlp)
    monkeypatch.setattr(epoch_loop, "AUTO_XLA_MIN_SECONDS", 1e9)
    mlp.compile(optimizer="adam")
    mlp.fit(x_train, epochs=5, batch_size=128, verbose=0)
    assert mlp.fit_path == "epoch loop" and not _xla_built(mlp)  # would not repay compiling
    conv.compile(optimizer="adam", jit_compile=True)  # the user's choice overrides the rule
    conv.fit(images[:64], epochs=1, batch_size=32, verbose=0)
    assert conv.fit_path == "epoch loop + XLA"


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


def _recorded_choices(monkeypatch):
    """The `_TimedXLAChoice` of each fit from now on, with AUTO_XLA_MIN_SECONDS = 0 (every fit tries XLA)."""
    choices = []

    class Recorded(epoch_loop._TimedXLAChoice):
        def __init__(self, *args):
            super().__init__(*args)
            choices.append(self)

    monkeypatch.setattr(epoch_loop, "_TimedXLAChoice", Recorded)
    monkeypatch.setattr(epoch_loop, "AUTO_XLA_MIN_SECONDS", 0.0)
    return choices


def _fit_sequences(model_class, body):
    """`model_class` with `body` as encoder, fitted 14 epochs (3 batches each) with the default compile()."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(40, 4, 2)).astype("float32")
    encoder = keras.Sequential([keras.Input((4, 2)), body])
    decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8), keras.layers.Reshape((4, 2))])
    model = model_class(encoder, decoder, 2)
    model.compile()
    history = model.fit(x, epochs=14, batch_size=16, verbose=0)  # long enough to time both paths
    assert int(model.optimizer.iterations) == 14 * 3 and np.all(np.isfinite(history.history["loss"]))
    (step,) = (function for key, function in model._epoch_functions.items() if key[:2] == ("step", "train"))
    return model, step


@pytest.mark.parametrize("body, compiles", [
    (lambda: keras.layers.GRU(3), True),  # a loop: its gradient must be traced for XLA
    (lambda: _dense_then(_Branch()), True),  # a branch
    (lambda: _dense_then(_NumpyIdentity()), False),
    (lambda: _dense_then(_UnboundedLoop()), False),
], ids=["gru", "cond", "numpy_function", "while_loop"])
def test_auto_tries_xla_on_loops_and_branches_and_keeps_off_what_xla_cannot_compile(body, compiles, monkeypatch):
    # Before, the default compile() failed in the third epoch of each of these fits: XLA was handed the
    # step traced without it (a recurrent layer's or a branch's gradient), or an op it cannot compile.
    choices = _recorded_choices(monkeypatch)
    model, step = _fit_sequences(tfvae.VAE, body())
    (choice,) = choices
    assert choice.calls == 14 and step.traced_for_xla
    if compiles:
        assert choice.xla_error is None and _xla_built(model)
        assert model.fit_path == ("epoch loop + XLA" if choice.uses_xla else "epoch loop")
    else:
        assert isinstance(choice.xla_error, tf.errors.OpError)
        assert choice.xla is None and not choice.uses_xla and model.fit_path == "epoch loop"


def test_a_step_that_cannot_be_traced_for_xla_is_traced_without_it_and_kept_off_xla(monkeypatch):
    # Stands in for TensorFlow refusing a step inside an XLA function: the first trace raises.
    class RefusedOnce(tfvae.VAE):
        traces = 0

        def train_step(self, data):
            RefusedOnce.traces += 1
            if RefusedOnce.traces == 1:
                raise ValueError("refused inside an XLA function")
            return super().train_step(data)

    choices = _recorded_choices(monkeypatch)
    model, step = _fit_sequences(RefusedOnce, _dense_then(keras.layers.Activation("tanh")))
    (choice,) = choices
    assert RefusedOnce.traces == 2 and not step.traced_for_xla
    assert choice.calls == 14 and choice.xla is None and choice.xla_error is None and not _xla_built(model)
    assert model.fit_path == "epoch loop"


@pytest.mark.parametrize("xla_seconds, keeps_xla", [(0.001, True), (0.05, False)])
def test_timed_choice_keeps_the_faster_epoch_function(xla_seconds, keeps_xla):
    ran = []

    def runner(name, seconds):
        def run():
            time.sleep(seconds)
            ran.append(name)
            return {"loss": 1.0}
        return run

    built = []
    choice = epoch_loop._TimedXLAChoice(runner("plain", 0.01), lambda: built.append(1) or runner("xla", xla_seconds),
                                        epochs=2 + int(epoch_loop.AUTO_XLA_MIN_SECONDS / 0.005))
    timed = choice.MAX_TIMED_EPOCHS  # 10 ms epochs: fewer than TIMED_SECONDS would take
    assert 0.01 * timed < choice.TIMED_SECONDS
    for _ in range(2 + 2 * timed + 4):
        assert choice() == {"loss": 1.0}
    assert built == [1] and choice.timed == timed
    assert ran[:1 + timed] == ["plain"] * (1 + timed)  # the first epoch, then the timed ones
    assert ran[1 + timed:2 + 2 * timed] == ["xla"] * (1 + timed)  # compiling, then the timed ones
    assert ran[2 + 2 * timed:] == ["xla" if keeps_xla else "plain"] * 4
    assert choice.uses_xla is keeps_xla
    assert len(choice.xla_seconds) == (1 if keeps_xla else timed)  # decided at its first faster epoch


@pytest.mark.parametrize("xla_seconds, keeps_xla", [([0.0], True), ([0.5, 0.0], True), ([0.5, 0.5], False)])
def test_timed_choice_keeps_xla_at_its_first_faster_epoch_and_drops_it_after_two_slower(xla_seconds, keeps_xla):
    # A plain epoch of TIMED_SECONDS: one is timed. XLA wins at its first epoch faster than that;
    # one slower XLA epoch (the machine's noise) does not decide, a second does.
    ran, seconds = [], [0.0, *xla_seconds]  # compiling, then the timed epochs
    slow = epoch_loop._TimedXLAChoice.TIMED_SECONDS

    def xla():
        ran.append("xla")
        time.sleep(seconds.pop(0) if seconds else 0.0)
        return {}

    choice = epoch_loop._TimedXLAChoice(lambda: ran.append("plain") or time.sleep(slow) or {}, lambda: xla,
                                        epochs=int(epoch_loop.AUTO_XLA_MIN_SECONDS / slow) + 10)
    for _ in range(3 + len(xla_seconds)):  # first, timed plain, compiling, timed XLA
        choice()
    assert choice.timed == 1 and len(choice.xla_seconds) == len(xla_seconds)
    assert choice.MIN_XLA_LOSSES == 2 and choice.uses_xla is keeps_xla
    choice()
    assert ran == ["plain"] * 2 + ["xla"] * (1 + len(xla_seconds)) + ["xla" if keeps_xla else "plain"]


def test_timed_choice_never_compiles_for_a_short_fit():
    choice = epoch_loop._TimedXLAChoice(lambda: {}, lambda: pytest.fail("built XLA"), epochs=20)
    for _ in range(20):
        choice()
    assert not choice.uses_xla


@pytest.mark.parametrize("where", ["README.md", "docs/training.md", "tfvae.VAE.fit", "tfvae.epoch_loop"])
def test_the_docs_state_the_rule_with_its_constants(where):
    # The rule is told to users in four places; each states the constants the code uses.
    if where.startswith("tfvae."):
        text = tfvae.VAE.fit.__doc__ if where == "tfvae.VAE.fit" else epoch_loop.__doc__
    else:
        text = (pathlib.Path(__file__).resolve().parents[1] / where).read_text()
    text = " ".join(text.split())
    choice = epoch_loop._TimedXLAChoice
    assert f"{epoch_loop.AUTO_XLA_MIN_SECONDS:g} s or more" in text or where == "tfvae.epoch_loop"
    if where != "README.md":
        assert f"as many as take {choice.TIMED_SECONDS:g} s, 1 to {choice.MAX_TIMED_EPOCHS})" in text
        assert f"at least {choice.MIN_XLA_LOSSES}, that did not" in text


def test_op_determinism_keeps_auto_off_xla(digits, monkeypatch):
    # TensorFlow has no public way to turn determinism off again: stand in
    # for enable_op_determinism() where the loop reads it.
    (x_train, _), _ = digits
    monkeypatch.setattr(epoch_loop, "is_op_determinism_enabled", lambda: True)
    monkeypatch.setattr(epoch_loop, "AUTO_XLA_MIN_SECONDS", 0.0)
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam")
    model.fit(x_train[:320], epochs=14, batch_size=16, verbose=0)  # long enough to time both paths
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
    assert model._epoch_functions == {}


def test_other_inputs_take_keras_own_path(digits):
    (x_train, _), _ = digits
    model = tfvae.mlp_vae(64, (8,), 2, likelihood="bernoulli")
    model.compile(optimizer="adam", steps_per_execution=2)
    assert model._epoch_loop_arrays({"x": x_train}) is None
    model.compile(optimizer="adam")
    assert model._epoch_loop_arrays({"x": x_train}) is not None
    assert model._epoch_loop_arrays({"x": x_train, "validation_split": 0.1}) is None
    assert model._epoch_loop_arrays({"x": tf.data.Dataset.from_tensor_slices(x_train)}) is None
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
    fast = model._fast_validation({"validation_data": (x_test[:50], None), "validation_batch_size": 32})
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
    assert "reset_metrics" not in model._epoch_functions
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
