"""The domain-adaptation protocol of PixelDA and CycleGAN on a digit pair: Table 1 rows, the
accuracies measured every epoch, the task classifier trained on translations (CycleGAN +
classifier), and FID, KID and PRDC of translated source images.

The generative metrics are measured in the features of a classifier trained on labelled
real target images: an evaluation-only step of the protocol, cached in the run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from evaluation.feature_spaces import FeatureSpace, model_space
from evaluation.generative import generative_report
from evaluation.metrics import accuracy
from models.classifier import build_classifier
from models.pixels import unit_range
from preprocessing.digit_pipelines import labelled_dataset
from preprocessing.digit_splits import (
    QUICK_TRAIN,
    Splits,
    evaluation_subsets,
    generative_split,
)
from preprocessing.digits import DigitPair
from preprocessing.files import InputError
from preprocessing.pipelines import steps_per_epoch
from training.saving import load_model, save_model

EVAL_SIZE, QUICK_EVAL_SIZE = 5000, 2000  # images per per-epoch accuracy (history.csv)
GENERATIVE_SIZE, QUICK_GENERATIVE_SIZE = 5000, 1000  # images per set for FID, KID, PRDC
KID_SUBSETS, QUICK_KID_SUBSETS = 100, 20
FEATURE_EPOCHS, QUICK_FEATURE_EPOCHS = 10, 3  # the evaluation-only feature classifier
TABLE1 = ("model", "source_test_accuracy", "target_test_accuracy", "target_all_accuracy")


def table1_row(name: str, classifier: keras.Model, pair: DigitPair, splits: Splits) -> dict:
    """A Table 1 row: the classifier's accuracy on the source test split, the target test
    split (never trained on) and the whole target set."""
    test, target_test = splits.test, splits.target_test
    return {
        "model": name,
        "source_test_accuracy": accuracy(classifier, pair.source[test], pair.labels[test]),
        "target_test_accuracy": accuracy(
            classifier, pair.target[target_test], pair.target_labels[target_test]
        ),
        "target_all_accuracy": accuracy(classifier, pair.target, pair.target_labels),
    }


def table1(
    rows: list[dict] | pd.DataFrame, pair: DigitPair, columns: tuple[str, ...] = TABLE1
) -> pd.DataFrame:
    """Table 1 as reports show it: `columns` of the rows, named after the pair's domains."""
    names = {
        "source_test_accuracy": f"{pair.source_name} test accuracy",
        "target_test_accuracy": f"{pair.target_name} test-split accuracy",
        "target_all_accuracy": f"{pair.target_name} whole-set accuracy",
    }
    return pd.DataFrame(rows)[list(columns)].rename(columns=names)


def epoch_accuracies(
    pair: DigitPair, splits: Splits, seed: int, quick: bool = False
) -> dict[str, Callable[[keras.Model], float]]:
    """The task classifier's accuracy on seeded subsets of the source train, source test and
    target test splits (`evaluation_subsets`): log name -> measure, for
    `training.callbacks.EpochMetrics`."""
    size = QUICK_EVAL_SIZE if quick else EVAL_SIZE
    measures = {}
    for name, index in evaluation_subsets(splits, size, seed).items():
        if name.startswith("target"):
            images, labels = pair.target[index], pair.target_labels[index]
        else:
            images, labels = pair.source[index], pair.labels[index]
        measures[f"{name}_accuracy"] = lambda model, x=images, y=labels: accuracy(model, x, y)
    return measures


def classifier_on_translations(
    translate: Callable[[np.ndarray], np.ndarray],
    pair: DigitPair,
    splits: Splits,
    seed: int,
    quick: bool,
    fit: Callable[[tuple, tuple], keras.Model],
) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """The task classifier trained by `fit(train, validation)` on translated source training
    images with their source labels, chosen on translated source test images (no target
    label trains or chooses anything): (the classifier, its training and its validation pair
    indices)."""
    rng = np.random.default_rng(seed)
    train = splits.train
    if quick:
        train = np.sort(rng.permutation(train)[:QUICK_TRAIN])
    validation = np.sort(rng.permutation(splits.test)[: QUICK_EVAL_SIZE if quick else EVAL_SIZE])
    print(f"Translating {len(train) + len(validation)} {pair.source_name} images ...")
    classifier = fit(
        (translate(pair.source[train]), pair.labels[train]),
        (translate(pair.source[validation]), pair.labels[validation]),
    )
    return classifier, train, validation


def target_feature_space(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    epochs: int = 10,
    cache: str | Path | None = None,
    domain: str = "target",
    batch_size: int = 64,
) -> FeatureSpace:
    """The penultimate layer of a classifier trained on labelled real target images
    (uint8, N x 32 x 32 x 3): an evaluation-only feature space for digits.

    The classifier is `models.classifier.build_classifier` trained from seed `seed` for
    `epochs` epochs; with `cache` (a `.keras` path) it is saved there, and loaded from
    there instead of trained when the file exists (an unreadable file is replaced).
    """
    classifier = None
    if cache is not None and Path(cache).is_file():
        try:
            classifier = load_model(cache)
        except InputError as err:
            print(f"{err}: training it again")
    if classifier is None:
        keras.utils.set_random_seed(seed)
        classifier = build_classifier(
            images.shape[1:], num_classes=int(np.max(labels)) + 1, name="target_features"
        )
        classifier.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        steps = epochs * steps_per_epoch(len(images), batch_size)
        batches = labelled_dataset(images, np.asarray(labels), batch_size, shuffle_seed=seed)
        classifier.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
        if cache is not None:
            save_model(classifier, cache)
    name = (
        f"classifier trained on {len(images)} labelled {domain} images "
        f"(evaluation only; seed {seed}, {epochs} epochs)"
    )
    return model_space(classifier, None, name, preprocess=unit_range)


def translation_metrics(
    pair: DigitPair,
    splits: Splits,
    translate: Callable[[np.ndarray], np.ndarray],
    method: str,
    seed: int,
    quick: bool = False,
    cache: str | Path | None = None,
    inception: FeatureSpace | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """FID, KID and PRDC of translated source images (`method`), of the untranslated
    source and of other real target images, against held-out real target images
    (`generative_split`: never trained on by anything), in the features of the
    evaluation-only classifier (`target_feature_space`, cached at `cache`) and of
    InceptionV3 too when given. Returns the table and the report sections.
    """
    size = QUICK_GENERATIVE_SIZE if quick else GENERATIVE_SIZE
    sets = generative_split(splits, size, seed)
    source = pair.source[sets.other]
    fakes = {
        f"{pair.target_name}, other real images (reference)": pair.target[sets.other],
        f"{pair.source_name}, not adapted": source,
        f"{method} translations of {pair.source_name}": translate(source),
    }
    space = target_feature_space(
        pair.target[sets.labelled],
        pair.target_labels[sets.labelled],
        seed,
        QUICK_FEATURE_EPOCHS if quick else FEATURE_EPOCHS,
        cache,
        pair.target_name,
    )
    correct = accuracy(space.model, pair.target[sets.real], pair.target_labels[sets.real])
    spaces = {f"{pair.target_name} classifier": space}
    if inception is not None:
        spaces["InceptionV3"] = inception
    return generative_report(
        pair.target[sets.real],
        fakes,
        spaces,
        f"{len(sets.real)} held-out {pair.target_name} test-split images (the feature classifier "
        f"labels {correct:.1%} of them correctly)",
        seed,
        QUICK_KID_SUBSETS if quick else KID_SUBSETS,
    )
