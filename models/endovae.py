"""EndoVAE: the convolutional VAE for 96x96 endoscopy images, and its training logic.

`build_encoder` / `build_decoder` carry the homework's architecture as defaults; `EndoVAE`
holds both and trains them with a custom `train_step`: a binary cross-entropy reconstruction
term plus `beta` x KL divergence, both averaged over the global batch. The reconstruction
term is the homework's (`"channel_mean"`: Keras' `binary_crossentropy`, which averages the
3 channels, summed over the 96 x 96 pixels, as Keras' VAE example) or the Bernoulli
log-likelihood of every value (`"sum"`, 3x larger, which weighs the KL term 1/3 as much).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from models import conv as strided
from models.backend import minimize
from models.base import OneOptimizerModel
from models.distributed import global_mean

LOSS_NAMES = ("total_loss", "reconstruction_loss", "kl_loss")
RECONSTRUCTIONS = ("channel_mean", "sum")


@dataclasses.dataclass(frozen=True)
class Preset:
    """How one EndoVAE configuration trains (docs/fidelity.md says where each number comes
    from). `split_order` is one of `preprocessing.kvasir_split.ORDERS`."""

    reconstruction: str
    split_order: str
    warmup_steps: int
    learning_rate: float = 1e-3
    batch_size: int = 128
    epochs: int = 1000
    copies: int = 2
    val_fraction: float = 0.2

    def warmup_for(self, total_steps: int) -> int:
        """The LR warm-up of a run of `total_steps` steps: the preset's, but at most a
        third of the run, so that two thirds of any run train at the full learning rate
        (docs/endovae.md#why-a-warm-up)."""
        return min(self.warmup_steps, total_steps // 3)


PRESETS = {
    # The homework's Keras code: its loss form, its augment-then-split order. The warm-up is
    # the one deviation: without it Adam's first steps can kill every ReLU of the encoder's
    # last layers, and the latent is never used (docs/fidelity.md). Short runs warm up for
    # a third of their steps (`Preset.warmup_for`).
    # Its training log's 32 steps an epoch (4,500 items, batch 128) hold out 10%.
    "homework": Preset("channel_mean", "augment_then_split", warmup_steps=300, val_fraction=0.1),
    # The exact Bernoulli likelihood, validation frames never seen in training.
    "clean": Preset("sum", "split_then_augment", warmup_steps=300),
}
# The values a preset sets that identify a run: a resumed run must keep them; its length
# (epochs, and with them a short run's warm-up) may grow.
PRESET_FLAGS = tuple(
    f.name for f in dataclasses.fields(Preset) if f.name not in ("epochs", "warmup_steps")
)


@keras.saving.register_keras_serializable(package="endovae")
class Sampling(layers.Layer):
    """z = mu + exp(0.5 * log_var) * eps with eps ~ N(0, I), drawn from a seeded generator."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mu, log_var = inputs
        eps = keras.random.normal(ops.shape(mu), dtype=mu.dtype, seed=self.seed_generator)
        return mu + ops.exp(0.5 * log_var) * eps

    # The generator's state is not a weight: saved here so that a run resumed from a
    # checkpoint draws the same noise as an uninterrupted one.
    def save_own_variables(self, store):
        store["0"] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        self.seed_generator.state.assign(store["0"])

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_encoder(
    input_shape: tuple[int, int, int] = (96, 96, 3),
    filters: Sequence[int] = (16, 32, 32, 64, 128, 256),
    strides: Sequence[int] = (1, 1, 2, 2, 1, 2),
    dense_units: int = 256,
    latent_dim: int = 6,
) -> keras.Model:
    """Image -> (mu, log_var): 3x3 ReLU convolutions, flatten, dense, two dense heads.

    9,842,380 parameters with the defaults.
    """
    images = keras.Input(input_shape, name="image")
    x = images
    for f, s in zip(filters, strides, strict=True):
        x = strided.Conv2D(f, 3, strides=s, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    mu = layers.Dense(latent_dim, name="latent_mu")(x)
    log_var = layers.Dense(latent_dim, name="latent_log_var")(x)
    return keras.Model(images, [mu, log_var], name="encoder")


def build_decoder(
    latent_dim: int = 6,
    start_shape: tuple[int, int, int] = (12, 12, 256),
    filters: Sequence[int] = (256, 128, 64, 64, 32, 32),
    channels: int = 3,
) -> keras.Model:
    """z -> image in [0, 1]: dense, reshape, then (conv-transpose s2, conv) x 3, conv sigmoid.

    `filters` alternate conv-transpose (stride 2) and conv, all 3x3 ReLU.
    1,282,467 parameters with the defaults.
    """
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(int(np.prod(start_shape)), activation="relu")(z)
    x = layers.Reshape(start_shape)(x)
    for i, f in enumerate(filters):
        if i % 2 == 0:
            x = strided.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
        else:
            x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
    images = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", dtype="float32")(x)
    return keras.Model(z, images, name="decoder")


def per_image_losses(images, reconstruction, mu, log_var, reduction: str = "channel_mean"):
    """(reconstruction loss, KL divergence) per image, in float32.

    Reconstruction: binary cross-entropy (probabilities clipped to [eps, 1 - eps] as Keras
    does), averaged over the channels and summed over the pixels (`"channel_mean"`, the
    homework's), or summed over every value (`"sum"`).
    KL: -0.5 * sum(1 + log_var - mu^2 - exp(log_var)).
    """
    if reduction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction {reduction!r}: choose one of {RECONSTRUCTIONS}")
    x = ops.cast(images, "float32")
    eps = keras.config.epsilon()
    p = ops.clip(ops.cast(reconstruction, "float32"), eps, 1 - eps)
    bce = -(x * ops.log(p) + (1 - x) * ops.log(1 - p))
    if reduction == "channel_mean":
        bce = ops.mean(bce, axis=-1)
    mu, log_var = ops.cast(mu, "float32"), ops.cast(log_var, "float32")
    kl = -0.5 * ops.sum(1 + log_var - ops.square(mu) - ops.exp(log_var), axis=-1)
    return ops.sum(bce, axis=tuple(range(1, len(bce.shape)))), kl


@keras.saving.register_keras_serializable(package="endovae")
class EndoVAE(OneOptimizerModel):
    """The VAE. `train_step` samples z; `test_step` and `call` use z = mu (deterministic),
    so `val_total_loss` is not noisy and reconstructions are reproducible."""

    def __init__(
        self,
        encoder: keras.Model | None = None,
        decoder: keras.Model | None = None,
        beta: float = 1.0,
        seed: int | None = None,
        reconstruction: str = "channel_mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder or build_encoder()
        self.decoder = decoder or build_decoder()
        self.beta = float(beta)
        self.reconstruction = reconstruction
        self.seed = seed
        self.sampling = Sampling(seed, name="sampling")
        self.trackers = [keras.metrics.Mean(name=name) for name in LOSS_NAMES]
        self.build(self.encoder.input_shape)

    def build(self, input_shape):
        # The parts are built functional models; `Sampling` has no weights.
        self.sampling.build(None)
        self.built = True

    @property
    def metrics(self):
        return self.trackers

    def call(self, images, training=False):
        mu, _ = self.encoder(images, training=training)
        return self.decoder(mu, training=training)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` generated images: decoder(z) for z ~ N(0, I) drawn from `seed`."""
        latent_dim = self.decoder.input_shape[-1]
        z = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
        return self.decoder.predict(z, batch_size=64, verbose=0)

    def image_losses(self, images, sample: bool, training: bool = False):
        """(decoded images, reconstruction loss, KL) per image, with z sampled or z = mu."""
        mu, log_var = self.encoder(images, training=training)
        decoded = self.decoder(self.sampling([mu, log_var]) if sample else mu, training=training)
        return (decoded, *per_image_losses(images, decoded, mu, log_var, self.reconstruction))

    def train_step(self, data):
        images = _images(data)

        def loss():
            _, reconstruction, kl = self.image_losses(images, sample=True, training=True)
            return global_mean(reconstruction + self.beta * kl), (reconstruction, kl)

        reconstruction, kl = minimize(self.optimizer, loss, self.trainable_variables)
        return self._track(reconstruction + self.beta * kl, reconstruction, kl)

    def test_step(self, data):
        images = _images(data)
        _, reconstruction, kl = self.image_losses(images, sample=False)
        return self._track(reconstruction + self.beta * kl, reconstruction, kl)

    def _track(self, *values):
        # Per-image values: the epoch value is a mean over images, however the batches (and
        # their shares on replicas, possibly empty) are sized.
        for tracker, value in zip(self.trackers, values, strict=True):
            tracker.update_state(value)
        return {t.name: t.result() for t in self.trackers}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "seed": self.seed,
            "reconstruction": self.reconstruction,
        }

    @classmethod
    def from_config(cls, config):
        for part in ("encoder", "decoder"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        config.setdefault("reconstruction", "sum")  # models saved before the choice existed
        return cls(**config)


def _images(data):
    return data[0] if isinstance(data, tuple) else data
