"""Which digit pairs train, validate and test, and which images each evaluation uses.

Every split is of pair indices, seeded, and applied to both domains alike, so the source
test split and the target test split hold the same digits.
"""

from __future__ import annotations

import dataclasses

import numpy as np

VALIDATION_SIZE = 1000  # labelled target images that choose PixelDA's best.keras, nothing else
QUICK_TRAIN = 20_000  # training pairs of a --quick task classifier


def paired_split(
    n: int, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One seeded random split of pair indices, applied to both domains alike."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


@dataclasses.dataclass
class Splits:
    """Indices of the pairs: training, target validation (1,000) and the rest of the test."""

    train: np.ndarray
    test: np.ndarray
    validation: np.ndarray
    target_test: np.ndarray


def split_pairs(n: int, seed: int) -> Splits:
    """The seeded 20% paired test split; its first 1,000 (seeded order) validate on the target."""
    train, test = paired_split(n, 0.2, seed)
    shuffled = np.random.default_rng(seed).permutation(test)
    n_val = min(VALIDATION_SIZE, len(test) // 2)
    return Splits(train, test, np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:]))


def evaluation_subsets(splits: Splits, size: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded subsets of at most `size` indices of the source training split, the source
    test split and the target test split, for accuracies measured every epoch."""
    rng = np.random.default_rng(seed)

    def subset(index: np.ndarray) -> np.ndarray:
        return np.sort(rng.permutation(index)[:size])

    train, test, target = subset(splits.train), subset(splits.test), subset(splits.target_test)
    return {"source_train": train, "source_test": test, "target_test": target}


@dataclasses.dataclass
class GenerativeSplit:
    """Indices for FID, KID and PRDC of translations: `labelled` train the evaluation-only
    feature classifier, `real` are the held-out real target images, `other` the pairs whose
    source images are translated (and whose target images are the reference)."""

    labelled: np.ndarray
    real: np.ndarray
    other: np.ndarray


def generative_split(splits: Splits, size: int, seed: int) -> GenerativeSplit:
    """The target test split halved (seeded): the labelled validation split and the first
    half train the feature classifier; up to `size` of the second half, never trained on by
    anything, are the real images; as many others come from the training split."""
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(splits.target_test)
    half = len(shuffled) // 2
    labelled = np.sort(np.concatenate([splits.validation, shuffled[:half]]))
    real = np.sort(shuffled[half:][:size])
    other = np.sort(rng.permutation(splits.train)[: len(real)])
    return GenerativeSplit(labelled, real, other)
