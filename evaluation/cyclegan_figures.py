"""CycleGAN's figures: every loss per epoch, and A -> B -> A / B -> A -> B grids at several epochs
(the fixed images translated at the end of chosen epochs), drawn without the model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.figures import plot_training_curves, plt, show_image, titled

LOSS_PANELS = (
    (
        "Adversarial (least squares)",
        {
            "g_ab_adv": "G_AB: fake B as real",
            "g_ba_adv": "G_BA: fake A as real",
            "d_a": "D_A: real A vs fake A",
            "d_b": "D_B: real B vs fake B",
        },
    ),
    (
        "Cycle and identity (L1)",
        {
            "cycle_a": "cycle A -> B -> A",
            "cycle_b": "cycle B -> A -> B",
            "identity_a": "identity G_BA(A)",
            "identity_b": "identity G_AB(B)",
        },
    ),
    ("Totals (weighted)", {"g_loss": "generators", "d_loss": "discriminators"}),
    ("Learning rate", {"learning_rate": "G and D (linear decay)"}),
)


def plot_cyclegan_history(history: pd.DataFrame, demo: bool = False) -> plt.Figure:
    """One panel per loss family; every loss of the train step, per epoch."""
    fig, axes = plt.subplots(1, len(LOSS_PANELS), figsize=(5 * len(LOSS_PANELS), 4))
    for ax, (title, columns) in zip(axes, LOSS_PANELS, strict=True):
        for column, label in columns.items():
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[2].set_yscale("log")
    axes[3].ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.suptitle(titled("CycleGAN training", demo))
    return fig


def plot_cycle_samples(
    real: np.ndarray,
    translated: np.ndarray,
    cycled: np.ndarray,
    epochs: np.ndarray,
    names: tuple[str, str],
    demo: bool = False,
) -> plt.Figure:
    """Real images of one domain on top, then for each epoch their translation into the
    other domain and back: X -> Y and X -> Y -> X rows (`translated`, `cycled`: epochs x n)."""
    source, other = names
    rows = [(f"real {source}", real)]
    for epoch, forward, back in zip(epochs, translated, cycled, strict=True):
        rows += [(f"epoch {epoch}: -> {other}", forward), (f"epoch {epoch}: -> back", back)]
    n = len(real)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.5 * n, 1.5 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for i in range(n):
            show_image(axes[r, i], images[i])
        axes[r, 0].text(
            -0.1, 0.5, label, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8
        )
    fig.suptitle(titled(f"{source} -> {other} -> {source}", demo))
    return fig


def cyclegan_figures(
    history: pd.DataFrame,
    samples: dict[str, np.ndarray],
    classifier_history: pd.DataFrame | None = None,
    demo: bool = False,
) -> dict[str, plt.Figure]:
    """losses, cycle_a, cycle_b (`samples`: the arrays `train_cyclegan` keeps in
    samples.npz), and classifier_curves given the history of the task classifier trained
    on the translations."""
    figures = {"losses": plot_cyclegan_history(history, demo)}
    names = tuple(str(n) for n in samples["names"])
    for key, (real, forward, back), pair in (
        ("cycle_a", ("a", "ab", "aba"), names),
        ("cycle_b", ("b", "ba", "bab"), names[::-1]),
    ):
        figures[key] = plot_cycle_samples(
            samples[real], samples[forward], samples[back], samples["epochs"], pair, demo
        )
    if classifier_history is not None:
        figures["classifier_curves"] = plot_training_curves(
            classifier_history, f"Task classifier on {names[0]} translated to {names[1]}", demo
        )
    return figures
