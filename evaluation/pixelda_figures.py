"""PixelDA's figures: training history (three panels) and source / generated / target samples."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from evaluation.figures import show_image, titled

ACCURACIES = {
    "source_train_accuracy": "source train",
    "source_test_accuracy": "source test",
    "target_test_accuracy": "target test",
    "val_accuracy": "target validation (chooses best.keras)",
}


def plot_pixelda_history(history: pd.DataFrame, demo: bool = False) -> plt.Figure:
    """Panels: D vs G loss; D, G and T losses; T's three accuracies per epoch."""
    panels = (
        (
            "D vs G (adversarial BCE)",
            {"domain_loss": "D: real + fake", "g_adv_loss": "G: fake as real"},
        ),
        (
            "D, G and T losses (log scale)",
            {
                "d_loss": "D step (weighted D + T)",
                "g_loss": "G step (weighted)",
                "task_loss": "T: source + generated",
                "g_task_loss": "T on generated, in G step",
            },
        ),
        ("Task classifier accuracy", ACCURACIES),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (title, columns) in zip(axes, panels, strict=True):
        for column, label in columns.items():
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_yscale("log")
    fig.suptitle(titled("PixelDA training", demo))
    return fig


def plot_pixelda_samples(
    rows: dict[str, np.ndarray],
    predictions: dict[str, np.ndarray],
    labels: np.ndarray,
    demo: bool = False,
) -> plt.Figure:
    """One row per image set (same indices), each image titled "Real: y, Pred: p"."""
    n = len(labels)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.9 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for i in range(n):
            show_image(axes[r, i], images[i], f"Real: {labels[i]}, Pred: {predictions[name][i]}")
        axes[r, 0].text(
            -0.15,
            0.5,
            name,
            transform=axes[r, 0].transAxes,
            rotation=90,
            ha="right",
            va="center",
            fontsize=9,
        )
    fig.suptitle(titled("Source, generated and target images (same indices)", demo))
    return fig
