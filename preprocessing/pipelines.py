"""Epoch-addressed shuffling for tf.data: the order of epoch e depends only on (seed, e).

A run resumed at epoch e therefore sees exactly the batches an uninterrupted run sees,
which is what makes a resumed run's final weights match (see `training.resume.ResumeState`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
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


def array_batches(
    arrays: np.ndarray | tuple[np.ndarray, ...],
    batch_size: int,
    seed: int | None = None,
    start_epoch: int = 0,
    transform: Callable | None = None,
) -> tf.data.Dataset:
    """Batches of in-memory arrays (one array or a tuple of aligned ones), mapped through
    `transform`.

    Without a seed: one pass in order (evaluation). With a seed: the endless stream of
    `epoch_indices`, so train with `fit(steps_per_epoch=steps_per_epoch(n, batch_size))`.
    """
    transform = transform or (lambda *batch: batch[0] if len(batch) == 1 else batch)
    if seed is None:
        ds = tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
        return ds.map(transform, tf.data.AUTOTUNE).prefetch(2)
    tensors = tuple(tf.constant(a) for a in (arrays if isinstance(arrays, tuple) else (arrays,)))
    ds = epoch_indices(len(tensors[0]), batch_size, seed, start_epoch)
    ds = ds.map(lambda i: transform(*(tf.gather(t, i) for t in tensors)), tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
