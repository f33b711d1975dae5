"""Evaluate a trained EndoVAE: generation, reconstruction quality, anomaly detection.

python -m apps.evaluate_endovae --run DIR [--data DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from apps.common import make_parser, read_run_config, run_app
from apps.train_endovae import draw_figures, read_split
from apps.training import load_model
from evaluation.metrics import auprc, auroc, psnr, ssim, vae_scores
from evaluation.reports import markdown_table, write_report
from models.endovae import EndoVAE
from preprocessing.files import write_csv
from preprocessing.kvasir import is_synthetic, load_processed

SHOWN, GENERATED = 5, 9


def parser() -> argparse.ArgumentParser:
    p = make_parser("evaluate_endovae", __doc__.splitlines()[0])
    p.add_argument("--run", dest="out", type=Path, help="run folder of train_endovae (= --out)")
    p.set_defaults(out=Path("runs") / "train_endovae")
    p.add_argument("--data", type=Path, help="prepared data (default: the run's --data)")
    return p


def quality_rows(name: str, images: np.ndarray, reconstructions: np.ndarray) -> list[dict]:
    """SSIM and PSNR (mean and standard deviation over images) as table rows."""
    return [
        {"Images": name, "Metric": metric, "Mean": float(v.mean()), "Std Dev": float(v.std())}
        for metric, v in (
            ("SSIM", ssim(images, reconstructions)),
            ("PSNR (dB)", psnr(images, reconstructions)),
        )
    ]


def load_polyps(data: Path) -> np.ndarray | None:
    """The prepared abnormal (polyp) images, or None when the folder holds none."""
    folder = data / "abnormal"
    if not (folder.is_dir() and any(folder.glob("*.png"))):
        return None
    return load_processed(data, "abnormal")[0]


def main(args: argparse.Namespace) -> None:
    run = Path(args.out)
    data = args.data or Path(read_run_config(run, "train_endovae", "--run")["data"])
    model = load_model(run / "checkpoints" / "best.keras", EndoVAE)
    normal = read_split(data, run)
    groups = {"validation": normal["validation"]}
    polyps = load_polyps(data)
    if polyps is None:
        print(f"No abnormal images in {data}: skipping polyps and anomaly detection.")
    else:
        groups["polyps"] = polyps

    mean_image = normal["train"].mean(axis=0)
    rows, score_frames = [], []
    samples = {"generated": generate(model, GENERATED, args.seed)}
    for name, images in groups.items():
        scores = vae_scores(model, images)
        rows += quality_rows(name, images, scores["reconstructions"])
        rows += quality_rows(
            f"{name}: mean-image baseline", images, np.broadcast_to(mean_image, images.shape)
        )
        score_frames.append(
            pd.DataFrame(
                {
                    "group": name,
                    "neg_elbo": scores["neg_elbo"],
                    "recon_error": scores["recon_error"],
                }
            )
        )
        samples[f"{name}_originals"] = images[:SHOWN]
        samples[f"{name}_reconstructions"] = scores["reconstructions"][:SHOWN]

    quality = pd.DataFrame(rows)
    scores = pd.concat(score_frames, ignore_index=True)
    write_csv(run / "metrics.csv", quality)
    write_csv(run / "scores.csv", scores)
    np.savez_compressed(run / "samples.npz", **samples)
    sections = [("Reconstruction quality", markdown_table(quality))]
    if polyps is not None:
        anomaly = anomaly_table(scores)
        write_csv(run / "anomaly.csv", anomaly)
        sections.append(("Anomaly detection (polyps positive)", markdown_table(anomaly)))
    draw_figures(run)
    links = "\n\n".join(f"![{f.stem}](figures/{f.name})" for f in sorted(run.glob("figures/*.png")))
    demo = is_synthetic(data)
    write_report(run / "report.md", "EndoVAE evaluation", [*sections, ("Figures", links)], demo)
    for _, body in sections:
        print(body, end="\n\n")
    print(f"Report: {run / 'report.md'}")


def generate(model: keras.Model, n: int, seed: int) -> np.ndarray:
    """Decoder outputs for `n` latent vectors drawn from N(0, I)."""
    latent_dim = model.decoder.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
    return keras.ops.convert_to_numpy(model.decoder(z))


def anomaly_table(scores: pd.DataFrame) -> pd.DataFrame:
    """AUROC and AUPRC of each anomaly score, polyps as positives."""
    labels = (scores["group"] == "polyps").to_numpy()
    return pd.DataFrame(
        [
            {
                "Score": name,
                "AUROC": auroc(labels, scores[name]),
                "AUPRC": auprc(labels, scores[name]),
            }
            for name in ("neg_elbo", "recon_error")
        ]
    )


if __name__ == "__main__":
    run_app(main, parser())
