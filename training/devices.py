"""Seeding, the backend, and the `tf.distribute` strategy of the device flags."""

from __future__ import annotations

import contextlib
import functools
import json
import os

import keras

from models.backend import BACKEND
from preprocessing.files import InputError, stop_writing

SEVERAL_MACHINES = "docs/devices-and-speed.md#several-machines"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)


class OneDevice:
    """The strategy of the JAX and PyTorch backends: one device, no replicas."""

    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def jit_compile(flag: bool) -> bool:
    """`compile(jit_compile=...)` of the --jit flag: XLA on TensorFlow (for GPUs; slower on
    CPU), torch.compile on PyTorch; JAX always compiles its steps."""
    return flag or BACKEND == "jax"


@functools.cache
def device_strategy(name: str = "auto", mixed_precision: bool = False):
    """The `tf.distribute` strategy of `--strategy` (build and compile models in its scope);
    one per process. Apps create it before anything else runs on the devices, as
    `MultiWorkerMirroredStrategy` requires.

    auto: `MirroredStrategy` over all GPUs when there are several, else the default (one
    device). multiworker: `MultiWorkerMirroredStrategy` over the machines `TF_CONFIG` names;
    only its chief writes files. `--mixed-precision` sets the `mixed_float16` policy first.
    """
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if BACKEND != "tensorflow":
        if name != "auto":
            raise InputError(
                f"--strategy {name} is TensorFlow's tf.distribute: rerun with "
                f"KERAS_BACKEND=tensorflow, or drop the flag to train on one device with {BACKEND}"
            )
        return OneDevice()
    import tensorflow as tf

    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as err:
            raise InputError(
                f"--strategy tpu: no TPU found ({err}); on Colab choose a TPU runtime"
            ) from err
        return tf.distribute.TPUStrategy(resolver)
    if name == "multiworker":
        return multiworker_strategy()
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def multiworker_strategy():
    """`MultiWorkerMirroredStrategy` from `TF_CONFIG`; on the workers that are not the chief
    every file write is discarded (`preprocessing.files.stop_writing`), so the run folder,
    which every worker reads (on storage they share), is written by the chief alone."""
    import tensorflow as tf

    task = cluster_task(os.environ.get("TF_CONFIG"))
    _fix_keras_for_multiworker()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    chief = task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0)
    print(f"multi-worker run: {task['type']} {task['index']} of {task['workers']} machines")
    if not chief:
        stop_writing()
    return strategy


def cluster_task(config: str | None) -> dict:
    """This machine's task in `TF_CONFIG` (type, index, and the cluster's size), checked."""
    if not config:
        raise InputError(
            f"--strategy multiworker: set TF_CONFIG on every machine (see {SEVERAL_MACHINES})"
        )
    try:
        parsed = json.loads(config)
        cluster, task = parsed["cluster"], parsed["task"]
        members = cluster[task["type"]]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"TF_CONFIG: expected {{'cluster': {{'worker': [HOST:PORT, ...]}}, "
            f"'task': {{'type': 'worker', 'index': I}}}} ({type(err).__name__}: {err})"
        ) from err
    if not 0 <= index < len(members):
        raise InputError(f"TF_CONFIG: task index {index} but {len(members)} {task['type']}s")
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
    return {"type": task["type"], "index": index, "workers": workers}


def _fix_keras_for_multiworker() -> None:
    """Two places where Keras 3 (3.15) breaks under `MultiWorkerMirroredStrategy` with
    custom train steps (tensorflow/tensorflow#72388), mended for this process:

    - it reduces a step's logs with `strategy.reduce("MEAN", v, axis=0)`, which fails on
      the scalar losses every train_step returns: scalars are reduced over replicas alone;
    - before the first step it all-reduces the first data batch only to learn its shapes,
      which fails on nested batches (PixelDA's `((x_s, y_s), x_t)`): this worker's own
      share of the batch gives the same shapes without any communication.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "mended_for_multiworker", False):
        return
    keras_reduce = trainer.reduce_per_replica
    keras_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    several = trainer._collective_all_reduce_multi_worker

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not several(strategy):
            return keras_reduce(values, strategy, reduction)

        def mean(value):
            if strategy.experimental_local_results(value)[0].shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce(value, strategy, reduction)

        return tf.nest.map_structure(mean, values)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None or not several(strategy):
            return keras_build(self, iterator, data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            break
        local = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], batch)
        with strategy.scope():
            self._symbolic_build(data_batch=local)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.mended_for_multiworker = True
