"""Evaluate a trained EndoVAE: generation, reconstruction quality, anomaly detection.

python -m apps.evaluate_endovae --run DIR [--data DIR] [--inception]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from apps.common import add_inception_flag, inception_from_flags, make_parser, run_app
from evaluation.anomaly import anomaly_table, vae_scores
from evaluation.endovae_figures import endovae_figures
from evaluation.figures import save_figures
from evaluation.reports import markdown_table, settings_section, write_report
from evaluation.vae_quality import quality_rows, sample_metrics, unused_latent
from models.endovae import PRESET_FLAGS, EndoVAE
from preprocessing.files import read_json, write_csv, write_npz
from preprocessing.kvasir import is_synthetic, load_polyps, load_processed
from preprocessing.kvasir_split import split_images
from training.run_folder import (
    ANOMALY,
    BEST,
    FIGURES,
    GENERATIVE,
    METRICS,
    REPORT,
    SAMPLES,
    SCORES,
    SPLIT,
    read_history,
    read_run_config,
    read_samples,
)
from training.saving import load_model

SHOWN, GENERATED = 5, 9


def parser() -> argparse.ArgumentParser:
    p = make_parser("evaluate_endovae", __doc__.splitlines()[0])
    p.add_argument("--run", dest="out", type=Path, help="run folder of train_endovae (= --out)")
    p.set_defaults(out=Path("runs") / "train_endovae")
    p.add_argument("--data", type=Path, help="prepared data (default: the run's --data)")
    add_inception_flag(p)
    return p


def main(args: argparse.Namespace) -> None:
    run = Path(args.out)
    config = read_run_config(run, "train_endovae", "--run")
    data = args.data or Path(config["data"])
    model = load_model(run / BEST, EndoVAE)
    inception = inception_from_flags(args, (0, 1))
    normal = split_images(*load_processed(data, "normal"), read_json(run / SPLIT))
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
    write_csv(run / METRICS, quality)
    write_csv(run / SCORES, scores)
    write_npz(run / SAMPLES, **samples)
    trained = {k: config.get(k) for k in (*PRESET_FLAGS, "warmup_steps", "epochs", "beta")}
    warning = unused_latent(read_history(run))
    sections = [("Warning", f"> **Warning:** {warning}.")] if warning else []
    sections += [
        ("Reconstruction quality", markdown_table(quality)),
        settings_section(config.get("preset", "(before presets)"), trained),
    ]
    generative, generative_sections = sample_metrics(
        model.encoder, normal, generated, reconstructed["validation"], args.seed, inception
    )
    if generative is not None:
        write_csv(run / GENERATIVE, generative)
    sections += generative_sections
    if polyps is not None:
        anomaly = anomaly_table(scores)
        write_csv(run / ANOMALY, anomaly)
        sections.append(("Anomaly detection (polyps positive)", markdown_table(anomaly)))
    demo = is_synthetic(data)
    # drawn from the files written, as make_figures draws them
    saved = read_samples(run), pd.read_csv(run / SCORES)
    save_figures(endovae_figures(read_history(run), *saved, demo), run / FIGURES)
    links = "\n\n".join(f"![{f.stem}](figures/{f.name})" for f in sorted(run.glob("figures/*.png")))
    write_report(run / REPORT, "EndoVAE evaluation", [*sections, ("Figures", links)], demo)
    for _, body in sections:
        print(body, end="\n\n")
    print(f"Report: {run / REPORT}")


if __name__ == "__main__":
    run_app(main, parser())
