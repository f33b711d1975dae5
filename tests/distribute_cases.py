"""The training runs tests/test_distribute.py compares: one device vs `MirroredStrategy` on two
logical CPUs, for each trainer. TensorFlow fixes its devices when it starts, so every case
runs in its own process: `python -m tests.distribute_cases CASE OUT.npz`.

The models are tiny and their random parts are switched off (z = mu, no noise, no dropout):
one device draws noise for the whole batch, two replicas for their shares. Step 1 gets a
batch of 8, which two replicas share evenly (4 and 4); every later step gets its first 7
examples, shared unevenly (4 and 3), as replicas share a last partial batch. (Keras builds
a distributed model from the first batch and needs it shared evenly.)
`python -m tests.distribute_cases scaling OUT.npz` checks the global-batch mean itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from models.classifier import build_classifier
from models.cyclegan import CycleGAN
from models.cyclegan_networks import build_patchgan_discriminator, build_resnet_generator
from models.distributed import global_mean, track_global_means
from models.endovae import EndoVAE, build_decoder, build_encoder
from models.flows import MAF
from models.pixelda import PixelDA
from models.pixelda_networks import build_discriminator, build_generator

RNG = np.random.default_rng(0)
IMAGES = RNG.random((8, 16, 16, 3), dtype=np.float32)
SOURCE, TARGET = RNG.uniform(-1, 1, (2, 8, 16, 16, 3)).astype("float32")
LABELS = RNG.integers(0, 10, 8)
LATENTS = RNG.normal(size=(8, 6)).astype("float32")
RECORDED = 2  # steps whose losses and gradients are compared (the weights stay as they are)
# Tolerances, from float32 arithmetic (unit roundoff EPS = 2^-24, about 6e-8): a sum of n
# float32 terms computed in another order (one device sums a batch, two replicas each sum
# their share and the shares are added) differs by at most about n * EPS * sum|terms| (the
# worst case of a sequential loop; blocked and pairwise kernels stay near EPS * sum|terms|).
# The largest sum in these tiny models has N = 8 x 16 x 16 x 3 terms: a batch's pixel values
# (the reconstruction loss, a convolution kernel's gradient over examples and positions).
EPS = 2.0**-24
N = 8 * 16 * 16 * 3
STEPS = 4  # steps on two replicas before their copies of every variable are compared


class NoNoisePixelDA(PixelDA):
    def generate(self, images, training=False):
        zeros = tf.zeros((tf.shape(images)[0], self.noise_dim))
        return self.generator([images, zeros], training=training)


def endovae(optimizer: Callable) -> EndoVAE:
    encoder = build_encoder((16, 16, 3), filters=(4, 4, 4, 4, 4, 8), dense_units=16, latent_dim=2)
    decoder = build_decoder(2, start_shape=(2, 2, 8), filters=(8, 8, 4, 4, 4, 4))
    model = EndoVAE(encoder, decoder, seed=0)
    model.sampling.call = lambda inputs: inputs[0]  # z = mu
    model.compile(optimizer())
    return model


def pixelda(optimizer: Callable) -> PixelDA:
    shape = (16, 16, 3)
    model = NoNoisePixelDA(
        build_generator(shape, filters=8, residual_blocks=1),
        build_discriminator(shape, filters=(8, 16), noise_std=0.0, dropout=0.0),
        build_classifier(shape),
    )
    model.compile(optimizer(), optimizer())
    return model


def cyclegan(optimizer: Callable) -> CycleGAN:
    shape = (16, 16, 3)
    nets = [build_resnet_generator(shape, 4, 0, name=f"generator_{x}") for x in ("ab", "ba")]
    nets += [build_patchgan_discriminator(shape, 4, name=f"discriminator_{x}") for x in "ab"]
    model = CycleGAN(*nets, buffer_size=4, seed=0)  # full after 4 images: swaps from step 1
    model.compile(optimizer(), optimizer())
    return model


def maf(optimizer: Callable) -> MAF:
    model = MAF(6, transforms=2, hidden=(16, 16), space="latent", seed=0)  # no dequantization
    model.compile(optimizer())
    return model


CASES = {  # name -> (model from an optimizer factory, a batch of 8)
    "endovae": (endovae, IMAGES),
    "pixelda": (pixelda, ((SOURCE, LABELS), TARGET)),
    "cyclegan": (cyclegan, (SOURCE, TARGET)),
    "maf": (maf, LATENTS),
}


class GradientRecorder(keras.optimizers.SGD):
    """SGD with momentum that keeps the gradient it is given for each variable (on several
    replicas: their sum, which the optimizer all-reduces). Its learning rate starts at 0:
    the weights stay as they are until it is raised."""

    def __init__(self):
        super().__init__(learning_rate=0.0, momentum=0.9)

    def build(self, variables):
        super().build(variables)
        self.paths = [v.path for v in variables]  # for messages
        self.gradients = [self.add_variable_from_reference(v, "gradient") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        self.assign(self.gradients[self._get_variable_index(variable)], gradient)
        super().update_step(gradient, variable, learning_rate)


def optimizers(model: keras.Model) -> list[GradientRecorder]:
    """The model's optimizers: the GANs' two (their `optimizer` shows both), or its one."""
    found = [getattr(model, n, None) for n in ("d_optimizer", "g_optimizer")]
    return [o for o in found if o is not None] or [model.optimizer]


class Recorder(keras.callbacks.Callback):
    """Keep each replica's copy of the gradients applied in the `RECORDED` first steps (one
    step per epoch), then give the optimizers a learning rate for the steps that follow."""

    def __init__(self, strategy: tf.distribute.Strategy):
        super().__init__()
        self.strategy, self.gradients, self.groups = strategy, [], []

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= RECORDED:
            return
        for index, optimizer in enumerate(optimizers(self.model)):
            for path, gradient in zip(optimizer.paths, optimizer.gradients, strict=True):
                copies = self.strategy.experimental_local_results(gradient.value)
                self.gradients.append(np.stack([copy.numpy() for copy in copies]))
                self.groups.append((f"step {epoch + 1}, optimizer {index}", path))
            if epoch == RECORDED - 1:
                optimizer.learning_rate = 0.01


def case_data(case: str) -> tf.data.Dataset:
    """The case's batch of 8, then its first 7 examples again and again."""
    batch = CASES[case][1]
    uneven = tf.nest.map_structure(lambda a: a[:7], batch)
    return tf.data.Dataset.from_tensors(batch).concatenate(
        tf.data.Dataset.from_tensors(uneven).repeat()
    )


def train_recording(
    case: str, strategy: tf.distribute.Strategy, steps: int, start: list | None = None
) -> tuple[keras.Model, dict]:
    """Build the case in `strategy` (from the weights `start`, if given) and train `steps`
    steps; return the model and the losses (`fit`'s history) and applied gradients (each
    replica's copy) of the first `RECORDED` steps, as `loss/NAME`, `gradient/I`, `groups`,
    and the weights it started from, as `start`."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = CASES[case][0](GradientRecorder)
    if start is not None:
        model.set_weights(start)
    start = model.get_weights()  # with the image buffers, before training fills them
    recorder = Recorder(strategy)
    history = model.fit(
        case_data(case), epochs=steps, steps_per_epoch=1, callbacks=[recorder], verbose=0
    )
    results = {f"loss/{k}": v[:RECORDED] for k, v in history.history.items()}
    results |= {f"gradient/{i}": g for i, g in enumerate(recorder.gradients)}
    results["groups"] = np.array(recorder.groups)  # (step and optimizer, variable path)
    return model, results | {"start": start}


def run(case: str, out: str) -> None:
    """Train the case from the same weights on one device (`RECORDED` steps) and on two
    replicas (`STEPS` steps). Write to `out` (npz): each run's `train_recording` results
    (prefixed `single/` and `mirrored/`), and the variables whose replica copies differ after
    the last step."""
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    _, single = train_recording(case, tf.distribute.get_strategy(), RECORDED)
    model, mirrored_run = train_recording(case, mirrored, STEPS, single.pop("start"))
    mirrored_run.pop("start")
    results = {f"single/{k}": v for k, v in single.items()}
    results |= {f"mirrored/{k}": v for k, v in mirrored_run.items()}
    results["groups"] = mirrored_run["groups"]
    variables = [*model.variables, *(v for o in optimizers(model) for v in o.variables)]
    results["replicas_differ"] = np.array(
        [
            v.path
            for v in variables
            if v.value.synchronization != tf.VariableSynchronization.ON_READ  # metrics
            and not all(np.array_equal(v.value.values[0], c) for c in v.value.values[1:])
        ],
        dtype=str,
    )
    results["variables_compared"] = np.array(len(variables))
    np.savez(out, **results)


def loss_tolerance(value: float) -> float:
    """Every loss here sums terms of one sign (cross-entropies, KL divergences, squared and
    absolute errors; MAF's NLL is dominated by its positive 0.5 z^2 + 0.5 log 2 pi terms), so
    sum|terms| is about |loss|, and each term comes out of sums of at most N terms."""
    return N * EPS * abs(value)


def assert_same_training(run, first: str, second: str) -> None:
    """The recorded losses and gradients of the runs `first` and `second` (prefixes of the
    keys of `run`, an npz of `train_recording` results) agree within float32 rounding.

    Gradients: an entry sums at most N terms (examples x positions), each at most about the
    largest entry G of its loss's gradient, so sum|terms| <= N * G and the near-EPS rounding
    of blocked sums moves it by at most about N * EPS * G: one absolute tolerance for the
    whole gradient of a loss (one optimizer's variables in one step), also for entries near
    zero (e.g. the bias before a batch normalization, exactly 0 in theory). (Measured on the
    development machine: at most 18 EPS * G; losses 2 EPS * |loss|.)
    """
    prefix = f"{first}/loss/"
    losses = [k.removeprefix(prefix) for k in run if k.startswith(prefix)]
    assert {"total_loss", "d_loss", "g_loss", "nll"} & set(losses)
    for name in losses:
        if "accuracy" in name:  # thresholded probabilities, not a sum
            continue
        ones, others = run[f"{first}/loss/{name}"], run[f"{second}/loss/{name}"]
        for step, (a, b) in enumerate(zip(ones, others, strict=True), 1):
            assert abs(a - b) <= loss_tolerance(a), f"{name} at step {step}: {a} vs {b}"
    groups = run["groups"]
    for group in np.unique(groups[:, 0]):
        members = np.flatnonzero(groups[:, 0] == group)
        ones = {i: run[f"{first}/gradient/{i}"][0] for i in members}
        largest = max(np.abs(g).max() for g in ones.values())
        assert largest > 0, group
        for i in members:
            np.testing.assert_allclose(
                run[f"{second}/gradient/{i}"][0],
                ones[i],
                rtol=0,
                atol=N * EPS * largest,
                err_msg=f"{group}: {groups[i, 1]}",
            )


def scaling(out: str) -> None:
    """Write to `out` (npz): on two replicas, the summed `global_mean`s of the batches
    [5, 0, 0, 5, 10] (shares of 3 and 2 examples) and [7] (1 and 0), the summed gradients
    of `global_mean(w * x)` at w = 1, and a `track_global_means` tracker after both; and
    EndoVAE's and MAF's losses evaluated on batches of 4, 5 and 1 examples (shares of 2
    and 2, 3 and 2, 1 and 0), on one device and on two replicas."""
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with mirrored.scope():
        weight = tf.Variable(1.0)
        tracker = keras.metrics.Mean("mean")

    @tf.function
    def step(x):
        def replica(x):
            with tf.GradientTape() as tape:
                mean = global_mean(weight * x)
            track_global_means({"mean": tracker}, mean=mean)
            return mean, tape.gradient(mean, weight)

        return [mirrored.reduce("SUM", v, axis=None) for v in mirrored.run(replica, (x,))]

    values = tf.data.Dataset.from_tensor_slices(np.array([5, 0, 0, 5, 10, 7], "float32"))
    sums = [step(x) for x in mirrored.experimental_distribute_dataset(values.batch(5))]
    results = {"means": [m.numpy() for m, _ in sums], "gradients": [g.numpy() for _, g in sums]}
    results["tracked"] = tracker.result().numpy()
    for case, inputs in (("endovae", IMAGES), ("maf", LATENTS)):
        batches = [tf.data.Dataset.from_tensors(inputs[:n]) for n in (4, 5, 1)]
        data = batches[0].concatenate(batches[1]).concatenate(batches[2])
        start = None
        for name, strategy in (("single", tf.distribute.get_strategy()), ("mirrored", mirrored)):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                model = CASES[case][0](GradientRecorder)
            start = model.get_weights() if start is None else start
            model.set_weights(start)
            logs = model.evaluate(data, verbose=0, return_dict=True)
            results |= {f"{case}/{name}/{k}": v for k, v in logs.items()}
    np.savez(out, **results)


if __name__ == "__main__":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    case, out = sys.argv[1:]
    scaling(out) if case == "scaling" else run(case, out)
