"""The pixel range of the digit models: uint8 images in, [-1, 1] inside, uint8 out.

The generators end in tanh, so PixelDA, CycleGAN and the task classifier work on [-1, 1];
the tf.data pipelines (`preprocessing.digit_pipelines`) and the models' `translate`
methods convert with the same arithmetic (`to_unit_range` on tf.data, `unit_range` on arrays).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], in a tf.data pipeline."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], as a model's input (any backend)."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] -> uint8 [0, 255], rounded and clipped."""
    return np.round((np.asarray(images) + 1) * 127.5).clip(0, 255).astype(np.uint8)


def map_uint8(function: Callable, images: np.ndarray, batch_size: int) -> np.ndarray:
    """uint8 images through `function` (a model on [-1, 1]) in batches; uint8 results."""
    parts = [
        keras.ops.convert_to_numpy(function(unit_range(images[start : start + batch_size])))
        for start in range(0, len(images), batch_size)
    ]
    return to_uint8(np.concatenate(parts))
