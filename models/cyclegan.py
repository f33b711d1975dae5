"""CycleGAN (Zhu et al., ICCV 2017): unpaired image-to-image translation between domains A and B.

Two ResNet generators (A -> B and B -> A), two PatchGAN discriminators, least-squares
adversarial losses, cycle-consistency and identity losses, and a history of 50 generated
images per discriminator. Images are in [-1, 1]. `fit` takes batches `(x_a, x_b)` of
unpaired images; no label of either domain reaches `train_step`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models.backend import minimize
from models.base import TwoOptimizerModel
from models.cyclegan_networks import (
    DIGITS_SHAPE,
    build_patchgan_discriminator,
    build_resnet_generator,
)
from models.distributed import track_global_means
from models.image_buffer import BUFFER_SIZE, ImageBuffer
from models.losses import least_squares, mean_absolute_error
from models.optimizers import cyclegan_optimizer
from models.pixels import map_uint8

CYCLE_WEIGHT, IDENTITY_WEIGHT = 10.0, 0.5  # lambda; identity weight is 0.5 x lambda


@keras.saving.register_keras_serializable(package="cyclegan")
class CycleGAN(TwoOptimizerModel):
    """Holds `generator_ab` (A -> B), `generator_ba`, `discriminator_a` (real A vs B -> A),
    `discriminator_b` and their image buffers; `call` translates A -> B.

    Per batch, the G step updates both generators on
    `LS(D_B(G_AB(a)), 1) + LS(D_A(G_BA(b)), 1)`
    `+ lambda * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)`
    `+ identity_weight * lambda * (|G_BA(a) - a| + |G_AB(b) - b|)`
    (LS: mean squared error, |.|: mean absolute error); then the D step updates both
    discriminators on `d_a + d_b`, `d_a = (LS(D_A(a), 1) + LS(D_A(buffer_a(G_BA(b))), 0)) / 2`,
    with the translations of the G step drawn through the image buffers. Losses are means
    over the global batch.
    """

    LOSSES = (
        "g_loss",
        "g_ab_adv",
        "g_ba_adv",
        "cycle_loss",
        "cycle_a",
        "cycle_b",
        "identity_a",
        "identity_b",
        "d_loss",
        "d_a",
        "d_b",
    )
    NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
    LOSS_WEIGHTS = {"cycle_weight": CYCLE_WEIGHT, "identity_weight": IDENTITY_WEIGHT}

    def __init__(
        self,
        generator_ab: keras.Model | None = None,
        generator_ba: keras.Model | None = None,
        discriminator_a: keras.Model | None = None,
        discriminator_b: keras.Model | None = None,
        buffer_size: int = BUFFER_SIZE,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator_ab = generator_ab or build_resnet_generator(
            DIGITS_SHAPE, name="generator_ab"
        )
        self.generator_ba = generator_ba or build_resnet_generator(
            DIGITS_SHAPE, name="generator_ba"
        )
        self.discriminator_a = discriminator_a or build_patchgan_discriminator(
            DIGITS_SHAPE, name="discriminator_a"
        )
        self.discriminator_b = discriminator_b or build_patchgan_discriminator(
            DIGITS_SHAPE, name="discriminator_b"
        )
        self.buffer_size, self.seed = buffer_size, seed
        shape = tuple(self.generator_ab.inputs[0].shape[1:])
        self.buffer_a = ImageBuffer(shape, buffer_size, seed, name="buffer_a")
        self.buffer_b = ImageBuffer(
            shape, buffer_size, None if seed is None else seed + 1, name="buffer_b"
        )
        self.trackers = {name: keras.metrics.Mean(name) for name in self.LOSSES}
        self.built = True  # the networks are built functional models

    def call(self, images, training=False):
        return self.generator_ab(images, training=training)

    def default_optimizer(self) -> keras.optimizers.Optimizer:
        return cyclegan_optimizer()  # constant; `build_cyclegan` adds the linear decay

    @property
    def g_variables(self) -> list:
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    @property
    def d_variables(self) -> list:
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    def translate(
        self, images: np.ndarray, direction: str = "ab", batch_size: int = 256
    ) -> np.ndarray:
        """uint8 images of A translated to B (`direction` "ab") or of B to A ("ba"), as
        uint8 images (in batches)."""
        if direction not in ("ab", "ba"):
            raise ValueError(f"direction {direction!r}: choose 'ab' or 'ba'")
        generator = self.generator_ab if direction == "ab" else self.generator_ba
        return map_uint8(lambda x: generator(x, training=False), images, batch_size)

    def cycles(self, images_a: np.ndarray, images_b: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 images translated A -> B -> A and B -> A -> B: ab, aba, ba, bab."""
        ab, ba = self.translate(images_a), self.translate(images_b, "ba")
        return {"ab": ab, "aba": self.translate(ab, "ba"), "ba": ba, "bab": self.translate(ba)}

    def train_step(self, data):
        real_a, real_b = data

        def g_loss():
            fake_b = self.generator_ab(real_a, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            losses = {
                "g_ab_adv": least_squares(self.discriminator_b(fake_b, training=True), 1.0),
                "g_ba_adv": least_squares(self.discriminator_a(fake_a, training=True), 1.0),
                "cycle_a": mean_absolute_error(self.generator_ba(fake_b, training=True), real_a),
                "cycle_b": mean_absolute_error(self.generator_ab(fake_a, training=True), real_b),
                "identity_a": mean_absolute_error(self.generator_ba(real_a, training=True), real_a),
                "identity_b": mean_absolute_error(self.generator_ab(real_b, training=True), real_b),
            }
            cycle = losses["cycle_a"] + losses["cycle_b"]
            identity = losses["identity_a"] + losses["identity_b"]
            loss = (
                losses["g_ab_adv"]
                + losses["g_ba_adv"]
                + self.cycle_weight * (cycle + self.identity_weight * identity)
            )
            return loss, (losses, loss, cycle, fake_a, fake_b)

        losses, loss, cycle, fake_a, fake_b = minimize(self.g_optimizer, g_loss, self.g_variables)
        d_logs = self._d_step(
            real_a,
            real_b,
            self.buffer_a(ops.stop_gradient(fake_a)),
            self.buffer_b(ops.stop_gradient(fake_b)),
        )
        return track_global_means(self.trackers, **losses, **d_logs, g_loss=loss, cycle_loss=cycle)

    def _d_step(self, real_a, real_b, fake_a, fake_b) -> dict:
        """Update both discriminators on real images and buffered translations."""

        def d_loss():
            d_a = 0.5 * (
                least_squares(self.discriminator_a(real_a, training=True), 1.0)
                + least_squares(self.discriminator_a(fake_a, training=True), 0.0)
            )
            d_b = 0.5 * (
                least_squares(self.discriminator_b(real_b, training=True), 1.0)
                + least_squares(self.discriminator_b(fake_b, training=True), 0.0)
            )
            return d_a + d_b, (d_a, d_b)

        d_a, d_b = minimize(self.d_optimizer, d_loss, self.d_variables)
        return {"d_a": d_a, "d_b": d_b, "d_loss": d_a + d_b}

    def get_config(self) -> dict:
        networks = {n: keras.saving.serialize_keras_object(getattr(self, n)) for n in self.NETWORKS}
        return {
            **super().get_config(),
            **networks,
            "buffer_size": self.buffer_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> CycleGAN:
        for name in cls.NETWORKS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)


def build_cyclegan(
    image_shape: tuple[int, int, int] = DIGITS_SHAPE,
    total_steps: int = 10_000,
    residual_blocks: int | None = None,
    filters: int = 64,
    seed: int | None = None,
    **compile_kwargs,
) -> CycleGAN:
    """A compiled CycleGAN with the paper's networks, loss weights and optimizers, the
    learning rate decaying linearly over the second half of `total_steps`
    (`compile_kwargs`, e.g. `jit_compile`, go to `compile`)."""

    def generator(name):
        return build_resnet_generator(image_shape, filters, residual_blocks, name=name)

    def discriminator(name):
        return build_patchgan_discriminator(image_shape, filters, name=name)

    model = CycleGAN(
        generator("generator_ab"),
        generator("generator_ba"),
        discriminator("discriminator_a"),
        discriminator("discriminator_b"),
        seed=seed,
    )
    model.compile(
        cyclegan_optimizer(total_steps), cyclegan_optimizer(total_steps), **compile_kwargs
    )
    return model
