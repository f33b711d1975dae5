"""EndoVAE figures: generated grid, reconstructions, ROC, score histograms, history.

`draw_endovae_figures(run)` redraws all of them from the files `evaluate_endovae` and
`train_endovae` leave in a run folder, without the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from evaluation.figures import plt, save_figure, show_image, titled
from evaluation.metrics import DETECTORS, auroc, detector_columns

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


def plot_roc(scores: pd.DataFrame, title: str) -> plt.Figure:
    """ROC curves of each anomaly score (`DETECTORS`), polyps (group "polyps") as positives."""
    labels = (scores["group"] == "polyps").to_numpy()
    fig, ax = plt.subplots(figsize=(5, 5))
    for column in detector_columns(scores):
        fpr, tpr, _ = roc_curve(labels, scores[column])
        auc = auroc(labels, scores[column])
        ax.plot(fpr, tpr, label=f"{DETECTORS[column]} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", alpha=0.4, label="chance")
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (polyps found)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def plot_score_histograms(scores: pd.DataFrame, title: str) -> plt.Figure:
    """Histograms of each anomaly score (`DETECTORS`), one colour per group."""
    columns = detector_columns(scores)
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 4), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        bins = np.histogram_bin_edges(scores[column], bins=30)
        for group, rows in scores.groupby("group"):
            ax.hist(rows[column], bins=bins, alpha=0.6, label=f"{group} ({len(rows)})")
        ax.set_xlabel(DETECTORS[column])
        ax.set_ylabel("images")
        ax.legend()
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


def draw_endovae_figures(run: str | Path, pdf: bool = False, demo: bool = False) -> list[Path]:
    """Redraw every EndoVAE figure of a run folder from its saved files: the history of
    `train_endovae`, and once `evaluate_endovae` has run, its samples and scores."""
    run = Path(run)
    figures: dict[str, plt.Figure] = {
        "history": plot_endovae_history(
            pd.read_csv(run / "history.csv"), titled("EndoVAE training", demo)
        )
    }
    if (run / "samples.npz").exists():
        samples = np.load(run / "samples.npz")
        title = titled("Generated Images from Latent Space", demo)
        figures["generated"] = plot_image_grid(samples["generated"], title)
        for group in ("validation", "polyps"):
            if f"{group}_originals" in samples:
                figures[f"reconstructions_{group}"] = plot_reconstructions(
                    samples[f"{group}_originals"],
                    samples[f"{group}_reconstructions"],
                    titled(f"Original vs reconstructed ({group})", demo),
                )
        scores = pd.read_csv(run / "scores.csv")
        if scores["group"].nunique() == 2:
            title = titled("Anomaly detection: polyps vs validation normal", demo)
            figures["roc"] = plot_roc(scores, title)
            figures["score_histograms"] = plot_score_histograms(
                scores, titled("Anomaly scores", demo)
            )
    return [save_figure(fig, run / "figures" / name, pdf) for name, fig in figures.items()]
