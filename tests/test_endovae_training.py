"""EndoVAE training: the seeded split, LR halving on val_total_loss, resume after a crash."""

import keras
import numpy as np
import pandas as pd
import pytest

from evaluation.vae_quality import unused_latent
from models.endovae import PRESETS, EndoVAE, build_decoder, build_encoder
from preprocessing.augment import augment_with_copies
from preprocessing.files import InputError
from preprocessing.kvasir_split import split_images, split_names, training_images
from preprocessing.pipelines import array_batches, steps_per_epoch
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


@pytest.mark.backends
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


def test_short_runs_warm_up_for_at_most_a_third_of_their_steps():
    """The homework's full run keeps its 300 warm-up steps; a --quick run (150 items, batch
    16, 30 epochs: 300 steps) trains its last 200 steps at the full rate; --warmup-steps wins."""
    from apps.train_endovae import parser, settings

    homework = PRESETS["homework"]
    assert homework.warmup_for(29 * 1000) == 300
    quick = settings(parser().parse_args(["--data", "d", "--quick"]))
    assert (quick.batch_size, quick.epochs, quick.warmup_steps) == (16, 30, 300)
    assert quick.warmup_for(steps_per_epoch(150, quick.batch_size) * quick.epochs) == 100
    given = settings(parser().parse_args(["--data", "d", "--quick", "--warmup-steps", "0"]))
    assert given.warmup_steps == 0


def history(kl: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"epoch": range(1, len(kl) + 1), "kl_loss": kl})


def test_unused_latent_is_reported_only_when_the_kl_stays_near_zero():
    assert "latent is unused" in unused_latent(history([12.0, 0.05, 0.002, 0.09]))
    assert unused_latent(history([0.01, 0.01, 0.2])) is None  # leaving the plateau
    assert unused_latent(history([0.01, 0.01])) is None  # too short to tell
    assert unused_latent(history([0.01, 18.0, 19.5, 20.1])) is None


def test_the_default_recipe_uses_the_latent_on_small_frames():
    """The homework preset's --quick recipe at a small scale must not end on the mean image.

    64 frames of 16x16 whose one factor is their brightness (a latent dimension must carry
    it), batch 16, 60 epochs, Adam 1e-3 warmed up over the preset's rule (a third of the
    240 steps). beta = (16 / 96)^2: the KL weighs against a reconstruction term of 256
    pixels as it does against 9,216 at 96x96. Measured on seeds 0-9: the KL ends at 7-11
    nats and reconstructions at 3-6% of the mean image's squared error. A collapse (KL near
    0, the mean image) fails both checks, whatever the CPU's rounding."""
    rng = np.random.default_rng(0)
    light = rng.uniform(0.02, 0.98, (64, 1, 1, 1))
    frames = (light * np.array([1.0, 0.6, 0.5]) * np.ones((64, 16, 16, 3))).astype("float32")
    keras.utils.set_random_seed(0)
    encoder = build_encoder((16, 16, 3), filters=(8, 8, 16, 16, 32, 32), dense_units=128,
                            latent_dim=2)  # fmt: skip
    decoder = build_decoder(2, start_shape=(2, 2, 32), filters=(32, 32, 16, 16, 16, 16))
    model = EndoVAE(encoder, decoder, beta=(16 / 96) ** 2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    steps, epochs = steps_per_epoch(64, 16), 60
    warmup = LinearWarmup(1e-3, PRESETS["homework"].warmup_for(steps * epochs))
    fitted = model.fit(array_batches(frames, 16, seed=0), steps_per_epoch=steps, epochs=epochs,
                       verbose=0, callbacks=[warmup])  # fmt: skip
    assert unused_latent(pd.DataFrame(fitted.history)) is None
    assert min(fitted.history["kl_loss"][-3:]) > 2.0
    error = np.mean((model.predict(frames, verbose=0) - frames) ** 2)
    assert error < 0.25 * np.mean((frames.mean(axis=0) - frames) ** 2)


@pytest.mark.backends
def test_linear_warmup_sets_the_rate_each_step_trains_with():
    """SGD on a loss whose gradient is 1: each step moves the weight by its learning rate,
    so the weight after 3 warm-up steps is -(1/3 + 2/3 + 1) x 1e-3 on every backend (JAX
    trains on a copy of the state: the rate a callback sets must still reach it)."""
    inputs = keras.Input((1,))
    model = keras.Model(
        inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")(inputs)
    )
    model.compile(keras.optimizers.SGD(1e-3), loss=lambda y, p: keras.ops.mean(p))
    x = np.ones((3, 1), "float32")
    model.fit(x, x, batch_size=1, shuffle=False, verbose=0, callbacks=[LinearWarmup(1e-3, 3)])
    assert keras.ops.convert_to_numpy(model.weights[0]).item() == pytest.approx(-2e-3, rel=1e-5)
