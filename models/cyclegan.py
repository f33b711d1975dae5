"""CycleGAN (Zhu et al., ICCV 2017): unpaired image-to-image translation between domains A and B.

Two ResNet generators (A -> B and B -> A), two PatchGAN discriminators, least-squares
adversarial losses, cycle-consistency and identity losses, and a history of 50 generated
images per discriminator. Images are in [-1, 1]. `fit` takes batches `(x_a, x_b)` of
unpaired images; no label of either domain reaches `train_step`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from models.distributed import global_mean, track_global_means

DIGITS_SHAPE = (32, 32, 3)
LEARNING_RATE, BETA_1 = 2e-4, 0.5
CYCLE_WEIGHT, IDENTITY_WEIGHT = 10.0, 0.5  # lambda; identity weight is 0.5 x lambda
BUFFER_SIZE = 50


def default_residual_blocks(size: int) -> int:
    """Residual blocks for `size` px images: the paper's 6 up to 128 px and 9 above;
    3 for 32 px digits (their 8x8 bottleneck needs no more)."""
    return 3 if size <= 32 else 6 if size <= 128 else 9


def patch_downsamplings(size: int) -> int:
    """Stride-2 layers of the PatchGAN for `size` px images: the paper's 3 (70x70 patches)
    from 128 px up, 2 (34x34) at 64 px, 1 (16x16) at 32 px: patches of about half the side."""
    return min(3, max(1, int(math.log2(size)) - 4))


# ---------------------------------------------------------------- networks


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
    init_std: float = 0.02,
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
    init = keras.initializers.RandomNormal(stddev=init_std)

    def conv(x, n, size, strides=1, pad=0):
        if pad:
            x = ReflectionPadding2D(pad)(x)
        padding = "valid" if pad or size == 1 else "same"
        return layers.Conv2D(n, size, strides, padding, use_bias=False, kernel_initializer=init)(x)

    image = keras.Input(image_shape, name="image")
    x = _instance_norm(conv(image, filters, 7, pad=3))  # c7s1-64
    for mult in (2, 4):  # d128, d256
        x = _instance_norm(conv(x, filters * mult, 3, strides=2))
    for _ in range(blocks):  # R256
        h = _instance_norm(conv(x, filters * 4, 3, pad=1))
        h = _instance_norm(conv(h, filters * 4, 3, pad=1), activation=None)
        x = layers.Add()([x, h])
    for mult in (2, 1):  # u128, u64
        x = layers.Conv2DTranspose(
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
    downsamplings: int | None = None,
    init_std: float = 0.02,
    name: str = "discriminator",
) -> keras.Model:
    """Image -> a map of real/fake scores (least squares: no sigmoid), one per patch.

    C64-C128-C256 (4x4, stride 2; no normalization on the first), C512 (4x4, stride 1),
    then a 4x4 convolution to one channel: the 70x70 PatchGAN. `downsamplings` (default:
    `patch_downsamplings`) sets how many stride-2 layers, so small images get small patches.
    """
    n = patch_downsamplings(image_shape[0]) if downsamplings is None else downsamplings
    init = keras.initializers.RandomNormal(stddev=init_std)
    image = keras.Input(image_shape, name="image")
    x = image
    for i in range(n + 1):
        first, last = i == 0, i == n
        x = layers.Conv2D(
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


# ---------------------------------------------------------------- training parts


@keras.saving.register_keras_serializable(package="cyclegan")
class ImageBuffer(layers.Layer):
    """The history of generated images a discriminator trains on (Shrivastava et al. 2017;
    CycleGAN's pool of 50).

    Images are taken one by one in batch order: while the buffer is not full, an image is
    stored and returned itself; once it is full, with probability 0.5 a random stored image
    is returned and the new one takes its place, otherwise the new one is returned. The batch
    is handled at once (no Python loop), so it runs inside a compiled `train_step`; an image
    that draws a slot written earlier in the same batch gets that earlier image, exactly as
    one by one. Storage is Keras variables (saved with the model, restored on resume);
    randomness comes from a `SeedGenerator`. Under `tf.distribute` every replica runs the
    exchange on the gathered global batch (same state, same draws) and keeps its own part,
    so several devices behave as one.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        size: int = BUFFER_SIZE,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape, self.size, self.seed = tuple(image_shape), size, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Every replica writes the same values (see `call`).
        self.images = self.add_weight(
            (size, *self.image_shape),
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="images",
        )
        self.count = self.add_weight(
            (),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="count",
        )
        self.built = True

    def call(self, images):
        images = ops.cast(images, self.images.dtype)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return self._exchange(images)
        # This replica's images follow the earlier replicas' (a last partial batch is split
        # unevenly: shares of 4 and 3, or 1 and 0).
        local = tf.shape(images)[:1]
        shares = context.all_gather(local, axis=0)
        start = tf.reduce_sum(shares[: context.replica_id_in_sync_group])
        returned = self._exchange(context.all_gather(images, axis=0))
        return returned[start : start + local[0]]

    def _exchange(self, images):
        """Store `images` and return what the discriminator gets in their place."""
        n = ops.shape(images)[0]
        order = ops.arange(n, dtype="int32")
        filling = self.count + order < self.size
        swap = ops.logical_and(
            ops.logical_not(filling), keras.random.uniform((n,), seed=self.seed_generator) < 0.5
        )
        slot = ops.where(
            filling,
            self.count + order,
            keras.random.randint((n,), 0, self.size, dtype="int32", seed=self.seed_generator),
        )
        writes = ops.logical_or(filling, swap)

        # What a swapping image gets: the last image of this batch written to its slot, if
        # any, else the stored one.
        earlier = (
            (slot[:, None] == slot[None, :]) & writes[None, :] & (order[None, :] < order[:, None])
        )
        last_earlier = ops.argmax(ops.where(earlier, order[None, :], -1), axis=1)
        history = ops.where(
            ops.any(earlier, axis=1)[:, None, None, None],
            ops.take(images, last_earlier, axis=0),
            ops.take(self.images, slot, axis=0),
        )
        returned = ops.where(swap[:, None, None, None], history, images)

        # Each slot keeps the last image of the batch written to it.
        writer = (ops.arange(self.size, dtype="int32")[:, None] == slot[None, :]) & writes[None, :]
        last_writer = ops.argmax(ops.where(writer, order[None, :], -1), axis=1)
        self.images.assign(
            ops.where(
                ops.any(writer, axis=1)[:, None, None, None],
                ops.take(images, last_writer, axis=0),
                self.images,
            )
        )
        self.count.assign(ops.minimum(self.count + n, self.size))
        return returned

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "size": self.size,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="cyclegan")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial_learning_rate` until `decay_start` (default: half of `total_steps`), then
    linearly down to 0 at `total_steps` (and 0 after)."""

    def __init__(
        self, initial_learning_rate: float, total_steps: int, decay_start: int | None = None
    ):
        self.initial_learning_rate = initial_learning_rate
        self.total_steps = int(total_steps)
        self.decay_start = self.total_steps // 2 if decay_start is None else int(decay_start)

    def __call__(self, step):
        span = max(self.total_steps - self.decay_start, 1)
        remaining = (self.total_steps - ops.cast(step, "float32")) / span
        return self.initial_learning_rate * ops.clip(remaining, 0.0, 1.0)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "decay_start": self.decay_start,
        }


def paper_optimizer(
    total_steps: int, learning_rate: float = LEARNING_RATE, beta_1: float = BETA_1
) -> keras.optimizers.Adam:
    """Adam(2e-4, beta1 0.5), constant for the first half of `total_steps`, then linearly to 0."""
    return keras.optimizers.Adam(LinearDecay(learning_rate, total_steps), beta_1=beta_1)


# ---------------------------------------------------------------- the trainer


@keras.saving.register_keras_serializable(package="cyclegan")
class CycleGAN(keras.Model):
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

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        cycle_weight: float = CYCLE_WEIGHT,
        identity_weight: float = IDENTITY_WEIGHT,
        **kwargs,
    ) -> None:
        """`g_optimizer` updates both generators, `d_optimizer` both discriminators (default:
        constant Adam(2e-4, beta1 0.5); `build_cyclegan` adds the linear decay).

        `g_optimizer` is also `optimizer`, the one Keras callbacks read the learning rate of.
        Under a `mixed_float16` policy both scale their losses (`LossScaleOptimizer`).
        """

        def scaled(optimizer):
            optimizer = optimizer or keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1)
            if self.dtype_policy.name == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer
            ):
                return keras.optimizers.LossScaleOptimizer(optimizer)
            return optimizer

        self.g_optimizer, self.d_optimizer = scaled(g_optimizer), scaled(d_optimizer)
        super().compile(optimizer=self.g_optimizer, **kwargs)
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        # Built on their own variables now, so a resumed run can restore their state.
        self.g_optimizer.build(self.g_variables)
        self.d_optimizer.build(self.d_variables)

    def get_compile_config(self):
        return {}  # optimizers are rebuilt by the app; a loaded model translates as is

    @property
    def g_variables(self) -> list:
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    @property
    def d_variables(self) -> list:
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        real_a, real_b = data
        with tf.GradientTape() as tape:
            fake_b = self.generator_ab(real_a, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            losses = {
                "g_ab_adv": _least_squares(self.discriminator_b(fake_b, training=True), 1.0),
                "g_ba_adv": _least_squares(self.discriminator_a(fake_a, training=True), 1.0),
                "cycle_a": _l1(self.generator_ba(fake_b, training=True), real_a),
                "cycle_b": _l1(self.generator_ab(fake_a, training=True), real_b),
                "identity_a": _l1(self.generator_ba(real_a, training=True), real_a),
                "identity_b": _l1(self.generator_ab(real_b, training=True), real_b),
            }
            cycle = losses["cycle_a"] + losses["cycle_b"]
            identity = losses["identity_a"] + losses["identity_b"]
            g_loss = (
                losses["g_ab_adv"]
                + losses["g_ba_adv"]
                + self.cycle_weight * (cycle + self.identity_weight * identity)
            )
            scaled = self.g_optimizer.scale_loss(g_loss)  # on the tape, or no gradient
        variables = self.g_variables
        gradients = tape.gradient(scaled, variables)
        self.g_optimizer.apply(gradients, variables)
        d_logs = self._d_step(
            real_a,
            real_b,
            self.buffer_a(ops.stop_gradient(fake_a)),
            self.buffer_b(ops.stop_gradient(fake_b)),
        )
        return track_global_means(
            self.trackers, **losses, **d_logs, g_loss=g_loss, cycle_loss=cycle
        )

    def _d_step(self, real_a, real_b, fake_a, fake_b) -> dict:
        """Update both discriminators on real images and buffered translations."""
        with tf.GradientTape() as tape:
            d_a = 0.5 * (
                _least_squares(self.discriminator_a(real_a, training=True), 1.0)
                + _least_squares(self.discriminator_a(fake_a, training=True), 0.0)
            )
            d_b = 0.5 * (
                _least_squares(self.discriminator_b(real_b, training=True), 1.0)
                + _least_squares(self.discriminator_b(fake_b, training=True), 0.0)
            )
            d_loss = d_a + d_b
            scaled = self.d_optimizer.scale_loss(d_loss)
        variables = self.d_variables
        gradients = tape.gradient(scaled, variables)
        self.d_optimizer.apply(gradients, variables)
        return {"d_a": d_a, "d_b": d_b, "d_loss": d_loss}

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
    model.compile(paper_optimizer(total_steps), paper_optimizer(total_steps), **compile_kwargs)
    return model


def _least_squares(scores, target: float):
    """Mean squared distance of the patch scores to `target`, over the global batch."""
    return global_mean(ops.square(ops.cast(scores, "float32") - target))


def _l1(images, reference):
    """Mean absolute pixel difference, over the global batch."""
    return global_mean(ops.abs(ops.cast(images, "float32") - ops.cast(reference, "float32")))
