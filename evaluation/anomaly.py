"""Anomaly detection: polyps scored against healthy frames by every detector (the VAE's
negative ELBO and reconstruction error, the MAF's NLL), and their AUROC / AUPRC table."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from evaluation.metrics import auprc, auroc

POSITIVE = "polyps"  # the group that counts as anomalous
DETECTORS = {  # anomaly-score columns of a scores.csv, higher = more anomalous
    "neg_elbo": "VAE negative ELBO",
    "recon_error": "VAE reconstruction error (MSE)",
    "maf_pixels": "MAF NLL on pixels",
    "maf_latent": "MAF NLL on latents",
}


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
    labels = (scores["group"] == POSITIVE).to_numpy()
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
