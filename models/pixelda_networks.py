"""PixelDA's generator and discriminator (the task classifier is `models.classifier`)."""

from __future__ import annotations

import dataclasses
import random

import keras
from keras import layers

from models import conv as strided
from models.batch_norm import FusedBatchNorm


@dataclasses.dataclass(frozen=True)
class LayerConstants:
    """Weight initialization N(0, init_std) and the batch-norm constants of the networks:
    PyTorch's defaults (its momentum 0.1 is Keras' 0.9, epsilon 1e-5)."""

    init_std: float = 0.02
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5

    def initializer(self) -> keras.initializers.Initializer:
        return keras.initializers.RandomNormal(stddev=self.init_std)

    def batch_norm(self) -> layers.Layer:
        return FusedBatchNorm(momentum=self.bn_momentum, epsilon=self.bn_epsilon, synchronized=True)


# A stride-2 3x3 convolution of an even size: one pixel on every side, or the bottom/right only
PADDINGS = ("symmetric", "same")


def build_generator(
    image_shape: tuple[int, int, int] = (32, 32, 3),
    noise_dim: int = 10,
    filters: int = 64,
    residual_blocks: int = 6,
    constants: LayerConstants = LayerConstants(),
    name: str = "generator",
) -> keras.Model:
    """(source image, noise z) -> image in [-1, 1].

    z -> dense to one H x W channel, concatenated to the image -> conv 64 3x3 ReLU ->
    6 residual blocks (conv-BN-ReLU-conv-BN + skip) -> conv 3 3x3 tanh.
    """
    init = constants.initializer()
    height, width, channels = image_shape
    image = keras.Input(image_shape, name="image")
    noise = keras.Input((noise_dim,), name="noise")
    z = layers.Dense(height * width, kernel_initializer=init, name="noise_dense")(noise)
    z = layers.Reshape((height, width, 1))(z)
    x = layers.Concatenate()([image, z])
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    for _ in range(residual_blocks):
        h = layers.Conv2D(filters, 3, padding="same", kernel_initializer=init)(x)
        h = layers.ReLU()(constants.batch_norm()(h))
        h = layers.Conv2D(filters, 3, padding="same", kernel_initializer=init)(h)
        x = layers.Add()([x, constants.batch_norm()(h)])
    out = layers.Conv2D(channels, 3, padding="same", activation="tanh", kernel_initializer=init)(x)
    return keras.Model([image, noise], out, name=name)


def build_discriminator(
    image_shape: tuple[int, int, int] = (32, 32, 3),
    filters: tuple[int, ...] = (64, 128, 256, 512),
    noise_std: float = 0.2,
    dropout: float = 0.1,
    constants: LayerConstants = LayerConstants(),
    padding: str = "symmetric",
    name: str = "discriminator",
) -> keras.Model:
    """Image -> probability that it is a real target image.

    Conv 3x3 stride 2 blocks (64, 128, 256, 512), each BN and LeakyReLU 0.2, then Gaussian
    noise (std 0.2) and dropout 0.1 that act in training only; dense -> sigmoid. `padding`
    (see `PADDINGS`): "symmetric" pads one pixel on every side (PyTorch's `padding=1`, the
    homework), "same" pads the bottom and right only (TensorFlow's, the official code).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding {padding!r}: one of {PADDINGS}")
    init = constants.initializer()
    image = keras.Input(image_shape, name="image")
    x = image
    for f in filters:
        if padding == "symmetric":
            x = layers.ZeroPadding2D(1)(x)
        x = strided.Conv2D(
            f, 3, strides=2, padding="valid" if padding == "symmetric" else "same",
            kernel_initializer=init,
        )(x)  # fmt: skip
        x = layers.LeakyReLU(0.2)(constants.batch_norm()(x))
        x = layers.GaussianNoise(noise_std)(x)
        # the seed Keras would draw itself (the same masks on TensorFlow and JAX), given
        # explicitly so that PyTorch draws from the layer's state, which a resumed run
        # restores, not from torch's global generator (its path for unseeded dropout)
        x = layers.Dropout(dropout, seed=random.randint(1, 10**9))(x)
    x = layers.Flatten()(x)
    # a float32 probability keeps the cross-entropy stable under a mixed_float16 policy
    out = layers.Dense(
        1, activation="sigmoid", kernel_initializer=init, dtype="float32", name="real"
    )(x)
    return keras.Model(image, out, name=name)
