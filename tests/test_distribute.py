"""Training under tf.distribute.MirroredStrategy on two logical CPU devices matches one device.

TensorFlow fixes its devices at start-up, so each case runs in a fresh Python process.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np

    from tests.distribute_cases import CASES

    make_model, make_data, loss_name = CASES[{case!r}]

    def train(strategy, weights=None):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = make_model()
        if weights is not None:
            model.set_weights(weights)
        start = [w.copy() for w in model.get_weights()]
        history = model.fit(make_data(), steps_per_epoch=3, epochs=1, verbose=0)
        return model, start, history.history[loss_name][-1]

    single, start, single_loss = train(tf.distribute.get_strategy())
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored, _, mirrored_loss = train(strategy, start)
    assert strategy.num_replicas_in_sync == 2
    for variable in mirrored.trainable_variables:
        replicas = [v.numpy() for v in variable.value.values]
        np.testing.assert_array_equal(replicas[0], replicas[1])
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=1e-4)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=5e-5)  # float32 reduction order
    print("ok", single_loss, mirrored_loss)
    """
)


@pytest.mark.parametrize("case", ["endovae", "pixelda"])
def test_mirrored_two_devices_match_one_device(case):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(case=case)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
