"""Prepare Kvasir for EndoVAE: Otsu-contour crop, square, resize, summary and figures.

python -m apps.prepare_kvasir [--data-dir DIR | --kaggle-slug S] --out DIR [--size 96]
    [--preset homework|clean] [--method otsu|robust] [--normal-classes ...] [--[no-]dedup]
    [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from apps.common import make_parser, run_app
from evaluation.figures import save_figures
from evaluation.kvasir_figures import plot_augmentation, plot_class_samples, plot_crop_steps
from preprocessing.files import InputError, write_csv, write_text
from preprocessing.kvasir import (
    DEFAULT_SLUG,
    GROUPS,
    PRESETS,
    Preset,
    download,
    is_synthetic,
    source_table,
    synthetic_marker,
)
from preprocessing.kvasir_prepare import USABLE, prepare
from preprocessing.kvasir_summary import summary_lines, summary_table
from preprocessing.otsu_crop import METHODS, crop_steps, read_rgb
from preprocessing.synthetic_endoscopy import SYNTHETIC_MARKER
from training.run_folder import CONFIG, FIGURES, read_config, start_run

SAMPLES = 3  # per group, in the sample, crop-step and augmentation figures
IMAGES, REJECTED = "images.csv", "rejected.csv"  # one record per source file; the rejected
# Choices an existing --out must have been prepared with.
IDENTITY = ("size", "method", "normal_classes", "dedup")


def parser() -> argparse.ArgumentParser:
    p = make_parser("prepare_kvasir", __doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data-dir", type=Path, help="Kvasir already on disk (no download)")
    source.add_argument("--kaggle-slug", default=DEFAULT_SLUG, help="Kaggle dataset to download")
    p.add_argument("--size", type=int, default=96, help="side of the square output images")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="homework",
        help="homework: its classes (Kvasir v1: 1,500 + 500) and plain Otsu crop; clean: robust "
        "crop, byte-identical copies dropped",
    )
    choices = p.add_argument_group("choices over the preset's")
    choices.add_argument(
        "--method", choices=METHODS, help="view box: otsu, the homework's largest contour"
    )
    choices.add_argument("--normal-classes", nargs="+", help="class folders that count as normal")
    choices.add_argument(
        "--dedup",
        action=argparse.BooleanOptionalAction,
        help="drop byte-identical copies of a file (kept by the homework preset)",
    )
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes (all cores)")
    return p


def resolve_choices(args: argparse.Namespace) -> Preset:
    """The preset with the choices given as flags put over it; written back into `args`, so
    that config.json records what was used (and `overrides` which flags changed the preset)."""
    given = {
        "method": args.method,
        "normal_classes": args.normal_classes and tuple(args.normal_classes),
        "dedup": args.dedup,
    }
    given = {k: v for k, v in given.items() if v is not None}
    choices = dataclasses.replace(PRESETS[args.preset], **given)
    args.method, args.dedup = choices.method, choices.dedup
    args.normal_classes = list(choices.normal_classes)
    args.overrides = sorted(given)
    return choices


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    explicit_classes = args.normal_classes is not None
    choices = resolve_choices(args)
    if (out / CONFIG).exists():
        old = read_config(out)
        changed = [
            f"--{k.replace('_', '-')} {flag_text(old.get(k))}"
            for k in IDENTITY
            if old.get(k) != getattr(args, k)
        ]
        if changed:
            raise InputError(f"{out} was prepared with {', '.join(changed)}: choose another --out")
    root = args.data_dir or download(args.kaggle_slug)
    files, notes = source_table(root, choices.normal_classes, every_class=explicit_classes)
    start_run(args, identity=())
    if marker := synthetic_marker(root):  # the prepared folder says so too, for later steps
        write_text(out / SYNTHETIC_MARKER, marker.read_text())
    flags = ", ".join(f"--{k.replace('_', '-')}" for k in args.overrides)
    flags = f" ({flags} over it)" if flags else ""
    header = [f"preset {args.preset}{flags}: {choices.describe()}", *notes]
    print("\n".join(header))
    records = prepare(files, out, args.size, max(1, args.workers), choices.method, choices.dedup)
    usable = write_tables(out, records, header)
    if set(usable.group) != set(GROUPS):
        raise InputError(f"{root}: a group has no usable image; see {out / REJECTED}")
    draw_figures(out)
    print(f"Prepared images: {out / 'normal'} and {out / 'abnormal'}")


def flag_text(value: object) -> str:
    """A recorded choice as it is typed on the command line."""
    if value is None:
        return "(not recorded)"
    return " ".join(value) if isinstance(value, list) else str(value)


def write_tables(out: Path, records: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    """images.csv, rejected.csv, summary.csv and summary.txt (the `header` lines, then what is
    printed: the homework's summary, copies, rejections, crop check); the usable records."""
    records = records.rename(columns={"path": "file"})
    write_csv(out / IMAGES, records)
    write_csv(out / REJECTED, records[records.status == "rejected"][["file", "reason"]])
    write_csv(out / "summary.csv", summary_table(records))
    lines = summary_lines(records, out / REJECTED)
    print("\n".join(lines))
    write_text(out / "summary.txt", "\n".join(header + lines) + "\n")
    return records[records.status.isin(USABLE)]


def sample_files(part: pd.DataFrame) -> list[str]:
    """The first `SAMPLES` files taking the classes in turn (z-line, cecum, z-line, ...)."""
    turn = part.groupby("class", sort=False).cumcount().to_numpy()
    return part.file.iloc[np.argsort(turn, kind="stable")[:SAMPLES]].tolist()


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Class samples, one crop-step figure per sample, and the augmentation figure, from the
    prepared folder's records (the sample originals are read again from their paths)."""
    config, demo = read_config(out), is_synthetic(out)
    size, method = config["size"], config["method"]
    records = pd.read_csv(out / IMAGES)
    usable = records[records.status.isin(USABLE)]
    source = "Synthetic endoscopy" if demo else "Kvasir"
    picks = {g: sample_files(usable[usable.group == g]) for g in GROUPS}
    originals = {g: [read_rgb(p) for p in paths] for g, paths in picks.items()}
    figures = {
        "samples": plot_class_samples(originals["normal"], originals["abnormal"], source, demo)
    }
    for group, paths in picks.items():
        for path, image in zip(paths, originals[group], strict=True):
            steps = crop_steps(image, size, method)
            title = f"{source} {group} {Path(path).name}"
            figures[f"crop_steps_{group}_{Path(path).stem}"] = plot_crop_steps(steps, title, demo)
    # Keras (TensorFlow) is imported only now, after the worker processes are gone.
    from preprocessing.augment import augment_with_copies

    paths = picks["normal"]
    normal = np.stack([read_rgb(out / "normal" / f"{Path(p).stem}.png") for p in paths]) / 255.0
    augmented = augment_with_copies(normal, copies=2, seed=0)
    blocks = [augmented[k * len(normal) : (k + 1) * len(normal)] for k in (1, 2)]
    figures["augmentation"] = plot_augmentation(normal, blocks, demo)
    save_figures(figures, out / FIGURES, pdf)


if __name__ == "__main__":
    run_app(main, parser())
