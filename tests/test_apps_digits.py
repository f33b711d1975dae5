"""The source-only app end to end on the offline demo pair, and its command-line errors."""

import importlib.util
import os
import shutil
import subprocess
import sys

import keras
import pandas as pd
import pytest

from apps import make_figures, registry, train_classifier
from evaluation.metrics import accuracy
from preprocessing.digit_splits import paired_split
from preprocessing.digits import demo_pair


def test_classifier_app_writes_the_whole_run_folder(tmp_path):
    out = tmp_path / "run"
    args = train_classifier.parser().parse_args(
        ["--pair", "digits-demo", "--epochs", "1", "--out", str(out)]
    )
    train_classifier.main(args)
    for name in ("config.json", "history.csv", "metrics.csv", "report.md", "samples.npz"):
        assert (out / name).is_file(), name
    for name in ("best.keras", "last.keras"):
        assert (out / "checkpoints" / name).is_file()
    for name in ("domain_samples.png", "training_curves.png"):
        assert (out / "figures" / name).stat().st_size > 10_000
    metrics = pd.read_csv(out / "metrics.csv")
    assert 0.5 < metrics.loc[0, "source_test_accuracy"] <= 1
    assert 0 <= metrics.loc[0, "target_all_accuracy"] <= 1
    # the saved model, loaded again, gives the recorded metric
    pair = demo_pair()
    _, test = paired_split(len(pair.source), seed=0)
    best = keras.models.load_model(out / "checkpoints" / "best.keras")
    recorded = metrics.loc[0, "source_test_accuracy"]
    assert accuracy(best, pair.source[test], pair.labels[test]) == pytest.approx(recorded, abs=1e-9)
    report = (out / "report.md").read_text()
    assert "Demo data" in report and "MNIST" not in report

    # the same command resumes: nothing left to train, same metrics
    train_classifier.main(args)
    assert len(pd.read_csv(out / "history.csv")) == 1

    # every figure is redrawn from the run folder alone
    shutil.rmtree(out / "figures")
    make_figures.main(make_figures.parser().parse_args(["--run", str(out), "--pdf"]))
    for name in ("domain_samples", "training_curves"):
        assert (out / "figures" / f"{name}.png").is_file()
        assert (out / "figures" / f"{name}.pdf").is_file()


def run_cli(*argv):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "apps.train_classifier", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_bad_path_is_one_line_and_exit_2(tmp_path):
    result = run_cli("--mnist", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: --mnist") and "no such file" in lines[-1]
    assert "Traceback" not in result.stderr


TRAINING_APPS = (
    "train_classifier",
    "train_pixelda",
    "train_cyclegan",
    "train_endovae",
    "train_flow",
)


def test_tensorboard_logs_every_epoch_into_the_run_folder(tmp_path):
    """--tensorboard: Keras' TensorBoard callback writes event files to OUT/tensorboard/."""
    pytest.importorskip("tensorboard", reason="requirements.txt installs tensorboard")
    out = tmp_path / "run"
    argv = ["--pair", "digits-demo", "--epochs", "1", "--tensorboard", "--out", str(out)]
    train_classifier.main(train_classifier.parser().parse_args(argv))
    for part in ("train", "validation"):
        events = list((out / "tensorboard" / part).glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0, part


@pytest.mark.parametrize("app", TRAINING_APPS)
def test_tensorboard_without_the_package_is_refused_while_parsing(app, monkeypatch, capsys):
    module = registry.module(app)
    argv = ["--data", "d"] if app in ("train_endovae", "train_flow") else []
    assert module.parser().parse_args(argv).tensorboard is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # not installed
    with pytest.raises(SystemExit) as stopped:
        module.parser().parse_args([*argv, "--tensorboard"])
    assert stopped.value.code == 2
    assert "--tensorboard needs the tensorboard package" in capsys.readouterr().err
