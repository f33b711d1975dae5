"""EndoVAE training: the seeded split, LR halving on val_total_loss, resume after a crash."""

import keras
import numpy as np
import pandas as pd
import pytest

from preprocessing.augment import augment_with_copies
from preprocessing.files import InputError
from preprocessing.kvasir_split import split_images, split_names, training_images
from preprocessing.pipelines import array_batches
from tests.endovae_helpers import random_images, tiny_vae
from training.callbacks import LinearWarmup, plateau_callbacks

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
        callbacks=[*plateau_callbacks(out, "val_total_loss", **callback_args), interrupt],
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


def test_homework_order_splits_frames_and_their_copies_together():
    """augment_then_split: 3N items split together (as the homework's 1,500 -> 4,500), the
    copies rebuilt exactly from split.json's seed; split_then_augment keeps them apart."""
    names = [f"{i:02d}.png" for i in range(10)]
    images = random_images(10)
    split = split_names(names, 0.2, seed=1, order="augment_then_split", copies=2)
    items = split["train"] + split["validation"]
    assert sorted(items) == sorted(names + [f"{n}+copy{k}" for k in (1, 2) for n in names])
    assert len(split["validation"]) == 6
    parts = split_images(images, names, split)
    pool = augment_with_copies(images, copies=2, seed=1)
    first = split["validation"][0]
    name, _, copy = first.partition("+copy")
    np.testing.assert_array_equal(
        parts["validation"][0], pool[int(copy or 0) * 10 + names.index(name)]
    )
    np.testing.assert_array_equal(training_images(parts, split, 2, seed=1), parts["train"])
    apart = split_names(names, 0.2, seed=1, copies=2)
    assert not any("+copy" in n for n in apart["train"] + apart["validation"])
    parts = split_images(images, names, apart)
    assert len(training_images(parts, apart, 2, seed=1)) == 3 * len(apart["train"])


def test_linear_warmup_raises_the_rate_step_by_step_and_resumes_in_place(tmp_path):
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.optimizer.learning_rate.numpy()))

    model = tiny_vae(lr=1e-3)
    data = array_batches(IMAGES, 4, seed=0)  # 2 steps an epoch
    warmup = LinearWarmup(1e-3, 3)
    model.fit(data, steps_per_epoch=2, epochs=3, verbose=0, callbacks=[warmup, Record()])
    np.testing.assert_allclose(seen, [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3, 1e-3], rtol=1e-6)
    seen.clear()
    model.optimizer.learning_rate.assign(5e-4)  # as a plateau halving, or a resumed run
    model.fit(data, steps_per_epoch=2, epochs=3, initial_epoch=1, verbose=0,
              callbacks=[warmup, Record()])  # fmt: skip
    np.testing.assert_allclose(seen, [1e-3, 1e-3, 1e-3, 1e-3], rtol=1e-6)
