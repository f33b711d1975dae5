"""Loss averaging that stays correct under any `tf.distribute` strategy."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def global_batch_size(values) -> tf.Tensor:
    """Examples in the global batch: this replica's count summed over all replicas."""
    local = ops.cast(ops.shape(values)[0], "float32")
    context = tf.distribute.get_replica_context()
    return local if context is None else context.all_reduce("sum", local)


def global_mean(values) -> tf.Tensor:
    """Sum over this replica's examples / examples in the global batch: the replicas'
    gradients then add up to the gradient of the global-batch mean."""
    return ops.sum(ops.cast(values, "float32")) / global_batch_size(values)
