"""train_flow end to end: a MAF on pixels and on an EndoVAE's latents, compared with the VAE."""

import json

import numpy as np
import pandas as pd
import pytest

from apps import make_figures, train_flow
from preprocessing.files import InputError
from tests.endovae_helpers import tiny_vae, write_prepared

FIGURES = {"history.png", "samples.png", "roc.png", "score_histograms.png"}


def fake_vae_run(folder, data, names):
    """A train_endovae run folder holding a tiny (16x16) EndoVAE and its split."""
    (folder / "checkpoints").mkdir(parents=True)
    tiny_vae().save(folder / "checkpoints" / "best.keras")
    config = {"app": "train_endovae", "data": str(data)}
    (folder / "config.json").write_text(json.dumps(config))
    split = {"train": names[:8], "validation": names[8:]}
    (folder / "split.json").write_text(json.dumps(split))
    return folder


def run(*argv):
    train_flow.main(train_flow.parser().parse_args([str(a) for a in argv]))


def test_pixels_and_latent_flows_compared_with_the_vae(tmp_path, capsys):
    data = write_prepared(tmp_path / "data", normal=12, abnormal=5, size=16)
    names = sorted(p.name for p in (data / "normal").glob("*.png"))
    vae = fake_vae_run(tmp_path / "vae", data, names)
    small = ["--epochs", "2", "--batch-size", "8", "--transforms", "2", "--hidden", "8"]
    pixels, latent = tmp_path / "pixels", tmp_path / "latent"
    run("--data", data, "--out", pixels, "--vae-run", vae, "--side", "4", *small)
    assert json.loads((pixels / "split.json").read_text())["validation"] == names[8:]
    run("--data", data, "--out", latent, "--space", "latent", "--vae-run", vae,
        "--compare", pixels, *small)  # fmt: skip

    scores = pd.read_csv(latent / "scores.csv")
    assert scores.group.value_counts().to_dict() == {"polyps": 5, "validation": 4}
    anomaly = pd.read_csv(latent / "anomaly.csv")
    assert anomaly.Score.tolist() == ["neg_elbo", "recon_error", "maf_pixels", "maf_latent"]
    assert anomaly[["AUROC", "AUPRC"]].apply(lambda c: c.between(0, 1)).all().all()
    assert np.load(latent / "samples.npz")["samples"].shape == (16, 16, 16, 3)  # decoded
    assert np.load(pixels / "samples.npz")["samples"].shape == (16, 4, 4, 3)
    history = pd.read_csv(latent / "history.csv")
    assert {"nll", "bits_per_dim", "val_nll", "val_bits_per_dim"} <= set(history.columns)
    assert "MAF NLL on latents" in (latent / "report.md").read_text()

    for figure in (latent / "figures").glob("*.png"):
        figure.unlink()
    make_figures.main(make_figures.parser().parse_args(["--run", str(latent)]))
    assert {p.name for p in (latent / "figures").glob("*.png")} == FIGURES
    capsys.readouterr()

    run("--data", data, "--out", latent, "--space", "latent", "--vae-run", vae,
        "--compare", pixels, *small)  # fmt: skip
    assert "Resuming" in capsys.readouterr().out
    assert pd.read_csv(latent / "history.csv")["epoch"].tolist() == [1, 2]


def test_bad_flags_say_what_to_do(tmp_path):
    data = write_prepared(tmp_path / "data", normal=6, abnormal=2, size=16)
    with pytest.raises(InputError, match="--space latent needs --vae-run"):
        run("--data", data, "--out", tmp_path / "a", "--space", "latent")
    other = tmp_path / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text(json.dumps({"app": "train_endovae"}))
    with pytest.raises(InputError, match="--compare .*train_flow"):
        run("--data", data, "--out", tmp_path / "b", "--side", "2", "--epochs", "1",
            "--hidden", "4", "--transforms", "1", "--compare", other)  # fmt: skip
