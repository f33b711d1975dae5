"""The history of generated images a discriminator trains on (CycleGAN's pool of 50)."""

from __future__ import annotations

import keras
from keras import layers, ops

from models.backend import replica_context

BUFFER_SIZE = 50


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
        context = replica_context()
        if context is None:
            return self._exchange(images)
        import tensorflow as tf

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
        stored, count = self.images.value, self.count.value
        order = ops.arange(n, dtype="int32")
        filling = count + order < self.size
        swap = ops.logical_and(
            ops.logical_not(filling), keras.random.uniform((n,), seed=self.seed_generator) < 0.5
        )
        slot = ops.where(
            filling,
            count + order,
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
            ops.take(stored, slot, axis=0),
        )
        returned = ops.where(swap[:, None, None, None], history, images)

        # Each slot keeps the last image of the batch written to it.
        writer = (ops.arange(self.size, dtype="int32")[:, None] == slot[None, :]) & writes[None, :]
        last_writer = ops.argmax(ops.where(writer, order[None, :], -1), axis=1)
        self.images.assign(
            ops.where(
                ops.any(writer, axis=1)[:, None, None, None],
                ops.take(images, last_writer, axis=0),
                stored,
            )
        )
        self.count.assign(ops.minimum(count + n, self.size))
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
