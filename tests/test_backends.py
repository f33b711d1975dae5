"""The trainers on TensorFlow, JAX and PyTorch: the same outputs and the same gradient
steps from the same weights, and a checkpoint saved on one backend loads on the others."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.backend_cases import CASES, build

BACKENDS = ("tensorflow", "jax", "torch")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(b) is None for b in BACKENDS),
    reason="needs requirements-jax.txt and requirements-torch.txt",
)


def run(*children: tuple) -> None:
    """Run `(backend, *args)` children of `tests.backend_cases` side by side (two cores)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.backend_cases", *map(str, args)],
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend, *args in children
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Each backend's predictions and weights after two SGD steps from the same saved
    models, and what PyTorch and TensorFlow predict with the models JAX trained."""
    folder = tmp_path_factory.mktemp("backends")
    (folder / "initial").mkdir()
    for case in CASES:
        build(case).save(folder / "initial" / f"{case}.keras")
    run(*[(backend, folder, "train") for backend in BACKENDS])
    run(*[(backend, folder, "load", "jax") for backend in ("torch", "tensorflow")])
    return {name.stem: dict(np.load(name)) for name in folder.glob("*.npz")}


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("case", CASES)
def test_same_outputs_and_gradient_steps_as_tensorflow(results, backend, case):
    """Tolerances from float32 arithmetic. The backends' kernels sum in other orders: a
    sum of K float32 terms is off by at most about K x 2^-24 of the terms' magnitudes, and
    the largest sums here (a gradient over 8 images of 32 x 32) have K = 8,192: 5e-4.
    A layer's weights sum the same terms (its kernel's gradient is the bias's terms times
    its inputs), so each weight's two SGD steps may differ by that share of the largest
    step in its layer, doubled for the second step, which starts from weights already
    apart. (A bias before a batch norm has a zero gradient: its steps are rounding alone.)
    Outputs may differ by 5e-4 of their tensor's largest value. Where a model amplifies
    rounding (CycleGAN's instance norms over 4 x 4 maps), the bound is 4 times the change
    that nudging every weight by 2^-22 (a few roundings) makes on TensorFlow. A wrong
    gradient is off by its own size, a weight left out by all of it."""
    ours, reference = results[backend], results["tensorflow"]
    names = sorted(k for k in reference if k.startswith(f"{case}/"))
    assert names == sorted(k for k in ours if k.startswith(f"{case}/"))
    steps = {name: reference[name] for name in names if "/step/" in name}
    assert steps
    for name in names:
        nudged = results["tensorflow"][f"nudged/{name}"]
        if name in steps:
            layer = name.rsplit("/", 1)[0]
            in_layer = [k for k in steps if k.rsplit("/", 1)[0] == layer]
            floor = 1e-3 * max(np.abs(steps[k]).max() for k in in_layer)
            amplified = 4 * max(
                np.abs(results["tensorflow"][f"nudged/{k}"]).max() for k in in_layer
            )
        else:
            floor = 5e-4 * np.abs(reference[name]).max()
            amplified = 4 * np.abs(nudged).max()
        atol = max(floor, amplified)
        np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
@pytest.mark.parametrize("case", CASES)
def test_a_checkpoint_trained_on_jax_predicts_the_same_elsewhere(results, backend, case):
    """A forward pass (no gradient): at most 5e-4 of the largest output (see above)."""
    expected = results["jax"][f"{case}/trained"]
    got = results[f"{backend}-from-jax"][case]
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-4 * np.abs(expected).max())
