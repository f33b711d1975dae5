"""The task classifier and the paper's optimizer."""

import numpy as np

from models.classifier import build_classifier
from models.optimizers import paper_optimizer


def test_parameter_count_and_output_shape():
    model = build_classifier()
    # conv 5x5x3x32 + conv 5x5x32x48 + dense 8*8*48x100 + 100x100 + 100x10 (with biases)
    expected = (75 * 32 + 32) + (800 * 48 + 48) + (3072 * 100 + 100) + (100 * 100 + 100) + 1010
    assert model.count_params() == expected == 359_290
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 10)


def test_weights_drawn_from_n_0_002():
    kernel = build_classifier().get_layer("features").kernel.numpy()
    assert abs(kernel.mean()) < 0.002 and 0.018 < kernel.std() < 0.022


def test_learning_rate_drops_by_095_every_20000_steps():
    schedule = paper_optimizer()._learning_rate
    assert np.isclose(float(schedule(0)), 1e-3)
    assert np.isclose(float(schedule(19_999)), 1e-3)
    assert np.isclose(float(schedule(20_000)), 0.95e-3)
    assert np.isclose(float(schedule(40_000)), 0.95**2 * 1e-3)
