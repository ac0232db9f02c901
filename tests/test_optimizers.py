import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae.optimizers import FUSED_MIN_SIZE, Adam


def _trained(optimizer, x, **fit):
    keras.utils.set_random_seed(0)
    model = tfvae.mlp_vae(x.shape[1], (16,), 2, likelihood="bernoulli")
    model.compile(optimizer=optimizer, jit_compile=False)
    model.fit(x, verbose=0, **fit)
    return model


@pytest.mark.parametrize("amsgrad", [False, True])
def test_the_updates_are_keras_adams_bit_for_bit(digits, amsgrad):
    x = digits[0][0][:200]
    ours = _trained(Adam(1e-2, amsgrad=amsgrad), x, epochs=2, batch_size=32)
    theirs = _trained(keras.optimizers.Adam(1e-2, amsgrad=amsgrad), x, epochs=2, batch_size=32)
    assert int(ours.optimizer.iterations) == int(theirs.optimizer.iterations) == 14
    for mine, reference in zip(ours.get_weights() + [v.numpy() for v in ours.optimizer.variables],
                               theirs.get_weights() + [v.numpy() for v in theirs.optimizer.variables]):
        np.testing.assert_array_equal(mine, reference)


def test_the_vaes_default_compile_is_this_adam_at_1e_3(digits):
    x = digits[0][0][:200]
    model = tfvae.mlp_vae(x.shape[1], (16,), 2, likelihood="bernoulli")
    model.compile(jit_compile=False)
    assert type(model.optimizer) is Adam
    expected = Adam(1e-3).get_config()
    assert model.optimizer.get_config() == {**expected, "name": model.optimizer.name}
    # It trains as the explicit optimizer does, bit for bit; a named optimizer is still Keras'.
    default = _trained(None, x, epochs=1, batch_size=32)
    explicit = _trained(Adam(1e-3), x, epochs=1, batch_size=32)
    for mine, reference in zip(default.get_weights(), explicit.get_weights()):
        np.testing.assert_array_equal(mine, reference)
    model.compile(optimizer="rmsprop")
    assert type(model.optimizer) is keras.optimizers.RMSprop


def test_the_step_computes_the_bias_correction_once():
    variables = [tf.Variable(tf.ones([3])) for _ in range(5)]

    def pow_ops(optimizer):
        optimizer.build(variables)
        step = tf.function(lambda: optimizer.apply([tf.ones([3])] * 5, variables))
        return sum(op.type == "Pow" for op in step.get_concrete_function().graph.get_operations())

    assert pow_ops(keras.optimizers.Adam()) == 10  # beta_1**t and beta_2**t for each of the 5 variables
    assert pow_ops(Adam()) == 2


def test_a_variable_whose_slots_it_did_not_see_made_gets_keras_own_update():
    # The slots are found through the public add_optimizer_variables; a Keras whose Adam.build made
    # them another way (stood in for by forgetting them) must still update as Keras' Adam does.
    variables = [tf.Variable(tf.ones([3]) * i) for i in range(1, 3)]
    reference = [tf.Variable(v) for v in variables]
    ours, theirs = Adam(0.1), keras.optimizers.Adam(0.1)
    ours.build(variables)
    assert set(ours._slots) == {"momentum", "velocity"}
    ours._slots = {}
    for _ in range(3):
        ours.apply([tf.constant([1.0, -2.0, 3.0])] * 2, variables)
        theirs.apply([tf.constant([1.0, -2.0, 3.0])] * 2, reference)
    for mine, expected in zip(variables, reference):
        np.testing.assert_array_equal(mine.numpy(), expected.numpy())


def test_a_large_variable_takes_tensorflows_fused_kernel_and_keras_updates():
    # One variable of FUSED_MIN_SIZE elements, one just below: ten steps of the same random gradients
    # with this Adam and Keras'. The large one is updated by one ResourceApplyAdam, which computes
    # 1 - beta_2 from float32's 0.999 (1.3e-5 relative off Keras' 0.001); the small one by Keras' ops.
    rng = np.random.default_rng(0)
    shapes = [(FUSED_MIN_SIZE // 256, 256), (FUSED_MIN_SIZE - 1,)]
    initial = [rng.normal(size=shape).astype("float32") for shape in shapes]
    gradients = [[rng.normal(size=shape).astype("float32") for shape in shapes] for _ in range(10)]

    def trained(optimizer):
        variables = [keras.Variable(value) for value in initial]
        optimizer.build(variables)
        step = tf.function(lambda grads: optimizer.apply(grads, variables))
        for grads in gradients:
            step([tf.constant(g) for g in grads])
        graph = step.get_concrete_function([tf.TensorSpec(shape) for shape in shapes]).graph
        states = [[v.numpy(), m.numpy(), u.numpy()] for v, m, u in
                  zip(variables, optimizer._momentums, optimizer._velocities)]
        return states, [op.type for op in graph.get_operations()]

    ours, our_ops = trained(Adam(1e-3))
    theirs, their_ops = trained(keras.optimizers.Adam(1e-3))
    assert our_ops.count("ResourceApplyAdam") == 1 and "ResourceApplyAdam" not in their_ops
    for mine, reference in zip(ours[1], theirs[1]):  # below the size: Keras' ops, bit for bit
        np.testing.assert_array_equal(mine, reference)
    weights, momentum, velocity = (np.abs(a - b) for a, b in zip(ours[0], theirs[0]))
    assert weights.max() < 1e-6 and momentum.max() < 1e-6  # steps of ~1e-3 each
    np.testing.assert_allclose(ours[0][2], theirs[0][2], rtol=2e-5)
    assert not np.array_equal(ours[0][0], theirs[0][0])  # the kernel did run


MIRRORED_LARGE_VARIABLE = """
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfvae.optimizers import FUSED_MIN_SIZE, Adam

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 256)).astype("float32"), rng.normal(size=(64, 256)).astype("float32")
weights = []
for optimizer_class in (Adam, keras.optimizers.Adam):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(256)])  # a 65,536-element kernel
        model.compile(optimizer=optimizer_class(1e-3), loss="mse")
    assert model.layers[0].kernel.shape.num_elements() >= FUSED_MIN_SIZE
    model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    weights.append(model.get_weights())
print("same" if all(np.array_equal(a, b) for a, b in zip(*weights)) else "different")
"""


@pytest.mark.slow
def test_under_a_distribution_strategy_large_variables_keep_keras_ops():
    # Under a tf.distribute strategy every variable keeps Keras' ops, bit for bit (the fused kernel is
    # left to one device): MirroredStrategy on two logical CPUs, set before TensorFlow starts, so in a
    # child process.
    done = subprocess.run([sys.executable, "-c", MIRRORED_LARGE_VARIABLE], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["same"]


def test_it_is_saved_and_loaded_with_the_model(tmp_path, digits):
    x = digits[0][0][:64]
    model = _trained(Adam(3e-3, beta_1=0.8), x, epochs=1, batch_size=32)
    model.save(tmp_path / "model.keras")
    loaded = tfvae.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is Adam
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert int(loaded.optimizer.iterations) == 2


@pytest.mark.slow
def test_a_saved_model_loads_in_a_process_that_only_imports_tfvae(tmp_path, digits):
    # As tfvae-export or a serving script loads what tfvae train saved.
    model = _trained(Adam(1e-3), digits[0][0][:64], epochs=1, batch_size=32)
    model.save(tmp_path / "model.keras")
    code = "import sys, tfvae; print(type(tfvae.load_model(sys.argv[1]).optimizer).__module__)"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["tfvae.optimizers"]
