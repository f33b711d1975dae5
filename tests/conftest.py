"""Shared test set-up: quiet TensorFlow, fixed seeds. Tests make their own tiny data."""

import apps  # noqa: F401  (TensorFlow's environment, as the apps set it, before keras)

# isort: split
import keras
import pytest


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
