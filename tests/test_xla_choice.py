"""tfvae.xla_choice: the epoch loop's XLA rule from the fit's arguments, and its one guarded private read."""

import pytest
import tensorflow as tf

from tfvae import _tested_versions, xla_choice


@pytest.mark.parametrize("jit_compile, kind, steps, expected", [
    (True, "train", 1, True),  # the user decides
    (False, "train", 10**6, False),
    ("auto", "train", xla_choice.AUTO_XLA_MIN_STEPS - 1, False),  # too short to repay compiling
    ("auto", "train", xla_choice.AUTO_XLA_MIN_STEPS, "graph"),  # then the step's ops decide
    ("auto", "test", 10**6, False),  # validation: a few batches an epoch
    ("auto", "train", 150 * 23, False),  # the digits' default fit
    ("auto", "train", 450 * 23, "graph"),
])
def test_choose_follows_the_stated_rule(jit_compile, kind, steps, expected):
    assert xla_choice.choose(jit_compile, kind, steps) == expected


def test_op_determinism_turns_auto_off(monkeypatch):
    monkeypatch.setattr(xla_choice, "op_determinism_enabled", lambda: True)
    assert xla_choice.choose("auto", "train", 10**6) is False
    assert xla_choice.choose(True, "train", 10**6) is True


def test_op_determinism_is_read_only_on_a_tested_tensorflow(monkeypatch):
    # The suite runs without op determinism (test_resume.py turns it on in a process of its own).
    assert _tested_versions.tensorflow_is_tested()
    assert xla_choice.op_determinism_enabled() is False
    monkeypatch.setattr(_tested_versions, "tensorflow_is_tested", lambda: False)
    assert xla_choice.op_determinism_enabled() is True  # unknown: the safe side, no XLA under "auto"


def _graph_of(function, *specs):
    return tf.function(function, input_signature=specs).get_concrete_function()


def test_slow_under_xla_finds_convolutions_pooling_and_loops_in_the_graph():
    image = tf.TensorSpec([None, 8, 8, 1])
    kernel = tf.zeros([3, 3, 1, 2])
    assert xla_choice.slow_under_xla(_graph_of(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"), image))
    assert xla_choice.slow_under_xla(_graph_of(lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID"), image))
    loop = _graph_of(lambda x: tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2), (0, x))[1], image)
    assert xla_choice.slow_under_xla(loop)
    assert not xla_choice.slow_under_xla(_graph_of(lambda x: tf.tanh(x) @ tf.ones([8, 8]), tf.TensorSpec([None, 8])))


class _Run:
    def __init__(self, error=None):
        self.error, self.calls = error, 0

    def __call__(self):
        self.calls += 1
        if self.error is not None and self.calls == 1:
            raise self.error
        return {"loss": 1.0}


def test_xla_or_plain_goes_on_without_xla_when_xla_cannot_compile():
    error = tf.errors.InvalidArgumentError(None, None, "no XLA kernel")
    plain = _Run()
    choice = xla_choice.XLAOrPlain(_Run(error), lambda: plain)
    assert [choice() for _ in range(3)] == [{"loss": 1.0}] * 3
    assert not choice.uses_xla and choice.xla_error is error and plain.calls == 3


def test_xla_or_plain_keeps_xla_and_raises_later_errors():
    xla = _Run()
    choice = xla_choice.XLAOrPlain(xla, lambda: pytest.fail("built the plain epoch"))
    choice()
    assert choice.uses_xla and choice.xla_error is None
    xla.error, xla.calls = tf.errors.InvalidArgumentError(None, None, "NaN"), 0
    with pytest.raises(tf.errors.InvalidArgumentError):
        choice()
