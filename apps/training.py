"""The training harness of the apps: seeding and the callbacks every `fit` gets.

Every file is written atomically, so a kill at any moment leaves the previous complete
version: the resume state, the best and last checkpoints, and the history.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from preprocessing.files import InputError, atomic_path, read_json, write_csv, write_json

RESUME = Path("checkpoints") / "resume"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)


def device_strategy(name: str = "auto", mixed_precision: bool = False) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy of `--strategy` (build and compile models in its scope).

    auto: `MirroredStrategy` over all GPUs when there are several, else the default (one
    device). `--mixed-precision` sets the `mixed_float16` policy first.
    """
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as err:
            raise InputError(
                f"--strategy tpu: no TPU found ({err}); on Colab choose a TPU runtime"
            ) from err
        return tf.distribute.TPUStrategy(resolver)
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class ResumeState(keras.callbacks.Callback):
    """Back up weights and optimizer state after every epoch; restore them at `fit` start.

    Like `keras.callbacks.BackupAndRestore`, but crash-safe: each epoch's weights go to a
    new file and `state.json` names the newest complete one, so a kill mid-write resumes
    from the previous epoch. Callbacks in `stateful` (LR plateau, early stopping) get their
    counters back too, and early stopping its best weights, so a resumed run takes the same
    decisions as an uninterrupted one. A run that stopped early stays finished when rerun.
    """

    STATE_ATTRS = ("wait", "best", "cooldown_counter", "best_epoch", "stopped_epoch")

    def __init__(self, folder: str | Path, stateful: list[keras.callbacks.Callback] = ()):
        super().__init__()
        self.folder = Path(folder)
        self.stateful = list(stateful)
        self.diverged = False

    @property
    def state(self) -> dict:
        """The saved state (`{}` when there is none)."""
        state = self.folder / "state.json"
        return read_json(state) if state.exists() else {}

    @property
    def epoch(self) -> int:
        """Epochs completed by the saved state (0 when there is none)."""
        return self.state.get("epoch", 0)

    def on_train_begin(self, logs=None):
        state = self.state
        if not state:
            return
        for optimizer in _optimizers(self.model):
            if not optimizer.built:
                optimizer.build(self.model.trainable_variables)
        weights = self.folder / state["weights"]
        try:
            self.model.load_weights(weights)
        except (OSError, ValueError) as err:
            raise InputError(
                f"{weights}: unreadable resume state ({type(err).__name__}): "
                "pass --restart to start over"
            ) from err
        if "seeds" in state:  # absent from states written before seeds were saved
            with np.load(self.folder / state["seeds"]) as seeds:
                for i, variable in enumerate(_seed_states(self.model)):
                    variable.assign(seeds[f"arr_{i}"])
        for index, (callback, attrs) in enumerate(
            zip(self.stateful, state["callbacks"], strict=True)
        ):
            for name, value in attrs.items():
                setattr(callback, name, value)
            best = self.folder / f"best-weights-{index}.npz"
            if best.exists():
                with np.load(best) as saved:
                    callback.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        self.model._initial_epoch = (
            self.params["epochs"] if state.get("finished") else state["epoch"]
        )
        done = (
            "finished (stopped early)" if state.get("finished") else f"after epoch {state['epoch']}"
        )
        print(f"Resuming from {self.folder} {done}.")

    def on_epoch_end(self, epoch, logs=None):
        if not _finite(logs):
            self.diverged = True
            return  # never back up a diverged model
        weights = f"epoch-{epoch + 1:05d}.weights.h5"
        seeds = f"epoch-{epoch + 1:05d}.seeds.npz"  # dropout, noise: not in the weights file
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / weights) as tmp:
            self.model.save_weights(tmp)
        with atomic_path(self.folder / seeds) as tmp:
            np.savez(tmp, *(v.numpy() for v in _seed_states(self.model)))
        for index, callback in enumerate(self.stateful):
            if getattr(callback, "best_weights", None) is not None and callback.best_epoch == epoch:
                with atomic_path(self.folder / f"best-weights-{index}.npz") as tmp:
                    np.savez(tmp, *callback.best_weights)
        self._write_state(epoch=epoch + 1, weights=weights, seeds=seeds)
        for old in self.folder.glob("epoch-*"):
            if old.name not in (weights, seeds):
                old.unlink()

    def on_train_end(self, logs=None):
        state = self.state
        if self.model.stop_training and not self.diverged and state:
            self._write_state(**{**state, "finished": True})

    def _write_state(self, **state) -> None:
        state["callbacks"] = [
            {a: _plain(getattr(cb, a)) for a in self.STATE_ATTRS if hasattr(cb, a)}
            for cb in self.stateful
        ]
        write_json(self.folder / "state.json", state)


class BestCheckpoint(keras.callbacks.Callback):
    """Save `best.keras` when `monitor` improves and (with `save_last`) `last.keras` after
    every epoch."""

    def __init__(self, folder: str | Path, monitor: str, mode: str, save_last: bool = True):
        super().__init__()
        self.folder = Path(folder)
        self.monitor, self.mode, self.save_last = monitor, mode, save_last
        self.best = None

    def on_train_begin(self, logs=None):
        history = self.folder.parent / "history.csv"
        if self.best is None and history.exists() and (self.folder / "best.keras").exists():
            values = pd.read_csv(history).get(self.monitor)
            if values is not None and len(values):
                self.best = float(values.min() if self.mode == "min" else values.max())

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not _finite(logs):
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


def save_model(model: keras.Model, path: str | Path) -> None:
    """`model.save` through a temporary file, so a kill never leaves a truncated `.keras`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    model.save(tmp)
    tmp.replace(path)


def load_model(path: str | Path, kind: type[keras.Model] = keras.Model) -> keras.Model:
    """`keras.models.load_model` in safe mode (no code stored in the file runs).

    A missing, truncated or unsafe file, or a model of another class than `kind`, is an
    `InputError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found: train first, or pass the right run folder")
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InputError(
            f"{path}: cannot load it ({str(err).splitlines()[0]}); "
            "pass the right run folder, or retrain with --restart"
        ) from err
    if not isinstance(model, kind):
        raise InputError(
            f"{path}: holds a {type(model).__name__} model where {kind.__name__} was expected: "
            "pass a run folder of the right app"
        )
    return model


def completed_epochs(out: Path) -> int:
    """Epochs a run folder's resume state has completed (0 for a new run)."""
    return ResumeState(out / RESUME).epoch


def plateau_callbacks(
    out: Path,
    monitor: str,
    lr_patience: int = 10,
    stop_patience: int = 50,
    min_lr: float = 1e-6,
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
    return run_callbacks(out, monitor, "min", extra=extra, save_last=False)


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


def run_callbacks(
    out: Path,
    monitor: str,
    mode: str,
    extra: list[keras.callbacks.Callback] = (),
    save_last: bool = True,
) -> list[keras.callbacks.Callback]:
    """The callbacks of every training app, in order: `extra` (LR, early stopping) first,
    then NaN guard, history, checkpoints and the resume state (which also restores `extra`).
    `save_last=False` skips `last.keras` (the resume state holds the last weights anyway)."""
    extra = list(extra)
    return [
        *extra,
        NaNGuard(),
        HistoryCSV(out / "history.csv"),
        BestCheckpoint(out / "checkpoints", monitor, mode, save_last),
        ResumeState(out / RESUME, stateful=extra),
    ]


def _optimizers(model: keras.Model) -> list[keras.optimizers.Optimizer]:
    found = [getattr(model, name, None) for name in ("optimizer", "d_optimizer", "g_optimizer")]
    return [o for o in found if isinstance(o, keras.optimizers.Optimizer)]


def _seed_states(model: keras.Model) -> list:
    """The states of every random-seed generator of `model` (dropout, noise, sampling)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _finite(logs) -> bool:
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


def _plain(value):
    return float(value) if isinstance(value, (np.floating, np.integer, float)) else value
