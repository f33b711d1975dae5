"""tf.data pipelines of digit images in [-1, 1]: labelled batches, and the streams of domain
adaptation, which never see the index pairing nor a target label."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.pixels import to_unit_range
from preprocessing.pipelines import array_batches, epoch_indices


def labelled_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    start_epoch: int = 0,
) -> tf.data.Dataset:
    """(image, label) batches in [-1, 1]: one pass in order without a seed, else the
    endless seeded stream of `array_batches`."""
    return array_batches(
        (images, labels),
        batch_size,
        shuffle_seed,
        start_epoch,
        lambda x, y: (to_unit_range(x), y),
    )


def adaptation_dataset(
    source: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
) -> tf.data.Dataset:
    """Endless `((x_s, y_s), x_t)` batches in [-1, 1] for domain adaptation.

    Source and target each pass epoch after epoch in their own seeded order
    (`epoch_indices`), so training never sees the index pairing; target labels are not an
    argument. Batches are full (static shape); `start_step` skips the batches a resumed
    run has already trained on, so it sees exactly the batches of an uninterrupted run.
    """

    def endless(n: int, stream_seed: int) -> tf.data.Dataset:
        indices = epoch_indices(n, batch_size, stream_seed).unbatch()
        return indices.batch(batch_size, drop_remainder=True)

    ds = tf.data.Dataset.zip(endless(len(source), seed), endless(len(target), seed + 1))
    source, labels, target = (tf.constant(a) for a in (source, labels, target))
    ds = ds.skip(start_step).map(
        lambda i, j: (
            (to_unit_range(tf.gather(source, i)), tf.gather(labels, i)),
            to_unit_range(tf.gather(target, j)),
        ),
        tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
