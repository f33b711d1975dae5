"""Anomaly-detection figures: ROC curves and score histograms of every detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from evaluation.anomaly import DETECTORS, POSITIVE, detector_columns
from evaluation.figures import plt, titled
from evaluation.metrics import auroc


def plot_roc(scores: pd.DataFrame, title: str) -> plt.Figure:
    """ROC curves of each anomaly score (`DETECTORS`), polyps (group "polyps") as positives."""
    labels = (scores["group"] == POSITIVE).to_numpy()
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


def anomaly_figures(scores: pd.DataFrame, demo: bool = False) -> dict[str, plt.Figure]:
    """roc and score_histograms of a scores table (one row per image: its group and each
    detector's score) holding both groups; none with one group (no polyps)."""
    if scores["group"].nunique() != 2:
        return {}
    return {
        "roc": plot_roc(scores, titled("Anomaly detection: polyps vs validation normal", demo)),
        "score_histograms": plot_score_histograms(scores, titled("Anomaly scores", demo)),
    }
