"""Prepare Kvasir for EndoVAE: Otsu-contour crop, square, resize, summary and figures.

python -m apps.prepare_kvasir [--data-dir DIR | --kaggle-slug S] --out DIR [--size 96]
    [--preset homework|clean] [--method otsu|robust] [--normal-classes ...] [--[no-]dedup]
    [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from apps.common import make_parser, run_app
from evaluation.figures import save_figure
from evaluation.kvasir_figures import plot_augmentation, plot_class_samples, plot_crop_steps
from preprocessing.files import InputError, read_json, write_bytes, write_csv, write_text
from preprocessing.kvasir import (
    DEFAULT_SLUG,
    GROUPS,
    PRESETS,
    Preset,
    download,
    format_summary,
    is_synthetic,
    size_summary,
    source_table,
    synthetic_marker,
)
from preprocessing.otsu_crop import (
    METHODS,
    crop_quality,
    crop_steps,
    find_content_box,
    read_rgb,
    resize_view,
)
from preprocessing.synthetic_endoscopy import SYNTHETIC_MARKER
from training.run_folder import start_run

SAMPLES = 3  # per group, in the sample, crop-step and augmentation figures
RECORD_COLUMNS = ["status", "width", "height", "bright_kept", "edge_black", "reason"]
USABLE = ("written", "done before")  # the other statuses: "rejected", "duplicate" (dropped)
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


def init_worker() -> None:
    """One OpenCV thread per process, so N workers use N cores."""
    cv2.setNumThreads(1)


def process_file(task: tuple[str, str, int, str]) -> dict:
    """Crop, resize and write one image; return its record: size and crop quality, or the
    rejection reason.

    `task` is (source path, output PNG path, size, method). Plain module-level function, so
    that a process pool (and the benchmark) can call it.
    """
    source, target, size, method = task
    try:
        image = read_rgb(source)
        box = find_content_box(image, method)
        square = resize_view(image, box, size)
        pixels = cv2.cvtColor(np.round(square * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        write_bytes(target, cv2.imencode(".png", pixels)[1].tobytes())
    except (InputError, OSError, cv2.error) as err:
        return {"status": "rejected", "reason": str(err)}
    kept, black = crop_quality(image, box)
    height, width = image.shape[:2]
    return dict(status="written", width=width, height=height, bright_kept=kept, edge_black=black)


def skipped_record(source: str) -> dict | None:
    """The record of an image an earlier run prepared (its size from the file header).

    None when Pillow cannot read the header: the image is then simply processed again.
    """
    try:
        with Image.open(source) as image:
            width, height = image.size
    except OSError:
        return None
    return {"status": "done before", "width": width, "height": height}


def prepare(
    files: pd.DataFrame,
    out: Path,
    size: int,
    workers: int,
    method: str = "robust",
    dedup: bool = False,
) -> pd.DataFrame:
    """Process every file not done yet (in parallel); one record per file.

    With `dedup`, a byte-identical copy of an earlier file (`files.duplicate_of`) is left out
    with status "duplicate".
    """
    targets = [
        str(out / g / (Path(p).stem + ".png")) for g, p in zip(files.group, files.path, strict=True)
    ]
    same_name = pd.Series(targets).duplicated().to_numpy()
    copy = files.duplicate_of.notna().to_numpy() & dedup
    records: list[dict | None] = [None] * len(files)
    todo = []
    for i, (source, target) in enumerate(zip(files.path, targets, strict=True)):
        if copy[i]:
            records[i] = {"status": "duplicate"}
        elif same_name[i]:
            records[i] = {"status": "rejected", "reason": f"duplicate name in group: {target}"}
        elif Path(target).exists() and (record := skipped_record(source)):
            records[i] = record
        else:
            todo.append(i)
    tasks = [(files.path.iloc[i], targets[i], size, method) for i in todo]
    left_out = f"{copy.sum()} left out as copies, " if copy.any() else ""
    done = len(files) - len(todo) - copy.sum()
    print(f"{len(files)} images: {left_out}{done} done before, {len(todo)} to process")
    start = time.perf_counter()
    progress = tqdm(total=len(tasks), unit="img", desc="crop+resize")
    if workers > 1:
        with Pool(workers, initializer=init_worker) as pool:
            # Small chunks near the end keep both cores busy to the last image.
            chunksize = max(1, min(8, len(tasks) // (32 * workers)))
            results = pool.imap(process_file, tasks, chunksize=chunksize)
            for i, record in zip(todo, results, strict=True):
                records[i] = record
                progress.update()
    else:
        init_worker()
        for i, task in zip(todo, tasks, strict=True):
            records[i] = process_file(task)
            progress.update()
    progress.close()
    if tasks:
        seconds = time.perf_counter() - start
        print(
            f"processed {len(tasks)} images in {seconds:.1f} s "
            f"({len(tasks) / seconds:.1f} images/s, {workers} worker(s))"
        )
    return pd.concat(
        [files.reset_index(drop=True), pd.DataFrame(records, columns=RECORD_COLUMNS)], axis=1
    )


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    explicit_classes = args.normal_classes is not None
    choices = resolve_choices(args)
    if (out / "config.json").exists():
        old = read_json(out / "config.json")
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
        raise InputError(f"{root}: a group has no usable image; see {out / 'rejected.csv'}")
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
    write_csv(out / "images.csv", records)
    rejected = records[records.status == "rejected"]
    write_csv(out / "rejected.csv", rejected[["file", "reason"]])
    usable = records[records.status.isin(USABLE)]
    summary = size_summary(usable)
    copies = records[records.duplicate_of.notna()]
    extra_rows = [
        {"group": g, "size": size, "images": (part.group == g).sum()}
        for size, part in (("rejected", rejected), ("copies", copies))
        for g in GROUPS
    ]
    write_csv(out / "summary.csv", pd.concat([summary, pd.DataFrame(extra_rows)]))
    per_class = usable.groupby("class", sort=False).size()
    lines = [
        format_summary(summary),
        "per class: " + ", ".join(f"{name} {n}" for name, n in per_class.items()),
        copies_line(copies),
        f"rejected: {len(rejected)} (see {out / 'rejected.csv'})",
        crop_check(records[records.status == "written"]),
    ]
    print("\n".join(lines))
    write_text(out / "summary.txt", "\n".join(header + lines) + "\n")
    return usable


def copies_line(copies: pd.DataFrame) -> str:
    """What became of the byte-identical copies of other files (see images.csv duplicate_of)."""
    if copies.empty:
        return "byte-identical copies: none"
    dropped = (copies.status == "duplicate").sum()
    kept = copies.status.isin(USABLE).sum()
    line = f"byte-identical copies: {len(copies)} (images.csv: duplicate_of)"
    if dropped:
        line += f", {dropped} dropped"
    if kept:
        line += f", {kept} kept and counted above, as the homework counted files"
    return line


def crop_check(written: pd.DataFrame) -> str:
    """One line on the crops of this run (see `crop_quality`; per image in images.csv)."""
    if written.empty:
        return "crop check: no image processed in this run"
    kept = written.bright_kept
    return (
        f"crop check ({len(written)} images): bright pixels kept by the box: mean {kept.mean():.1%}"
        f", min {kept.min():.1%}, {(kept < 0.9).sum()} images below 90%; near-black pixels "
        f"along the box edges: {written.edge_black.mean():.1%}"
    )


def sample_files(part: pd.DataFrame) -> list[str]:
    """The first `SAMPLES` files taking the classes in turn (z-line, cecum, z-line, ...)."""
    turn = part.groupby("class", sort=False).cumcount().to_numpy()
    return part.file.iloc[np.argsort(turn, kind="stable")[:SAMPLES]].tolist()


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Class samples, one crop-step figure per sample, and the augmentation figure, from the
    prepared folder's records (the sample originals are read again from their paths)."""
    config, demo = read_json(out / "config.json"), is_synthetic(out)
    size, method = config["size"], config["method"]
    records = pd.read_csv(out / "images.csv")
    usable = records[records.status.isin(USABLE)]
    source = "Synthetic endoscopy" if demo else "Kvasir"
    picks = {g: sample_files(usable[usable.group == g]) for g in GROUPS}
    originals = {g: [read_rgb(p) for p in paths] for g, paths in picks.items()}
    fig = plot_class_samples(originals["normal"], originals["abnormal"], source, demo)
    save_figure(fig, out / "figures" / "samples.png", pdf)
    for group, paths in picks.items():
        for path, image in zip(paths, originals[group], strict=True):
            steps = crop_steps(image, size, method)
            fig = plot_crop_steps(steps, f"{source} {group} {Path(path).name}", demo)
            save_figure(fig, out / "figures" / f"crop_steps_{group}_{Path(path).stem}.png", pdf)
    # Keras (TensorFlow) is imported only now, after the worker processes are gone.
    from preprocessing.augment import augment_with_copies

    paths = picks["normal"]
    normal = np.stack([read_rgb(out / "normal" / f"{Path(p).stem}.png") for p in paths]) / 255.0
    augmented = augment_with_copies(normal, copies=2, seed=0)
    blocks = [augmented[k * len(normal) : (k + 1) * len(normal)] for k in (1, 2)]
    fig = plot_augmentation(normal, blocks, demo)
    save_figure(fig, out / "figures" / "augmentation.png", pdf)


if __name__ == "__main__":
    run_app(main, parser())
