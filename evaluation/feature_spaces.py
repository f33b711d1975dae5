"""Feature spaces for the generative metrics: a named extractor, images -> features.

InceptionV3 pool features (ImageNet weights, downloaded by keras: Colab) and the penultimate
layer of any trained keras model (e.g. the EndoVAE encoder, or the evaluation-only digit
classifier of `evaluation.domain_adaptation`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np

from preprocessing.files import InputError

INCEPTION_SIZE = 299


@dataclasses.dataclass
class FeatureSpace:
    """A named feature extractor: images (N, H, W, C) -> features (N, D)."""

    name: str
    extract: Callable[[np.ndarray], np.ndarray]
    model: keras.Model | None = None  # the network the features come from, where there is one


def inception_space(
    batch_size: int = 64, value_range: tuple[float, float] = (0, 255)
) -> FeatureSpace:
    """InceptionV3 average-pool features (2,048, ImageNet weights) of images whose pixels
    span `value_range`, resized to 299 x 299 and mapped by InceptionV3's `preprocess_input`.

    The weights are downloaded by keras; where that fails, an `InputError` says what to do.
    """
    try:
        net = keras.applications.InceptionV3(
            include_top=False,
            pooling="avg",
            weights="imagenet",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        )
    except Exception as err:  # offline: keras raises a bare Exception("URL fetch failure ...")
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"cannot download the InceptionV3 ImageNet weights ({reason}): use the domain "
            "feature space (drop --inception), or run where downloads work (e.g. Colab)"
        ) from err
    low, high = value_range

    def extract(images: np.ndarray) -> np.ndarray:
        parts = []
        for start in range(0, len(images), batch_size):
            x = (np.asarray(images[start : start + batch_size], np.float32) - low) * (
                255.0 / (high - low)
            )
            if x.shape[-1] == 1:
                x = np.repeat(x, 3, axis=-1)
            x = keras.ops.image.resize(x, (INCEPTION_SIZE, INCEPTION_SIZE))
            x = keras.applications.inception_v3.preprocess_input(x)
            parts.append(keras.ops.convert_to_numpy(net(x, training=False)))
        return np.concatenate(parts)

    return FeatureSpace("InceptionV3 pool features (ImageNet weights, 2048 features)", extract, net)


def model_space(
    model: keras.Model,
    layer: str | None = None,
    name: str = "model",
    batch_size: int = 256,
    preprocess: Callable | None = None,
) -> FeatureSpace:
    """The outputs of layer `layer` of a trained `model` as features (default: the
    penultimate layer, the one feeding the model's last layer), flattened.

    `preprocess` maps images to the model's input range first. The space's name is `name`
    followed by the layer's name and width.
    """
    if layer is None:
        output = model.layers[-1].input
        layer = next(lay.name for lay in model.layers if lay.output is output)
    else:
        try:
            output = model.get_layer(layer).output
        except ValueError as err:
            raise InputError(f"{model.name} has no layer {layer!r}") from err
    features = keras.Model(model.inputs, output)
    width = int(np.prod(output.shape[1:]))

    def extract(images: np.ndarray) -> np.ndarray:
        x = preprocess(images) if preprocess else images
        return features.predict(x, batch_size=batch_size, verbose=0).reshape(len(images), -1)

    return FeatureSpace(f"{name}, layer '{layer}' ({width} features)", extract, model)
