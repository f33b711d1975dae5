"""train_endovae and evaluate_endovae end to end on a tiny prepared folder."""

import json

import pandas as pd
import pytest

from apps import evaluate_endovae, train_endovae
from preprocessing.files import InputError
from preprocessing.synthetic_endoscopy import SYNTHETIC_MARKER
from tests.endovae_helpers import write_prepared

FIGURES = {
    "generated.png",
    "reconstructions_validation.png",
    "reconstructions_polyps.png",
    "roc.png",
    "score_histograms.png",
    "history.png",
}


def test_train_then_evaluate_then_resume(tmp_path, capsys):
    data = write_prepared(tmp_path / "data", normal=10, abnormal=4)
    (data / SYNTHETIC_MARKER).write_text("synthetic")  # as prepare_kvasir marks demo frames
    out = tmp_path / "run"
    command = ["--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "8"]
    train_endovae.main(train_endovae.parser().parse_args([*command, "--copies", "1"]))
    split = json.loads((out / "split.json").read_text())
    # the homework's order: 10 frames and their 10 copies split together, 90/10
    assert (len(split["train"]), len(split["validation"])) == (18, 2)

    evaluate_endovae.main(evaluate_endovae.parser().parse_args(["--run", str(out)]))
    assert {p.name for p in (out / "figures").glob("*.png")} == FIGURES
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["Images"]) == {
        "validation",
        "validation: mean-image baseline",
        "polyps",
        "polyps: mean-image baseline",
    }
    assert set(metrics["Metric"]) == {"SSIM", "PSNR (dB)"}
    assert pd.read_csv(out / "anomaly.csv")["Score"].tolist() == ["neg_elbo", "recon_error"]
    assert "Metric | Mean | Std Dev" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "Demo data" in report and "Preset `homework`" in report
    assert "| reconstruction | channel_mean |" in report
    for figure in (out / "figures").glob("*.png"):
        figure.unlink()
    train_endovae.draw_figures(out)  # redrawn from the run folder alone (make_figures)
    assert {p.name for p in (out / "figures").glob("*.png")} == FIGURES

    train_endovae.main(train_endovae.parser().parse_args([*command, "--copies", "1"]))
    assert "Resuming" in capsys.readouterr().out
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1]
    with pytest.raises(InputError, match="--copies 1"):
        train_endovae.main(train_endovae.parser().parse_args(command))


def test_evaluate_without_a_trained_model_says_what_to_do(tmp_path):
    with pytest.raises(InputError, match="train first"):
        evaluate_endovae.main(evaluate_endovae.parser().parse_args(["--run", str(tmp_path)]))
