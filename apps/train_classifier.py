"""Source-only baseline: train the task classifier on MNIST, measure it on MNIST-M.

python -m apps.train_classifier --mnist PATH --mnistm PATH --out DIR [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from apps.common import add_pair_flags, add_training_flags, make_parser, pair_from_flags, run_app
from evaluation.figures import plot_domain_samples, plot_training_curves, save_figure
from evaluation.metrics import accuracy
from evaluation.reports import markdown_table, write_report
from models.classifier import compiled_classifier
from preprocessing.digits import check_pair, domain_names, labelled_dataset, paired_split
from preprocessing.files import read_json, write_csv
from preprocessing.pipelines import steps_per_epoch
from training.callbacks import run_callbacks
from training.devices import device_strategy, seed_everything
from training.run_folder import completed_epochs, start_run
from training.saving import load_model

QUICK_TRAIN, QUICK_EPOCHS, EPOCHS = 20_000, 3, 20


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_classifier", __doc__.splitlines()[0])
    add_pair_flags(p)
    add_training_flags(p)
    return p


def main(args: argparse.Namespace) -> None:
    check_pair(args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds)
    out = start_run(args, identity=("pair", "mnist_resize", "seed", "batch_size", "quick"))
    seed_everything(args.seed)
    pair = pair_from_flags(args)
    train, test = paired_split(len(pair.source), seed=args.seed)
    if args.quick:
        train = np.sort(np.random.default_rng(args.seed).permutation(train)[:QUICK_TRAIN])
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    print(f"{pair.name}: {len(train)} train / {len(test)} test pairs, {epochs} epochs")

    with device_strategy(args.strategy, args.mixed_precision).scope():
        model = compiled_classifier(args.jit)
    model.fit(
        labelled_dataset(
            pair.source[train],
            pair.labels[train],
            args.batch_size,
            args.seed,
            completed_epochs(out),
        ),
        steps_per_epoch=steps_per_epoch(len(train), args.batch_size),
        validation_data=labelled_dataset(pair.source[test], pair.labels[test], 1024),
        epochs=epochs,
        callbacks=run_callbacks(out, "val_accuracy", "max"),
    )

    best = load_model(out / "checkpoints" / "best.keras")
    metrics = pd.DataFrame(
        [
            {
                "model": "source only",
                "source_test_accuracy": accuracy(best, pair.source[test], pair.labels[test]),
                "target_all_accuracy": accuracy(best, pair.target, pair.target_labels),
            }
        ]
    )
    write_csv(out / "metrics.csv", metrics)
    np.savez_compressed(
        out / "samples.npz",
        source=pair.source[test[:5]],
        target=pair.target[test[:5]],
        labels=pair.labels[test[:5]],
    )
    draw_figures(out)
    table = metrics.rename(
        columns={
            "source_test_accuracy": f"{pair.source_name} test accuracy",
            "target_all_accuracy": f"{pair.target_name} whole-set accuracy",
        }
    )
    write_report(
        out / "report.md",
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
    demo = read_json(out / "config.json")["pair"] == "digits-demo"
    source_name, target_name = domain_names(demo)
    samples = np.load(out / "samples.npz")
    fig = plot_domain_samples(
        samples["source"], samples["target"], samples["labels"], source_name, target_name, demo
    )
    save_figure(fig, out / "figures" / "domain_samples.png", pdf)
    history = pd.read_csv(out / "history.csv")
    fig = plot_training_curves(history, f"Source-only classifier on {source_name}", demo)
    save_figure(fig, out / "figures" / "training_curves.png", pdf)


if __name__ == "__main__":
    run_app(main, parser())
