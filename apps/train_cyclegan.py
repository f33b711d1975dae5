"""CycleGAN: unpaired translation between two image domains (MNIST <-> MNIST-M, or two folders).

python -m apps.train_cyclegan --out DIR [--pair mnist-mnistm|digits-demo --mnist PATH --mnistm PATH]
    [--domain-a DIR --domain-b DIR --size 128] [--epochs N] [--steps N] [--quick]
    [--residual-blocks N] [--filters N] [--seed S]

Digits: after training, the task classifier learns on MNIST training images translated to
MNIST-M with their MNIST labels and is measured on MNIST-M: the "CycleGAN + classifier" row
that `python -m apps.train_pixelda --compare DIR` adds to PixelDA's Table 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from apps import common
from evaluation.cyclegan_figures import cyclegan_figures
from evaluation.domain_adaptation import (
    classifier_on_translations,
    table1,
    table1_row,
    translation_metrics,
)
from evaluation.feature_spaces import FeatureSpace
from evaluation.figures import save_figures
from evaluation.generative import generative_report
from evaluation.reports import markdown_table, write_report
from models.cyclegan import CycleGAN, build_cyclegan
from preprocessing.digit_splits import Splits, split_pairs
from preprocessing.digits import DigitPair
from preprocessing.files import InputError, remove, write_csv, writing
from preprocessing.image_folders import image_folder
from preprocessing.unpaired import Domains, digit_domains, folder_domains, unpaired_dataset
from training import run_folder, task_classifier
from training.callbacks import EpochSamples, StepRate, run_callbacks, sample_epochs
from training.devices import device_strategy, jit_compile, seed_everything
from training.run_folder import completed_epochs, read_config, read_history, read_samples, start_run
from training.saving import load_model
from training.schedule import STEP_EPOCHS, schedule

DIGITS_BATCH, FOLDER_BATCH, FOLDER_SIZE = 8, 1, 128
DIGITS_EPOCHS, FOLDER_EPOCHS = 10, 200  # without --steps: full passes over the training set
SAMPLES_SHOWN = 8  # fixed images of each domain translated at the sample epochs
SAMPLE_EPOCHS = 5  # epochs whose fixed translations samples.npz keeps (first, last, between)
CLASSIFIER = "classifier"  # subfolder: the task classifier trained on translated images
FIGURES_MD = "\n\n".join(
    f"![{name}](figures/{name}.png)" for name in ("cycle_a", "cycle_b", "losses")
)


def parser() -> argparse.ArgumentParser:
    p = common.make_parser("train_cyclegan", __doc__.splitlines()[0])
    common.add_pair_flags(p)
    p.set_defaults(batch_size=None)  # DIGITS_BATCH, or FOLDER_BATCH (the paper's 1)
    folders = p.add_argument_group("any two folders of unpaired images (instead of --pair)")
    folders.add_argument("--domain-a", type=Path, help="folder of domain A images")
    folders.add_argument("--domain-b", type=Path, help="folder of domain B images")
    folders.add_argument("--size", type=int, help=f"image side (default {FOLDER_SIZE})")
    common.add_training_flags(p)
    p.add_argument(
        "--steps", type=int, help=f"train steps in all (cut into --epochs, default {STEP_EPOCHS})"
    )
    p.add_argument(
        "--residual-blocks",
        type=int,
        help="generator blocks (default: 3 at 32 px, 6 at 128, 9 at 256)",
    )
    p.add_argument(
        "--filters", type=int, default=64, help="filters of the first layers (the paper's 64)"
    )
    common.add_inception_flag(p, "; the only feature space for --domain-a/--domain-b")
    p.add_argument(
        "--classifier-epochs",
        type=int,
        help=f"digits: task classifier epochs (default {task_classifier.EPOCHS}, "
        f"{task_classifier.QUICK_EPOCHS} with --quick)",
    )
    return p


def check_domain_flags(args: argparse.Namespace) -> bool:
    """Whether the run is on two image folders; refuses flags that do not go together and
    missing folders or digit files (before anything is written)."""
    folders = args.domain_a is not None or args.domain_b is not None
    if folders and (args.domain_a is None or args.domain_b is None):
        raise InputError("--domain-a and --domain-b go together: pass both folders")
    if not folders and args.size not in (None, 32):
        raise InputError("--size goes with --domain-a/--domain-b (digits are 32x32)")
    if folders and args.size is not None and (args.size < 16 or args.size % 4):
        raise InputError(f"--size {args.size}: choose a multiple of 4, at least 16")
    if folders:
        image_folder(args.domain_a, "--domain-a")
        image_folder(args.domain_b, "--domain-b")
    else:
        common.check_pair_flags(args)
    return folders


def main(args: argparse.Namespace) -> None:
    folders = check_domain_flags(args)
    inception = common.inception_from_flags(args, (0, 255))
    args.batch_size = args.batch_size or (FOLDER_BATCH if folders else DIGITS_BATCH)
    identity = ("pair", "mnist_resize", "domain_a", "domain_b", "size", "seed", "batch_size")
    identity += ("quick", "steps", "epochs", "residual_blocks", "filters")
    strategy = device_strategy(args.strategy, args.mixed_precision)  # before any device work
    out = start_run(args, identity)
    if args.restart:
        remove(out / CLASSIFIER)
    seed_everything(args.seed)
    pair = splits = None
    if folders:
        size = args.size or FOLDER_SIZE
        domains = folder_domains(args.domain_a, args.domain_b, size, args.seed, SAMPLES_SHOWN)
    else:
        pair = common.pair_from_flags(args)
        splits = split_pairs(len(pair.source), args.seed)
        domains = digit_domains(pair, splits, SAMPLES_SHOWN)
    default_epochs = FOLDER_EPOCHS if folders else DIGITS_EPOCHS
    n_train = min(len(domains.a), len(domains.b))
    epochs, steps = schedule(
        n_train, args.batch_size, default_epochs, args.steps, args.epochs, args.quick
    )
    print(
        f"{domains.names[0]} ({len(domains.a)} images) <-> {domains.names[1]} "
        f"({len(domains.b)} images): {epochs} epochs x {steps} steps of {args.batch_size}"
    )

    with strategy.scope():
        model = build_cyclegan(
            domains.a.shape[1:],
            epochs * steps,
            args.residual_blocks,
            args.filters,
            args.seed,
            jit_compile=jit_compile(args.jit),
        )
    samples = EpochSamples(
        out / run_folder.SAMPLES,
        sample_epochs(epochs, SAMPLE_EPOCHS),
        {"names": np.array(domains.names), "a": domains.samples_a, "b": domains.samples_b},
        lambda gan: gan.cycles(domains.samples_a, domains.samples_b),
    )
    model.fit(
        unpaired_dataset(
            domains.a, domains.b, args.batch_size, args.seed, completed_epochs(out) * steps
        ),
        epochs=epochs,
        steps_per_epoch=steps,
        callbacks=run_callbacks(
            out,
            "cycle_loss",  # unsupervised: how well both cycles reconstruct
            "min",
            extra=[StepRate(), samples],
            save_last=False,  # the resume state holds the last weights
            tensorboard=args.tensorboard,
        ),
    )
    best = load_model(out / run_folder.BEST, CycleGAN)
    if pair is None:
        write_folder_results(out, best, domains, args, inception)
    else:
        write_digit_results(out, best, pair, splits, args, inception)
    print(f"Run folder: {out}")


def write_digit_results(
    out: Path,
    gan: CycleGAN,
    pair: DigitPair,
    splits: Splits,
    args: argparse.Namespace,
    inception: FeatureSpace | None,
) -> None:
    """Translate the MNIST training images, train the task classifier on them with their
    MNIST labels (chosen on translated MNIST test images), measure it on MNIST-M; FID, KID
    and PRDC of translations vs held-out MNIST-M as train_pixelda measures PixelDA's."""
    epochs = args.classifier_epochs or (
        task_classifier.QUICK_EPOCHS if args.quick else task_classifier.EPOCHS
    )
    strategy = device_strategy(args.strategy, args.mixed_precision)

    def fit(train: tuple, validation: tuple) -> keras.Model:
        return task_classifier.train_task_classifier(
            out / CLASSIFIER,
            train,
            validation,
            epochs,
            args.seed,
            strategy,
            jit=jit_compile(args.jit),
            save_last=False,
            tensorboard=args.tensorboard,
        )

    classifier, train, validation = classifier_on_translations(
        gan.translate, pair, splits, args.seed, args.quick, fit
    )
    row = table1_row("CycleGAN + classifier", classifier, pair, splits)
    row["train_images"] = len(train)
    write_csv(out / run_folder.METRICS, pd.DataFrame([row]))
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    cache = out / run_folder.CHECKPOINTS / "target_features.keras"
    generative, sections = translation_metrics(
        pair, splits, gan.translate, "CycleGAN", args.seed, args.quick, cache, inception
    )
    write_csv(out / run_folder.GENERATIVE, generative)
    table = table1([row], pair)
    note = (
        f"The task classifier learned on {len(train)} {pair.source_name} training images "
        f"translated by G_AB, with their {pair.source_name} labels; best.keras was chosen on "
        f"{len(validation)} translated {pair.source_name} test images. No "
        f"{pair.target_name} label was used for training or choosing a model. The test split "
        f"is train_pixelda's ({len(splits.target_test)} images, seed {args.seed})."
    )
    write_report(
        out / run_folder.REPORT,
        f"CycleGAN: {pair.name}",
        [
            ("Table 1 row", f"{markdown_table(table)}\n\n{note}"),
            *sections,
            ("Figures", FIGURES_MD),
        ],
        pair.demo,
    )
    print(markdown_table(table))
    for _, body in sections:
        print(body)


def write_folder_results(
    out: Path,
    gan: CycleGAN,
    domains: Domains,
    args: argparse.Namespace,
    inception: FeatureSpace | None,
) -> None:
    """metrics.csv (image counts and the final epoch's losses), report.md, the figures, and
    with --inception generative.csv: translations A -> B vs the real B images."""
    last = read_history(out).iloc[-1]
    row = {"model": "CycleGAN", "images_a": len(domains.a), "images_b": len(domains.b)}
    row |= {k: float(last[k]) for k in CycleGAN.LOSSES if k in last}
    write_csv(out / run_folder.METRICS, pd.DataFrame([row]))
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    a, b = domains.names
    sections = [("Generative metrics", "Pass --inception for FID, KID and PRDC.")]
    if inception is not None:
        generative, sections = generative_report(
            domains.b,
            {f"{a}, not translated": domains.a, f"CycleGAN {a} -> {b}": gan.translate(domains.a)},
            {"InceptionV3": inception},
            f"all {len(domains.b)} {b} images (also trained on: there is no held-out set)",
            args.seed,
        )
        write_csv(out / run_folder.GENERATIVE, generative)
    write_report(
        out / run_folder.REPORT,
        f"CycleGAN: {a} <-> {b}",
        [
            ("Final losses", markdown_table(pd.DataFrame([row]))),
            *sections,
            ("Figures", FIGURES_MD),
        ],
        domains.demo,
    )


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from config.json, history.csv and samples.npz alone (and
    the task classifier's history.csv, where the run trained it)."""
    config = read_config(out)
    demo = config.get("pair") == "digits-demo" and not config.get("domain_a")
    classifier = out / CLASSIFIER
    classifier_history = (
        read_history(classifier) if (classifier / run_folder.HISTORY).exists() else None
    )
    figures = cyclegan_figures(read_history(out), read_samples(out), classifier_history, demo)
    save_figures(figures, out / run_folder.FIGURES, pdf)


if __name__ == "__main__":
    common.run_app(main, parser())
