"""Figures shared by the pipelines: atomic saving, training curves and digit-domain grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from preprocessing.files import atomic_path  # noqa: E402

DEMO_NOTE = "demo data"
LABELS = {"nll": "NLL (nats per example)", "bits_per_dim": "bits per dimension"}


def save_figure(fig: plt.Figure, path: str | Path, pdf: bool = False) -> Path:
    """Save `fig` as PNG (and PDF) atomically, close it, return the PNG path."""
    path = Path(path).with_suffix(".png")
    for suffix in (".png", ".pdf") if pdf else (".png",):
        with atomic_path(path.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def save_figures(
    figures: dict[str, plt.Figure], folder: str | Path, pdf: bool = False
) -> list[Path]:
    """`save_figure` each figure as `folder/<name>.png` (and PDF); the PNG paths."""
    return [save_figure(fig, Path(folder) / name, pdf) for name, fig in figures.items()]


def titled(title: str, demo: bool) -> str:
    """A figure title, marked when the figure shows offline demo data."""
    return f"{title} [{DEMO_NOTE}]" if demo else title


def show_image(ax: plt.Axes, image: np.ndarray, title: str = "") -> None:
    """Draw a uint8 or [0, 1] / [-1, 1] float image without axes."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip((image + 1) / 2 if image.min() < 0 else image, 0, 1)
    ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot_domain_samples(
    source: np.ndarray,
    target: np.ndarray,
    labels: np.ndarray,
    source_name: str,
    target_name: str,
    demo: bool = False,
) -> plt.Figure:
    """Paired source / target images (same indices), one column per pair."""
    n = len(source)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        show_image(axes[0, i], source[i], f"label {labels[i]}")
        show_image(axes[1, i], target[i], f"label {labels[i]}")
    for row, name in enumerate((source_name, target_name)):
        axes[row, 0].text(
            -0.1,
            0.5,
            name,
            transform=axes[row, 0].transAxes,
            ha="right",
            va="center",
            rotation=90,
            fontsize=8,
        )
    fig.suptitle(titled(f"{source_name} and {target_name} pairs (same indices)", demo))
    return fig


def plot_training_curves(
    history: pd.DataFrame,
    title: str,
    demo: bool = False,
    metrics: tuple[str, ...] = ("loss", "accuracy"),
) -> plt.Figure:
    """`metrics` (default loss and accuracy) per epoch, train and validation."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for column, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        label = LABELS.get(metric, metric.replace("_", " "))
        ax.set_ylabel(label)
        ax.set_title(label[0].upper() + label[1:])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(titled(title, demo))
    return fig
