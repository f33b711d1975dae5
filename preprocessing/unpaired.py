"""Two unpaired image domains (CycleGAN's A and B): from two folders or from a digit pair."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

from preprocessing.digit_pipelines import adaptation_dataset
from preprocessing.digit_splits import Splits
from preprocessing.digits import DigitPair
from preprocessing.image_folders import read_image_folder


@dataclasses.dataclass
class Domains:
    """Unpaired training images of A and B (uint8) and the fixed images drawn every epoch."""

    names: tuple[str, str]
    a: np.ndarray
    b: np.ndarray
    samples_a: np.ndarray
    samples_b: np.ndarray
    demo: bool = False


def folder_domains(folder_a: Path, folder_b: Path, size: int, seed: int, samples: int) -> Domains:
    """Every readable image of the two folders (`--domain-a`, `--domain-b`), `samples` of
    each drawn (seeded) as the fixed images."""
    a = read_image_folder(folder_a, size, "--domain-a")
    b = read_image_folder(folder_b, size, "--domain-b")
    rng = np.random.default_rng(seed)
    return Domains(
        (folder_a.name, folder_b.name),
        a,
        b,
        a[np.sort(rng.permutation(len(a))[:samples])],
        b[np.sort(rng.permutation(len(b))[:samples])],
    )


def digit_domains(pair: DigitPair, splits: Splits, samples: int) -> Domains:
    """The source and the target images of the training pairs, each to be drawn in its own
    order (no pairing, no label); the first `samples` test pairs are the fixed images."""
    return Domains(
        (pair.source_name, pair.target_name),
        pair.source[splits.train],
        pair.target[splits.train],
        pair.source[splits.test[:samples]],
        pair.target[splits.test[:samples]],
        pair.demo,
    )


def unpaired_dataset(
    a: np.ndarray, b: np.ndarray, batch_size: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """Endless `(x_a, x_b)` batches in [-1, 1], each domain in its own seeded order
    (`adaptation_dataset` without labels)."""
    no_labels = np.zeros(len(a), np.int64)
    ds = adaptation_dataset(a, no_labels, b, batch_size, seed, start_step)
    return ds.map(lambda source, target: (source[0], target))
