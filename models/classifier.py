"""The PixelDA paper's MNIST task classifier."""

from __future__ import annotations

import keras
from keras import layers

from models.optimizers import paper_optimizer


def build_classifier(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    init_std: float = 0.02,
    name: str = "classifier",
) -> keras.Model:
    """conv 32 5x5 - pool - conv 48 5x5 - pool - dense 100 - dense 100 - dense 10 (logits).

    359,290 parameters for a 32x32x3 input; weights drawn from N(0, init_std).
    """
    init = keras.initializers.RandomNormal(stddev=init_std)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 5, padding="same", activation="relu", kernel_initializer=init)(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(48, 5, padding="same", activation="relu", kernel_initializer=init)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(100, activation="relu", kernel_initializer=init)(x)
    x = layers.Dense(100, activation="relu", kernel_initializer=init, name="features")(x)
    # float32 logits keep the softmax stable under a mixed_float16 policy
    logits = layers.Dense(num_classes, kernel_initializer=init, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def compiled_classifier(jit_compile: bool = False, **build_args) -> keras.Model:
    """`build_classifier` compiled as every app trains it: the paper's optimizer, sparse
    cross-entropy on logits, accuracy."""
    model = build_classifier(**build_args)
    model.compile(
        optimizer=paper_optimizer(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model
