"""Train a MAF density model on the healthy images and compare anomaly detectors on polyps.

python -m apps.train_flow --data DIR --out DIR [--space pixels|latent] [--vae-run DIR]
    [--transforms 5] [--hidden 512 512] [--side 16] [--compare RUN ...] [--quick]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from apps.common import add_training_flags, make_parser, run_app
from evaluation.anomaly import anomaly_table, vae_scores
from evaluation.figures import save_figures
from evaluation.flow_figures import flow_figures
from evaluation.reports import markdown_table, write_report
from models.endovae import EndoVAE
from models.flows import MAF, SPACES
from preprocessing.files import InputError, read_json, write_csv, write_npz, writing
from preprocessing.kvasir import is_synthetic, load_polyps, load_processed
from preprocessing.kvasir_split import split_images, split_names, training_images
from preprocessing.pipelines import array_batches, steps_per_epoch
from training.callbacks import plateau_callbacks
from training.devices import device_strategy, jit_compile, seed_everything
from training.run_folder import (
    ANOMALY,
    BEST,
    FIGURES,
    METRICS,
    REPORT,
    SAMPLES,
    SCORES,
    SPLIT,
    completed_epochs,
    read_config,
    read_history,
    read_run_config,
    read_samples,
    start_run,
    stored_split,
)
from training.saving import load_model

EPOCHS, BATCH = 500, 128
QUICK_EPOCHS, QUICK_BATCH = 15, 32
HIDDEN = {"pixels": [512, 512], "latent": [64, 64]}
MONITOR = "val_nll"
SAMPLED = 16  # images drawn from the flow
FLOW_FIGURES = ("history", "samples", "roc", "score_histograms")


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_flow", __doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder written by prepare_kvasir")
    p.add_argument("--space", choices=SPACES, default="pixels", help="what the flow models")
    p.add_argument("--vae-run", type=Path, help="a train_endovae run: its split, latents, scores")
    p.add_argument("--transforms", type=int, default=5, help="stacked MADE transforms (K)")
    p.add_argument("--hidden", type=int, nargs="+", help="MADE hidden units (default per space)")
    p.add_argument("--side", type=int, default=16, help="pixels: images downsampled to side^2")
    p.add_argument("--batch-size", type=int, help=f"default {BATCH} ({QUICK_BATCH} with --quick)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="initial Adam LR")
    p.add_argument("--val-fraction", type=float, default=0.2, help="normal images held out")
    p.add_argument("--copies", type=int, default=2, help="augmented copies per training image")
    p.add_argument("--compare", type=Path, nargs="*", default=[], help="other train_flow runs")
    add_training_flags(p)
    return p


def flow_inputs(images: np.ndarray, space: str, side: int, vae: EndoVAE | None) -> np.ndarray:
    """Flat flow inputs: images area-downsampled to side x side, or EndoVAE latent means."""
    if space == "latent":
        return vae.encoder.predict(images, batch_size=64, verbose=0)[0]
    small = [cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA) for image in images]
    return np.stack(small).reshape(len(images), -1)


def main(args: argparse.Namespace) -> None:
    if args.space == "latent" and not args.vae_run:
        raise InputError("--space latent needs --vae-run DIR (a train_endovae run folder)")
    for run in args.compare:
        read_run_config(run, "train_flow", "--compare")
    vae = None
    if args.vae_run:
        read_run_config(args.vae_run, "train_endovae", "--vae-run")
        vae = load_model(args.vae_run / BEST, EndoVAE)
    normal, names = load_processed(args.data, "normal")
    split = (
        read_json(args.vae_run / SPLIT)  # the same validation images for every detector
        if args.vae_run
        else split_names(names, args.val_fraction, args.seed, args.quick)
    )
    args.batch_size = args.batch_size or (QUICK_BATCH if args.quick else BATCH)
    args.hidden = args.hidden or HIDDEN[args.space]
    identity = ("data", "seed", "quick", "space", "vae_run", "transforms", "hidden", "side")
    strategy = device_strategy(args.strategy, args.mixed_precision)  # before any device work
    out = start_run(args, identity=(*identity, "batch_size", "val_fraction", "copies"))
    seed_everything(args.seed)
    split = stored_split(out, split)
    images = split_images(normal, names, split)
    train_images = training_images(images, split, args.copies, args.seed)
    train = flow_inputs(train_images, args.space, args.side, vae)
    validation = flow_inputs(images["validation"], args.space, args.side, vae)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    print(
        f"MAF on {args.space} ({train.shape[1]} dimensions): {len(images['train'])} normal "
        f"training images (x{args.copies + 1} with augmentation), {len(validation)} validation"
    )

    with strategy.scope():
        loc, scale = train.mean(axis=0), train.std(axis=0) + 1e-6
        model = MAF(train.shape[1], args.transforms, args.hidden, args.space, loc, scale, args.seed)
        model.compile(keras.optimizers.Adam(args.learning_rate), jit_compile=jit_compile(args.jit))
    model.fit(
        array_batches(train, args.batch_size, args.seed, completed_epochs(out)),
        steps_per_epoch=steps_per_epoch(len(train), args.batch_size),
        validation_data=array_batches(validation, args.batch_size),
        epochs=epochs,
        callbacks=plateau_callbacks(out, MONITOR, tensorboard=args.tensorboard),
        verbose=2,
    )
    best = load_model(out / BEST, MAF)
    evaluate(args, out, best, vae, images["validation"])
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    print(f"Report: {out / REPORT}")


def evaluate(
    args: argparse.Namespace,
    out: Path,
    model: MAF,
    vae: EndoVAE | None,
    validation: np.ndarray,
) -> None:
    """scores.csv (every detector, per image), anomaly.csv, metrics.csv, samples, report."""
    groups = {"validation": validation}
    polyps = load_polyps(args.data)
    if polyps is not None:
        groups["polyps"] = polyps
    frames = []
    for group, images in groups.items():
        inputs = flow_inputs(images, args.space, args.side, vae)
        start = time.perf_counter()
        nll = -model.predict(inputs, batch_size=256, verbose=0)
        print(f"{group}: {len(images)} images scored in {time.perf_counter() - start:.2f} s")
        frame = pd.DataFrame({"group": group, f"maf_{args.space}": nll})
        if vae is not None:
            scores = vae_scores(vae, images)
            frame["neg_elbo"], frame["recon_error"] = scores["neg_elbo"], scores["recon_error"]
        frames.append(frame)
    scores = merge_compared(pd.concat(frames, ignore_index=True), out, args.compare)
    write_csv(out / SCORES, scores)
    bits = scores.groupby("group")[f"maf_{args.space}"].mean() / (model.dims * np.log(2))
    metrics = pd.DataFrame(
        [
            {"group": g, "images": (scores.group == g).sum(), "bits_per_dim": b}
            for g, b in bits.items()
        ]
    )
    write_csv(out / METRICS, metrics)
    sections = [(f"Bits per dimension, MAF on {args.space}", markdown_table(metrics))]
    if polyps is not None:
        anomaly = anomaly_table(scores)
        write_csv(out / ANOMALY, anomaly)
        sections.append(("Anomaly detection (polyps positive)", markdown_table(anomaly)))
    start = time.perf_counter()
    samples = model.sample(SAMPLED, seed=args.seed)
    print(f"{SAMPLED} samples in {time.perf_counter() - start:.1f} s (sequential inversion)")
    if args.space == "latent":
        samples = keras.ops.convert_to_numpy(vae.decoder(samples))
    else:
        samples = samples.reshape(SAMPLED, args.side, args.side, -1)
    write_npz(out / SAMPLES, samples=samples)
    links = "\n\n".join(f"![{n}](figures/{n}.png)" for n in FLOW_FIGURES)
    title = f"MAF on {args.space}"
    write_report(out / REPORT, title, [*sections, ("Figures", links)], is_synthetic(args.data))
    for _, body in sections:
        print(body, end="\n\n")


def merge_compared(scores: pd.DataFrame, out: Path, runs: list[Path]) -> pd.DataFrame:
    """Add the detector columns of other train_flow runs scored on the same images."""
    split = read_json(out / SPLIT)
    for run in runs:
        config = read_run_config(run, "train_flow", "--compare")
        other = pd.read_csv(run / SCORES) if (run / SCORES).exists() else None
        if other is None or read_json(run / SPLIT) != split or len(other) != len(scores):
            raise InputError(
                f"--compare {run}: not scored on the same images as this run (train it with the "
                "same --data, --seed, --val-fraction and --vae-run, and let it finish)"
            )
        column = f"maf_{config['space']}"
        scores[column] = other[column].to_numpy()
    return scores


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from its saved files (`apps.make_figures`)."""
    config = read_config(out)
    samples = scores = None
    if (out / SAMPLES).exists():
        samples, scores = read_samples(out)["samples"], pd.read_csv(out / SCORES)
    figures = flow_figures(
        read_history(out), config["space"], samples, scores, is_synthetic(config["data"])
    )
    save_figures(figures, out / FIGURES, pdf)


if __name__ == "__main__":
    run_app(main, parser())
