"""PixelDA: adapt the task classifier from MNIST to MNIST-M without MNIST-M labels.

python -m apps.train_pixelda --mnist PATH --mnistm PATH --out DIR [--preset homework|paper]
    [--epochs N] [--steps N] [--quick] [--seed S] [--baseline DIR] [--pair mnist-mnistm|digits-demo]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from apps import common, registry
from evaluation.domain_adaptation import (
    TABLE1,
    epoch_accuracies,
    table1,
    table1_row,
    translation_metrics,
)
from evaluation.feature_spaces import FeatureSpace
from evaluation.figures import save_figures
from evaluation.metrics import predict_digits
from evaluation.pixelda_figures import plot_pixelda_history, plot_pixelda_samples
from evaluation.reports import markdown_table, settings_section, write_report
from models.pixelda import PRESETS, PixelDA, build_pixelda
from preprocessing.digit_pipelines import adaptation_dataset, labelled_dataset
from preprocessing.digit_splits import Splits, split_pairs
from preprocessing.digits import DigitPair
from preprocessing.files import InputError, write_csv, write_npz, writing
from training import run_folder
from training.callbacks import EpochMetrics, StepRate, run_callbacks
from training.devices import device_strategy, jit_compile, seed_everything
from training.run_folder import (
    completed_epochs,
    read_config,
    read_history,
    read_metrics_row,
    read_run_config,
    read_samples,
    start_run,
)
from training.saving import load_model
from training.schedule import STEP_EPOCHS, schedule

SAMPLES_SHOWN = 8  # test pairs in samples.npz: source, generated, target
BASELINE = "baseline"  # subfolder: the source-only classifier trained without --baseline


def parser() -> argparse.ArgumentParser:
    p = common.make_parser("train_pixelda", __doc__.splitlines()[0])
    common.add_pair_flags(p)
    common.add_training_flags(p)
    p.add_argument("--preset", choices=sorted(PRESETS), default="homework")
    p.set_defaults(batch_size=None)  # the preset's
    p.add_argument(
        "--steps", type=int, help=f"train steps in all (cut into --epochs, default {STEP_EPOCHS})"
    )
    p.add_argument("--baseline", type=Path, help="a train_classifier run folder (source only)")
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="train_cyclegan run folders (same --pair, --seed): their rows join Table 1",
    )
    common.add_inception_flag(p)
    return p


def main(args: argparse.Namespace) -> None:
    common.check_pair_flags(args)
    baseline = read_baseline(args.baseline, args) if args.baseline else None
    compared = [read_compared(folder, args) for folder in args.compare]
    inception = common.inception_from_flags(args, (0, 255))
    preset = PRESETS[args.preset]
    args.hyperparameters = dataclasses.asdict(preset)
    args.batch_size = args.batch_size or preset.batch_size
    identity = ("pair", "mnist_resize", "seed", "batch_size", "quick", "preset", "steps", "epochs")
    strategy = device_strategy(args.strategy, args.mixed_precision)  # before any device work
    out = start_run(args, identity)
    baseline = baseline or train_baseline(args, out)
    seed_everything(args.seed)
    pair = common.pair_from_flags(args)
    splits = split_pairs(len(pair.source), args.seed)
    epochs, steps_per_epoch = schedule(
        len(splits.train), args.batch_size, preset.epochs, args.steps, args.epochs, args.quick
    )
    print(
        f"{pair.name}: {len(splits.train)} train pairs, {len(splits.validation)} target "
        f"validation, {len(splits.target_test)} target test; preset {args.preset}, "
        f"{epochs} epochs x {steps_per_epoch} steps"
    )

    with strategy.scope():
        model = build_pixelda(preset, seed=args.seed, jit_compile=jit_compile(args.jit))
    train = splits.train
    model.fit(
        adaptation_dataset(
            pair.source[train],
            pair.labels[train],
            pair.target[train],
            args.batch_size,
            args.seed,
            start_step=completed_epochs(out) * steps_per_epoch,
        ),
        validation_data=labelled_dataset(
            pair.target[splits.validation], pair.target_labels[splits.validation], 1000
        ),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=run_callbacks(
            out,
            "val_accuracy",
            "max",
            extra=[StepRate(), EpochMetrics(epoch_accuracies(pair, splits, args.seed, args.quick))],
            tensorboard=args.tensorboard,
        ),
    )
    best = load_model(out / run_folder.BEST, PixelDA)
    write_results(out, best, pair, splits, baseline, args, inception, compared)


def read_baseline(folder: Path, args: argparse.Namespace) -> dict:
    """The "source only" row of a train_classifier run folder's metrics.csv, which must be on
    this run's digits (--pair, --mnist-resize, --seed): the same test images."""
    row = read_metrics_row(folder, "train_classifier", "--baseline", "target_all_accuracy")
    check_same_digits(folder, "train_classifier", "--baseline", args)
    return row


def read_compared(folder: Path, args: argparse.Namespace) -> dict:
    """The "CycleGAN + classifier" row of a train_cyclegan run folder (--compare), which
    must be on this run's digits too."""
    row = read_metrics_row(folder, "train_cyclegan", "--compare", "target_all_accuracy")
    check_same_digits(folder, "train_cyclegan", "--compare", args)
    return {column: row.get(column) for column in TABLE1}


def check_same_digits(folder: Path, app: str, flag: str, args: argparse.Namespace) -> None:
    """Refuse a run folder made on other digits or another split than this run's."""
    config = read_run_config(folder, app, flag)
    if config.get("domain_a"):
        raise InputError(f"{flag} {folder}: a run on two image folders, not on --pair {args.pair}")
    keys = ("pair", "seed", "mnist_resize")[: 3 if args.pair == "mnist-mnistm" else 2]
    theirs = {k: config.get(k, "pad" if k == "mnist_resize" else None) for k in keys}
    ours = {k: getattr(args, k) for k in keys}
    if theirs != ours:
        made = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in theirs.items())
        wanted = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in ours.items())
        raise InputError(
            f"{flag} {folder}: made with {made}, not {wanted}: its accuracies are of other images"
        )


def train_baseline(args: argparse.Namespace, out: Path) -> dict:
    """Train the source-only classifier with train_classifier into `out/baseline`."""
    argv = ["--out", str(out / BASELINE), "--pair", args.pair, "--seed", str(args.seed)]
    argv += ["--batch-size", str(args.batch_size), "--mnist-resize", args.mnist_resize]
    for flag in ("mnist", "mnistm", "mnistm_backgrounds"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.quick:
        argv.append("--quick")
    print("No --baseline: training the source-only classifier first.")
    registry.run("train_classifier", argv)
    return read_metrics_row(out / BASELINE, "train_classifier", "--baseline", "target_all_accuracy")


def write_results(
    out: Path,
    model: PixelDA,
    pair: DigitPair,
    splits: Splits,
    baseline: dict,
    args: argparse.Namespace,
    inception: FeatureSpace | None = None,
    compared: list[dict] = (),
) -> None:
    """metrics.csv, generative.csv, report.md (Table 1, generative metrics), samples.npz
    and the figures. `compared`: rows of other methods (--compare) for Table 1."""
    adapted = table1_row("PixelDA", model, pair, splits)
    metrics = pd.DataFrame([{**baseline, "model": "source only"}, adapted, *compared])
    write_csv(out / run_folder.METRICS, metrics)

    index = splits.test[:SAMPLES_SHOWN]
    rows = {
        pair.source_name: pair.source[index],
        "generated": model.translate(pair.source[index]),
        pair.target_name: pair.target[index],
    }
    write_npz(
        out / run_folder.SAMPLES,
        names=np.array(list(rows)),
        images=np.stack(list(rows.values())),
        predictions=np.stack([predict_digits(model, v) for v in rows.values()]),
        labels=pair.labels[index],
    )
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    generative, sections = translation_metrics(
        pair,
        splits,
        model.translate,
        "PixelDA",
        args.seed,
        args.quick,
        out / run_folder.CHECKPOINTS / "target_features.keras",
        inception,
    )
    write_csv(out / run_folder.GENERATIVE, generative)

    table = table1(metrics, pair, ("model", "source_test_accuracy", "target_all_accuracy"))
    note = (
        f"PixelDA's {pair.target_name} accuracy on the held-out target test split "
        f"({len(splits.target_test)} images, never trained on): "
        f"{adapted['target_test_accuracy']:.4f}. "
        f"best.keras was chosen on {len(splits.validation)} labelled target images."
    )
    if compared:
        note += (
            " CycleGAN + classifier (--compare): the task classifier trained on CycleGAN's "
            f"translations of {pair.source_name}, chosen without {pair.target_name} labels."
        )
    write_report(
        out / run_folder.REPORT,
        f"PixelDA: {pair.name}",
        [
            ("Table 1", f"{markdown_table(table)}\n\n{note}"),
            settings_section(
                args.preset, {"mnist_resize": args.mnist_resize, **args.hyperparameters}
            ),
            *sections,
            ("Figures", "![history](figures/history.png)\n\n![samples](figures/samples.png)"),
        ],
        pair.demo,
    )
    print(markdown_table(table))
    print(note)
    for _, body in sections:
        print(body)
    print(f"Run folder: {out}")


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from config.json, history.csv and samples.npz alone."""
    demo = read_config(out)["pair"] == "digits-demo"
    samples = read_samples(out)
    names = [str(n) for n in samples["names"]]
    rows = dict(zip(names, samples["images"], strict=True))
    predictions = dict(zip(names, samples["predictions"], strict=True))
    figures = {
        "history": plot_pixelda_history(read_history(out), demo),
        "samples": plot_pixelda_samples(rows, predictions, samples["labels"], demo),
    }
    save_figures(figures, out / run_folder.FIGURES, pdf)


if __name__ == "__main__":
    common.run_app(main, parser())
