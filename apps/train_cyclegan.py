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
import dataclasses
import math
import shutil
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from apps import train_classifier
from apps.common import add_pair_flags, add_training_flags, make_parser, pair_from_flags, run_app
from apps.train_pixelda import (
    EVAL_SIZE,
    QUICK_EVAL_SIZE,
    SAMPLES,
    STEP_EPOCHS,
    StepRate,
    generative_results,
    split_pairs,
    table1_row,
)
from evaluation.cyclegan_figures import draw_cyclegan_figures
from evaluation.generative import FeatureSpace, generative_report, inception_space
from evaluation.reports import markdown_table, write_report
from models.classifier import compiled_classifier
from models.cyclegan import CycleGAN, build_cyclegan
from preprocessing.digits import adaptation_dataset, check_pair, labelled_dataset
from preprocessing.files import InputError, atomic_path, existing_path, read_json, write_csv
from preprocessing.pipelines import steps_per_epoch
from training.callbacks import run_callbacks
from training.devices import device_strategy, seed_everything
from training.run_folder import completed_epochs, start_run
from training.saving import load_model

DIGITS_BATCH, FOLDER_BATCH, FOLDER_SIZE = 8, 1, 128
DIGITS_EPOCHS, FOLDER_EPOCHS = 10, 200  # without --steps: full passes over the training set
QUICK_STEPS, QUICK_EPOCHS = 300, 3
SAMPLE_EPOCHS = 5  # epochs whose fixed translations samples.npz keeps (first, last, between)
CLASSIFIER = "classifier"  # subfolder: the task classifier trained on translated images


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_cyclegan", __doc__.splitlines()[0])
    add_pair_flags(p)
    p.set_defaults(batch_size=None)  # DIGITS_BATCH, or FOLDER_BATCH (the paper's 1)
    folders = p.add_argument_group("any two folders of unpaired images (instead of --pair)")
    folders.add_argument("--domain-a", type=Path, help="folder of domain A images")
    folders.add_argument("--domain-b", type=Path, help="folder of domain B images")
    folders.add_argument("--size", type=int, help=f"image side (default {FOLDER_SIZE})")
    add_training_flags(p)
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
    p.add_argument(
        "--inception",
        action="store_true",
        help="also FID/KID/PRDC in InceptionV3 features (downloads its weights: Colab); "
        "the only feature space for --domain-a/--domain-b",
    )
    p.add_argument(
        "--classifier-epochs",
        type=int,
        help=f"digits: task classifier epochs (default {train_classifier.EPOCHS}, "
        f"{train_classifier.QUICK_EPOCHS} with --quick)",
    )
    return p


@dataclasses.dataclass
class Domains:
    """Unpaired training images of A and B (uint8) and the fixed images drawn every epoch."""

    names: tuple[str, str]
    a: np.ndarray
    b: np.ndarray
    samples_a: np.ndarray
    samples_b: np.ndarray
    demo: bool = False


def domain_folder(folder: Path, flag: str) -> Path:
    """`folder`, an existing folder (else an `InputError` naming `flag`)."""
    return existing_path(folder, flag, "unpaired images of one domain", folder=True)


def read_image_folder(folder: Path, size: int, flag: str) -> np.ndarray:
    """Every readable image of `folder` (sorted by name), RGB uint8 resized to size x size.

    Unreadable files are skipped and counted in one line; a missing folder or one without
    any readable image is an `InputError`.
    """
    folder = domain_folder(folder, flag)
    images, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            skipped.append(path.name)
            continue
        images.append(cv2.resize(image[..., ::-1], (size, size), interpolation=cv2.INTER_AREA))
    if skipped:
        print(f"{flag} {folder}: skipped {len(skipped)} unreadable files (first: {skipped[0]})")
    if not images:
        raise InputError(f"{flag} {folder}: no readable image in it")
    return np.stack(images)


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
        domain_folder(args.domain_a, "--domain-a")
        domain_folder(args.domain_b, "--domain-b")
    else:
        check_pair(args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds)
    return folders


def folder_domains(args: argparse.Namespace) -> Domains:
    size = args.size or FOLDER_SIZE
    a = read_image_folder(args.domain_a, size, "--domain-a")
    b = read_image_folder(args.domain_b, size, "--domain-b")
    rng = np.random.default_rng(args.seed)
    return Domains(
        (args.domain_a.name, args.domain_b.name),
        a,
        b,
        a[np.sort(rng.permutation(len(a))[:SAMPLES])],
        b[np.sort(rng.permutation(len(b))[:SAMPLES])],
    )


def schedule(args: argparse.Namespace, n_train: int) -> tuple[int, int]:
    """(epochs, steps per epoch) from --steps / --epochs / --quick."""
    steps = args.steps or (QUICK_STEPS if args.quick else None)
    if steps is not None:
        epochs = args.epochs or (QUICK_EPOCHS if args.quick else STEP_EPOCHS)
        return epochs, math.ceil(steps / epochs)
    default = FOLDER_EPOCHS if args.domain_a else DIGITS_EPOCHS
    return args.epochs or default, max(1, n_train // args.batch_size)


def unpaired_dataset(a: np.ndarray, b: np.ndarray, batch_size: int, seed: int, start_step: int):
    """Endless `(x_a, x_b)` batches in [-1, 1], each domain in its own seeded order
    (`adaptation_dataset` without labels)."""
    no_labels = np.zeros(len(a), np.int64)
    ds = adaptation_dataset(a, no_labels, b, batch_size, seed, start_step)
    return ds.map(lambda source, target: (source[0], target))


def sample_epochs(epochs: int, count: int = SAMPLE_EPOCHS) -> set[int]:
    """Up to `count` epochs spread from the first to the last."""
    return {int(e) for e in np.round(np.linspace(1, epochs, min(count, epochs)))}


class TranslationSamples(keras.callbacks.Callback):
    """At the end of the `sample_epochs`, translate the fixed images A -> B -> A and
    B -> A -> B and add them to samples.npz (uint8), which the figures are drawn from.

    Epochs that a resumed run redoes replace their entries, as in history.csv.
    """

    def __init__(self, path: Path, domains: Domains, epochs: set[int]):
        super().__init__()
        self.path, self.domains, self.epochs = Path(path), domains, epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 not in self.epochs:
            return
        gan, a, b = self.model, self.domains.samples_a, self.domains.samples_b
        ab, ba = gan.translate(a), gan.translate(b, "ba")
        new = {"ab": ab, "aba": gan.translate(ab, "ba")}
        new |= {"ba": ba, "bab": gan.translate(ba)}
        keep = {key: np.zeros((0, *v.shape), np.uint8) for key, v in new.items()}
        keep["epochs"] = np.zeros(0, int)
        if self.path.exists():
            with np.load(self.path) as saved:
                earlier = saved["epochs"] < epoch + 1
                keep = {key: saved[key][earlier] for key in keep}
        with atomic_path(self.path) as tmp:
            np.savez_compressed(
                tmp,
                names=np.array(self.domains.names),
                a=a,
                b=b,
                epochs=np.append(keep["epochs"], epoch + 1),
                **{key: np.concatenate([keep[key], value[None]]) for key, value in new.items()},
            )


def main(args: argparse.Namespace) -> None:
    folders = check_domain_flags(args)
    inception = inception_space(value_range=(0, 255)) if args.inception else None  # fail early
    args.batch_size = args.batch_size or (FOLDER_BATCH if folders else DIGITS_BATCH)
    identity = (
        "pair",
        "mnist_resize",
        "domain_a",
        "domain_b",
        "size",
        "seed",
        "batch_size",
        "quick",
        "steps",
    )
    out = start_run(args, (*identity, "epochs", "residual_blocks", "filters"))
    if args.restart:
        shutil.rmtree(out / CLASSIFIER, ignore_errors=True)
    seed_everything(args.seed)
    pair = splits = None
    if folders:
        domains = folder_domains(args)
    else:
        pair = pair_from_flags(args)
        splits = split_pairs(len(pair.source), args.seed)
        # Target images of the training pairs, in their own order: no pairing, no label.
        domains = Domains(
            (pair.source_name, pair.target_name),
            pair.source[splits.train],
            pair.target[splits.train],
            pair.source[splits.test[:SAMPLES]],
            pair.target[splits.test[:SAMPLES]],
            pair.demo,
        )
    epochs, steps = schedule(args, min(len(domains.a), len(domains.b)))
    print(
        f"{domains.names[0]} ({len(domains.a)} images) <-> {domains.names[1]} "
        f"({len(domains.b)} images): {epochs} epochs x {steps} steps of {args.batch_size}"
    )

    with device_strategy(args.strategy, args.mixed_precision).scope():
        model = build_cyclegan(
            domains.a.shape[1:],
            epochs * steps,
            args.residual_blocks,
            args.filters,
            args.seed,
            jit_compile=args.jit,
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
            extra=[
                StepRate(),
                TranslationSamples(out / "samples.npz", domains, sample_epochs(epochs)),
            ],
            save_last=False,  # the resume state holds the last weights
        ),
    )
    best = load_model(out / "checkpoints" / "best.keras", CycleGAN)
    if pair is None:
        write_folder_results(out, best, domains, args, inception)
    else:
        write_digit_results(out, best, pair, splits, args, inception)
    print(f"Run folder: {out}")


def train_task_classifier(
    folder: Path,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    args: argparse.Namespace,
) -> keras.Model:
    """The PixelDA paper's task classifier, trained as apps.train_classifier trains it, with
    its own checkpoints and resume state in `folder`; returns its best.keras."""
    epochs = args.classifier_epochs or (
        train_classifier.QUICK_EPOCHS if args.quick else train_classifier.EPOCHS
    )
    batch_size = train_classifier.parser().get_default("batch_size")
    with device_strategy(args.strategy, args.mixed_precision).scope():
        model = compiled_classifier(args.jit)
    model.fit(
        labelled_dataset(*train, batch_size, args.seed, completed_epochs(folder)),
        steps_per_epoch=steps_per_epoch(len(train[0]), batch_size),
        validation_data=labelled_dataset(*validation, 1024),
        epochs=epochs,
        callbacks=run_callbacks(folder, "val_accuracy", "max", save_last=False),
    )
    return load_model(folder / "checkpoints" / "best.keras")


def write_digit_results(
    out: Path, gan: CycleGAN, pair, splits, args, inception: FeatureSpace | None
) -> None:
    """Translate the MNIST training images, train the task classifier on them with their
    MNIST labels (chosen on translated MNIST test images), measure it on MNIST-M; FID, KID
    and PRDC of translations vs held-out MNIST-M as train_pixelda measures PixelDA's."""
    rng = np.random.default_rng(args.seed)
    train, test = splits.train, splits.test
    if args.quick:
        train = np.sort(rng.permutation(train)[: train_classifier.QUICK_TRAIN])
    validation = np.sort(rng.permutation(test)[: QUICK_EVAL_SIZE if args.quick else EVAL_SIZE])
    print(f"Translating {len(train) + len(validation)} {pair.source_name} images ...")
    translated = gan.translate(pair.source[train])
    classifier = train_task_classifier(
        out / CLASSIFIER,
        (translated, pair.labels[train]),
        (gan.translate(pair.source[validation]), pair.labels[validation]),
        args,
    )
    row = table1_row("CycleGAN + classifier", classifier, pair, splits)
    row["train_images"] = len(train)
    write_csv(out / "metrics.csv", pd.DataFrame([row]))
    draw_figures(out)
    _, sections = generative_results(out, pair, splits, gan.translate, "CycleGAN", args, inception)
    table = pd.DataFrame([row])[
        ["model", "source_test_accuracy", "target_test_accuracy", "target_all_accuracy"]
    ]
    table = table.rename(
        columns={
            "source_test_accuracy": f"{pair.source_name} test accuracy",
            "target_test_accuracy": f"{pair.target_name} test-split accuracy",
            "target_all_accuracy": f"{pair.target_name} whole-set accuracy",
        }
    )
    note = (
        f"The task classifier learned on {len(train)} {pair.source_name} training images "
        f"translated by G_AB, with their {pair.source_name} labels; best.keras was chosen on "
        f"{len(validation)} translated {pair.source_name} test images. No "
        f"{pair.target_name} label was used for training or choosing a model. The test split "
        f"is train_pixelda's ({len(splits.target_test)} images, seed {args.seed})."
    )
    write_report(
        out / "report.md",
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


FIGURES_MD = "\n\n".join(
    f"![{name}](figures/{name}.png)" for name in ("cycle_a", "cycle_b", "losses")
)


def write_folder_results(
    out: Path, gan: CycleGAN, domains: Domains, args, inception: FeatureSpace | None
) -> None:
    """metrics.csv (image counts and the final epoch's losses), report.md, the figures, and
    with --inception generative.csv: translations A -> B vs the real B images."""
    last = pd.read_csv(out / "history.csv").iloc[-1]
    row = {"model": "CycleGAN", "images_a": len(domains.a), "images_b": len(domains.b)}
    row |= {k: float(last[k]) for k in CycleGAN.LOSSES if k in last}
    write_csv(out / "metrics.csv", pd.DataFrame([row]))
    draw_figures(out)
    a, b = domains.names
    sections = [("Generative metrics", "Pass --inception for FID, KID and PRDC.")]
    if inception is not None:
        generative, sections = generative_report(
            domains.b,
            {
                f"{a}, not translated": domains.a,
                f"CycleGAN {a} -> {b}": gan.translate(domains.a),
            },
            {"InceptionV3": inception},
            f"all {len(domains.b)} {b} images (also trained on: there is no held-out set)",
            args.seed,
        )
        write_csv(out / "generative.csv", generative)
    write_report(
        out / "report.md",
        f"CycleGAN: {a} <-> {b}",
        [
            ("Final losses", markdown_table(pd.DataFrame([row]))),
            *sections,
            ("Figures", FIGURES_MD),
        ],
        domains.demo,
    )


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from config.json, history.csv and samples.npz alone."""
    config = read_json(out / "config.json")
    demo = config.get("pair") == "digits-demo" and not config.get("domain_a")
    draw_cyclegan_figures(out, pdf, demo)


if __name__ == "__main__":
    run_app(main, parser())
