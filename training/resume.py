"""Crash-safe resume: weights, optimizer state, seeds and callback counters after every epoch.

Every file is written atomically, so a kill at any moment leaves the previous complete
version.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from preprocessing.files import InputError, atomic_path, read_json, remove, write_json
from training.run_folder import RESUME_STATE


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
        state = self.folder / RESUME_STATE
        return read_json(state) if state.exists() else {}

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
        if not finite(logs):
            self.diverged = True
            return  # never back up a diverged model
        weights = f"epoch-{epoch + 1:05d}.weights.h5"
        seeds = f"epoch-{epoch + 1:05d}.seeds.npz"  # dropout, noise: not in the weights file
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
                remove(old)

    def on_train_end(self, logs=None):
        state = self.state
        if self.model.stop_training and not self.diverged and state:
            self._write_state(**{**state, "finished": True})

    def _write_state(self, **state) -> None:
        state["callbacks"] = [
            {a: _plain(getattr(cb, a)) for a in self.STATE_ATTRS if hasattr(cb, a)}
            for cb in self.stateful
        ]
        write_json(self.folder / RESUME_STATE, state)


def finite(logs) -> bool:
    """Whether every logged value is finite."""
    return all(math.isfinite(float(v)) for v in (logs or {}).values())


def _optimizers(model: keras.Model) -> list[keras.optimizers.Optimizer]:
    found = [getattr(model, name, None) for name in ("optimizer", "d_optimizer", "g_optimizer")]
    return [o for o in found if isinstance(o, keras.optimizers.Optimizer)]


def _seed_states(model: keras.Model) -> list:
    """The states of every random-seed generator of `model` (dropout, noise, sampling)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _plain(value):
    return float(value) if isinstance(value, (np.floating, np.integer, float)) else value
