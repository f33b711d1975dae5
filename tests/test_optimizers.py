"""TorchAdam: one and two steps against PyTorch's Adam formulas computed by hand."""

import keras
import numpy as np
import pytest

from models.optimizers import TorchAdam, paper_optimizer

# Each step is a handful of float32 operations per element (about 12 roundings of relative
# size <= 2**-24 each), so the optimizer and the float64 hand computation agree to about
# 12 * 6e-8 ~ 7e-7 of the step (rtol 2e-6 leaves a factor of 3), plus the rounding of the
# stored float32 weight itself, 2**-24 |w| per step.
RTOL = 2e-6


def assert_close(actual, expected, start, steps=1):
    bound = RTOL * np.abs(expected - start) + steps * 2.0**-24 * np.abs(expected)
    assert np.all(np.abs(actual - expected) <= bound), np.max(np.abs(actual - expected) / bound)


def torch_adam(w, grads, lr, beta_1, beta_2, eps, l2):
    """PyTorch's Adam in float64: g += l2 * w; m, v; w -= lr / bc1 * m / (sqrt(v / bc2) + eps)."""
    w, m, v = w.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, 1):
        g = g + l2 * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        w = w - lr / (1 - beta_1**t) * m / (np.sqrt(v / (1 - beta_2**t)) + eps)
    return w


@pytest.mark.parametrize("l2", [0.0, 1e-5, 0.3])
def test_two_steps_match_pytorch_formula(l2):
    rng = np.random.default_rng(0)
    w0 = rng.normal(0, 0.02, 64).astype(np.float32)
    # gradients from tiny (where epsilon's placement matters) to large
    grads = [(rng.normal(0, 1, 64) * np.logspace(-9, 1, 64)).astype(np.float32) for _ in "ab"]
    variable = keras.Variable(w0)
    optimizer = TorchAdam(l2, learning_rate=1e-3, beta_1=0.5)
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    expected = torch_adam(w0, grads, 1e-3, 0.5, 0.999, 1e-8, l2)
    assert_close(variable.numpy(), expected, w0, steps=2)


def test_weight_decay_is_coupled_not_keras_decoupled():
    """With a zero gradient, PyTorch's L2 term alone moves w by about lr (Adam normalizes
    l2 * w to a unit step); Keras' decoupled decay would move it by lr * wd * w only."""
    w0 = np.full(4, 0.5, np.float32)
    coupled, decoupled = keras.Variable(w0), keras.Variable(w0)
    zero = [keras.ops.zeros(4)]
    paper_optimizer().apply(zero, [coupled])
    keras.optimizers.Adam(1e-3, beta_1=0.5, weight_decay=1e-5).apply(zero, [decoupled])
    expected = torch_adam(w0, [np.zeros(4)], 1e-3, 0.5, 0.999, 1e-8, 1e-5)
    assert_close(coupled.numpy(), expected, w0)
    assert np.allclose(w0 - coupled.numpy(), 1e-3, rtol=1e-2)
    assert np.allclose(w0 - decoupled.numpy(), 1e-3 * 1e-5 * 0.5, rtol=1e-2)


def test_config_round_trip():
    optimizer = paper_optimizer(clipnorm=5.0)
    again = TorchAdam.from_config(optimizer.get_config())
    assert (again.l2, again.epsilon, again.clipnorm, again.beta_1) == (1e-5, 1e-8, 5.0, 0.5)
