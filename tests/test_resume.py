"""Every training app, killed with SIGKILL mid-run and rerun with the same command, ends
with the history and weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

import models.cyclegan  # noqa: F401  (registers the classes that the .keras files hold)
import models.endovae  # noqa: F401
import models.pixelda  # noqa: F401
from tests.endovae_helpers import write_prepared

# TensorFlow's Eigen kernels: with a fixed thread count their reductions run in one order, so
# two fresh processes with one seed agree bit for bit and any difference is the resume's.
# oneDNN's (the apps' default) agreed bit for bit on every CPU checked but one CI machine,
# where two side-by-side runs differed by 1 ulp (4.6159282 vs 4.6159286), a reduction order
# that changed with the load. No tolerance bounds where that leads: Adam's first update is
# lr * sign(g), so a gradient whose sign rounding decides moves a weight by 2 * lr.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
# app -> (arguments besides --out, a loss column of history.csv). Small real configurations:
# --quick evaluates on fewer images (FID/KID/PRDC), tiny batches and networks train fast.
APPS = {
    "train_classifier": (["--pair", "digits-demo"], "loss"),
    "train_pixelda": (
        ["--pair", "digits-demo", "--steps", "4", "--batch-size", "8", "--quick"]
        + ["--baseline", "{baseline}"],
        "d_loss",
    ),
    "train_cyclegan": (
        ["--pair", "digits-demo", "--steps", "16", "--filters", "8", "--residual-blocks", "1"]
        + ["--classifier-epochs", "1", "--quick"],
        "cycle_loss",
    ),
    "train_endovae": (["--data", "{data}", "--batch-size", "8", "--copies", "1"], "total_loss"),
}


@pytest.fixture(params=sorted(APPS))
def command(request, tmp_path):
    arguments, loss = APPS[request.param]
    data = write_prepared(tmp_path / "data", normal=16, abnormal=2)
    baseline = tmp_path / "baseline"  # the source-only row PixelDA's report quotes
    baseline.mkdir()
    (baseline / "config.json").write_text(
        '{"app": "train_classifier", "pair": "digits-demo", "seed": 5}'
    )
    (baseline / "metrics.csv").write_text(
        "model,source_test_accuracy,target_all_accuracy\nsource only,0.9,0.5\n"
    )
    argv = [a.format(data=data, baseline=baseline) for a in arguments]

    def make(out):
        return [sys.executable, "-m", f"apps.{request.param}", *argv, "--epochs", "2",
                "--seed", "5", "--out", str(out)]  # fmt: skip

    make.loss = loss
    return make


def kill_after_first_epoch(command, out):
    process = subprocess.Popen(
        command(out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        history = out / "history.csv"
        if (out / "checkpoints" / "resume" / "state.json").exists() and history.exists():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(pd.read_csv(out / "history.csv"))
    assert done < 2, "the run finished before it could be killed"
    return done


def test_sigkill_then_rerun_matches_an_uninterrupted_run(command, tmp_path):
    # the uninterrupted run and the one to kill run side by side (two cores)
    with open(tmp_path / "straight.log", "w") as log:
        straight = subprocess.Popen(command(tmp_path / "straight"), env=ENV, stdout=log, stderr=log)
        killed_after = kill_after_first_epoch(command, tmp_path / "killed")
        straight.wait(timeout=600)
    assert straight.returncode == 0, (tmp_path / "straight.log").read_text()[-2000:]
    rerun = subprocess.run(command(tmp_path / "killed"), env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"after epoch {killed_after}" in rerun.stdout

    straight = pd.read_csv(tmp_path / "straight" / "history.csv")
    resumed = pd.read_csv(tmp_path / "killed" / "history.csv")
    assert resumed["epoch"].tolist() == [1, 2]
    # two fresh processes with one seed: the same first epoch, bit for bit (CPU)
    assert resumed.loc[0, command.loss] == straight.loc[0, command.loss]
    np.testing.assert_allclose(resumed[command.loss], straight[command.loss], rtol=1e-4)
    a = keras.models.load_model(tmp_path / "straight" / "checkpoints" / "best.keras")
    b = keras.models.load_model(tmp_path / "killed" / "checkpoints" / "best.keras")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
