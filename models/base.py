"""What the trainers share: their steps on every backend, and one optimizer (EndoVAE, MAF)
or two (PixelDA, CycleGAN)."""

from __future__ import annotations

import functools

import keras
from keras import StatelessScope

from models.backend import BACKEND


class Trainer(keras.Model):
    """A model with its own `train_step(data)` and `test_step(data)`, written once for
    every backend (gradients through `models.backend`).

    On JAX, where Keras calls `train_step(state, data)` and expects the new state back,
    each subclass's steps are wrapped to run in a `StatelessScope` that maps the state
    to the model's variables (trainable, non-trainable, the optimizer's, the metrics'),
    and to return the values the step assigned.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if BACKEND != "jax":
            return
        for name, optimizer in (("train_step", True), ("test_step", False)):
            if name in cls.__dict__:
                setattr(cls, name, _stateless(cls.__dict__[name], optimizer))


def _stateless(step, with_optimizer: bool):
    @functools.wraps(step)
    def stateless_step(self, state, data):
        groups = [self.trainable_variables, self.non_trainable_variables]
        if with_optimizer:
            groups.append(self.optimizer.variables)
        groups.append(self.metrics_variables)
        mapping = [
            pair
            for variables, values in zip(groups, state, strict=True)
            for pair in zip(variables, values, strict=True)
        ]
        with StatelessScope(state_mapping=mapping) as scope:
            logs = step(self, data)
        return logs, tuple([scope.get_current_value(v) for v in group] for group in groups)

    return stateless_step


class OneOptimizerModel(Trainer):
    """A model trained by one optimizer, built at `compile` so `.keras` files restore its
    state (a resumed run continues with the saved moments)."""

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))


class TwoOptimizerModel(Trainer):
    """An adversarial model: `g_optimizer` updates `g_variables` (the generators), and
    `d_optimizer` `d_variables` (the discriminators, and what trains with them).

    Keras sees both as one `optimizer` (`OptimizerPair`: its learning rate, which callbacks
    read, is `g_optimizer`'s; its variables are both's, the state a JAX step carries).
    Both are built at `compile`, on their own variables, so a resumed run restores their
    state; under a `mixed_float16` policy both scale their losses (`LossScaleOptimizer`).
    A loaded model predicts as is: the app compiles it again to train.
    """

    LOSS_WEIGHTS: dict[str, float] = {}  # the loss weights `compile` takes, and their defaults

    @property
    def g_variables(self) -> list:
        raise NotImplementedError

    @property
    def d_variables(self) -> list:
        raise NotImplementedError

    def default_optimizer(self) -> keras.optimizers.Optimizer:
        raise NotImplementedError

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs,
    ) -> None:
        """The two optimizers (default: `default_optimizer()`), the loss weights named in
        `LOSS_WEIGHTS` (default: their values there), and Keras' `compile` arguments (e.g.
        `jit_compile`)."""
        for name, default in self.LOSS_WEIGHTS.items():
            setattr(self, name, float(kwargs.pop(name, default)))
        self.g_optimizer = self._loss_scaled(g_optimizer or self.default_optimizer())
        self.d_optimizer = self._loss_scaled(d_optimizer or self.default_optimizer())
        super().compile(optimizer=self.g_optimizer, **kwargs)
        self.g_optimizer.build(self.g_variables)
        self.d_optimizer.build(self.d_variables)
        self.optimizer = OptimizerPair(self.g_optimizer, self.d_optimizer)

    def get_compile_config(self):
        return {}

    def _loss_scaled(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
        if self.dtype_policy.name != "mixed_float16" or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer)


class OptimizerPair(keras.optimizers.Optimizer):
    """Two built optimizers shown to Keras as one: the variables of both, the learning rate
    and step count of the first. It applies nothing itself (the trainers call each one);
    its state is saved with the two optimizers, not under its own name."""

    def __init__(self, first: keras.optimizers.Optimizer, second: keras.optimizers.Optimizer):
        super().__init__(learning_rate=0.0, name="optimizer_pair")
        self.first, self.second = first, second
        self.built = True

    @property
    def variables(self):
        return self.first.variables + self.second.variables

    @property
    def learning_rate(self):
        return self.first.learning_rate

    @property
    def iterations(self):
        return self.first.iterations

    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass
