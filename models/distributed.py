"""Loss averaging that stays correct under any `tf.distribute` strategy (TensorFlow; the
other backends train on one device here, where these are plain means).

Every trainer's losses are `global_mean`s: each replica divides the sum over its share of
the batch by the examples in the whole global batch, so the replicas' gradients, which the
optimizer sums, add up to the gradient of the global-batch mean. The global count is an
all-reduce of the replicas' counts, not `per-replica batch x replicas`: a last partial batch
is shared unevenly (5 examples on 2 replicas: 3 and 2; 1 example: 1 and 0), where that
product is wrong (or 0 / 0). On full batches both give the same exact number; the extra
reduction only reorders float32 rounding in the gradients (CycleGAN on two CPUs: the same
losses bit for bit, gradients within 1e-6 of entries up to 1.8), which Adam amplifies into
different updates for near-zero gradients: what once made a static count look necessary.
"""

from __future__ import annotations

import keras
from keras import ops

from models.backend import replica_context, replicas


def global_batch_size(values):
    """Examples in the global batch: this replica's count (`values`' first axis) summed
    over all replicas."""
    local = ops.cast(ops.shape(values)[0], "float32")
    context = replica_context()
    return local if context is None else context.all_reduce("sum", local)


def global_mean(values):
    """This replica's part of the global-batch mean of `values` (first axis: examples;
    each example's value is the mean over its other axes), in float32 whatever the
    compute dtype: the sum over this replica's examples / examples in the global batch.
    Summed over the replicas it is the mean over the whole batch."""
    values = ops.cast(values, "float32")
    if len(values.shape) > 1:
        values = ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return ops.sum(values) / global_batch_size(values)


def track_global_means(trackers: dict[str, keras.metrics.Mean], **values) -> dict:
    """Add this replica's `global_mean` values to their `Mean` trackers; their results.

    Each replica adds its value x replicas, counted once. Read across replicas (Keras
    averages the replicas' results in the step logs; an epoch's result sums their totals
    and counts), a tracker holds the mean over steps of the global-batch values, however
    each batch was split.
    """
    count = replicas()
    for name, value in values.items():
        trackers[name].update_state(value * count)
    return {name: tracker.result() for name, tracker in trackers.items()}
