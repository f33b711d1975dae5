"""MAF figures: the negative log-likelihood per epoch, samples (decoded by the EndoVAE for a
flow on latents) and the anomaly figures, drawn without the model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.anomaly_figures import anomaly_figures
from evaluation.endovae_figures import plot_image_grid
from evaluation.figures import plot_training_curves, plt, titled

LOGGED = ("nll", "bits_per_dim")


def flow_figures(
    history: pd.DataFrame,
    space: str,
    samples: np.ndarray | None = None,
    scores: pd.DataFrame | None = None,
    demo: bool = False,
) -> dict[str, plt.Figure]:
    """history; with the evaluation's samples (images) and scores, samples, roc and
    score_histograms."""
    title = f"MAF on {space}: negative log-likelihood"
    figures = {"history": plot_training_curves(history, title, demo, metrics=LOGGED)}
    if samples is not None:
        decoded = " (decoded by the EndoVAE)" if space == "latent" else ""
        title = titled(f"MAF samples on {space}{decoded}", demo)
        figures["samples"] = plot_image_grid(samples, title, cols=4)
    if scores is not None:
        figures |= anomaly_figures(scores, demo)
    return figures
