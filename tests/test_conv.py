"""models.conv: the tap-by-tap gradients are the gradients XLA computes itself.

Inputs, kernels and output gradients are small integers (|v| <= 3), so every product is an
integer of size at most 9, and every sum here has fewer than 2,000 terms (the longest: a
kernel gradient over 4 images of 18 x 18 output pixels): every partial sum is an integer
below 2^24, exact in float32 in any order. The two computations must agree exactly, on any
CPU, and any misplaced tap changes the result.
"""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="needs requirements-jax.txt"
)

# (input height, width, channels, kernel h, w, out channels, strides, pads, lhs_dilation)
GEOMETRIES = [
    (12, 12, 8, 3, 3, 6, (1, 1), ((1, 2), (1, 2)), (2, 2)),  # EndoVAE's conv-transpose, "same"
    (7, 9, 5, 3, 3, 4, (1, 1), ((2, 2), (2, 2)), (2, 2)),  # "valid" conv-transpose, odd sizes
    (6, 6, 8, 3, 3, 6, (2, 2), ((0, 0), (0, 0)), (1, 1)),  # PixelDA's discriminator, padded
    (13, 10, 4, 4, 4, 3, (2, 2), ((1, 2), (1, 1)), (1, 1)),  # CycleGAN's 4x4, uneven "same"
    (5, 7, 4, 3, 2, 3, (1, 1), ((0, 2), (1, 0)), (3, 2)),  # uneven pads and dilations
    (8, 11, 3, 2, 3, 4, (3, 2), ((0, 2), (1, 0)), (1, 1)),  # uneven strides
]


def integers(rng, shape):
    return rng.integers(-3, 4, shape).astype(np.float32)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_tap_gradients_equal_xla_gradients(geometry):
    import jax
    from jax import lax

    from models.conv import _tap_conv

    h, w, c, kh, kw, o, strides, pads, dilation = geometry
    rng = np.random.default_rng(0)
    x, k = integers(rng, (4, h, w, c)), integers(rng, (kh, kw, c, o))

    def native(x, k):
        dims = ("NHWC", "HWIO", "NHWC")
        return lax.conv_general_dilated(
            x, k, strides, pads, lhs_dilation=dilation, dimension_numbers=dims
        )

    y, pullback = jax.vjp(native, x, k)
    g = integers(rng, y.shape)
    y_taps, pullback_taps = jax.vjp(lambda x, k: _tap_conv()(x, k, strides, pads, dilation), x, k)
    np.testing.assert_array_equal(y_taps, y)
    for mine, theirs in zip(pullback_taps(g), pullback(g), strict=True):
        assert np.abs(theirs).max() > 0
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.backends
@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("Conv2D", {"strides": 2, "padding": "same"}),
        ("Conv2D", {"strides": 2, "padding": "valid", "activation": "relu"}),
        ("Conv2DTranspose", {"strides": 2, "padding": "same", "activation": "relu"}),
        ("Conv2DTranspose", {"strides": 2, "padding": "valid"}),
        ("Conv2D", {"strides": 1, "padding": "same"}),  # Keras' own path on every backend
    ],
)
def test_layers_compute_what_keras_layers_compute(kind, kwargs):
    """The same outputs, input gradients and weight gradients as Keras' layer with the same
    weights, on every backend; on JAX on CPU through the tap-by-tap gradients."""
    from models import conv

    rng = np.random.default_rng(1)
    x = integers(rng, (4, 9, 9, 5))
    ours = getattr(conv, kind)(6, 3, **kwargs)
    keras_layer = getattr(keras.layers, kind)(6, 3, **kwargs)
    ours.build(x.shape), keras_layer.build(x.shape)
    weights = [integers(rng, v.shape) for v in keras_layer.weights]
    ours.set_weights(weights), keras_layer.set_weights(weights)
    g = integers(rng, keras_layer.compute_output_shape(x.shape))
    assert conv._fast(ours, x) == (
        keras.backend.backend() == "jax" and kwargs["strides"] > 1 and _jax_on_cpu()
    )
    mine, theirs = _gradients(ours, x, g), _gradients(keras_layer, x, g)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_saved_layers_load_as_keras_layers_do(tmp_path):
    from models.conv import Conv2D, Conv2DTranspose

    inputs = keras.Input((8, 8, 3))
    x = Conv2D(4, 3, strides=2, padding="same")(inputs)
    model = keras.Model(inputs, Conv2DTranspose(3, 3, strides=2, padding="same")(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(layer) for layer in loaded.layers[1:]] == [Conv2D, Conv2DTranspose]
    batch = np.random.default_rng(2).random((2, 8, 8, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0))


def _jax_on_cpu() -> bool:
    import jax

    return jax.default_backend() == "cpu"


def _gradients(layer, x, g) -> list[np.ndarray]:
    """[output, d sum(output * g) / d input, d / d each weight] on the running backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def f(x, weights):
            return layer.stateless_call(weights, [], x)[0]

        y, pullback = jax.vjp(f, x, [v.value for v in layer.trainable_variables])
        dx, dw = pullback(g)
        return [np.asarray(y), np.asarray(dx), *map(np.asarray, dw)]
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        y = layer(xt)
        grads = torch.autograd.grad(
            (y * torch.tensor(g)).sum(), [xt, *(v.value for v in layer.trainable_weights)]
        )
        return [y.detach().numpy(), *(t.numpy() for t in grads)]
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
        loss = tf.reduce_sum(y * g)
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    return [y.numpy(), *(t.numpy() for t in grads)]
