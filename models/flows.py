"""Masked autoregressive flow (MAF): MADE transforms stacked into an exact density model.

Each MADE maps x to a shift t(x) and a log-scale s(x), where output i depends on the inputs
before i (in the transform's order) only. The flow's forward direction (data -> noise) is
z = (x - t(x)) * exp(s(x)), so log p(x) = log N(z) + sum of the log-scales, in one pass;
sampling inverts it one dimension at a time (D passes per transform).

Inputs in two spaces: `pixels` ([0, 1] images on the 8-bit grid, flattened; dequantized and
mapped through a logit, with both Jacobians counted, so the NLL is that of the discrete
pixels) and `latent` (EndoVAE latent means, standardized with fixed training statistics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from models.backend import inference, minimize
from models.base import OneOptimizerModel
from models.distributed import global_mean

LOG_SCALE_LIMIT = 5.0  # log-scales are softly clamped to [-5, 5]
LOGIT_ALPHA = 0.05  # pixels are squeezed into [alpha, 1 - alpha] before the logit
LEVELS = 256  # 8-bit pixels
SPACES = ("pixels", "latent")


def made_degrees(dims: int, hidden: Sequence[int], reverse: bool = False) -> list[np.ndarray]:
    """Degrees of the inputs (their place in the order, 1..D) and of each hidden layer's units
    (cycling through 1..D-1)."""
    inputs = np.arange(dims, 0, -1) if reverse else np.arange(1, dims + 1)
    return [inputs] + [np.arange(units) % max(1, dims - 1) + 1 for units in hidden]


def made_masks(degrees: list[np.ndarray]) -> list[np.ndarray]:
    """The (inputs, units) mask of each layer: a unit sees a unit of lower or equal degree; an
    output (shift and log-scale of dimension i, i.e. degree(i)) sees strictly lower degrees."""
    masks = [
        d_out[None, :] >= d_in[:, None]
        for d_in, d_out in zip(degrees[:-1], degrees[1:], strict=True)
    ]
    last = degrees[-1][:, None] < degrees[0][None, :]
    return [m.astype("float32") for m in [*masks, np.concatenate([last, last], axis=1)]]


@keras.saving.register_keras_serializable(package="flows")
class MaskedDense(layers.Layer):
    """A dense layer whose kernel is multiplied by a fixed binary mask (saved with the weights;
    a layer rebuilt from its config alone starts with an all-ones mask)."""

    def __init__(
        self,
        units: int,
        mask: np.ndarray | None = None,
        activation=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.initial_mask = mask
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        self.kernel = self.add_weight(shape, initializer=self.kernel_initializer, name="kernel")
        self.bias = self.add_weight((self.units,), initializer="zeros", name="bias")
        initial = self.initial_mask
        self.mask = self.add_weight(
            shape,
            initializer="ones" if initial is None else lambda shape, dtype=None: initial,
            trainable=False,
            name="mask",
        )

    def call(self, inputs):
        return self.activation(ops.matmul(inputs, self.kernel * self.mask) + self.bias)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="flows")
class MADE(layers.Layer):
    """Masked autoencoder for distribution estimation: (shift, log-scale) per dimension, output
    i depending on the inputs before i in the order (reversed when `reverse`). The last layer
    starts at zero, so a new MADE is the identity transform."""

    def __init__(self, hidden: Sequence[int] = (512, 512), reverse: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.hidden = tuple(int(h) for h in hidden)
        self.reverse = bool(reverse)

    def build(self, input_shape):
        dims = input_shape[-1]
        masks = made_masks(made_degrees(dims, self.hidden, self.reverse))
        units = [*self.hidden, 2 * dims]
        self.dense = [
            MaskedDense(
                n,
                mask,
                activation="relu" if i < len(self.hidden) else None,
                kernel_initializer="glorot_uniform" if i < len(self.hidden) else "zeros",
                name=f"masked_dense_{i}",
            )
            for i, (n, mask) in enumerate(zip(units, masks, strict=True))
        ]
        shape = tuple(input_shape)
        for layer in self.dense:
            layer.build(shape)
            shape = (*shape[:-1], layer.units)

    def call(self, inputs):
        h = inputs
        for layer in self.dense:
            h = layer(h)
        shift, raw = ops.split(h, 2, axis=-1)
        return shift, LOG_SCALE_LIMIT * ops.tanh(raw / LOG_SCALE_LIMIT)

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "reverse": self.reverse}


@keras.saving.register_keras_serializable(package="flows")
class MAF(OneOptimizerModel):
    """`transforms` MADEs, the order reversed between them, on a standard-normal base.

    `space="pixels"`: inputs in [0, 1] on the 8-bit grid (uniform dequantization in training,
    the bin centre otherwise); `log_prob` is then the log-probability of the discrete pixels.
    `space="latent"`: inputs standardized with `loc` and `scale` (fixed, from training data).
    `train_step` minimizes the mean negative log-likelihood; `nll` (nats per example) and
    `bits_per_dim` are tracked.
    """

    def __init__(
        self,
        dims: int,
        transforms: int = 5,
        hidden: Sequence[int] = (512, 512),
        space: str = "pixels",
        loc: Sequence[float] | None = None,
        scale: Sequence[float] | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, not {space!r}")
        self.dims, self.transforms, self.space, self.seed = int(dims), int(transforms), space, seed
        self.hidden = tuple(int(h) for h in hidden)
        self.loc = np.zeros(dims, "float32") if loc is None else np.asarray(loc, "float32")
        self.scale = np.ones(dims, "float32") if scale is None else np.asarray(scale, "float32")
        self.mades = [MADE(self.hidden, k % 2 == 1, name=f"made_{k}") for k in range(transforms)]
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.bpd_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.build((None, self.dims))
        self._inverse = inference(self._invert)

    def build(self, input_shape):
        for made in self.mades:
            made.build(input_shape)
        self.built = True

    @property
    def metrics(self):
        return [self.nll_tracker, self.bpd_tracker]

    def to_noise(self, w):
        """Through every transform (data -> noise): (z, sum of the log-scales) per example."""
        log_det = ops.zeros(ops.shape(w)[:1])
        for made in self.mades:
            shift, log_scale = made(w)
            w = (w - shift) * ops.exp(log_scale)
            log_det = log_det + ops.sum(log_scale, axis=-1)
        return w, log_det

    def inverse(self, z):
        """Noise -> flow space (before the input transform), one dimension per pass."""
        return self._inverse(ops.convert_to_tensor(z, "float32"))

    def _invert(self, z):
        for made in reversed(self.mades):

            def step(_, w, made=made, z=z):
                shift, log_scale = made(w)
                return z * ops.exp(-log_scale) + shift

            z = ops.fori_loop(0, self.dims, step, ops.zeros_like(z))
        return z

    def to_flow_space(self, x, training: bool = False):
        """(w, log |dw/dx| per example): dequantization and logit for pixels, the fixed
        standardization for latents. For pixels the log-probability is of the 8-bit bins."""
        x = ops.cast(x, "float32")
        if self.space == "latent":
            return (x - self.loc) / self.scale, -float(np.sum(np.log(self.scale)))
        noise = keras.random.uniform(ops.shape(x), seed=self.seed_generator) if training else 0.5
        y = (ops.round(x * (LEVELS - 1)) + noise) / LEVELS
        p = LOGIT_ALPHA + (1 - 2 * LOGIT_ALPHA) * y
        log_det = ops.sum(
            math.log(1 - 2 * LOGIT_ALPHA) - ops.log(p) - ops.log1p(-p), axis=-1
        ) - self.dims * math.log(LEVELS)
        return ops.log(p) - ops.log1p(-p), log_det

    def from_flow_space(self, w) -> np.ndarray:
        """The inverse of `to_flow_space` (pixels: the continuous value in [0, 1])."""
        if self.space == "latent":
            return ops.convert_to_numpy(w * self.scale + self.loc)
        y = (ops.sigmoid(w) - LOGIT_ALPHA) / (1 - 2 * LOGIT_ALPHA)
        return ops.convert_to_numpy(ops.clip(y, 0.0, 1.0))

    def log_prob(self, x, training: bool = False):
        """Log-likelihood of each example (nats), in one pass."""
        w, input_log_det = self.to_flow_space(x, training)
        z, log_det = self.to_noise(w)
        base = -0.5 * ops.sum(ops.square(z), axis=-1) - 0.5 * self.dims * math.log(2 * math.pi)
        return base + log_det + input_log_det

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """`n` samples (sequential inversion, D passes per transform)."""
        z = np.random.default_rng(seed).standard_normal((n, self.dims)).astype("float32")
        return self.from_flow_space(self.inverse(z))

    def call(self, inputs, training=False):
        return self.log_prob(inputs, training)

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data

        def loss():
            nll = -self.log_prob(x, training=True)
            return global_mean(nll), nll

        return self._track(minimize(self.optimizer, loss, self.trainable_variables))

    def test_step(self, data):
        return self._track(-self.log_prob(data[0] if isinstance(data, tuple) else data))

    def _track(self, nll):
        # per example: a mean over examples, however the batches (and their shares) are sized
        self.nll_tracker.update_state(nll)
        self.bpd_tracker.update_state(nll / (self.dims * math.log(2)))
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "dims": self.dims,
            "transforms": self.transforms,
            "hidden": list(self.hidden),
            "space": self.space,
            "loc": self.loc.tolist(),
            "scale": self.scale.tolist(),
            "seed": self.seed,
        }
