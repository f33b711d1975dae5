"""Epoch-addressed shuffling for tf.data: the order of epoch e depends only on (seed, e).

A run resumed at epoch e therefore sees exactly the batches an uninterrupted run sees,
which is what makes a resumed run's final weights match (see `apps.training.ResumeState`).
"""

from __future__ import annotations

import math

import tensorflow as tf


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one pass over `n` examples (the last one may be smaller)."""
    return math.ceil(n / batch_size)


def epoch_indices(n: int, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    """An endless stream of index batches: epoch after epoch, each a permutation of
    range(n) drawn from (seed, epoch). Use with `fit(steps_per_epoch=steps_per_epoch(n, b))`;
    `start_epoch` skips the epochs a resumed run has already done."""

    def permutation(epoch: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        positions = tf.range(n, dtype=tf.int64)
        shuffled = tf.random.experimental.index_shuffle(positions, key, n - 1)
        return tf.data.Dataset.from_tensor_slices(shuffled).batch(batch_size)

    return tf.data.Dataset.range(start_epoch, 2**62).flat_map(permutation)
