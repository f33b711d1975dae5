"""Metrics: classification accuracy (and, for the VAE, SSIM/PSNR and anomaly scores)."""

from __future__ import annotations

import keras
import numpy as np

from preprocessing.digits import to_unit_range


def predict_digits(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Predicted classes of uint8 digit images (scaled to [-1, 1] as in training)."""
    logits = model.predict(to_unit_range(images), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of uint8 digit images that `model` classifies correctly."""
    return float(np.mean(predict_digits(model, images) == np.asarray(labels)))
