"""Batch normalization computed by TensorFlow's fused kernel when training on one replica
(TensorFlow backend; elsewhere Keras' own)."""

from __future__ import annotations

import keras
from keras import layers, ops

from models.backend import BACKEND, replica_context


@keras.saving.register_keras_serializable(package="models")
class FusedBatchNorm(layers.BatchNormalization):
    """Keras' `BatchNormalization` whose training pass is one `FusedBatchNormV3` op (and its
    fused gradient) instead of ~10 elementwise and reduction ops.

    Same variables, config and inference pass. The batch statistics are the same numbers to
    float32 rounding (the kernel's two-pass variance is closer to float64 than the
    E[x^2] - E[x]^2 of `synchronized=True`); the moving statistics are updated as Keras does,
    with the biased batch variance. Under several replicas with `synchronized=True`, and for
    anything the kernel does not cover (masks, renorm, a channel axis other than the last of
    a 4-D input), the layer computes exactly as `BatchNormalization`.

    `synchronized` (the batch statistics of all replicas) holds on TensorFlow only, where
    `tf.distribute` runs replicas; on JAX and PyTorch it is off, so that a model saved on
    one backend loads on the others.
    """

    def __init__(self, *args, synchronized: bool = False, **kwargs):
        super().__init__(*args, synchronized=synchronized and BACKEND == "tensorflow", **kwargs)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else ops.ones((channels,), "float32")
        beta = self.beta if self.center else ops.zeros((channels,), "float32")
        import tensorflow as tf

        y, mean, unbiased, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=ops.cast(gamma, "float32"),
            offset=ops.cast(beta, "float32"),
            mean=tf.constant([], "float32"),
            variance=tf.constant([], "float32"),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        count = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
        variance = unbiased * ((count - 1.0) / count)  # the kernel returns n / (n - 1) x it
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return ops.cast(y, self.compute_dtype)

    def _fusable(self, inputs, training, mask) -> bool:
        return bool(
            BACKEND == "tensorflow"
            and training
            and self.trainable
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not (self.synchronized and replica_context() is not None)
        )
