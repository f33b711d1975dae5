"""Models for tests/test_distribute.py with their random parts switched off (z = mu, no
noise) and plain SGD (Adam's g / sqrt(v) turns rounding noise in near-zero gradients into
whole steps), so a run on two replicas must reproduce the one-device run."""

import keras
import numpy as np
import tensorflow as tf

from models.endovae import EndoVAE, build_decoder, build_encoder
from models.pixelda import PixelDA, build_discriminator, build_generator

RNG = np.random.default_rng(0)
IMAGES_96 = RNG.random((8, 96, 96, 3), dtype=np.float32)
SOURCE = RNG.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
TARGET = RNG.uniform(-1, 1, (8, 32, 32, 3)).astype("float32")
LABELS = RNG.integers(0, 10, 8)


def endovae():
    model = EndoVAE(build_encoder(), build_decoder(), seed=0)
    model.sampling.call = lambda inputs: inputs[0]  # z = mu
    model.compile(keras.optimizers.Adam(1e-3))
    return model


class NoNoisePixelDA(PixelDA):
    def generate(self, images, training=False):
        images = tf.convert_to_tensor(images)
        return self.generator([images, tf.zeros((tf.shape(images)[0], 10))], training=training)


def pixelda():
    model = NoNoisePixelDA(build_generator(), build_discriminator(noise_std=0.0, dropout=0.0))
    model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
    return model


CASES = {
    "endovae": (
        endovae,
        lambda: tf.data.Dataset.from_tensor_slices(IMAGES_96).batch(8).repeat(),
        "total_loss",
    ),
    "pixelda": (
        pixelda,
        lambda: tf.data.Dataset.from_tensors(((SOURCE, LABELS), TARGET)).repeat(),
        "d_loss",
    ),
}
