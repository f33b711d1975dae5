"""Every trainer, small and without randomness, as a case the backends must agree on.

`build(case)` makes a model and `data(case)` its batch and probe inputs; both depend on no
backend's random streams (weights come from one saved file). As a command, run under each
`KERAS_BACKEND` by `tests/test_backends.py`:

    python -m tests.backend_cases FOLDER train   # load FOLDER/initial/*.keras, predict, take
                                                 # two SGD steps; save the outputs, the
                                                 # weights' steps and the trained models
    python -m tests.backend_cases FOLDER load RUN  # predict with FOLDER/RUN/*.keras
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models.classifier import build_classifier
from models.cyclegan import CycleGAN
from models.cyclegan_networks import build_patchgan_discriminator, build_resnet_generator
from models.endovae import EndoVAE, build_decoder, build_encoder
from models.flows import MAF
from models.pixelda import PixelDA
from models.pixelda_networks import build_discriminator, build_generator
from training.saving import load_model

CASES = ("classifier", "pixelda", "endovae", "cyclegan", "maf")
LEARNING_RATE = 0.01
STEPS = 2
# A weight whose gradient depends on a backend's random draws: PixelDA's noise layer
# (its kernel starts at 0, so G's output does not, but its gradient is delta x z).
RANDOM_GRADIENT = ("noise_dense/kernel",)


def build(case: str) -> keras.Model:
    """The case's model: the trainers' structure with few filters; no noise, no dropout."""
    if case == "classifier":
        return build_classifier()
    if case == "pixelda":
        generator = build_generator(filters=8, residual_blocks=1)
        noise = generator.get_layer("noise_dense")
        noise.kernel.assign(np.zeros(noise.kernel.shape, "float32"))
        discriminator = build_discriminator(filters=(8, 16), noise_std=0.0, dropout=0.0)
        return PixelDA(generator, discriminator, build_classifier(), seed=0)
    if case == "endovae":
        encoder = build_encoder((16, 16, 3), (4, 4, 4, 4, 4, 8), dense_units=16, latent_dim=2)
        head = encoder.get_layer("latent_log_var")  # sigma = exp(-20): z = mu
        head.set_weights([np.zeros_like(head.get_weights()[0]), np.full((2,), -40.0, "float32")])
        # mu away from 0, so the decoder's ReLUs start away from their kinks (at a kink, a
        # rounding difference decides whether a unit passes its gradient)
        encoder.get_layer("latent_mu").bias.assign(np.array([1.0, -1.0], "float32"))
        decoder = build_decoder(2, start_shape=(2, 2, 8), filters=(8, 8, 4, 4, 4, 4))
        return EndoVAE(encoder, decoder, seed=0)
    if case == "cyclegan":  # the image buffers fill for 50 images: no draws before that
        shape = (32, 32, 3)
        return CycleGAN(
            build_resnet_generator(shape, 8, 1, name="generator_ab"),
            build_resnet_generator(shape, 8, 1, name="generator_ba"),
            build_patchgan_discriminator(shape, 8, name="discriminator_a"),
            build_patchgan_discriminator(shape, 8, name="discriminator_b"),
            seed=0,
        )
    if case == "maf":
        return MAF(dims=6, transforms=2, hidden=(16, 16), space="latent", seed=0)
    raise ValueError(case)


def data(case: str) -> tuple:
    """(training batch, probe input) of a case, from NumPy's seeded generator."""
    rng = np.random.default_rng(7)

    def images(n, size=32):
        return rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")

    if case == "classifier":
        return (images(8), np.arange(8) % 10), images(4)
    if case == "pixelda":
        return ((images(8), np.arange(8) % 10), images(8)), images(4)
    if case == "endovae":
        return rng.uniform(0, 1, (8, 16, 16, 3)).astype("float32"), rng.uniform(
            0, 1, (4, 16, 16, 3)
        ).astype("float32")
    if case == "cyclegan":
        return (images(4), images(4)), images(4)
    return rng.normal(size=(16, 6)).astype("float32"), rng.normal(size=(4, 6)).astype("float32")


def compile_sgd(model: keras.Model, case: str) -> None:
    """Plain SGD, so that a weight's change is the learning rate times its gradient."""
    if case in ("pixelda", "cyclegan"):
        sgd = keras.optimizers.SGD
        model.compile(sgd(LEARNING_RATE), sgd(LEARNING_RATE))
    elif case == "classifier":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(keras.optimizers.SGD(LEARNING_RATE), loss=loss)
    else:
        model.compile(keras.optimizers.SGD(LEARNING_RATE))


def weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Trainable weights by path, but those whose gradient depends on random draws."""
    return {
        v.path: keras.ops.convert_to_numpy(v)
        for v in model.trainable_variables
        if not v.path.endswith(RANDOM_GRADIENT)
    }


def predict(model: keras.Model, probe: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(probe, verbose=0))


def steps(model: keras.Model, case: str, nudge: float = 0.0) -> dict[str, np.ndarray]:
    """The model's outputs on the probe, then its weights' steps over `STEPS` SGD steps
    (after moving every trainable weight by a relative `nudge` of random sign), and the
    trained model's outputs."""
    batch, probe = data(case)
    out = {"initial": predict(model, probe)}
    signs = np.random.default_rng(3)
    for v in model.trainable_variables if nudge else ():
        value = keras.ops.convert_to_numpy(v)
        v.assign(value * (1 + nudge * signs.choice([-1.0, 1.0], value.shape)).astype("float32"))
    compile_sgd(model, case)
    before = weights(model)
    model.fit(tf.data.Dataset.from_tensors(batch).repeat(STEPS), verbose=0)
    out.update({f"step/{path}": value - before[path] for path, value in weights(model).items()})
    out["trained"] = predict(model, probe)
    return out


def train(folder: Path) -> None:
    """Each case from its saved initial model; on TensorFlow also its response to a nudge
    of every weight by 2^-22 (a few float32 roundings), the scale of rounding's effect."""
    backend = keras.backend.backend()
    results, trained = {}, folder / backend
    trained.mkdir(exist_ok=True)
    for case in CASES:
        model = load_model(folder / "initial" / f"{case}.keras")
        results.update({f"{case}/{k}": v for k, v in steps(model, case).items()})
        model.save(trained / f"{case}.keras")
        if backend == "tensorflow":
            nudged = steps(load_model(folder / "initial" / f"{case}.keras"), case, 2.0**-22)
            for name, value in nudged.items():
                results[f"nudged/{case}/{name}"] = value - results[f"{case}/{name}"]
    np.savez(folder / f"{backend}.npz", **results)


def load(folder: Path, run: str) -> None:
    backend = keras.backend.backend()
    results = {
        case: predict(load_model(folder / run / f"{case}.keras"), data(case)[1]) for case in CASES
    }
    np.savez(folder / f"{backend}-from-{run}.npz", **results)


if __name__ == "__main__":
    target, mode = Path(sys.argv[1]), sys.argv[2]
    train(target) if mode == "train" else load(target, sys.argv[3])
