"""Training the PixelDA paper's task classifier with the harness: on the labelled source
(the source-only baseline) or on translated source images (CycleGAN + classifier)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from models.classifier import compiled_classifier
from preprocessing.digit_pipelines import labelled_dataset
from preprocessing.pipelines import steps_per_epoch
from training.callbacks import run_callbacks
from training.run_folder import BEST, completed_epochs
from training.saving import load_model

EPOCHS, QUICK_EPOCHS = 20, 3
BATCH_SIZE = 32


def train_task_classifier(
    out: Path,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    epochs: int,
    seed: int,
    strategy,
    batch_size: int = BATCH_SIZE,
    jit: bool = False,
    save_last: bool = True,
    tensorboard: bool = False,
) -> keras.Model:
    """Fit the classifier on `train` (uint8 images, labels), choosing best.keras on
    `validation` accuracy, with its checkpoints and resume state in the run folder `out`;
    returns best.keras."""
    with strategy.scope():
        model = compiled_classifier(jit)
    model.fit(
        labelled_dataset(*train, batch_size, seed, completed_epochs(out)),
        steps_per_epoch=steps_per_epoch(len(train[0]), batch_size),
        validation_data=labelled_dataset(*validation, 1024),
        epochs=epochs,
        callbacks=run_callbacks(
            out, "val_accuracy", "max", save_last=save_last, tensorboard=tensorboard
        ),
    )
    return load_model(out / BEST)
