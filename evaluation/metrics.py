"""Metrics: classification accuracy (and, for the VAE, SSIM/PSNR and anomaly scores)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import average_precision_score, roc_auc_score

from preprocessing.digits import to_unit_range

DETECTORS = {  # anomaly-score columns of a scores.csv, higher = more anomalous
    "neg_elbo": "VAE negative ELBO",
    "recon_error": "VAE reconstruction error (MSE)",
    "maf_pixels": "MAF NLL on pixels",
    "maf_latent": "MAF NLL on latents",
}


def predict_digits(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Predicted classes of uint8 digit images (scaled to [-1, 1] as in training)."""
    logits = model.predict(to_unit_range(images), batch_size=batch_size, verbose=0)
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


def vae_scores(model, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Deterministic (z = mu) reconstructions of an `EndoVAE` and two anomaly scores per
    image: the negative ELBO (reconstruction BCE + KL) and the mean squared error."""
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        decoded, reconstruction, kl = model.image_losses(batch, sample=False)
        parts.append([keras.ops.convert_to_numpy(t) for t in (decoded, reconstruction + kl)])
    decoded = np.concatenate([p[0] for p in parts])
    return {
        "reconstructions": decoded,
        "neg_elbo": np.concatenate([p[1] for p in parts]),
        "recon_error": np.mean((decoded - images) ** 2, axis=(1, 2, 3)),
    }


def detector_columns(scores: pd.DataFrame) -> list[str]:
    """The anomaly-score columns (`DETECTORS`) that `scores` holds, in the table's order."""
    return [column for column in DETECTORS if column in scores]


def anomaly_table(scores: pd.DataFrame) -> pd.DataFrame:
    """AUROC and AUPRC of every detector column of `scores`, the group "polyps" positive."""
    labels = (scores["group"] == "polyps").to_numpy()
    return pd.DataFrame(
        [
            {
                "Detector": DETECTORS[column],
                "Score": column,
                "AUROC": auroc(labels, scores[column]),
                "AUPRC": auprc(labels, scores[column]),
            }
            for column in detector_columns(scores)
        ]
    )
