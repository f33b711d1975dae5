"""EndoVAE training: the seeded split, LR halving on val_total_loss, resume after a crash."""

import keras
import numpy as np
import pandas as pd
import pytest

from apps.train_endovae import plateau_callbacks, split_names
from preprocessing.files import InputError
from preprocessing.pipelines import array_batches
from tests.endovae_helpers import random_images, tiny_vae

IMAGES = random_images(8)


class Interrupt(keras.callbacks.Callback):
    """Raise at the start of epoch `at` (0-based), like a kill between epochs; record epochs."""

    def __init__(self, at: int | None = None):
        super().__init__()
        self.at, self.begun = at, []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt
        self.begun.append(epoch)


def fit(model, out, epochs, interrupt=None, **callback_args):
    interrupt = interrupt or Interrupt()
    return model.fit(
        array_batches(IMAGES, 4),
        validation_data=array_batches(IMAGES, 4),
        epochs=epochs,
        verbose=0,
        callbacks=[*plateau_callbacks(out, **callback_args), interrupt],
    )


def test_split_is_seeded_disjoint_and_capped_in_quick_mode():
    names = [f"{i:04d}.png" for i in range(400)]
    split = split_names(names, 0.25, seed=3)
    assert split == split_names(names, 0.25, seed=3) != split_names(names, 0.25, seed=4)
    assert (len(split["train"]), len(split["validation"])) == (300, 100)
    assert not set(split["train"]) & set(split["validation"])
    quick = split_names(names, 0.25, seed=3, quick=True)
    assert (len(quick["train"]), len(quick["validation"])) == (150, 50)
    with pytest.raises(InputError, match="--val-fraction"):
        split_names(names, 1.5, seed=0)


def test_learning_rate_halves_after_patience_flat_epochs(tmp_path):
    model = tiny_vae(lr=1e-12)  # too small to move the weights: val_total_loss stays flat
    fit(model, tmp_path, 5, lr_patience=2, min_lr=0.0)
    rates = pd.read_csv(tmp_path / "history.csv")["learning_rate"].to_numpy()
    np.testing.assert_allclose(rates / 1e-12, [1, 1, 1, 0.5, 0.5], rtol=1e-6)
    assert "val_total_loss" in pd.read_csv(tmp_path / "history.csv")


def test_interrupted_fit_resumes_at_the_right_epoch_with_the_same_weights(tmp_path):
    straight = tiny_vae()
    fit(straight, tmp_path / "a", 2)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_vae(), tmp_path / "b", 2, Interrupt(at=1))
    resumed, epochs = tiny_vae(), Interrupt()  # a new process builds a fresh model
    fit(resumed, tmp_path / "b", 2, epochs)
    assert epochs.begun == [1]
    assert pd.read_csv(tmp_path / "b" / "history.csv")["epoch"].tolist() == [1, 2]
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    best = keras.models.load_model(tmp_path / "b" / "checkpoints" / "best.keras")
    history = pd.read_csv(tmp_path / "b" / "history.csv")
    np.testing.assert_allclose(
        best.evaluate(array_batches(IMAGES, 4), verbose=0, return_dict=True)["total_loss"],
        history["val_total_loss"].min(),
        rtol=1e-5,
    )
