"""The homework's augmentation: seeded Keras preprocessing layers, and copies of a set."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

BATCH = 256  # images augmented per call, to bound memory


def build_augmenter(seed: int = 0) -> keras.Sequential:
    """Flip (horizontal), rotate (5% of a turn), zoom (10%), contrast (10%), seeded.

    Each call with `training=True` draws new transforms; two augmenters built with the same
    seed produce the same sequence of transforms.
    """
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.05, seed=seed + 1),
            keras.layers.RandomZoom(0.1, 0.1, seed=seed + 2),
            keras.layers.RandomContrast(0.1, value_range=(0, 1), seed=seed + 3),
        ],
        name="augmenter",
    )


def augment_with_copies(images: np.ndarray, copies: int = 2, seed: int = 0) -> np.ndarray:
    """The N originals followed by `copies` augmented blocks of N, float32 clipped to [0, 1].

    `images` is float32 (N, H, W, 3) in [0, 1]; the same seed gives the same output, on
    every Keras backend: the layers run in a TensorFlow graph, where Keras computes them
    with TensorFlow's random streams whatever the backend (so a run trained on JAX is
    evaluated on the same copies under PyTorch).
    """
    images = np.asarray(images, np.float32)
    augmenter = build_augmenter(seed)

    @tf.function
    def augment(batch):
        for layer in augmenter.layers:
            batch = layer(batch, training=True)
        return batch

    blocks = [images]
    for _ in range(copies):
        batches = [
            augment(tf.constant(images[i : i + BATCH])).numpy()
            for i in range(0, len(images), BATCH)
        ]
        blocks.append(np.concatenate(batches) if batches else images[:0])
    return np.clip(np.concatenate(blocks), 0.0, 1.0).astype(np.float32)
