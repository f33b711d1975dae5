"""Saving a model atomically and loading one safely: the one way models are read."""

from __future__ import annotations

from pathlib import Path

import keras

from preprocessing.files import InputError, atomic_path


def save_model(model: keras.Model, path: str | Path) -> None:
    """`model.save` through a temporary file, so a kill never leaves a truncated `.keras`."""
    with atomic_path(path) as tmp:
        model.save(tmp)


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
