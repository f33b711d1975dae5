"""The homework's augmentation: shapes, range, seeded determinism."""

import keras
import numpy as np

from preprocessing.augment import augment_with_copies, build_augmenter


def images(n: int = 4, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).random((n, size, size, 3)).astype(np.float32)


def test_layers_are_the_homeworks():
    names = [type(layer).__name__ for layer in build_augmenter(0).layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast"]


def test_originals_then_copies_in_unit_range():
    x = images()
    out = augment_with_copies(x, copies=2, seed=1)
    assert out.shape == (12, 32, 32, 3) and out.dtype == np.float32
    assert (out[:4] == x).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out[4:8], x) and not np.allclose(out[4:8], out[8:])


def test_same_seed_same_output_other_seed_differs():
    x = images()
    a = augment_with_copies(x, seed=3)
    keras.utils.set_random_seed(99)  # the global seed must not matter
    assert (a == augment_with_copies(x, seed=3)).all()
    assert not np.allclose(a, augment_with_copies(x, seed=4))


def test_no_copies_and_out_of_range_input():
    x = images(2)
    assert (augment_with_copies(x, copies=0) == x).all()
    bright = augment_with_copies(np.ones((2, 16, 16, 3), np.float32) * 0.99, copies=1)
    assert bright.max() <= 1.0 and bright.min() >= 0.0
