"""Strided convolutions whose gradients avoid XLA:CPU's slow paths (JAX on CPU; elsewhere,
and for anything else, Keras' own layers).

XLA:CPU computes a stride-2 convolution's input gradient, and a transposed convolution's
kernel gradient, with a generic loop: 30-50x their forward pass on EndoVAE's decoder and
PixelDA's discriminator (docs/devices-and-speed.md#jax-on-cpu-the-gradients-xla-computes-slowly).
These layers compute that gradient instead as one matrix product per kernel tap: the same
sums in another order, so the same numbers to float32 rounding. Same variables, config,
forward pass and saved files as `keras.layers.Conv2D` / `Conv2DTranspose`.
"""

from __future__ import annotations

import functools

import keras
from keras import layers, ops

from models.backend import BACKEND


@functools.cache
def _on_xla_cpu() -> bool:
    if BACKEND != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


@functools.cache
def _tap_conv():
    """`conv(x, k, strides, pads, lhs_dilation)`: `lax.conv_general_dilated` on NHWC inputs
    and HWIO kernels, either strided (`lhs_dilation` 1: its input gradient computed tap by
    tap) or a transposed convolution (`strides` 1, the input dilated: its kernel gradient
    computed tap by tap). Tap (a, b) of output pixel p meets input pixel u where
    s p + a = pad_low + d u (s the stride, d the dilation): one matmul per tap."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def native(x, k, strides, pads, lhs_dilation):
        return lax.conv_general_dilated(
            x, k, strides, pads, lhs_dilation=lhs_dilation,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )  # fmt: skip

    def pad(t, low, high):
        return lax.pad(
            t, jnp.zeros((), t.dtype), ((0, 0, 0), *zip(low, high, (0, 0), strict=True), (0, 0, 0))
        )

    def every(t, start, step, count):
        """t[:, start + step * i] for i < count, in both spatial axes."""
        end = [s + d * (n - 1) + 1 for s, d, n in zip(start, step, count, strict=True)]
        return lax.slice(t, (0, *start, 0), (t.shape[0], *end, t.shape[3]), (1, *step, 1))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
    def conv(x, k, strides, pads, lhs_dilation):
        return native(x, k, strides, pads, lhs_dilation)

    def forward(x, k, strides, pads, lhs_dilation):
        return native(x, k, strides, pads, lhs_dilation), (x, k)

    def backward(strides, pads, lhs_dilation, saved, g):
        x, k = saved
        low = [p[0] for p in pads]
        taps = [(a, b) for a in range(k.shape[0]) for b in range(k.shape[1])]
        if strides == (1, 1):
            dx = jax.vjp(lambda x: native(x, k, strides, pads, lhs_dilation), x)[1](g)[0]
        else:  # tap (a, b) of g[p] meets xp[s p + a], xp the padded input
            xp, unpad = jax.vjp(lambda x: pad(x, low, [p[1] for p in pads]), x)
            dxp = sum(
                jax.vjp(lambda xp, a=a, b=b: every(xp, (a, b), strides, g.shape[1:3]), xp)[1](
                    jnp.einsum("nhwo,io->nhwi", g, k[a, b])
                )[0]
                for a, b in taps
            )
            dx = unpad(dxp)[0]
        if lhs_dilation == (1, 1):
            dk = jax.vjp(lambda k: native(x, k, strides, pads, lhs_dilation), k)[1](g)[0]
        else:  # tap (a, b) of x[u] meets g[d u + pad_low - a], g padded to reach every one
            n_in, n_out = x.shape[1:3], g.shape[1:3]
            g_low = [max(0, size - 1 - p) for size, p in zip(k.shape[:2], low, strict=True)]
            g_high = [
                max(0, p + d * (n - 1) + 1 - m)
                for p, d, n, m in zip(low, lhs_dilation, n_in, n_out, strict=True)
            ]
            gp = pad(g, g_low, g_high)
            dk = jnp.stack([
                jnp.einsum(
                    "nhwi,nhwo->io",
                    x,
                    every(gp, (low[0] - a + g_low[0], low[1] - b + g_low[1]), lhs_dilation, n_in),
                )
                for a, b in taps
            ]).reshape(k.shape)  # fmt: skip
        return dx, dk

    conv.defvjp(forward, backward)
    return conv


def _fast(layer: layers.Layer, inputs) -> bool:
    """Whether `layer` takes the tap-by-tap gradients: JAX on CPU, 4-D channels-last
    input, stride > 1, no kernel dilation, one group."""
    return (
        _on_xla_cpu()
        and layer.data_format == "channels_last"
        and len(inputs.shape) == 4
        and max(layer.strides) > 1
        and tuple(layer.dilation_rate) == (1, 1)
        and getattr(layer, "groups", 1) == 1
    )


@keras.saving.register_keras_serializable(package="models")
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D`; strided, on JAX on CPU, its input gradient taken tap by tap."""

    def convolution_op(self, inputs, kernel):
        if not _fast(self, inputs):
            return super().convolution_op(inputs, kernel)
        from jax import lax

        pads = lax.padtype_to_pads(inputs.shape[1:3], kernel.shape[:2], self.strides, self.padding)
        kernel = ops.convert_to_tensor(kernel)
        x = ops.cast(inputs, kernel.dtype)
        return _tap_conv()(x, kernel, tuple(self.strides), tuple(map(tuple, pads)), (1, 1))


@keras.saving.register_keras_serializable(package="models")
class Conv2DTranspose(layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose`; on JAX on CPU, its kernel gradient taken tap by tap."""

    def call(self, inputs):
        if not _fast(self, inputs):
            return super().call(inputs)
        from keras.src.backend.common.backend_utils import (
            compute_conv_transpose_padding_args_for_jax,
        )

        pads = compute_conv_transpose_padding_args_for_jax(
            inputs.shape, self.kernel.shape, self.strides, self.padding, self.output_padding, 1
        )
        # as lax.conv_transpose(transpose_kernel=True): (h, w, out, in) flipped in space -> HWIO
        kernel = ops.swapaxes(ops.flip(self.kernel, axis=(0, 1)), 2, 3)
        x = ops.cast(inputs, kernel.dtype)
        outputs = _tap_conv()(x, kernel, (1, 1), tuple(map(tuple, pads)), tuple(self.strides))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs if self.activation is None else self.activation(outputs)
