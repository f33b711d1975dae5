"""Seeding and the `tf.distribute` strategy of the device flags."""

from __future__ import annotations

import keras
import tensorflow as tf

from preprocessing.files import InputError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)


def device_strategy(name: str = "auto", mixed_precision: bool = False) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy of `--strategy` (build and compile models in its scope).

    auto: `MirroredStrategy` over all GPUs when there are several, else the default (one
    device). `--mixed-precision` sets the `mixed_float16` policy first.
    """
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
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
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
