"""Step-for-step fidelity of the Keras PixelDA `--preset homework` to the homework's PyTorch
code (`evaluation.torch_pixelda`): the same initial weights, batches, noise z and D's
Gaussian-noise and dropout draws, k full training steps in both, then every loss, weight,
Adam moment and batch-norm statistic compared within a float32 tolerance.

The draws: the Keras model draws as it always does (nothing in it is patched); each of its
seed generators is copied before the run and the copy repeats the draws the layer will make
(`keras.random.normal`, `keras.random.dropout` of ones: the 0 or 1/(1 - rate) multiplier),
which the PyTorch side is fed. That every generator advanced exactly as predicted is checked.

Tolerances: `evaluation.fidelity_rows`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from evaluation.fidelity_rows import NETWORKS, PASSES, compare
from evaluation.torch_pixelda import HomeworkSettings, TorchPixelDA, parameter_names
from models.pixelda import PRESETS, build_pixelda


def unit_batches(steps: int, batch: int, seed: int) -> list:
    """`steps` batches ((x_s, y_s), x_t), NHWC in [-1, 1]: grey source 'digits' (bright
    strokes on dark), colourful target images, labels 0-9."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        grey = np.where(rng.random((batch, 32, 32, 1)) < 0.2, 1.0, -1.0)
        grey = np.clip(grey + rng.normal(0, 0.1, grey.shape), -1, 1)
        x_s = np.repeat(grey, 3, axis=-1).astype(np.float32)
        x_t = rng.uniform(-1, 1, (batch, 32, 32, 3)).astype(np.float32)
        out.append(((x_s, rng.integers(0, 10, batch).astype(np.int32)), x_t))
    return out


def _probe(generator: keras.random.SeedGenerator) -> keras.random.SeedGenerator:
    probe = keras.random.SeedGenerator(0)  # a copy: draws what `generator` will draw next
    probe.state.assign(generator.state.value)
    return probe


def predict_draws(model, batch: int, steps: int) -> tuple[list, list, list]:
    """The z and D's (noise, keep) per block the model will draw in `steps` steps (NHWC),
    the probes that drew them, and the generators they copy."""
    d = model.discriminator
    noises = [lay for lay in d.layers if isinstance(lay, layers.GaussianNoise)]
    drops = [lay for lay in d.layers if isinstance(lay, layers.Dropout)]
    sources = [model.noise_seed] + [lay.seed_generator for lay in noises + drops]
    probes = [_probe(g) for g in sources]
    zs = [
        keras.random.normal((batch, model.noise_dim), seed=probes[0]).numpy() for _ in range(steps)
    ]
    per_block = []  # per block: a list of steps * PASSES (noise, keep)
    for i, (noise, drop) in enumerate(zip(noises, drops, strict=True)):
        shape = (batch, *noise.output.shape[1:])
        p_noise, p_drop = probes[1 + i], probes[1 + len(noises) + i]
        per_block.append(
            [
                (
                    keras.random.normal(shape, 0.0, noise.stddev, seed=p_noise).numpy(),
                    keras.random.dropout(
                        np.ones(shape, np.float32), drop.rate, seed=p_drop
                    ).numpy(),
                )
                for _ in range(steps * PASSES)
            ]
        )
    draws = [
        [[per_block[b][s * PASSES + p] for b in range(len(noises))] for p in range(PASSES)]
        for s in range(steps)
    ]
    return zs, draws, list(zip(probes, sources, strict=True))


def _flatten_shapes(network: keras.Model) -> dict[str, tuple]:
    """The (H, W, C) before each Flatten, keyed by the dense layer that reads it."""
    out, pending = {}, None
    for layer in network.layers:
        if isinstance(layer, layers.Flatten):
            pending = tuple(layer.input.shape[1:])
        elif isinstance(layer, layers.Dense) and pending:
            out[layer.name], pending = pending, None
    return out


def torch_layout(array: np.ndarray, layer, flatten: tuple | None) -> np.ndarray:
    """A Keras kernel in PyTorch's layout: conv HWIO -> OIHW; dense (in, out) -> (out, in),
    its inputs reordered from NHWC's flatten to NCHW's when it follows a Flatten."""
    if array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if array.ndim == 2 and flatten:
        h, w, c = flatten
        return array.reshape(h, w, c, -1).transpose(3, 2, 0, 1).reshape(array.shape[1], -1)
    return array.T if array.ndim == 2 else array


def keras_variables(model) -> list[tuple[str, object, object, tuple | None]]:
    """(PyTorch name, Keras variable, its layer, flatten shape) of every weight and statistic."""
    fields = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
    fields |= {"moving_mean": "running_mean", "moving_variance": "running_var"}
    out = []
    for net, names in parameter_names().items():
        network = getattr(model, net)
        flat = _flatten_shapes(network)
        kinds = (layers.Conv2D, layers.Dense, layers.BatchNormalization)
        found = [lay for lay in network.layers if isinstance(lay, kinds)]
        if len(found) != len(names):
            raise ValueError(
                f"{net}: {len(found)} layers with weights, the homework has {len(names)}"
            )
        for name, layer in zip(names, found, strict=True):
            for variable in layer.weights:
                key = variable.path.rsplit("/", 1)[-1]
                out.append((f"{name}.{fields[key]}", variable, layer, flat.get(layer.name)))
    return out


def keras_arrays(model) -> dict[str, np.ndarray]:
    """Every weight and statistic of the Keras model in PyTorch's layouts and names."""
    return {
        n: torch_layout(np.asarray(v.numpy()), lay, f) for n, v, lay, f in keras_variables(model)
    }


def keras_moments(model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Adam's (m, v) of every trainable variable, in PyTorch's layouts and names."""
    out = {}
    for name, variable, layer, flat in keras_variables(model):
        if not variable.trainable:
            continue
        opt = model.g_optimizer if name.startswith("g.") else model.d_optimizer
        index = opt._get_variable_index(variable)
        m, v = (np.asarray(s[index].numpy()) for s in (opt._momentums, opt._velocities))
        out[name] = (torch_layout(m, layer, flat), torch_layout(v, layer, flat))
    return out


def _nchw(array, torch):
    array = np.asarray(array)
    return torch.tensor(array.transpose(0, 3, 1, 2) if array.ndim == 4 else array)


def keras_run(steps: int, batch: int, seed: int, snapshots: tuple[int, ...]) -> dict:
    """Train the Keras homework preset `steps` steps (each one `fit` on one batch, as training
    runs it). Its initial arrays, batches, predicted draws, per-step losses, snapshots."""
    keras.utils.set_random_seed(seed)
    model = build_pixelda(PRESETS["homework"], seed=seed, jit_compile=False)
    run = {"initial": keras_arrays(model), "batches": unit_batches(steps, batch, seed)}
    run["zs"], run["draws"], probes = predict_draws(model, batch, steps)
    run["losses"], run["snapshots"] = [], {}
    for step, ((x_s, y_s), x_t) in enumerate(run["batches"], 1):
        logs = model.fit((x_s, y_s), x_t, batch_size=batch, shuffle=False, verbose=0).history
        run["losses"].append((logs["d_loss"][0], logs["g_loss"][0]))
        if step in snapshots:
            run["snapshots"][step] = {
                "arrays": keras_arrays(model),
                "moments": keras_moments(model),
            }
    run["draws_missed"] = max(
        int(np.max(np.abs(p.state.numpy().astype(np.int64) - g.state.numpy().astype(np.int64))))
        for p, g in probes
    )
    run["counts"] = {  # values per channel each batch norm averages
        name: batch * math.prod(lay.output.shape[1:-1])
        for net in ("generator", "discriminator")
        for name, lay in zip(
            [n for n in parameter_names()[net] if ".bn" in n],
            [
                lay
                for lay in getattr(model, net).layers
                if isinstance(lay, layers.BatchNormalization)
            ],
            strict=True,
        )
    }
    run["fan_ins"] = [
        math.prod(lay.kernel.shape[:-1])
        for net in NETWORKS
        for lay in getattr(model, net).layers
        if isinstance(lay, (layers.Conv2D, layers.Dense))
    ]
    return run


def torch_run(reference: dict, settings: HomeworkSettings, snapshots: tuple[int, ...]) -> dict:
    """The PyTorch mirror from the Keras run's initial arrays, on its batches and draws; and
    `nudged`, its weights and Adam moments after step 1 from every initial weight moved by
    2^-22 of itself (a few roundings): how much this model amplifies rounding."""
    import torch

    sign = np.random.default_rng(0)
    nudged = TorchPixelDA(
        {
            n: a * (1 + 2.0**-22 * sign.choice([-1.0, 1.0], np.shape(a))).astype(np.float32)
            for n, a in reference["initial"].items()
        },
        settings,
    )
    mirror = TorchPixelDA(reference["initial"], settings)
    run = {"losses": [], "snapshots": {}}
    for step, ((x_s, y_s), x_t) in enumerate(reference["batches"], 1):
        draws = [
            [(_nchw(n, torch), _nchw(k, torch)) for n, k in one]
            for one in reference["draws"][step - 1]
        ]
        x_s, x_t, y_s = _nchw(x_s, torch), _nchw(x_t, torch), torch.tensor(y_s).long()
        z = torch.tensor(reference["zs"][step - 1])
        run["losses"].append(mirror.train_step(x_s, y_s, x_t, z, draws))
        if step == 1:
            nudged.train_step(x_s, y_s, x_t, z, draws)
            run["nudged"] = {"arrays": nudged.arrays(), "moments": nudged.adam_moments()}
        if step in snapshots:
            run["snapshots"][step] = {"arrays": mirror.arrays(), "moments": mirror.adam_moments()}
    return run


def check(
    steps: tuple[int, ...] = (1, 10),
    batch: int = 8,
    seed: int = 0,
    keras_side: dict | None = None,
    **mirror,
) -> dict:
    """Train both `max(steps)` steps; the table rows after each of `steps`. `mirror`
    overrides `HomeworkSettings` of the PyTorch side (the tests' deliberate errors);
    `keras_side`, a `keras_run` of the same steps, is reused rather than trained again."""
    settings = HomeworkSettings(**mirror)
    keras_side = keras_side or keras_run(max(steps), batch, seed, tuple(steps))
    torch_side = torch_run(keras_side, settings, tuple(steps))
    return {k: compare(keras_side, torch_side, k, settings.learning_rate) for k in steps}
