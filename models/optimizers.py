"""The optimizers of the trainers: PixelDA's Adam as PyTorch computes it, CycleGAN's Adam
with a linear decay."""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="optimizers")
class TorchAdam(keras.optimizers.Adam):
    """`torch.optim.Adam(lr, betas, eps=1e-8, weight_decay=l2)` in Keras.

    Two things differ from Keras' `Adam`: the weight decay is an L2 gradient term (`g + l2 * w`
    enters the moments, as PyTorch's `weight_decay` and the official PixelDA code's L2
    regularizer; Keras' `weight_decay` is decoupled, as AdamW), and epsilon is added to the
    bias-corrected `sqrt(v_hat)` (Keras adds it to `sqrt(v)`). Each variable's update runs
    after gradients are aggregated across replicas and clipped (`clipnorm`), so the L2
    term counts once under any `tf.distribute` strategy.
    """

    def __init__(self, l2: float = 0.0, epsilon: float = 1e-8, **kwargs):
        kwargs.pop("amsgrad", None)  # not PyTorch's default; not supported here
        super().__init__(epsilon=epsilon, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        if self.l2:
            gradient = gradient + ops.cast(self.l2, dtype) * variable
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        self.assign_add(v, (ops.square(gradient) - v) * (1 - self.beta_2))
        # 1 - beta**t as -expm1(t log beta): accurate as PyTorch's float64 Python numbers
        # (1 - float32(0.999) is off by 1.3e-5 of itself), without float64 (TPUs lack it)
        step = ops.cast(self.iterations + 1, dtype)
        bc1, bc2 = (-ops.expm1(step * math.log(b)) for b in (self.beta_1, self.beta_2))
        lr = ops.cast(learning_rate, dtype)
        self.assign_sub(variable, lr / bc1 * m / (ops.sqrt(v / bc2) + self.epsilon))

    def get_config(self) -> dict:
        return {**super().get_config(), "l2": self.l2}


def paper_optimizer(
    learning_rate: float = 1e-3,
    beta_1: float = 0.5,
    weight_decay: float = 1e-5,
    decay_steps: int = 20_000,
    decay_rate: float = 0.95,
    clipnorm: float | None = None,
) -> TorchAdam:
    """Adam(1e-3, beta1 0.5) with L2 weight decay 1e-5 (PyTorch's `weight_decay`), learning
    rate x0.95 every 20,000 steps; `clipnorm` clips each gradient's norm (official code: 5)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps, decay_rate, staircase=True
    )
    return TorchAdam(weight_decay, learning_rate=schedule, beta_1=beta_1, clipnorm=clipnorm)


@keras.saving.register_keras_serializable(package="cyclegan")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate` until `decay_start` (default: half of `total_steps`), then
    linearly down to 0 at `total_steps` (and 0 after)."""

    def __init__(
        self, initial_learning_rate: float, total_steps: int, decay_start: int | None = None
    ):
        self.initial_learning_rate = initial_learning_rate
        self.total_steps = int(total_steps)
        self.decay_start = self.total_steps // 2 if decay_start is None else int(decay_start)

    def __call__(self, step):
        span = max(self.total_steps - self.decay_start, 1)
        remaining = (self.total_steps - ops.cast(step, "float32")) / span
        return self.initial_learning_rate * ops.clip(remaining, 0.0, 1.0)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "decay_start": self.decay_start,
        }


def cyclegan_optimizer(
    total_steps: int | None = None, learning_rate: float = 2e-4, beta_1: float = 0.5
) -> keras.optimizers.Adam:
    """CycleGAN's Adam(2e-4, beta1 0.5): constant for the first half of `total_steps`, then
    linearly to 0 (constant without `total_steps`)."""
    if total_steps is not None:
        learning_rate = LinearDecay(learning_rate, total_steps)
    return keras.optimizers.Adam(learning_rate, beta_1=beta_1)
