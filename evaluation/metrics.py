"""Metrics: classification accuracy, SSIM and PSNR, AUROC and AUPRC."""

from __future__ import annotations

import keras
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import average_precision_score, roc_auc_score

from models.pixels import unit_range


def predict_digits(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Predicted classes of uint8 digit images (scaled to [-1, 1] as in training)."""
    logits = model.predict(unit_range(images), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1)


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Share of uint8 digit images that `model` classifies correctly."""
    return float(np.mean(predict_digits(model, images) == np.asarray(labels)))


def ssim(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """SSIM of each [0, 1] image with its reconstruction (scikit-image, data_range 1)."""
    return np.array(
        [
            structural_similarity(a, b, data_range=1.0, channel_axis=-1)
            for a, b in zip(images, reconstructions, strict=True)
        ]
    )


def psnr(images: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """PSNR in dB of each [0, 1] image with its reconstruction (scikit-image, data_range 1)."""
    return np.array(
        [
            peak_signal_noise_ratio(a, b, data_range=1.0)
            for a, b in zip(images, reconstructions, strict=True)
        ]
    )


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for binary `labels` (1 = positive)."""
    return float(roc_auc_score(labels, scores))


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve (average precision), 1 = positive."""
    return float(average_precision_score(labels, scores))
