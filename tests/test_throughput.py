"""The FLOP count of a train step equals the count from the layer shapes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.classifier import compiled_classifier
from training.throughput import step_flops


def test_step_flops_counts_forward_and_both_gradients_of_each_layer():
    """Classifier per image, 2 x multiply-adds: conv 5x5 3->32 at 32x32 (4,915,200), conv 5x5
    32->48 at 16x16 (19,660,800), dense 3072->100, 100->100, 100->10 (614,400 + 20,000 +
    2,000): forward 25,212,400; the filter gradients as much again; the input gradients of
    every layer but the first (its input is data) 20,297,200."""
    batch = (tf.zeros((4, 32, 32, 3)), tf.constant(np.arange(4), tf.int64))
    assert step_flops(compiled_classifier(), batch) == 4 * (2 * 25_212_400 + 20_297_200)
