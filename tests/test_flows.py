"""MADE / MAF: autoregressive masks, exact log-determinants, inversion, likelihoods."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from evaluation.metrics import auroc
from models.flows import MADE, MAF, made_degrees, made_masks


def randomize(layer, seed=0, std=0.3):
    """Random weights everywhere (a new MADE's last layer is zero: the identity)."""
    rng = np.random.default_rng(seed)
    for v in layer.trainable_variables:
        v.assign(rng.normal(0, std, v.shape).astype("float32"))


def jacobian(fn, x):
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = fn(x)
    return [tape.jacobian(y, x)[0, :, 0, :].numpy() for y in outputs]


@pytest.mark.parametrize("reverse", [False, True])
def test_made_outputs_depend_only_on_earlier_inputs(reverse):
    dims = 5
    made = MADE(hidden=(16, 16), reverse=reverse)
    made.build((None, dims))
    randomize(made)
    x = np.random.default_rng(1).normal(size=(1, dims)).astype("float32")
    for jac in jacobian(made, x):  # shift and log-scale
        jac = jac[::-1, ::-1] if reverse else jac  # in the MADE's own order
        assert np.allclose(np.triu(jac), 0)  # strictly lower triangular
        assert np.abs(np.tril(jac, -1)).sum() > 0


def test_masks_follow_the_degrees():
    masks = made_masks(made_degrees(3, [4]))
    # hidden degrees 1, 2, 1, 2: input 3 reaches no hidden unit, output 1 sees none
    assert masks[0].tolist() == [[1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert masks[1][:, [0, 3]].sum() == 0  # shift and log-scale of dimension 1
    assert masks[1].shape == (4, 6)


def small_flow(space="latent", dims=4, **kwargs):
    keras.utils.set_random_seed(0)
    flow = MAF(dims, transforms=3, hidden=(16,), space=space, seed=0, **kwargs)
    for made in flow.mades:
        randomize(made, seed=len(made.name))
    return flow


def test_log_det_is_sum_of_log_scales_and_matches_the_jacobian():
    flow = small_flow()
    w = np.random.default_rng(2).normal(size=(1, 4)).astype("float32")
    (jac,) = jacobian(lambda x: [flow.to_noise(x)[0]], w)
    _, log_det = flow.to_noise(w)
    sign, expected = np.linalg.slogdet(jac.astype(np.float64))
    assert sign != 0
    assert float(log_det[0]) == pytest.approx(expected, abs=1e-4)
    eps = 1e-2  # and by central differences, without autodiff
    steps = np.eye(4, dtype="float32") * eps
    numeric = np.stack(
        [(flow.to_noise(w + d)[0][0] - flow.to_noise(w - d)[0][0]) / (2 * eps) for d in steps],
        axis=1,
    )
    assert np.linalg.slogdet(numeric)[1] == pytest.approx(float(log_det[0]), abs=0.02)
    shift, log_scale = flow.mades[0](w)  # one transform alone: the sum of its log-scales
    (jac0,) = jacobian(lambda x: [(x - flow.mades[0](x)[0]) * tf.exp(flow.mades[0](x)[1])], w)
    assert np.linalg.slogdet(jac0)[1] == pytest.approx(float(np.sum(log_scale)), abs=1e-4)


def test_sample_inverse_round_trip():
    flow = small_flow()
    z = np.random.default_rng(3).normal(size=(6, 4)).astype("float32")
    x = flow.inverse(z)
    back, _ = flow.to_noise(x)
    np.testing.assert_allclose(back, z, atol=1e-4)
    samples = flow.sample(5, seed=1)
    assert samples.shape == (5, 4) and np.all(np.isfinite(flow.log_prob(samples)))


def test_identity_flow_nll_is_the_gaussian_nll():
    loc, scale = np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 1.0])
    flow = MAF(3, transforms=2, hidden=(8,), space="latent", loc=loc, scale=scale)
    x = np.random.default_rng(4).normal(size=(7, 3)).astype("float32")
    expected = np.sum(
        0.5 * ((x - loc) / scale) ** 2 + np.log(scale) + 0.5 * math.log(2 * math.pi), axis=1
    )
    np.testing.assert_allclose(-flow.log_prob(x), expected, rtol=1e-5)


def test_pixel_flow_gives_probabilities_of_the_8_bit_levels():
    flow = small_flow("pixels", dims=1)
    levels = np.arange(256, dtype="float32")[:, None] / 255
    total = np.exp(flow.log_prob(levels).numpy()).sum()
    assert total == pytest.approx(1.0, abs=0.01)  # the logit squeeze leaves out ~0.3%


def test_masks_and_outputs_survive_save_and_load(tmp_path):
    flow = small_flow("pixels", dims=6)
    flow.compile(keras.optimizers.Adam(1e-3))
    x = np.round(np.random.default_rng(5).random((3, 6)) * 255) / 255
    flow.save(tmp_path / "flow.keras")
    loaded = keras.models.load_model(tmp_path / "flow.keras")
    for a, b in zip(flow.mades, loaded.mades, strict=True):
        for layer_a, layer_b in zip(a.dense, b.dense, strict=True):
            np.testing.assert_array_equal(layer_a.mask.numpy(), layer_b.mask.numpy())
            assert 0 < layer_b.mask.numpy().mean() < 1
    np.testing.assert_allclose(loaded.log_prob(x), flow.log_prob(x), rtol=1e-6)


def test_trained_flow_detects_shifted_points():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(6)
    normal = rng.normal(size=(512, 2)).astype("float32") * [1.0, 0.3]
    flow = MAF(2, transforms=2, hidden=(32,), space="latent", seed=0)
    flow.compile(keras.optimizers.Adam(3e-3))
    history = flow.fit(normal, batch_size=64, epochs=8, verbose=0).history
    assert history["nll"][-1] < history["nll"][0]
    held_out = rng.normal(size=(100, 2)).astype("float32") * [1.0, 0.3]
    anomalies = rng.normal(size=(100, 2)).astype("float32") * [1.0, 0.3] + [0.0, 1.5]
    scores = -flow.log_prob(np.concatenate([held_out, anomalies])).numpy()
    assert auroc(np.repeat([0, 1], 100), scores) > 0.95
