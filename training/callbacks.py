"""The callbacks every `fit` of the apps gets, and generic ones they add.

Every file is written atomically, so a kill at any moment leaves the previous complete
version: the best and last checkpoints, the history, the samples.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from preprocessing.files import atomic_path, write_csv, writing
from training.resume import ResumeState, finite
from training.run_folder import CHECKPOINTS, HISTORY, RESUME, TENSORBOARD
from training.saving import save_model


class BestCheckpoint(keras.callbacks.Callback):
    """Save `best.keras` when `monitor` improves and (with `save_last`) `last.keras` after
    every epoch."""

    def __init__(self, folder: str | Path, monitor: str, mode: str, save_last: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.monitor, self.mode, self.save_last = monitor, mode, save_last
        self.best = None

    def on_train_begin(self, logs=None):
        history = self.folder.parent / HISTORY
        if self.best is None and history.exists() and (self.folder / "best.keras").exists():
            values = pd.read_csv(history).get(self.monitor)
            if values is not None and len(values):
                self.best = float(values.min() if self.mode == "min" else values.max())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not finite(logs):
            return
        current = logs.get(self.monitor)
        if current is not None and (
            self.best is None
            or (current < self.best if self.mode == "min" else current > self.best)
        ):
            self.best = float(current)
            save_model(self.model, self.folder / "best.keras")
        if self.save_last:
            save_model(self.model, self.folder / "last.keras")


class HistoryCSV(keras.callbacks.Callback):
    """Write `history.csv` (one row per epoch, with the learning rate), rewritten atomically.

    On resume, rows from epochs that are being redone are replaced, so the history stays
    continuous: no duplicated and no lost epochs.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        rows = pd.read_csv(self.path) if self.path.exists() else pd.DataFrame()
        if len(rows):
            rows = rows[rows["epoch"] < epoch + 1]
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in row:
            row["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        write_csv(self.path, pd.concat([rows, pd.DataFrame([row])], ignore_index=True))


class NaNGuard(keras.callbacks.Callback):
    """Stop training when any logged loss becomes NaN or infinite, saying where and which."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            name, value = next(iter(bad.items()))
            print(
                f"\nStopped: {name} became {value} at epoch {self.epoch + 1}, step {batch + 1}; "
                "the checkpoints keep the last good epoch."
            )
            self.model.stop_training = True


class LinearWarmup(keras.callbacks.Callback):
    """Raise the learning rate linearly from `target / steps` to `target` over the first
    `steps` training steps (the step count comes from the epoch, so a resumed run continues
    where it was); later steps keep whatever LR the other callbacks set."""

    def __init__(self, target: float, steps: int):
        super().__init__()
        self.target, self.steps = float(target), int(steps)

    def on_epoch_begin(self, epoch, logs=None):
        self.first_step = epoch * self.params["steps"]

    def on_train_batch_begin(self, batch, logs=None):
        step = self.first_step + batch
        if step < self.steps:
            self.model.optimizer.learning_rate.assign(self.target * (step + 1) / self.steps)


class StepRate(keras.callbacks.Callback):
    """Log `steps_per_second` of each epoch's training (the first one includes tracing)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps, self.end = batch + 1, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["steps_per_second"] = self.steps / max(self.end - self.start, 1e-9)


class EpochMetrics(keras.callbacks.Callback):
    """Add `name: measure(model)` to each epoch's logs, in order (e.g. accuracies on fixed
    labelled sets that training never sees)."""

    def __init__(self, measures: dict[str, Callable[[keras.Model], float]]):
        super().__init__()
        self.measures = measures

    def on_epoch_end(self, epoch, logs=None):
        for name, measure in self.measures.items():
            logs[name] = measure(self.model)


def sample_epochs(epochs: int, count: int) -> set[int]:
    """Up to `count` epochs spread from the first to the last."""
    return {int(e) for e in np.round(np.linspace(1, epochs, min(count, epochs)))}


class EpochSamples(keras.callbacks.Callback):
    """At the end of the chosen `epochs` (counted from 1), add `draw(model)` (a dict of
    arrays) to the npz at `path`, which also holds the `fixed` arrays and `epochs`: each key
    of `draw` gets one entry per chosen epoch. Epochs that a resumed run redoes replace
    their entries, as in history.csv."""

    def __init__(
        self,
        path: str | Path,
        epochs: set[int],
        fixed: dict[str, np.ndarray],
        draw: Callable[[keras.Model], dict[str, np.ndarray]],
    ):
        super().__init__()
        self.path, self.epochs, self.fixed, self.draw = Path(path), epochs, fixed, draw

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in self.epochs:
            return
        new = self.draw(self.model)
        keep = {key: np.zeros((0, *v.shape), v.dtype) for key, v in new.items()}
        keep["epochs"] = np.zeros(0, int)
        if self.path.exists():
            with np.load(self.path) as saved:
                earlier = saved["epochs"] < epoch + 1
                keep = {key: saved[key][earlier] for key in keep}
        with atomic_path(self.path) as tmp:
            np.savez_compressed(
                tmp,
                **self.fixed,
                epochs=np.append(keep["epochs"], epoch + 1),
                **{key: np.concatenate([keep[key], value[None]]) for key, value in new.items()},
            )


def run_callbacks(
    out: Path,
    monitor: str,
    mode: str,
    extra: list[keras.callbacks.Callback] = (),
    save_last: bool = True,
    tensorboard: bool = False,
) -> list[keras.callbacks.Callback]:
    """The callbacks of every training app, in order: `extra` (LR, early stopping) first,
    then NaN guard, history, (with `tensorboard`) Keras' `TensorBoard` writing to
    `out/tensorboard/`, checkpoints and the resume state (which also restores `extra`).
    `save_last=False` skips `last.keras` (the resume state holds the last weights anyway)."""
    extra = list(extra)
    board = (
        [keras.callbacks.TensorBoard(str(out / TENSORBOARD))] if tensorboard and writing() else []
    )
    return [
        *extra,
        NaNGuard(),
        HistoryCSV(out / HISTORY),
        *board,
        BestCheckpoint(out / CHECKPOINTS, monitor, mode, save_last),
        ResumeState(out / RESUME, stateful=extra),
    ]


def plateau_callbacks(
    out: Path,
    monitor: str,
    lr_patience: int = 10,
    stop_patience: int = 50,
    min_lr: float = 1e-6,
    tensorboard: bool = False,
) -> list[keras.callbacks.Callback]:
    """LR halving and early stopping on `monitor` (a loss), plus the harness's callbacks."""
    extra = [
        keras.callbacks.ReduceLROnPlateau(
            monitor, factor=0.5, patience=lr_patience, min_lr=min_lr, mode="min", verbose=1
        ),
        keras.callbacks.EarlyStopping(
            monitor, patience=stop_patience, mode="min", restore_best_weights=True, verbose=1
        ),
    ]
    # no last.keras: 133 MB an epoch on Drive, and the resume state holds those weights
    return run_callbacks(out, monitor, "min", extra, save_last=False, tensorboard=tensorboard)
