"""PixelDA: adapt the task classifier from MNIST to MNIST-M without MNIST-M labels.

python -m apps.train_pixelda --mnist PATH --mnistm PATH --out DIR [--preset homework|paper]
    [--epochs N] [--steps N] [--quick] [--seed S] [--baseline DIR] [--pair mnist-mnistm|digits-demo]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from apps import train_classifier
from apps.common import add_pair_flags, add_training_flags, make_parser, pair_from_flags, run_app
from evaluation.figures import save_figure
from evaluation.generative import (
    FeatureSpace,
    generative_report,
    inception_space,
    target_feature_space,
)
from evaluation.metrics import accuracy, predict_digits
from evaluation.pixelda_figures import plot_pixelda_history, plot_pixelda_samples
from evaluation.reports import markdown_table, write_report
from models.pixelda import PRESETS, PixelDA, build_pixelda
from preprocessing.digits import (
    DigitPair,
    adaptation_dataset,
    check_pair,
    labelled_dataset,
    paired_split,
)
from preprocessing.files import InputError, read_json, write_csv
from training.callbacks import run_callbacks
from training.devices import device_strategy, seed_everything
from training.run_folder import completed_epochs, read_metrics_row, read_run_config, start_run
from training.saving import load_model

VALIDATION_SIZE = 1000  # labelled target images that choose best.keras, nothing else
EVAL_SIZE, QUICK_EVAL_SIZE = 5000, 2000  # images per per-epoch accuracy (history.csv)
QUICK_STEPS, STEP_EPOCHS = 300, 10  # --quick run; epochs a --steps run is cut into
SAMPLES = 8
GENERATIVE_SIZE, QUICK_GENERATIVE_SIZE = 5000, 1000  # images per set for FID, KID, PRDC
KID_SUBSETS, QUICK_KID_SUBSETS = 100, 20
FEATURE_EPOCHS, QUICK_FEATURE_EPOCHS = 10, 3  # the evaluation-only feature classifier


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_pixelda", __doc__.splitlines()[0])
    add_pair_flags(p)
    add_training_flags(p)
    p.add_argument("--preset", choices=sorted(PRESETS), default="homework")
    p.set_defaults(batch_size=None)  # the preset's
    p.add_argument("--steps", type=int, help="train steps in all (cut into --epochs, default 10)")
    p.add_argument("--baseline", type=Path, help="a train_classifier run folder (source only)")
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=[],
        metavar="DIR",
        help="train_cyclegan run folders (same --pair, --seed): their rows join Table 1",
    )
    p.add_argument(
        "--inception",
        action="store_true",
        help="also FID/KID/PRDC in InceptionV3 features (downloads its weights: Colab)",
    )
    return p


@dataclasses.dataclass
class Splits:
    """Indices of the pairs: training, target validation (1,000) and the rest of the test."""

    train: np.ndarray
    test: np.ndarray
    validation: np.ndarray
    target_test: np.ndarray


def split_pairs(n: int, seed: int) -> Splits:
    """The seeded 20% paired test split; its first 1,000 (seeded order) validate on the target."""
    train, test = paired_split(n, 0.2, seed)
    shuffled = np.random.default_rng(seed).permutation(test)
    n_val = min(VALIDATION_SIZE, len(test) // 2)
    return Splits(train, test, np.sort(shuffled[:n_val]), np.sort(shuffled[n_val:]))


def schedule(args: argparse.Namespace, n_train: int, batch_size: int) -> tuple[int, int]:
    """(epochs, steps per epoch) from --steps / --epochs / --quick and the preset."""
    steps = args.steps or (QUICK_STEPS if args.quick else None)
    if steps is not None:
        epochs = args.epochs or (3 if args.quick else STEP_EPOCHS)
        return epochs, math.ceil(steps / epochs)
    return args.epochs or PRESETS[args.preset].epochs, n_train // batch_size


class EpochAccuracies(keras.callbacks.Callback):
    """Add T's accuracy on fixed labelled sets to each epoch's logs (no training on them)."""

    def __init__(self, sets: dict[str, tuple[np.ndarray, np.ndarray]]):
        super().__init__()
        self.sets = sets

    def on_epoch_end(self, epoch, logs=None):
        for name, (images, labels) in self.sets.items():
            logs[name] = accuracy(self.model, images, labels)


class StepRate(keras.callbacks.Callback):
    """Log `steps_per_second` of each epoch's training (the first one includes tracing)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps, self.end = batch + 1, time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["steps_per_second"] = self.steps / max(self.end - self.start, 1e-9)


def main(args: argparse.Namespace) -> None:
    check_pair(args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds)
    baseline = read_baseline(args.baseline, args) if args.baseline else None
    compared = [read_compared(folder, args) for folder in args.compare]
    inception = inception_space(value_range=(0, 255)) if args.inception else None  # fail early
    preset = PRESETS[args.preset]
    args.hyperparameters = dataclasses.asdict(preset)
    args.batch_size = args.batch_size or preset.batch_size
    identity = ("pair", "mnist_resize", "seed", "batch_size", "quick", "preset", "steps", "epochs")
    out = start_run(args, identity)
    baseline = baseline or train_baseline(args, out)
    seed_everything(args.seed)
    pair = pair_from_flags(args)
    splits = split_pairs(len(pair.source), args.seed)
    epochs, steps_per_epoch = schedule(args, len(splits.train), args.batch_size)
    print(
        f"{pair.name}: {len(splits.train)} train pairs, {len(splits.validation)} target "
        f"validation, {len(splits.target_test)} target test; preset {args.preset}, "
        f"{epochs} epochs x {steps_per_epoch} steps"
    )

    with device_strategy(args.strategy, args.mixed_precision).scope():
        model = build_pixelda(preset, seed=args.seed, jit_compile=args.jit)
    model.fit(
        adaptation_dataset(
            pair.source[splits.train],
            pair.labels[splits.train],
            pair.target[splits.train],
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
            extra=[StepRate(), EpochAccuracies(evaluation_sets(pair, splits, args))],
        ),
    )
    best = load_model(out / "checkpoints" / "best.keras", PixelDA)
    write_results(out, best, pair, splits, baseline, args, inception, compared)


def evaluation_sets(
    pair: DigitPair, splits: Splits, args: argparse.Namespace
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-epoch accuracy sets: seeded subsets of source train, source test, target test."""
    size = QUICK_EVAL_SIZE if args.quick else EVAL_SIZE
    rng = np.random.default_rng(args.seed)

    def subset(index: np.ndarray) -> np.ndarray:
        return np.sort(rng.permutation(index)[:size])

    train, test, target = subset(splits.train), subset(splits.test), subset(splits.target_test)
    return {
        "source_train_accuracy": (pair.source[train], pair.labels[train]),
        "source_test_accuracy": (pair.source[test], pair.labels[test]),
        "target_test_accuracy": (pair.target[target], pair.target_labels[target]),
    }


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
    columns = ("model", "source_test_accuracy", "target_test_accuracy", "target_all_accuracy")
    return {column: row.get(column) for column in columns}


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
    argv = ["--out", str(out / "baseline"), "--pair", args.pair, "--seed", str(args.seed)]
    argv += ["--batch-size", str(args.batch_size), "--mnist-resize", args.mnist_resize]
    for flag in ("mnist", "mnistm", "mnistm_backgrounds"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.quick:
        argv.append("--quick")
    print("No --baseline: training the source-only classifier first.")
    train_classifier.main(train_classifier.parser().parse_args(argv))
    return read_metrics_row(
        out / "baseline", "train_classifier", "--baseline", "target_all_accuracy"
    )


def write_results(
    out: Path,
    model: keras.Model,
    pair: DigitPair,
    splits: Splits,
    baseline: dict,
    args: argparse.Namespace,
    inception: FeatureSpace | None = None,
    compared: list[dict] = (),
) -> None:
    """metrics.csv, generative.csv, report.md (Table 1, generative metrics), samples.npz
    and the figures. `compared`: rows of other methods (--compare) for Table 1."""
    test, target_test = splits.test, splits.target_test
    adapted = table1_row("PixelDA", model, pair, splits)
    metrics = pd.DataFrame([{**baseline, "model": "source only"}, adapted, *compared])
    write_csv(out / "metrics.csv", metrics)

    index = test[:SAMPLES]
    rows = {
        pair.source_name: pair.source[index],
        "generated": model.translate(pair.source[index]),
        pair.target_name: pair.target[index],
    }
    np.savez_compressed(
        out / "samples.npz",
        names=np.array(list(rows)),
        images=np.stack(list(rows.values())),
        predictions=np.stack([predict_digits(model, v) for v in rows.values()]),
        labels=pair.labels[index],
    )
    draw_figures(out)
    _, sections = generative_results(out, pair, splits, model.translate, "PixelDA", args, inception)

    table = metrics[["model", "source_test_accuracy", "target_all_accuracy"]].rename(
        columns={
            "source_test_accuracy": f"{pair.source_name} test accuracy",
            "target_all_accuracy": f"{pair.target_name} whole-set accuracy",
        }
    )
    note = (
        f"PixelDA's {pair.target_name} accuracy on the held-out target test split "
        f"({len(target_test)} images, never trained on): {adapted['target_test_accuracy']:.4f}. "
        f"best.keras was chosen on {len(splits.validation)} labelled target images."
    )
    if compared:
        note += (
            " CycleGAN + classifier (--compare): the task classifier trained on CycleGAN's "
            f"translations of {pair.source_name}, chosen without {pair.target_name} labels."
        )
    write_report(
        out / "report.md",
        f"PixelDA: {pair.name}",
        [
            ("Table 1", f"{markdown_table(table)}\n\n{note}"),
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


def table1_row(name: str, classifier: keras.Model, pair: DigitPair, splits: Splits) -> dict:
    """A Table 1 row: the classifier's accuracy on the source test split, the target test
    split (never trained on) and the whole target set."""
    test, target_test = splits.test, splits.target_test
    return {
        "model": name,
        "source_test_accuracy": accuracy(classifier, pair.source[test], pair.labels[test]),
        "target_test_accuracy": accuracy(
            classifier, pair.target[target_test], pair.target_labels[target_test]
        ),
        "target_all_accuracy": accuracy(classifier, pair.target, pair.target_labels),
    }


def generative_results(
    out: Path,
    pair: DigitPair,
    splits: Splits,
    translate_source: Callable[[np.ndarray], np.ndarray],
    method: str,
    args: argparse.Namespace,
    inception: FeatureSpace | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """FID, KID and PRDC of translated source images (`method`), of the untranslated
    source and of other real target images, against held-out real target images.

    The target test split is halved (seeded). Feature space: a classifier trained on the
    labelled target validation split and the first half (evaluation only; cached as
    checkpoints/target_features.keras), and InceptionV3 too when given. Real images: up to
    5,000 of the second half (1,000 with --quick), never trained on by anything; as many
    others come from the training split. Writes generative.csv; returns it and the report
    sections.
    """
    rng = np.random.default_rng(args.seed)
    shuffled = rng.permutation(splits.target_test)
    half = len(shuffled) // 2
    labelled = np.sort(np.concatenate([splits.validation, shuffled[:half]]))
    real = np.sort(shuffled[half:][: QUICK_GENERATIVE_SIZE if args.quick else GENERATIVE_SIZE])
    other = np.sort(rng.permutation(splits.train)[: len(real)])
    source = pair.source[other]
    fakes = {
        f"{pair.target_name}, other real images (reference)": pair.target[other],
        f"{pair.source_name}, not adapted": source,
        f"{method} translations of {pair.source_name}": translate_source(source),
    }
    space = target_feature_space(
        pair.target[labelled],
        pair.target_labels[labelled],
        args.seed,
        QUICK_FEATURE_EPOCHS if args.quick else FEATURE_EPOCHS,
        out / "checkpoints" / "target_features.keras",
        pair.target_name,
    )
    correct = accuracy(space.model, pair.target[real], pair.target_labels[real])
    spaces = {f"{pair.target_name} classifier": space}
    if inception is not None:
        spaces["InceptionV3"] = inception
    generative, sections = generative_report(
        pair.target[real],
        fakes,
        spaces,
        f"{len(real)} held-out {pair.target_name} test-split images (the feature classifier "
        f"labels {correct:.1%} of them correctly)",
        args.seed,
        QUICK_KID_SUBSETS if args.quick else KID_SUBSETS,
    )
    write_csv(out / "generative.csv", generative)
    return generative, sections


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from config.json, history.csv and samples.npz alone."""
    demo = read_json(out / "config.json")["pair"] == "digits-demo"
    history = pd.read_csv(out / "history.csv")
    save_figure(plot_pixelda_history(history, demo), out / "figures" / "history.png", pdf)
    with np.load(out / "samples.npz") as saved:
        names = [str(n) for n in saved["names"]]
        rows = dict(zip(names, saved["images"], strict=True))
        predictions = dict(zip(names, saved["predictions"], strict=True))
        fig = plot_pixelda_samples(rows, predictions, saved["labels"], demo)
    save_figure(fig, out / "figures" / "samples.png", pdf)


if __name__ == "__main__":
    run_app(main, parser())
