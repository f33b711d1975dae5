"""FusedBatchNorm computes what Keras' BatchNormalization computes, to float32 rounding.

The inputs sit on a grid of eighths, |x| <= 4, each channel's half batches mirrored around
its mean (a multiple of 1/8), so every sum of x, of x^2 and of (x - mean)^2 over the 512
values of a channel is exact in float32 in any order: the batch mean and variance are exact
in every implementation (fused, Keras' two-pass `tf.nn.moments`, the synchronized
E[x^2] - E[x]^2), whatever CPU kernel runs them. What is left differs only by the last
roundings, from which the tolerances follow (u = 2^-24, float32's unit roundoff; s =
gamma / sqrt(var + eps)):
- output: s within 3u (rsqrt within 2 ulp in Eigen and oneDNN, one product), then y as
  (x - mean) s + beta or as x s + (beta - mean s) (kernels differ): each product and sum
  rounded once: |dy| <= 6u (|x s| + |mean s| + |y - beta|) + 2u |beta|;
- moving variance: the kernel returns var * n / (n - 1) (1 rounding), undone with (n - 1) / n
  (n a power of 2: exact factor, 1 rounding), then the same momentum update: <= 4u relative;
- gradients: d_beta = sum(dy) is exact on the grid; d_gamma = sum(dy * x_hat) carries a
  summation error of at most n u sum|dy * x_hat| (any order) plus 4u of it for x_hat's own
  rounding; d_x = s (dy - mean(dy) - x_hat mean(dy * x_hat)) carries that error through its
  last term, and 4u of each term's size for the elementwise roundings. Loose as worst cases
  are, they still fail a wrong factor or a missing term.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.batch_norm import FusedBatchNorm

U = 2.0**-24
SHAPE = (8, 8, 8, 3)  # n = 512 values per channel


MEANS = np.array([0.5, -1.0, 2.0], np.float32)  # channel means away from 0
GAMMA, BETA = np.array([1.5, 0.5, -2.0]), np.array([0.25, -0.5, 1.0])


def grid_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    half = rng.integers(-16, 17, (SHAPE[0] // 2, *SHAPE[1:])).astype(np.float32) / 8
    x = np.concatenate([half, -half]) + MEANS  # mean exactly MEANS
    dy = rng.integers(-8, 9, SHAPE).astype(np.float32) / 8
    return x, dy


def run(layer, x, dy):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * dy)
    dx, dgamma, dbeta = tape.gradient(loss, [x, layer.gamma, layer.beta])
    values = (y, dx, dgamma, dbeta, layer.moving_mean, layer.moving_variance)
    return [np.asarray(t, np.float64) for t in values]


@pytest.mark.parametrize("synchronized", [False, True])
def test_fused_batch_norm_matches_keras_to_float32_rounding(synchronized):
    x, dy = grid_batch()
    n = np.prod(SHAPE[:-1])
    layers = []
    for cls in (keras.layers.BatchNormalization, FusedBatchNorm):
        layer = cls(momentum=0.9, epsilon=1e-5, synchronized=synchronized)
        layer.build(SHAPE)
        layer.gamma.assign(GAMMA)
        layer.beta.assign(BETA)
        layers.append(layer)
    (y0, dx0, dg0, db0, mm0, mv0), (y1, dx1, dg1, db1, mm1, mv1) = (
        run(layer, x, dy) for layer in layers
    )
    s = GAMMA / np.sqrt(np.var(x.astype(np.float64), axis=(0, 1, 2)) + 1e-5)
    x_hat = (y0 - BETA) / GAMMA
    y_bound = 6 * U * (np.abs(x * s) + np.abs(MEANS * s) + np.abs(y0 - BETA)) + 2 * U * np.abs(BETA)
    assert np.all(np.abs(y1 - y0) <= y_bound)
    np.testing.assert_array_equal(mm1, mm0)  # exact mean, same update arithmetic
    np.testing.assert_array_less(np.abs(mv1 - mv0), 4 * U * mv0)
    np.testing.assert_array_equal(db1, db0)
    sum_bound = (n + 4) * U * np.sum(np.abs(dy * x_hat), axis=(0, 1, 2))
    np.testing.assert_array_less(np.abs(dg1 - dg0), sum_bound)
    terms = np.abs(dy) + np.abs(dy.mean(axis=(0, 1, 2))) + np.abs(x_hat * dg0 / n)
    dx_bound = np.abs(s) * (np.abs(x_hat) * sum_bound / n + 4 * U * terms)
    assert np.all(np.abs(dx1 - dx0) <= dx_bound)


def test_fused_batch_norm_infers_as_keras():
    """Inference reads the moving statistics through Keras' own path."""
    x, _ = grid_batch(1)
    keras_bn, fused = keras.layers.BatchNormalization(), FusedBatchNorm()
    for layer in (keras_bn, fused):
        layer.build(SHAPE)
        layer.moving_mean.assign([0.5, -1.0, 2.0])
        layer.moving_variance.assign([0.25, 1.0, 4.0])
    np.testing.assert_array_equal(fused(x, training=False), keras_bn(x, training=False))
