"""Training under tf.distribute.MirroredStrategy on two logical CPUs agrees with one device in
what must agree: each trainer's losses and gradients in its first two steps (with the
batch shared evenly, then unevenly), the replicas' copies of every variable after a few
steps, and the global-batch mean itself on uneven and empty shares.

Weights after several Adam steps are not compared: Adam moves a weight by about its learning
rate whatever the size of its gradient, so for a gradient near zero float32 rounding noise
(which differs with the CPU's kernels) decides the step.

TensorFlow fixes its devices at start-up, so each case runs in a fresh Python process
(tests/distribute_cases.py), two at a time.

The tolerances come from float32 arithmetic: see `tests.distribute_cases.loss_tolerance`
and `assert_same_training`.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.distribute_cases import assert_same_training, loss_tolerance

CASES = ("endovae", "pixelda", "cyclegan", "maf")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case's process, two at a time (one per core), the longest first; a test
    waits for its case."""
    folder = tmp_path_factory.mktemp("distribute")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def run(case: str) -> subprocess.CompletedProcess:
        # oneDNN's CPU convolution returns its input for an empty batch: the scaling case
        # evaluates an EndoVAE on an empty share with TensorFlow's own kernels.
        onednn = {"TF_ENABLE_ONEDNN_OPTS": "0"} if case == "scaling" else {}
        command = [sys.executable, "-m", "tests.distribute_cases", case, str(folder / case)]
        return subprocess.run(
            command, env={**env, **onednn}, capture_output=True, text=True, timeout=600
        )

    with ThreadPoolExecutor(2) as pool:
        runs = {
            c: pool.submit(run, c) for c in ("cyclegan", "pixelda", "endovae", "maf", "scaling")
        }

        def result(case: str):
            finished = runs[case].result()
            assert finished.returncode == 0, finished.stderr[-3000:]
            return np.load(folder / f"{case}.npz")  # np.savez adds the suffix

        yield result


@pytest.mark.parametrize("case", CASES)
def test_two_replicas_give_the_losses_and_gradients_of_one_device(results, case):
    assert_same_training(results(case), "single", "mirrored")


@pytest.mark.parametrize("case", CASES)
def test_replicas_hold_identical_variables(results, case):
    # Each replica applies the same all-reduced gradient to the same values with the same
    # kernels: the same bits, no tolerance. (Gradients, weights, optimizer and BN state,
    # seeds, CycleGAN's image buffers.)
    run = results(case)
    assert run["variables_compared"] > 0
    assert run["replicas_differ"].tolist() == []


def test_global_batch_mean_on_uneven_and_empty_shares(results):
    run = results("scaling")
    # Batches [5, 0, 0, 5, 10] on shares of 3 and 2 examples, and [7] on 1 and 0: every
    # share's sum / 5 (or / 1) and their sum are small integers, exact in float32, so the
    # global-batch means and gradients are exact. (Dividing by the static share x replicas
    # would give 5/6 + 15/4 and 7/2 + 0/0.)
    assert run["means"].tolist() == [4.0, 7.0]
    assert run["gradients"].tolist() == [4.0, 7.0]  # d/dw of the mean of w * x at w = 1
    assert run["tracked"] == 5.5  # (2 x 1 + 2 x 3 + 2 x 7 + 2 x 0) / 4 replica updates
    for case, losses in (("endovae", ("total_loss", "kl_loss")), ("maf", ("nll",))):
        for name in losses:
            single, mirrored = run[f"{case}/single/{name}"], run[f"{case}/mirrored/{name}"]
            assert abs(mirrored - single) <= loss_tolerance(single), f"{case} {name}"
