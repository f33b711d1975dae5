"""PixelDA (Bousmalis et al., CVPR 2017): generator, discriminator and task classifier
trained jointly, one discriminator/classifier step and one generator step per batch.

Images are in [-1, 1]. `fit` takes batches `((x_s, y_s), x_t)`: labelled source images and
unlabelled target images; target labels never reach `train_step`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from models.backend import input_gradient, minimize, record
from models.base import TwoOptimizerModel
from models.classifier import build_classifier
from models.distributed import global_mean, track_global_means
from models.losses import binary_crossentropy, sparse_crossentropy
from models.optimizers import paper_optimizer
from models.pixelda_networks import LayerConstants, build_discriminator, build_generator
from models.pixels import map_uint8


@dataclasses.dataclass(frozen=True)
class Preset:
    """Loss weights and training numbers of one PixelDA configuration (docs/fidelity.md
    says where each number comes from)."""

    w_d: float
    w_g_adv: float
    w_g_task: float
    learning_rate: float = 1e-3
    beta_1: float = 0.5
    weight_decay: float = 1e-5  # an L2 gradient term (PyTorch's and the official code's)
    decay_steps: int = 20_000
    decay_rate: float = 0.95
    init_std: float = 0.02  # the official hparams' normal_init_std
    bn_momentum: float = 0.9  # PyTorch's momentum 0.1; the official batch_norm_decay 0.9
    bn_epsilon: float = 1e-5  # PyTorch's default
    clipnorm: float | None = None  # per-gradient norm clipping
    noise: str = "normal"  # z ~ N(0, 1) ("normal") or U(-1, 1) ("uniform"); see NOISES
    d_padding: str = "symmetric"  # D's stride-2 convs (pixelda_networks.PADDINGS): padding=1
    batch_size: int = 32
    epochs: int = 20


NOISES = ("normal", "uniform")  # the generator noise z: N(0, 1) or U(-1, 1)

PRESETS = {
    # The homework's PyTorch code: its z is torch.randn, N(0, 1) (its prose says U(-1, 1));
    # its nn.Conv2d(..., 3, 2, padding=1) pads D's inputs on every side.
    # Its w_d 0.013 looks like a slip of the official 0.1356.
    "homework": Preset(w_d=0.013, w_g_adv=0.011, w_g_task=0.01),
    # The official PixelDA code: its MNIST -> MNIST-M flags (domain loss, style transfer,
    # task in G), slim's batch-norm epsilon, its gradient clipping, z ~ U(-1, 1).
    "paper": Preset(
        w_d=0.1356,
        w_g_adv=0.01132,
        w_g_task=0.01010,
        bn_epsilon=1e-3,
        clipnorm=5.0,
        noise="uniform",
        d_padding="same",  # TensorFlow's SAME (slim)
    ),
}


@keras.saving.register_keras_serializable(package="pixelda")
class PixelDA(TwoOptimizerModel):
    """Holds `generator`, `discriminator` and `classifier`; `call` is the classifier.

    Per batch: the D step updates D and T on
    `w_d * (BCE(D(x_t), 1) + BCE(D(G(x_s, z)), 0)) + CE(T(x_s), y_s) + CE(T(G(x_s, z)), y_s)`
    with G frozen; the G step updates G on
    `w_g_adv * BCE(D(G(x_s, z)), 1) + w_g_task * CE(T(G(x_s, z)), y_s)` against the updated
    D and T, reusing the same forward pass G(x_s, z). Losses are means over the global batch.
    """

    LOSSES = ("d_loss", "domain_loss", "task_loss", "g_loss", "g_adv_loss", "g_task_loss")
    LOSS_WEIGHTS = {
        name: getattr(PRESETS["homework"], name) for name in ("w_d", "w_g_adv", "w_g_task")
    }

    def __init__(
        self,
        generator: keras.Model | None = None,
        discriminator: keras.Model | None = None,
        classifier: keras.Model | None = None,
        seed: int | None = None,
        noise: str = "normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if noise not in NOISES:
            raise ValueError(f"noise {noise!r}: choose one of {NOISES}")
        self.noise = noise
        self.generator = generator or build_generator()
        self.discriminator = discriminator or build_discriminator()
        self.classifier = classifier or build_classifier()
        self.noise_dim = self.generator.inputs[1].shape[-1]
        self.seed = seed
        self.noise_seed = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(n) for n in (*self.LOSSES, "d_accuracy")}
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy("accuracy")
        self.built = True  # the three networks are built functional models

    def call(self, images, training=False):
        return self.classifier(images, training=training)

    def default_optimizer(self) -> keras.optimizers.Optimizer:
        return paper_optimizer()

    @property
    def g_variables(self) -> list:
        return self.generator.trainable_variables

    @property
    def d_variables(self) -> list:
        return self.discriminator.trainable_variables + self.classifier.trainable_variables

    @property
    def metrics(self):
        return [*self.trackers.values(), self.accuracy_tracker]

    def generate(self, images, training: bool = False):
        """G(x, z) with fresh noise z ~ N(0, 1) or U(-1, 1) (`noise`)."""
        images = ops.convert_to_tensor(images)
        shape = (ops.shape(images)[0], self.noise_dim)
        if self.noise == "normal":
            z = keras.random.normal(shape, seed=self.noise_seed)
        else:
            z = keras.random.uniform(shape, -1.0, 1.0, seed=self.noise_seed)
        return self.generator([images, z], training=training)

    def translate(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """G(x, z) of uint8 source images with fresh noise, as uint8 images (in batches)."""
        return map_uint8(lambda x: self.generate(x, training=False), images, batch_size)

    def train_step(self, data):
        (x_s, y_s), x_t = data
        fake, pullback = record(lambda: self.generate(x_s, training=True), self.g_variables)
        d_logs = self._d_step(x_s, y_s, x_t, ops.stop_gradient(fake))

        def g_loss(fake):
            real_for_g = self.discriminator(fake, training=True)
            g_adv = binary_crossentropy(ops.ones_like(real_for_g), real_for_g)
            g_task = sparse_crossentropy(y_s, self.classifier(fake, training=True))
            loss = self.w_g_adv * g_adv + self.w_g_task * g_task
            return loss, (loss, g_adv, g_task)

        (loss, g_adv, g_task), fake_gradient = input_gradient(self.g_optimizer, g_loss, fake)
        self.g_optimizer.apply(pullback(fake_gradient), self.g_variables)
        return track_global_means(
            self.trackers, **d_logs, g_loss=loss, g_adv_loss=g_adv, g_task_loss=g_task
        )

    def _d_step(self, x_s, y_s, x_t, fake) -> dict:
        """Update D and T with G frozen; return the step's losses and D accuracy."""

        def d_loss():
            p_real = self.discriminator(x_t, training=True)
            p_fake = self.discriminator(fake, training=True)
            domain = binary_crossentropy(ops.ones_like(p_real), p_real) + binary_crossentropy(
                ops.zeros_like(p_fake), p_fake
            )
            # T has no batch statistics: one pass over both halves is exact.
            logits = self.classifier(ops.concatenate([x_s, fake], axis=0), training=True)
            task = sparse_crossentropy(ops.concatenate([y_s, y_s], axis=0), logits) * 2.0
            loss = self.w_d * domain + task
            return loss, (loss, domain, task, p_real, p_fake)

        loss, domain, task, p_real, p_fake = minimize(self.d_optimizer, d_loss, self.d_variables)
        hits = ops.concatenate([p_real > 0.5, p_fake <= 0.5], axis=0)
        return {
            "d_loss": loss,
            "domain_loss": domain,
            "task_loss": task,
            "d_accuracy": global_mean(hits),
        }

    def test_step(self, data):
        images, labels = data
        self.accuracy_tracker.update_state(labels, self(images, training=False))
        return {"accuracy": self.accuracy_tracker.result()}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            seed=self.seed,
            noise=self.noise,
            **{
                name: keras.saving.serialize_keras_object(getattr(self, name))
                for name in ("generator", "discriminator", "classifier")
            },
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> PixelDA:
        nets = {
            name: keras.saving.deserialize_keras_object(config.pop(name))
            for name in ("generator", "discriminator", "classifier")
        }
        config.setdefault("noise", "uniform")  # models saved before the choice drew U(-1, 1)
        return cls(**nets, **config)


def build_pixelda(
    preset: Preset = PRESETS["homework"], seed: int | None = None, **compile_kwargs
) -> PixelDA:
    """A compiled PixelDA with the preset's initialization, loss weights and optimizers
    (`compile_kwargs`, e.g. `jit_compile`, go to `compile`)."""
    constants = LayerConstants(preset.init_std, preset.bn_momentum, preset.bn_epsilon)
    model = PixelDA(
        build_generator(constants=constants),
        build_discriminator(constants=constants, padding=preset.d_padding),
        build_classifier(init_std=preset.init_std),
        seed=seed,
        noise=preset.noise,
    )

    def optimizer() -> keras.optimizers.Optimizer:
        return paper_optimizer(
            preset.learning_rate,
            preset.beta_1,
            preset.weight_decay,
            preset.decay_steps,
            preset.decay_rate,
            preset.clipnorm,
        )

    weights = {name: getattr(preset, name) for name in PixelDA.LOSS_WEIGHTS}
    model.compile(optimizer(), optimizer(), **weights, **compile_kwargs)
    return model
