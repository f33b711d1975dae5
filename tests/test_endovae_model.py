"""EndoVAE model: parameter counts, sampling, losses against NumPy, save/load."""

import keras
import numpy as np
import pytest

from models.endovae import EndoVAE, Sampling, build_decoder, build_encoder, per_image_losses
from tests.endovae_helpers import random_images, tiny_vae

EPS = 1e-7


def numpy_losses(images, decoded, mu, log_var, reduction="channel_mean"):
    # Clipped in float32, like the model: 1 - 1e-7 rounds to 1 - 1.19e-7.
    p = np.clip(decoded, np.float32(EPS), np.float32(1 - EPS)).astype(np.float64)
    bce = -(images * np.log(p) + (1 - images) * np.log(1 - p))
    if reduction == "channel_mean":
        bce = bce.mean(axis=-1, keepdims=True)
    kl = -0.5 * np.sum(1 + log_var - mu**2 - np.exp(log_var), axis=-1)
    return bce.sum(axis=(1, 2, 3)), kl


def test_parameter_counts_match_the_homework():
    encoder, decoder = build_encoder(), build_decoder()
    assert encoder.count_params() == 9_842_380
    assert decoder.count_params() == 1_282_467
    assert encoder.output_shape == [(None, 6), (None, 6)]
    assert decoder.output_shape == (None, 96, 96, 3)


def test_sampling_statistics_and_seed():
    mu = np.full((20_000, 2), 1.0, np.float32)
    log_var = np.full((20_000, 2), np.log(4.0), np.float32)
    first = keras.ops.convert_to_numpy(Sampling(seed=3)([mu, log_var]))
    np.testing.assert_allclose(first.mean(axis=0), 1.0, atol=0.05)
    np.testing.assert_allclose(first.std(axis=0), 2.0, atol=0.05)
    layer = Sampling(seed=3)
    again, later = (keras.ops.convert_to_numpy(layer([mu, log_var])) for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, later)


@pytest.mark.parametrize("reduction", ["channel_mean", "sum"])
def test_per_image_losses_against_numpy(reduction):
    rng = np.random.default_rng(1)
    images = rng.random((3, 4, 4, 3)).astype(np.float32)
    decoded = rng.random((3, 4, 4, 3)).astype(np.float32)
    decoded[0, 0, 0, 0] = 1.0  # exercises the clipping
    mu, log_var = rng.normal(size=(2, 3, 6)).astype(np.float32)
    got = per_image_losses(images, decoded, mu, log_var, reduction)
    expected = numpy_losses(images, decoded, mu, log_var, reduction)
    for value, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(value), want, rtol=1e-5)


def test_reconstruction_by_hand_is_the_homework_form():
    """Two pixels of 3 channels, every prediction 0.5: each value costs ln 2. The homework
    (Keras' binary_crossentropy averages the channels, summed over pixels) gives 2 ln 2,
    the sum over every value 6 ln 2; a single value predicted 0.9 for a 1 costs -ln 0.9."""
    images = np.array([[[[1.0, 0.0, 0.5], [1.0, 1.0, 0.0]]]], np.float32)  # 1 x 1 x 2 x 3
    decoded = np.full_like(images, 0.5)
    zeros = np.zeros((1, 6), np.float32)
    homework, kl = per_image_losses(images, decoded, zeros, zeros)
    total, _ = per_image_losses(images, decoded, zeros, zeros, "sum")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(homework), [2 * np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(total), [6 * np.log(2)], rtol=1e-6)
    assert keras.ops.convert_to_numpy(kl) == [0.0]  # the prior itself
    decoded[0, 0, 0, 0] = 0.9
    homework, _ = per_image_losses(images, decoded, zeros, zeros)
    expected = (-np.log(0.9) + 2 * np.log(2)) / 3 + np.log(2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(homework), [expected], rtol=1e-6)
    keras_form = keras.ops.sum(keras.losses.binary_crossentropy(images, decoded), axis=(1, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras_form), [expected], rtol=1e-6)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_test_step_losses_are_batch_means_of_the_formulas(beta):
    model = tiny_vae(beta=beta)
    images = random_images(6)
    logs = model.evaluate(images, batch_size=4, verbose=0, return_dict=True)
    mu, log_var = (keras.ops.convert_to_numpy(t) for t in model.encoder(images))
    decoded = keras.ops.convert_to_numpy(model.decoder(mu))
    reconstruction, kl = numpy_losses(images, decoded, mu, log_var)
    np.testing.assert_allclose(logs["reconstruction_loss"], reconstruction.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["kl_loss"], kl.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["total_loss"], (reconstruction + beta * kl).mean(), rtol=1e-5)


def test_train_step_reports_the_loss_of_the_batch_before_the_update():
    model = tiny_vae(beta=0.5)
    head = model.encoder.get_layer("latent_log_var")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, -40.0)])  # z = mu + ~0 noise
    images = random_images(4)
    mu, log_var = (keras.ops.convert_to_numpy(t) for t in model.encoder(images))
    decoded = keras.ops.convert_to_numpy(model.decoder(mu))
    reconstruction, kl = numpy_losses(images, decoded, mu, log_var)
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["total_loss"], (reconstruction + 0.5 * kl).mean(), rtol=1e-5)
    assert not np.allclose(keras.ops.convert_to_numpy(model.encoder(images)[0]), mu)


def test_save_load_round_trip(tmp_path):
    model = tiny_vae(beta=0.5, seed=7)
    images = random_images(4)
    model.fit(images, epochs=1, batch_size=2, verbose=0)
    model.save(tmp_path / "vae.keras")
    loaded = keras.models.load_model(tmp_path / "vae.keras")
    assert isinstance(loaded, EndoVAE)
    assert isinstance(loaded.encoder, keras.Model) and isinstance(loaded.decoder, keras.Model)
    assert (loaded.beta, loaded.seed) == (0.5, 7)
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )
    assert loaded.evaluate(images, verbose=0) == model.evaluate(images, verbose=0)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2
