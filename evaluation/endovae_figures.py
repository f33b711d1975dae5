"""EndoVAE figures: training history, generated grid, reconstructions (and the anomaly
figures of `evaluation.anomaly_figures`), drawn without the model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.anomaly_figures import anomaly_figures
from evaluation.figures import plt, show_image, titled

LOSSES = ("total_loss", "reconstruction_loss", "kl_loss")


def plot_image_grid(images: np.ndarray, title: str, cols: int = 3) -> plt.Figure:
    """Images in a grid of `cols` columns."""
    rows = int(np.ceil(len(images) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images, strict=False):
        show_image(ax, image)
    fig.suptitle(title)
    return fig


def plot_reconstructions(
    originals: np.ndarray, reconstructions: np.ndarray, title: str
) -> plt.Figure:
    """Originals (top row) over their reconstructions (bottom row)."""
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.3), squeeze=False)
    for i in range(n):
        show_image(axes[0, i], originals[i], "original")
        show_image(axes[1, i], reconstructions[i], "reconstruction")
    fig.suptitle(title)
    return fig


def plot_endovae_history(history: pd.DataFrame, title: str) -> plt.Figure:
    """The three losses (train and validation) and the learning rate per epoch."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    for ax, loss in zip(axes, LOSSES, strict=False):
        for column, label in ((loss, "train"), (f"val_{loss}", "validation")):
            if column in history:
                ax.plot(history["epoch"], history[column], label=label)
        ax.set_title(loss.replace("_", " "))
        ax.legend()
    axes[-1].plot(history["epoch"], history["learning_rate"])
    axes[-1].set_yscale("log")
    axes[-1].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def endovae_figures(
    history: pd.DataFrame,
    samples: dict[str, np.ndarray] | None = None,
    scores: pd.DataFrame | None = None,
    demo: bool = False,
) -> dict[str, plt.Figure]:
    """The history of `train_endovae`, and once `evaluate_endovae` has run, its samples
    (generated images, originals and reconstructions) and anomaly scores."""
    figures = {"history": plot_endovae_history(history, titled("EndoVAE training", demo))}
    if samples is not None:
        title = titled("Generated Images from Latent Space", demo)
        figures["generated"] = plot_image_grid(samples["generated"], title)
        for group in ("validation", "polyps"):
            if f"{group}_originals" in samples:
                figures[f"reconstructions_{group}"] = plot_reconstructions(
                    samples[f"{group}_originals"],
                    samples[f"{group}_reconstructions"],
                    titled(f"Original vs reconstructed ({group})", demo),
                )
    if scores is not None:
        figures |= anomaly_figures(scores, demo)
    return figures
