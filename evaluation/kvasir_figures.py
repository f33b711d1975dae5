"""The homework's endoscopy preprocessing figures: class samples, crop steps, augmentation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from evaluation.figures import show_image, titled
from preprocessing.otsu_crop import CropSteps


def plot_class_samples(
    normal: list[np.ndarray], abnormal: list[np.ndarray], source: str, demo: bool = False
) -> plt.Figure:
    """Original frames: a row of normal samples over a row of abnormal (polyp) samples."""
    n = max(len(normal), len(abnormal))
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 5.6), squeeze=False)
    for row, (label, images) in enumerate((("Normal", normal), ("Abnormal", abnormal))):
        for i, ax in enumerate(axes[row]):
            if i < len(images):
                h, w = images[i].shape[:2]
                show_image(ax, images[i], f"{label} ({w}x{h})")
            else:
                ax.axis("off")
    fig.suptitle(titled(f"{source} samples: normal and abnormal", demo))
    return fig


def plot_crop_steps(steps: CropSteps, name: str, demo: bool = False) -> plt.Figure:
    """Original, grayscale, Otsu mask with its threshold, detected contour, final square."""
    size = steps.final.shape[0]
    panels = [
        (steps.original, "Original"),
        (steps.gray[..., None], "Grayscale"),
        (steps.mask[..., None], f"Otsu's Mask (Thresh: {steps.threshold})"),
        (steps.contour, "Detected Contour"),
        (steps.final, f"Final {size}x{size}"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4))
    for ax, (image, title) in zip(axes, panels, strict=True):
        show_image(ax, image, title)
    fig.suptitle(titled(f"Preprocessing steps: {name}", demo))
    return fig


def plot_augmentation(
    originals: np.ndarray, augmented: list[np.ndarray], demo: bool = False
) -> plt.Figure:
    """Each original (a row) beside its augmented versions; `augmented[k][i]` is copy k of i."""
    cols = 1 + len(augmented)
    fig, axes = plt.subplots(len(originals), cols, figsize=(2.4 * cols, 2.5 * len(originals)))
    axes = np.atleast_2d(axes)
    for i, original in enumerate(originals):
        show_image(axes[i, 0], original, "Original")
        for k, block in enumerate(augmented, start=1):
            show_image(axes[i, k], block[i], f"Augmented {k}")
    fig.suptitle(titled("Data augmentation: flip, rotation, zoom, contrast", demo))
    return fig
