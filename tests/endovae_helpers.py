"""Tiny EndoVAE parts (16x16 images) and prepared-folder fixtures for the EndoVAE tests."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from skimage.io import imsave

from models.endovae import EndoVAE, build_decoder, build_encoder


def tiny_vae(beta: float = 1.0, seed: int = 0, lr: float = 1e-3) -> EndoVAE:
    """A compiled EndoVAE for 16x16x3 images with a 2-d latent space (same seed, same init)."""
    keras.utils.set_random_seed(seed)
    encoder = build_encoder((16, 16, 3), filters=(4, 4, 4, 4, 4, 8), dense_units=16, latent_dim=2)
    decoder = build_decoder(2, start_shape=(2, 2, 8), filters=(8, 8, 4, 4, 4, 4))
    model = EndoVAE(encoder, decoder, beta=beta, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    return model


def random_images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def write_prepared(folder: Path, normal: int, abnormal: int, seed: int = 0, size: int = 96) -> Path:
    """A folder in prepare_kvasir's layout: normal/*.png and abnormal/*.png, size^2 RGB."""
    rng = np.random.default_rng(seed)
    for group, n in (("normal", normal), ("abnormal", abnormal)):
        (folder / group).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = rng.integers(60, 200, size=3)
            image = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
            imsave(folder / group / f"{group}-{i:03d}.png", image, check_contrast=False)
    return folder
