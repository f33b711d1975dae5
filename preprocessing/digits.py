"""Digit domain pairs for PixelDA: MNIST -> MNIST-M (read or synthesized) and the offline
demo pair.

A `DigitPair` holds a labelled source domain and a target domain that pair by index
(target image i shows source digit i on a new background). Target labels are kept for
evaluation only; the training pipelines (`preprocessing.digit_pipelines`) never yield them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from preprocessing.files import InputError
from preprocessing.mnist import Split, load_mnist, mnist_file, mnist_to_rgb32
from preprocessing.mnistm import (
    mnistm_folder,
    photo_folder,
    read_mnistm,
    read_photos,
    synthesize_mnistm,
)

DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")


@dataclasses.dataclass
class DigitPair:
    """Source and target images (uint8, N x 32 x 32 x 3) that pair by index."""

    name: str
    source: np.ndarray
    labels: np.ndarray
    target: np.ndarray
    target_labels: np.ndarray  # evaluation only
    demo: bool = False

    def __post_init__(self):
        if not len(self.source) == len(self.labels) == len(self.target) == len(self.target_labels):
            raise InputError(f"{self.name}: source and target sets differ in size")

    @property
    def source_name(self) -> str:
        return domain_names(self.demo)[0]

    @property
    def target_name(self) -> str:
        return domain_names(self.demo)[1]


def domain_names(demo: bool) -> tuple[str, str]:
    """How figures and reports name the source and target domains."""
    if demo:
        return "demo source (sklearn digits)", "demo target (skimage photos)"
    return "MNIST", "MNIST-M"


def pair_mnist_mnistm(
    mnist: tuple[Split, Split], mnistm: list[Split], resize: str = "bilinear"
) -> DigitPair:
    """Pair MNIST-M with MNIST by index: its train part with MNIST train, its test part with
    MNIST test; a single part (e.g. 70,000 images) pairs with all of MNIST in order. MNIST
    goes to 32x32 by `resize` (`mnist_to_rgb32`)."""
    if len(mnistm) == 1:
        mnist = (
            (
                np.concatenate([mnist[0][0], mnist[1][0]]),
                np.concatenate([mnist[0][1], mnist[1][1]]),
            ),
        )
    source, labels = [], []
    for (x, y), (images, target_labels) in zip(mnist, mnistm, strict=False):
        if len(images) > len(x):
            raise InputError(
                f"MNIST-M has {len(images)} images in a part where MNIST has {len(x)}: "
                "the --mnistm folder does not pair with --mnist"
            )
        agree = np.mean(y[: len(images)] == target_labels)
        if agree < 0.99:
            raise InputError(
                f"MNIST-M labels agree with MNIST on only {agree:.0%} of paired indices: "
                "the --mnistm folder does not pair with --mnist by index"
            )
        source.append(mnist_to_rgb32(x[: len(images)], resize))
        labels.append(y[: len(images)])
    return DigitPair(
        "MNIST -> MNIST-M",
        np.concatenate(source),
        np.concatenate(labels),
        np.concatenate([images for images, _ in mnistm]),
        np.concatenate([lab for _, lab in mnistm]),
    )


def demo_pair(seed: int = 0) -> DigitPair:
    """Offline demo data: scikit-learn's 1,797 real 8x8 digits upsampled to 32x32, and the
    MNIST-M recipe over the colour photos bundled with scikit-image. Nothing downloaded."""
    from skimage import data
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = (bunch.images * (255.0 / 16.0)).astype(np.float32)
    big = np.stack([cv2.resize(g, (24, 24), interpolation=cv2.INTER_CUBIC) for g in grey])
    digits = np.pad(np.clip(big, 0, 255).astype(np.uint8), ((0, 0), (4, 4), (4, 4)))
    source = np.repeat(digits[..., None], 3, axis=-1)
    photos = [getattr(data, name)() for name in DEMO_PHOTOS]
    target = synthesize_mnistm(source, [p[..., :3] for p in photos if p.ndim == 3], seed)
    labels = bunch.target.astype(np.int64)
    return DigitPair(
        "demo data (sklearn digits -> skimage photos)", source, labels, target, labels, demo=True
    )


def check_pair(
    pair: str,
    mnist: str | Path | None = None,
    mnistm: str | Path | None = None,
    backgrounds: str | Path | None = None,
) -> None:
    """Refuse flags of a digit pair (`load_pair`'s) that name a missing file or folder, leave
    MNIST-M out or give it twice; apps call it before they write anything. Cheap, but for
    `--mnistm download`, whose first call downloads MNIST-M here (`mnistm_folder`)."""
    if pair == "digits-demo":
        return
    if pair != "mnist-mnistm":
        raise InputError(f"--pair {pair}: choose mnist-mnistm or digits-demo")
    if mnist is not None:
        mnist_file(mnist)
    if mnistm is not None and backgrounds is not None:
        raise InputError(
            "--mnistm and --mnistm-backgrounds: pass one (MNIST-M read, or synthesized)"
        )
    if mnistm is None and backgrounds is None:
        raise InputError(
            "MNIST-M is needed: pass --mnistm download (a public copy), --mnistm DIR (canonical "
            "layout), or --mnistm-backgrounds DIR of colour photos (e.g. BSDS500) to synthesize "
            "it, or --pair digits-demo"
        )
    if mnistm is not None:
        mnistm_folder(mnistm)
    else:
        photo_folder(backgrounds)


def load_pair(
    pair: str,
    mnist: str | Path | None = None,
    mnistm: str | Path | None = None,
    backgrounds: str | Path | None = None,
    seed: int = 0,
    resize: str = "bilinear",
) -> DigitPair:
    """The digit pair the apps' flags describe (`--pair`, `--mnist`, `--mnistm`,
    `--mnistm-backgrounds`, `--mnist-resize`; see `check_pair`). Synthesized MNIST-M puts
    the padded digit on its backgrounds, at the scale of the canonical set."""
    check_pair(pair, mnist, mnistm, backgrounds)
    if pair == "digits-demo":
        return demo_pair(seed)
    parts = load_mnist(mnist)
    if mnistm is not None:
        return pair_mnist_mnistm(parts, read_mnistm(mnistm), resize)
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.concatenate([parts[0][1], parts[1][1]])
    target = synthesize_mnistm(mnist_to_rgb32(x, "pad"), read_photos(backgrounds), seed)
    return DigitPair("MNIST -> MNIST-M (synthesized)", mnist_to_rgb32(x, resize), y, target, y)
