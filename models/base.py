"""What the trainers share: one optimizer (EndoVAE, MAF) or two (PixelDA, CycleGAN)."""

from __future__ import annotations

import keras


class OneOptimizerModel(keras.Model):
    """A model trained by one optimizer, built at `compile` so `.keras` files restore its
    state (a resumed run continues with the saved moments)."""

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))


class TwoOptimizerModel(keras.Model):
    """An adversarial model: `g_optimizer` updates `g_variables` (the generators), and
    `d_optimizer` `d_variables` (the discriminators, and what trains with them).

    `g_optimizer` is also `optimizer`, the one Keras callbacks read the learning rate of.
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

    def get_compile_config(self):
        return {}

    @staticmethod
    def update(optimizer: keras.optimizers.Optimizer, tape, scaled_loss, variables) -> None:
        """One step of `optimizer` on the gradient of `scaled_loss` (recorded on `tape`)."""
        optimizer.apply(tape.gradient(scaled_loss, variables), variables)

    def _loss_scaled(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
        if self.dtype_policy.name != "mixed_float16" or isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer)
