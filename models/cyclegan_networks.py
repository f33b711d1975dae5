"""CycleGAN's networks: the ResNet generator and the PatchGAN discriminator (Zhu et al.,
ICCV 2017), with instance normalization and reflection padding."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from models import conv as strided

DIGITS_SHAPE = (32, 32, 3)
INIT_STD = 0.02  # the paper's weights: N(0, 0.02)


def default_residual_blocks(size: int) -> int:
    """Residual blocks for `size` px images: the paper's 6 up to 128 px and 9 above;
    3 for 32 px digits (their 8x8 bottleneck needs no more)."""
    return 3 if size <= 32 else 6 if size <= 128 else 9


def patch_downsamplings(size: int) -> int:
    """Stride-2 layers of the PatchGAN for `size` px images: the paper's 3 (70x70 patches)
    from 128 px up, 2 (34x34) at 64 px, 1 (16x16) at 32 px: patches of about half the side."""
    return min(3, max(1, int(math.log2(size)) - 4))


@keras.saving.register_keras_serializable(package="cyclegan")
class ReflectionPadding2D(layers.Layer):
    """Pad height and width by `padding` pixels, mirroring the image at its border."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, images):
        p = self.padding
        return ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.padding
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding}


def _instance_norm(x, activation: str | None = "relu"):
    """Instance normalization (one group per channel), then ReLU / LeakyReLU 0.2 / nothing."""
    x = layers.GroupNormalization(groups=-1, epsilon=1e-5)(x)
    if activation == "relu":
        return layers.ReLU()(x)
    return layers.LeakyReLU(0.2)(x) if activation == "leaky" else x


def build_resnet_generator(
    image_shape: tuple[int, int, int] = (256, 256, 3),
    filters: int = 64,
    residual_blocks: int | None = None,
    name: str = "generator",
) -> keras.Model:
    """Image in [-1, 1] -> translated image in [-1, 1], the same shape.

    c7s1-64, d128, d256, R256 x `residual_blocks` (default: `default_residual_blocks`),
    u128, u64, c7s1-3 with tanh (for `filters` 64). Every convolution but the last is followed
    by instance normalization and ReLU; the 7x7 and residual convolutions pad by reflection.
    """
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise ValueError(f"image sides must be multiples of 4, got {height}x{width}")
    blocks = default_residual_blocks(height) if residual_blocks is None else residual_blocks
    init = keras.initializers.RandomNormal(stddev=INIT_STD)

    def conv(x, n, size, strides=1, pad=0):
        if pad:
            x = ReflectionPadding2D(pad)(x)
        padding = "valid" if pad or size == 1 else "same"
        return strided.Conv2D(n, size, strides, padding, use_bias=False, kernel_initializer=init)(x)

    image = keras.Input(image_shape, name="image")
    x = _instance_norm(conv(image, filters, 7, pad=3))  # c7s1-64
    for mult in (2, 4):  # d128, d256
        x = _instance_norm(conv(x, filters * mult, 3, strides=2))
    for _ in range(blocks):  # R256
        h = _instance_norm(conv(x, filters * 4, 3, pad=1))
        h = _instance_norm(conv(h, filters * 4, 3, pad=1), activation=None)
        x = layers.Add()([x, h])
    for mult in (2, 1):  # u128, u64
        x = strided.Conv2DTranspose(
            filters * mult, 3, 2, "same", use_bias=False, kernel_initializer=init
        )(x)
        x = _instance_norm(x)
    x = ReflectionPadding2D(3)(x)
    out = layers.Conv2D(  # c7s1-3; float32 images under a mixed_float16 policy
        channels, 7, activation="tanh", kernel_initializer=init, dtype="float32", name="image_out"
    )(x)
    return keras.Model(image, out, name=name)


def build_patchgan_discriminator(
    image_shape: tuple[int, int, int] = (256, 256, 3),
    filters: int = 64,
    name: str = "discriminator",
) -> keras.Model:
    """Image -> a map of real/fake scores (least squares: no sigmoid), one per patch.

    C64-C128-C256 (4x4, stride 2; no normalization on the first), C512 (4x4, stride 1),
    then a 4x4 convolution to one channel: the 70x70 PatchGAN. Small images get fewer
    stride-2 layers, so smaller patches (`patch_downsamplings`).
    """
    n = patch_downsamplings(image_shape[0])
    init = keras.initializers.RandomNormal(stddev=INIT_STD)
    image = keras.Input(image_shape, name="image")
    x = image
    for i in range(n + 1):
        first, last = i == 0, i == n
        x = strided.Conv2D(
            filters * min(2**i, 8),
            4,
            strides=1 if last else 2,
            padding="same",
            use_bias=first,
            kernel_initializer=init,
        )(x)
        x = layers.LeakyReLU(0.2)(x) if first else _instance_norm(x, "leaky")
    out = layers.Conv2D(1, 4, padding="same", kernel_initializer=init, dtype="float32")(x)
    return keras.Model(image, out, name=name)
