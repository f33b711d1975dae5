"""How good the EndoVAE's images are: SSIM and PSNR of reconstructions (against the
mean-image baseline), and FID, KID and PRDC of samples and reconstructions."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from evaluation.feature_spaces import FeatureSpace, model_space
from evaluation.generative import generative_report
from evaluation.metrics import psnr, ssim

UNUSED_KL, UNUSED_EPOCHS = 0.1, 3  # nats, last epochs: below this the latent carries nothing


def unused_latent(history: pd.DataFrame) -> str | None:
    """A warning when the KL term stayed under `UNUSED_KL` nats in each of the last
    `UNUSED_EPOCHS` epochs of `history` (train_endovae's history.csv), else None: the
    encoder then gives every image the prior, and every reconstruction is the mean image."""
    kl = history["kl_loss"].to_numpy()[-UNUSED_EPOCHS:] if "kl_loss" in history else []
    if len(kl) < UNUSED_EPOCHS or kl.max() >= UNUSED_KL:
        return None
    return (
        f"the latent is unused: reconstructions are the mean image (KL under {UNUSED_KL} "
        f"nats in each of the last {UNUSED_EPOCHS} epochs). The run sits on the collapse "
        "plateau it usually leaves after more steps at the full learning rate: train longer "
        "(rerun with a larger --epochs to continue), or start over with another --seed "
        "(docs/endovae.md#why-a-warm-up)"
    )


def quality_rows(name: str, images: np.ndarray, reconstructions: np.ndarray) -> list[dict]:
    """SSIM and PSNR (mean and standard deviation over images) as table rows."""
    return [
        {"Images": name, "Metric": metric, "Mean": float(v.mean()), "Std Dev": float(v.std())}
        for metric, v in (
            ("SSIM", ssim(images, reconstructions)),
            ("PSNR (dB)", psnr(images, reconstructions)),
        )
    ]


def sample_metrics(
    encoder: keras.Model,
    normal: dict[str, np.ndarray],
    generated: np.ndarray,
    reconstructions: np.ndarray,
    seed: int,
    inception: FeatureSpace | None = None,
) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    """FID, KID and PRDC of samples, validation reconstructions and (as a reference) real
    training frames against the held-out healthy validation frames, in the features of
    the trained encoder's penultimate layer (and of InceptionV3 when given): the table and
    the report sections (None and none with fewer than two validation frames)."""
    validation = normal["validation"]
    n = len(validation)
    if n < 2:
        print("One validation image: too few for FID, KID and precision/recall.")
        return None, []
    train = normal["train"][np.random.default_rng(seed).permutation(len(normal["train"]))[:n]]
    fakes = {
        "training frames, real (reference)": train,
        "samples: decoder(z), z ~ N(0, I)": generated[:n],
        "reconstructions of the validation frames": reconstructions,
    }
    spaces = {"EndoVAE encoder": model_space(encoder, None, "the trained EndoVAE encoder", 64)}
    if inception is not None:
        spaces["InceptionV3"] = inception
    return generative_report(
        validation, fakes, spaces, f"the {n} held-out healthy validation frames", seed
    )
