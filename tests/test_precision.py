"""--jit (XLA) and --mixed-precision change nothing in training beyond float tolerance."""

import keras
import numpy as np
import pytest

from tests.endovae_helpers import random_images, tiny_vae
from tests.test_pixelda import images, small_pixelda, unit

STEPS = 3


def pixelda_steps(steps=STEPS, **compile_args):
    keras.utils.set_random_seed(0)
    # D's noise off: float16 and float32 random draws differ, whatever the seed
    model = small_pixelda(noise_std=0.0, dropout=0.0, **compile_args)
    rng = np.random.default_rng(1)
    batch = ((unit(images(8, 2)), rng.integers(0, 10, 8)), unit(images(8, 3)))
    logs = [model.train_step(batch) for _ in range(steps)]
    return model, {k: float(v) for k, v in logs[-1].items()}


def endovae_steps(steps=STEPS, **compile_args):
    model = tiny_vae()
    model.compile(keras.optimizers.Adam(1e-3), **compile_args)
    batch = random_images(8)
    logs = [model.train_step(batch) for _ in range(steps)]
    return model, {k: float(v) for k, v in logs[-1].items()}


@pytest.mark.parametrize("steps", [pixelda_steps, endovae_steps], ids=["pixelda", "endovae"])
def test_xla_gives_the_same_training(steps):
    plain, plain_logs = steps()
    xla, xla_logs = steps(jit_compile=True)
    assert xla_logs == pytest.approx(plain_logs, rel=1e-4, abs=1e-5)
    for a, b in zip(plain.trainable_weights, xla.trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("steps", [pixelda_steps, endovae_steps], ids=["pixelda", "endovae"])
def test_mixed_precision_gives_the_same_training_within_float16_tolerance(steps):
    # One step: Adam turns float16 rounding in near-zero gradients into whole steps later.
    _, plain_logs = steps(1)
    with_policy = keras.mixed_precision.set_global_policy
    try:
        with_policy("mixed_float16")
        model, mixed_logs = steps(1)
    finally:
        with_policy("float32")
    assert model.trainable_weights[0].dtype == "float32"  # float32 weights, float16 compute
    assert all(np.isfinite(v) for v in mixed_logs.values())
    losses = {k: v for k, v in mixed_logs.items() if "accuracy" not in k}  # thresholded
    assert losses == pytest.approx({k: plain_logs[k] for k in losses}, rel=1e-2, abs=1e-3)
