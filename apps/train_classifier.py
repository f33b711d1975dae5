"""Source-only baseline: train the task classifier on MNIST, measure it on MNIST-M.

python -m apps.train_classifier --mnist PATH --mnistm PATH --out DIR [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from apps import common
from evaluation.figures import plot_domain_samples, plot_training_curves, save_figures
from evaluation.metrics import accuracy
from evaluation.reports import markdown_table, write_report
from preprocessing.digit_splits import QUICK_TRAIN, paired_split
from preprocessing.digits import domain_names
from preprocessing.files import write_csv, write_npz, writing
from training.devices import device_strategy, jit_compile, seed_everything
from training.run_folder import (
    FIGURES,
    METRICS,
    REPORT,
    SAMPLES,
    read_config,
    read_history,
    read_samples,
    start_run,
)
from training.task_classifier import EPOCHS, QUICK_EPOCHS, train_task_classifier


def parser() -> argparse.ArgumentParser:
    p = common.make_parser("train_classifier", __doc__.splitlines()[0])
    common.add_pair_flags(p)
    common.add_training_flags(p)
    return p


def main(args: argparse.Namespace) -> None:
    common.check_pair_flags(args)
    strategy = device_strategy(args.strategy, args.mixed_precision)  # before any device work
    out = start_run(args, identity=("pair", "mnist_resize", "seed", "batch_size", "quick"))
    seed_everything(args.seed)
    pair = common.pair_from_flags(args)
    train, test = paired_split(len(pair.source), seed=args.seed)
    if args.quick:
        train = np.sort(np.random.default_rng(args.seed).permutation(train)[:QUICK_TRAIN])
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    print(f"{pair.name}: {len(train)} train / {len(test)} test pairs, {epochs} epochs")

    best = train_task_classifier(
        out,
        (pair.source[train], pair.labels[train]),
        (pair.source[test], pair.labels[test]),
        epochs,
        args.seed,
        strategy,
        args.batch_size,
        jit_compile(args.jit),
        tensorboard=args.tensorboard,
    )
    metrics = pd.DataFrame(
        [
            {
                "model": "source only",
                "source_test_accuracy": accuracy(best, pair.source[test], pair.labels[test]),
                "target_all_accuracy": accuracy(best, pair.target, pair.target_labels),
            }
        ]
    )
    write_csv(out / METRICS, metrics)
    write_npz(
        out / SAMPLES,
        source=pair.source[test[:5]],
        target=pair.target[test[:5]],
        labels=pair.labels[test[:5]],
    )
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    table = metrics.rename(
        columns={
            "source_test_accuracy": f"{pair.source_name} test accuracy",
            "target_all_accuracy": f"{pair.target_name} whole-set accuracy",
        }
    )
    write_report(
        out / REPORT,
        f"Source-only classifier: {pair.name}",
        [
            ("Domain gap", markdown_table(table)),
            (
                "Figures",
                "![pairs](figures/domain_samples.png)\n\n![curves](figures/training_curves.png)",
            ),
        ],
        pair.demo,
    )
    print(markdown_table(table))
    print(f"Run folder: {out}")


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from its saved files (config, samples, history)."""
    demo = read_config(out)["pair"] == "digits-demo"
    source_name, target_name = domain_names(demo)
    samples = read_samples(out)
    figures = {
        "domain_samples": plot_domain_samples(
            samples["source"], samples["target"], samples["labels"], source_name, target_name, demo
        ),
        "training_curves": plot_training_curves(
            read_history(out), f"Source-only classifier on {source_name}", demo
        ),
    }
    save_figures(figures, out / FIGURES, pdf)


if __name__ == "__main__":
    common.run_app(main, parser())
