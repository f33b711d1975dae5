"""Training under tf.distribute.MirroredStrategy on two logical CPUs agrees with one device in
what must agree: each trainer's losses and gradients in its first two steps (with the
batch shared evenly, then unevenly), the replicas' copies of every variable after a few
steps, and the global-batch mean itself on uneven and empty shares.

Weights after several Adam steps are not compared: Adam moves a weight by about its learning
rate whatever the size of its gradient, so for a gradient near zero float32 rounding noise
(which differs with the CPU's kernels) decides the step.

TensorFlow fixes its devices at start-up, so each case runs in a fresh Python process
(tests/distribute_cases.py), two at a time.

Tolerances, from float32 arithmetic (unit roundoff EPS = 2^-24, about 6e-8): a sum of n
float32 terms computed in another order (one device sums a batch, two replicas each sum
their share and the shares are added) differs by at most about n * EPS * sum|terms| (the
worst case of a sequential loop; blocked and pairwise kernels stay near EPS * sum|terms|).
The largest sum in these tiny models has N = 8 x 16 x 16 x 3 terms: a batch's pixel values
(the reconstruction loss, a convolution kernel's gradient over examples and positions).
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

EPS = 2.0**-24
N = 8 * 16 * 16 * 3
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


def loss_tolerance(value: float) -> float:
    """Every loss here sums terms of one sign (cross-entropies, KL divergences, squared and
    absolute errors; MAF's NLL is dominated by its positive 0.5 z^2 + 0.5 log 2 pi terms), so
    sum|terms| is about |loss|, and each term comes out of sums of at most N terms."""
    return N * EPS * abs(value)


@pytest.mark.parametrize("case", CASES)
def test_two_replicas_give_the_losses_and_gradients_of_one_device(results, case):
    run = results(case)
    losses = [k.removeprefix("single/loss/") for k in run.files if k.startswith("single/loss/")]
    assert {"total_loss", "d_loss", "g_loss", "nll"} & set(losses)
    for name in losses:
        if "accuracy" in name:  # thresholded probabilities, not a sum
            continue
        single, mirrored = run[f"single/loss/{name}"], run[f"mirrored/loss/{name}"]
        for step, (a, b) in enumerate(zip(single, mirrored, strict=True), 1):
            assert abs(a - b) <= loss_tolerance(a), f"{name} at step {step}: {a} vs {b}"

    # Gradients: an entry sums at most N terms (examples x positions), each at most about
    # the largest entry G of its loss's gradient, so sum|terms| <= N * G and the near-EPS
    # rounding of blocked sums moves it by at most about N * EPS * G: one absolute tolerance
    # for the whole gradient of a loss (one optimizer's variables in one step), also for
    # entries near zero (e.g. the bias before a batch normalization, exactly 0 in theory).
    # (Measured on the development machine: at most 18 EPS * G; losses 2 EPS * |loss|.)
    groups = run["groups"]
    for group in np.unique(groups[:, 0]):
        members = np.flatnonzero(groups[:, 0] == group)
        single = {i: run[f"single/gradient/{i}"][0] for i in members}
        largest = max(np.abs(g).max() for g in single.values())
        assert largest > 0, group
        for i in members:
            np.testing.assert_allclose(
                run[f"mirrored/gradient/{i}"][0],
                single[i],
                rtol=0,
                atol=N * EPS * largest,
                err_msg=f"{group}: {groups[i, 1]}",
            )


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
