"""The demo's scoreboard: each stage's measure against its baseline, from the run folders."""

from __future__ import annotations

import pandas as pd
import pytest

from apps import demo, registry
from training.run_folder import ANOMALY, METRICS


def write_runs(root, pixelda: float, ssim: float, auroc: float) -> None:
    (root / "pixelda").mkdir(parents=True)
    (root / "endovae").mkdir()
    pd.DataFrame(
        {"model": ["source only", "PixelDA"], "target_all_accuracy": [0.6, pixelda]}
    ).to_csv(root / "pixelda" / METRICS, index=False)
    pd.DataFrame(
        {
            "Images": ["validation"] * 2 + ["validation: mean-image baseline"] * 2,
            "Metric": ["SSIM", "PSNR (dB)"] * 2,
            "Mean": [ssim, 20.0, 0.7, 18.0],
        }
    ).to_csv(root / "endovae" / METRICS, index=False)
    pd.DataFrame({"Score": ["neg_elbo", "recon_error"], "AUROC": [0.4, auroc]}).to_csv(
        root / "endovae" / ANOMALY, index=False
    )


@pytest.mark.parametrize(
    ("pixelda", "ssim", "auroc", "verdicts"),
    [
        (0.8, 0.75, 0.9, ["yes", "yes", "yes", "yes"]),
        (0.5, 0.65, 0.45, ["no", "no", "yes", "no"]),
    ],
)
def test_scoreboard_compares_each_stage_with_its_baseline(tmp_path, pixelda, ssim, auroc, verdicts):
    write_runs(tmp_path, pixelda, ssim, auroc)
    board = demo.scoreboard(tmp_path)
    assert board["result"].tolist() == pytest.approx([pixelda, ssim, 20.0, auroc])
    assert board["baseline value"].tolist() == pytest.approx([0.6, 0.7, 18.0, 0.5])
    assert board["beats its baseline"].tolist() == verdicts


def test_every_stage_is_a_valid_command(tmp_path):
    for _, app, argv in demo.stages(tmp_path):
        registry.module(app).parser().parse_args([*argv, "--seed", "0"])
