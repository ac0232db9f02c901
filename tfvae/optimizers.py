"""Keras' Adam with its bias correction computed once per step, not once per variable.

Keras' `Adam.update_step` computes, for every variable it updates,

    t     = iterations + 1
    alpha = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)

from its own read of `iterations`: about ten scalar graph ops per variable,
which TensorFlow does not merge (each reads the variable anew). On a CPU,
where a small model's step costs mostly per-op overhead, that is a fifth of
the traced step: the digits MLP of `tfvae train` (14 variables) traces 959
ops with this class against 1,180 with Keras' Adam, and its steady epochs
took 34.6-36.4 ms against 38.5-39.5 ms (docs/training.md). `tfvae train`
uses it.

The updates are Keras' own, op for op: tests/test_optimizers.py checks that
training with either class gives the same weights bit for bit.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfvae")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` that computes `alpha` (the bias-corrected step) once per `apply`.

    Takes the same arguments as `keras.optimizers.Adam` and gives the same
    updates; only the graph of a step is smaller (see the module docstring).
    `alpha` is computed at the first variable of each dtype and device in a
    call of `apply`, and reused for the others.

    Example:

    >>> import tfvae
    >>> model = tfvae.mlp_vae(6, (4,), 2)
    >>> model.compile(optimizer=tfvae.optimizers.Adam(1e-3))
    """

    _alphas = None  # {(dtype, device): alpha} during `apply`

    def apply(self, grads, trainable_variables=None):
        self._alphas = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._alphas = None

    def update_step(self, gradient, variable, learning_rate):
        """Keras' `Adam.update_step`, with `alpha` shared by the variables of one `apply`."""
        if self._alphas is None:  # called outside `apply` (as Keras' stateless_apply would)
            return super().update_step(gradient, variable, learning_rate)
        key = (variable.dtype, variable.device)
        if key not in self._alphas:
            lr = ops.cast(learning_rate, variable.dtype)
            local_step = ops.cast(self.iterations + 1, variable.dtype)
            beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), local_step)
            beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), local_step)
            self._alphas[key] = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        alpha = self._alphas[key]
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.amsgrad:
            v_hat = self._velocity_hats[index]
            self.assign(v_hat, ops.maximum(v_hat, v))
            v = v_hat
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))
