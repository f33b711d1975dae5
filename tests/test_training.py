"""The training harness: resume, history continuity, checkpoints, NaN guard, run folders."""

import argparse
import json

import keras
import numpy as np
import pandas as pd
import pytest

from preprocessing.files import InputError
from training.callbacks import NaNGuard, run_callbacks
from training.run_folder import start_run


def tiny_model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.01), loss="mse")
    return model


DATA = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
TARGET = DATA.sum(1, keepdims=True)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def fit(model, out, epochs, extra=()):
    stateful = [c for c in extra if not isinstance(c, Interrupt)]
    return model.fit(
        DATA,
        TARGET,
        validation_data=(DATA, TARGET),
        batch_size=16,
        shuffle=False,
        epochs=epochs,
        verbose=0,
        callbacks=run_callbacks(out, "val_loss", "min", stateful)
        + [c for c in extra if isinstance(c, Interrupt)],
    )


def test_interrupted_run_resumes_to_the_same_weights_and_history(tmp_path):
    straight = tiny_model()
    fit(straight, tmp_path / "a", 4)

    model = tiny_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, tmp_path / "b", 4, [Interrupt(2)])
    resumed = tiny_model()  # a new process would build the model from scratch
    history = fit(resumed, tmp_path / "b", 4)

    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    rows = pd.read_csv(tmp_path / "b" / "history.csv")
    assert rows["epoch"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(
        rows["loss"], pd.read_csv(tmp_path / "a" / "history.csv")["loss"], rtol=1e-5
    )
    assert "learning_rate" in rows
    for name in ("best.keras", "last.keras"):
        assert (tmp_path / "b" / "checkpoints" / name).stat().st_size > 0
    state = json.loads((tmp_path / "b" / "checkpoints" / "resume" / "state.json").read_text())
    assert state["epoch"] == 4
    assert not list((tmp_path / "b").rglob(".tmp-*"))  # no temporary files left


def test_best_checkpoint_holds_the_best_epoch(tmp_path):
    model = tiny_model()
    fit(model, tmp_path, 3)
    rows = pd.read_csv(tmp_path / "history.csv")
    best = keras.models.load_model(tmp_path / "checkpoints" / "best.keras")
    best_loss = best.evaluate(DATA, TARGET, verbose=0)
    assert np.isclose(best_loss, rows["val_loss"].min(), rtol=1e-4)


def test_plateau_counters_survive_a_resume(tmp_path):
    def plateau():  # never improves after the first epoch
        return keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.1, patience=2, min_delta=1e9)

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), tmp_path, 3, [plateau(), Interrupt(2)])  # 2 epochs done: wait 1
    resumed = tiny_model()
    fit(resumed, tmp_path, 3, [plateau()])
    # the restored counter reaches patience in epoch 3: 0.01 -> 0.001 (a fresh one would not)
    assert np.isclose(float(resumed.optimizer.learning_rate), 0.001)


def test_nan_guard_stops_and_names_the_loss(capsys):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    bad = np.array([[np.nan]], "float32")
    model.fit(bad, bad, epochs=3, verbose=0, callbacks=[NaNGuard()])
    assert "loss became nan at epoch 1, step 1" in capsys.readouterr().out


def args(out, **kw):
    return argparse.Namespace(out=out, seed=0, preset="homework", restart=False, **kw)


def test_run_folder_refuses_other_flags_and_restart_clears(tmp_path):
    start_run(args(tmp_path), identity=("seed", "preset"))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "history.csv").write_text("epoch\n1\n")
    start_run(args(tmp_path), identity=("seed", "preset"))  # same flags: resume
    other = args(tmp_path)
    other.preset = "paper"
    with pytest.raises(InputError, match="--preset homework .now paper.*--restart"):
        start_run(other, identity=("seed", "preset"))
    other.restart = True
    start_run(other, identity=("seed", "preset"))
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "history.csv").exists()
    assert json.loads((tmp_path / "config.json").read_text())["preset"] == "paper"


def early_stopping():  # improves in epoch 1 only, stops once patience 2 runs out
    return keras.callbacks.EarlyStopping(
        "val_loss", patience=2, min_delta=1e9, restore_best_weights=True
    )


def test_early_stopping_resumes_with_its_best_weights_and_stays_finished(tmp_path, capsys):
    straight = tiny_model()
    fit(straight, tmp_path / "a", 10, [early_stopping()])
    assert len(pd.read_csv(tmp_path / "a" / "history.csv")) == 3

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), tmp_path / "b", 10, [early_stopping(), Interrupt(2)])
    resumed = tiny_model()
    fit(resumed, tmp_path / "b", 10, [early_stopping()])
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)  # epoch 1's weights, restored

    again = fit(tiny_model(), tmp_path / "b", 10, [early_stopping()])
    assert again.history == {} and "finished (stopped early)" in capsys.readouterr().out


def test_tensorboard_callback_writes_into_the_run_folder(tmp_path):
    pytest.importorskip("tensorboard", reason="requirements.txt installs tensorboard")
    model = tiny_model()
    model.fit(
        DATA,
        TARGET,
        validation_data=(DATA, TARGET),
        epochs=2,
        verbose=0,
        callbacks=run_callbacks(tmp_path, "val_loss", "min", tensorboard=True),
    )
    for part in ("train", "validation"):
        assert list((tmp_path / "tensorboard" / part).glob("events.out.tfevents.*")), part
