"""Keras' Adam with its bias correction computed once per step, and large variables updated in one op.

Keras' `Adam.update_step` computes, for every variable it updates,

    t     = iterations + 1
    alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)

from its own read of `iterations`: about ten scalar graph ops per variable,
which TensorFlow does not merge (each reads the variable anew). On a CPU,
where a small model's step costs mostly per-op overhead, those ops are a
large part of the traced step; this class computes them once. `tfvae train`
uses it.

Keras then updates `m`, `v` and the variable in about a dozen element-wise
ops, each a pass over the variable. A variable of `FUSED_MIN_SIZE` elements
or more is updated instead by TensorFlow's own fused Adam kernel
(`tf.raw_ops.ResourceApplyAdam`, the op Keras 2's Adam ran): one pass, the
same formula. Below that size Keras' ops are faster on a CPU (the fused
kernel splits its work over the CPU's threads, a fixed cost per variable),
so a small MLP's updates are unchanged.

The updates of variables below `FUSED_MIN_SIZE` are Keras' own, op for op:
tests/test_optimizers.py checks that training with either class gives the
same weights bit for bit. The fused kernel computes `1 - beta_1` and
`1 - beta_2` from float32's `beta_1` and `beta_2` (Keras in Python floats:
`1 - beta_2` differs by 1.3e-5 relative at 0.999), so its updates agree
with Keras' to about 1e-6, not bit for bit (checked in the same file).
"""

import math

import keras
import tensorflow as tf
from keras import ops

#: Variables with at least this many elements are updated by TensorFlow's fused
#: Adam kernel: the size from which one fused pass beats Keras' element-wise ops
#: on a CPU (time one compiled update of a few variables of each size to move it).
FUSED_MIN_SIZE = 65536


@keras.saving.register_keras_serializable(package="tfvae")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` that computes `alpha` (the bias-corrected step) once per `apply`.

    Takes the same arguments as `keras.optimizers.Adam` and gives the same
    updates; only the graph of a step is smaller, and large variables are
    updated in one op (see the module docstring). `alpha` is computed at the
    first variable of each dtype and device in a call of `apply`, and reused
    for the others.

    Example:

    >>> import tfvae
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile(optimizer=tfvae.optimizers.Adam(1e-3))
    >>> print(model.optimizer.learning_rate.numpy())
    0.001
    """

    _step_values = None  # {(dtype, device): _StepValues} during `apply`
    _slots = None  # {slot name: {id of a model variable's tf.Variable: its slot}}

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """Keras' `add_optimizer_variables`, remembering which slot belongs to which variable.

        Keras' `Adam.build` creates its `momentum`, `velocity` (and
        `velocity_hat`) slots through this public method; `update_step` finds
        them here, without Keras' private lists. A variable not found (a
        replica's copy under a `tf.distribute` strategy, or a Keras whose
        `build` makes its slots another way) gets Keras' own `update_step`.
        """
        created = super().add_optimizer_variables(trainable_variables, name, initializer)
        names = [name] if isinstance(name, str) else list(name)
        lists = [created] if isinstance(name, str) else list(created)
        slots = self._slots if self._slots is not None else {}
        for slot_name, slot_list in zip(names, lists):
            slots.setdefault(slot_name, {}).update(
                {_key(variable): slot for variable, slot in zip(trainable_variables, slot_list)})
        self._slots = slots
        return created

    def apply(self, grads, trainable_variables=None):
        self._step_values = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_values = None

    def update_step(self, gradient, variable, learning_rate):
        """Keras' `Adam.update_step`, with `alpha` shared by the variables of one `apply`.

        A variable of `FUSED_MIN_SIZE` elements or more (with a dense
        gradient, without `amsgrad` or a `tf.distribute` strategy) is updated
        by `tf.raw_ops.ResourceApplyAdam`.
        """
        slots = self._slots or {}
        m, v = (slots.get(name, {}).get(_key(variable)) for name in ("momentum", "velocity"))
        v_hat = slots.get("velocity_hat", {}).get(_key(variable)) if self.amsgrad else None
        if self._step_values is None or m is None or v is None or (self.amsgrad and v_hat is None):
            # Outside `apply` (as Keras' stateless_apply would), or a variable of unknown slots.
            return super().update_step(gradient, variable, learning_rate)
        key = (variable.dtype, variable.device)
        if key not in self._step_values:
            self._step_values[key] = _StepValues(self, variable.dtype, learning_rate)
        step = self._step_values[key]
        gradient = ops.cast(gradient, variable.dtype)
        if self._fused(gradient, variable):
            tf.raw_ops.ResourceApplyAdam(
                var=variable.handle, m=m.handle, v=v.handle, beta1_power=step.beta_1_power,
                beta2_power=step.beta_2_power, lr=step.learning_rate, beta1=step.beta_1, beta2=step.beta_2,
                epsilon=step.epsilon, grad=gradient)
            return
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        self.assign_sub(variable, ops.divide(ops.multiply(m, step.alpha), ops.add(ops.sqrt(v), self.epsilon)))

    def _fused(self, gradient, variable):
        """Whether `variable` takes TensorFlow's fused Adam kernel (see `FUSED_MIN_SIZE`).

        Not under a `tf.distribute` strategy: Keras' ops keep its replicas'
        updates Keras' own (tests/test_optimizers.py checks them bit for bit).
        """
        shape = tuple(variable.shape)  # a tf.Variable's TensorShape or a keras.Variable's tuple
        return (None not in shape and math.prod(shape) >= FUSED_MIN_SIZE and not self.amsgrad
                and not isinstance(gradient, tf.IndexedSlices) and not tf.distribute.has_strategy())


def _key(variable):
    """What identifies a model variable in `update_step`: its `tf.Variable` (Keras passes `variable.value`)."""
    return id(variable.value if isinstance(variable, keras.Variable) else variable)


class _StepValues:
    """The step's `learning_rate`, `beta_1`, `beta_2`, `epsilon`, their powers and `alpha` in one dtype, once per `apply`."""

    def __init__(self, optimizer, dtype, learning_rate):
        self.learning_rate = ops.cast(learning_rate, dtype)
        self.beta_1, self.beta_2 = ops.cast(optimizer.beta_1, dtype), ops.cast(optimizer.beta_2, dtype)
        self.epsilon = ops.cast(optimizer.epsilon, dtype)
        local_step = ops.cast(optimizer.iterations + 1, dtype)
        self.beta_1_power = ops.power(self.beta_1, local_step)
        self.beta_2_power = ops.power(self.beta_2, local_step)
        self.alpha = self.learning_rate * ops.sqrt(1 - self.beta_2_power) / (1 - self.beta_1_power)
