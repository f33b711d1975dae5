"""Evaluate a trained EndoVAE: generation, reconstruction quality, anomaly detection.

python -m apps.evaluate_endovae --run DIR [--data DIR] [--inception]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from apps.common import make_parser, run_app
from evaluation.endovae_figures import draw_endovae_figures
from evaluation.generative import FeatureSpace, generative_report, inception_space, model_space
from evaluation.metrics import anomaly_table, psnr, ssim, vae_scores
from evaluation.reports import markdown_table, write_report
from models.endovae import EndoVAE
from preprocessing.files import write_csv
from preprocessing.kvasir import is_synthetic, load_processed
from preprocessing.kvasir_split import read_split
from training.run_folder import read_run_config
from training.saving import load_model

SHOWN, GENERATED = 5, 9


def parser() -> argparse.ArgumentParser:
    p = make_parser("evaluate_endovae", __doc__.splitlines()[0])
    p.add_argument("--run", dest="out", type=Path, help="run folder of train_endovae (= --out)")
    p.set_defaults(out=Path("runs") / "train_endovae")
    p.add_argument("--data", type=Path, help="prepared data (default: the run's --data)")
    p.add_argument(
        "--inception",
        action="store_true",
        help="also FID/KID/PRDC in InceptionV3 features (downloads its weights: Colab)",
    )
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
    inception = inception_space(value_range=(0, 1)) if args.inception else None
    normal = read_split(data, run)
    groups = {"validation": normal["validation"]}
    polyps = load_polyps(data)
    if polyps is None:
        print(f"No abnormal images in {data}: skipping polyps and anomaly detection.")
    else:
        groups["polyps"] = polyps

    mean_image = normal["train"].mean(axis=0)
    rows, score_frames = [], []
    # one draw: the first GENERATED are shown, all are measured against the validation frames
    generated = model.sample(max(GENERATED, len(groups["validation"])), args.seed)
    samples, reconstructed = {"generated": generated[:GENERATED]}, {}
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
        reconstructed[name] = scores["reconstructions"]

    quality = pd.DataFrame(rows)
    scores = pd.concat(score_frames, ignore_index=True)
    write_csv(run / "metrics.csv", quality)
    write_csv(run / "scores.csv", scores)
    np.savez_compressed(run / "samples.npz", **samples)
    sections = [("Reconstruction quality", markdown_table(quality))]
    sections += generative_results(
        run, model, normal, generated, reconstructed["validation"], args.seed, inception
    )
    if polyps is not None:
        anomaly = anomaly_table(scores)
        write_csv(run / "anomaly.csv", anomaly)
        sections.append(("Anomaly detection (polyps positive)", markdown_table(anomaly)))
    draw_endovae_figures(run, demo=is_synthetic(data))
    links = "\n\n".join(f"![{f.stem}](figures/{f.name})" for f in sorted(run.glob("figures/*.png")))
    demo = is_synthetic(data)
    write_report(run / "report.md", "EndoVAE evaluation", [*sections, ("Figures", links)], demo)
    for _, body in sections:
        print(body, end="\n\n")
    print(f"Report: {run / 'report.md'}")


def generative_results(
    run: Path,
    model: EndoVAE,
    normal: dict[str, np.ndarray],
    generated: np.ndarray,
    reconstructions: np.ndarray,
    seed: int,
    inception: FeatureSpace | None = None,
) -> list[tuple[str, str]]:
    """FID, KID and PRDC of samples, validation reconstructions and (as a reference) real
    training frames against the held-out healthy validation frames, in the features of
    the trained encoder's penultimate layer (and of InceptionV3 when given): generative.csv
    and the report sections."""
    validation = normal["validation"]
    n = len(validation)
    if n < 2:
        print("One validation image: too few for FID, KID and precision/recall.")
        return []
    train = normal["train"][np.random.default_rng(seed).permutation(len(normal["train"]))[:n]]
    fakes = {
        "training frames, real (reference)": train,
        "samples: decoder(z), z ~ N(0, I)": generated[:n],
        "reconstructions of the validation frames": reconstructions,
    }
    spaces = {
        "EndoVAE encoder": model_space(model.encoder, None, "the trained EndoVAE encoder", 64)
    }
    if inception is not None:
        spaces["InceptionV3"] = inception
    table, sections = generative_report(
        validation, fakes, spaces, f"the {n} held-out healthy validation frames", seed
    )
    write_csv(run / "generative.csv", table)
    return sections


if __name__ == "__main__":
    run_app(main, parser())
