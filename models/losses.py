"""The adversarial trainers' losses, each a mean over the global batch (`global_mean`)."""

from __future__ import annotations

import keras
from keras import ops

from models.distributed import global_mean


def binary_crossentropy(labels, probabilities):
    """Binary cross-entropy of probabilities (PixelDA's discriminator)."""
    return global_mean(keras.losses.binary_crossentropy(labels, probabilities))


def sparse_crossentropy(labels, logits):
    """Cross-entropy of integer labels and logits (PixelDA's task classifier)."""
    return global_mean(
        keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )


def least_squares(scores, target: float):
    """Mean squared distance of the scores to `target` (CycleGAN's adversarial loss)."""
    return global_mean(ops.square(ops.cast(scores, "float32") - target))


def mean_absolute_error(images, reference):
    """Mean absolute pixel difference (CycleGAN's cycle and identity losses)."""
    return global_mean(ops.abs(ops.cast(images, "float32") - ops.cast(reference, "float32")))
