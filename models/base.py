"""What the one-optimizer trainers (EndoVAE, MAF) share."""

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
