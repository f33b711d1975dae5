"""A training app killed with SIGKILL mid-run resumes to the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def command(out):
    return [
        sys.executable, "-m", "apps.train_classifier", "--pair", "digits-demo",
        "--epochs", "3", "--seed", "5", "--out", str(out),
    ]  # fmt: skip


def kill_after_first_epoch(out):
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
    assert done < 3, "the run finished before it could be killed"
    return done


def test_sigkill_then_rerun_matches_an_uninterrupted_run(tmp_path):
    subprocess.run(command(tmp_path / "straight"), env=ENV, check=True, capture_output=True)
    killed_after = kill_after_first_epoch(tmp_path / "killed")
    rerun = subprocess.run(command(tmp_path / "killed"), env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"after epoch {killed_after}" in rerun.stdout

    straight = pd.read_csv(tmp_path / "straight" / "history.csv")
    resumed = pd.read_csv(tmp_path / "killed" / "history.csv")
    assert resumed["epoch"].tolist() == [1, 2, 3]
    # two fresh processes with one seed: the same first epoch, bit for bit (CPU)
    assert resumed.loc[0, "loss"] == straight.loc[0, "loss"]
    assert resumed.loc[0, "val_accuracy"] == straight.loc[0, "val_accuracy"]
    np.testing.assert_allclose(resumed["loss"], straight["loss"], rtol=1e-4)
    a = keras.models.load_model(tmp_path / "straight" / "checkpoints" / "last.keras")
    b = keras.models.load_model(tmp_path / "killed" / "checkpoints" / "last.keras")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
