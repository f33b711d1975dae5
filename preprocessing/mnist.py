"""MNIST: keras' npz, read or downloaded, and its 28x28 digits brought to 32x32x3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from preprocessing.files import InputError, existing_path

SIZE = 32  # the side of every digit image of the pairs
PARTS = ("train", "test")
RESIZES = ("bilinear", "pad")  # MNIST 28x28 -> 32x32 (`mnist_to_rgb32`)
Split = tuple[np.ndarray, np.ndarray]


def load_mnist(path: str | Path | None = None) -> tuple[Split, Split]:
    """MNIST as `((x_train, y_train), (x_test, y_test))`, 28x28 uint8, like keras.

    `path` is an npz in the `keras.datasets.mnist` layout; without it keras downloads
    (and caches) the data.
    """
    if path is None:
        import keras

        try:
            return keras.datasets.mnist.load_data()
        except Exception as err:  # network errors come in many types
            raise InputError(
                f"cannot download MNIST ({err.__class__.__name__}): pass --mnist PATH "
                "to an npz with x_train, y_train, x_test, y_test"
            ) from err
    path = mnist_file(path)
    try:
        with np.load(path) as data:
            parts = [(data[f"x_{p}"], data[f"y_{p}"]) for p in PARTS]
    except (KeyError, ValueError, OSError) as err:
        raise InputError(
            f"--mnist {path}: not an npz with x_train, y_train, x_test, y_test ({err})"
        ) from err
    for x, _ in parts:
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise InputError(f"--mnist {path}: images are {x.shape[1:]}, expected 28x28")
    (xa, ya), (xb, yb) = parts
    return (xa.astype(np.uint8), ya.astype(np.int64)), (xb.astype(np.uint8), yb.astype(np.int64))


def mnist_to_rgb32(digits: np.ndarray, resize: str = "bilinear") -> np.ndarray:
    """28x28 grey digits -> 32x32x3.

    "bilinear": the homework's `transforms.Resize(32)` on PIL images (PIL's bilinear; the
    official PixelDA code resizes too); "pad": zero padding of 2, the digit at the scale
    MNIST-M shows it.
    """
    if resize == "pad":
        grey = np.pad(digits, ((0, 0), (2, 2), (2, 2)))
    elif resize == "bilinear":
        size = (SIZE, SIZE)
        grey = np.stack(
            [np.asarray(Image.fromarray(d).resize(size, Image.BILINEAR)) for d in digits]
        )
    else:
        raise InputError(f"--mnist-resize {resize}: choose one of {', '.join(RESIZES)}")
    return np.repeat(grey[..., None], 3, axis=-1)


def mnist_file(path: str | Path) -> Path:
    """`--mnist`, an existing file."""
    return existing_path(path, "--mnist", "an npz like keras' mnist.npz")
