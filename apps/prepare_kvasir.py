"""Prepare Kvasir for EndoVAE: Otsu-contour crop, square, resize, summary and figures.

python -m apps.prepare_kvasir [--data-dir DIR | --kaggle-slug S] --out DIR [--size 96]
    [--workers N] [--normal-classes ...]
"""

from __future__ import annotations

import argparse
import os
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from apps.common import make_parser, run_app, start_run
from evaluation.figures import save_figure
from evaluation.kvasir_figures import plot_augmentation, plot_class_samples, plot_crop_steps
from preprocessing.files import InputError, read_json, write_bytes, write_csv, write_text
from preprocessing.kvasir import (
    DEFAULT_SLUG,
    GROUPS,
    NORMAL_CLASSES,
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

SAMPLES = 3  # per group, in the sample, crop-step and augmentation figures
RECORD_COLUMNS = ["status", "width", "height", "bright_kept", "edge_black", "reason"]
IDENTITY = ("size", "method")  # flags an existing --out must have been prepared with


def parser() -> argparse.ArgumentParser:
    p = make_parser("prepare_kvasir", __doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data-dir", type=Path, help="Kvasir already on disk (no download)")
    source.add_argument("--kaggle-slug", default=DEFAULT_SLUG, help="Kaggle dataset to download")
    p.add_argument("--size", type=int, default=96, help="side of the square output images")
    p.add_argument(
        "--method", choices=METHODS, default="robust", help="otsu: the homework's plain recipe"
    )
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes (all cores)")
    p.add_argument(
        "--normal-classes",
        nargs="+",
        default=list(NORMAL_CLASSES),
        help="class folders that count as normal (add normal-pylorus if you like)",
    )
    return p


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
    files: pd.DataFrame, out: Path, size: int, workers: int, method: str = "robust"
) -> pd.DataFrame:
    """Process every file not done yet (in parallel); one record per file."""
    targets = [
        str(out / g / (Path(p).stem + ".png")) for g, p in zip(files.group, files.path, strict=True)
    ]
    duplicate = pd.Series(targets).duplicated().to_numpy()
    records: list[dict | None] = [None] * len(files)
    todo = []
    for i, (source, target) in enumerate(zip(files.path, targets, strict=True)):
        if duplicate[i]:
            records[i] = {"status": "rejected", "reason": f"duplicate name in group: {target}"}
        elif Path(target).exists() and (record := skipped_record(source)):
            records[i] = record
        else:
            todo.append(i)
    tasks = [(files.path.iloc[i], targets[i], size, method) for i in todo]
    print(f"{len(files)} images: {len(files) - len(todo)} done before, {len(todo)} to process")
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
    if (out / "config.json").exists():
        old = read_json(out / "config.json")
        changed = [f"--{k} {old.get(k)}" for k in IDENTITY if old.get(k) != getattr(args, k)]
        if changed:
            raise InputError(f"{out} was prepared with {', '.join(changed)}: choose another --out")
    root = args.data_dir or download(args.kaggle_slug)
    files = source_table(root, args.normal_classes)
    start_run(args, identity=())
    if marker := synthetic_marker(root):  # the prepared folder says so too, for later steps
        write_text(out / SYNTHETIC_MARKER, marker.read_text())
    records = prepare(files, out, args.size, max(1, args.workers), args.method)
    usable = write_tables(out, records)
    if set(usable.group) != set(GROUPS):
        raise InputError(f"{root}: a group has no usable image; see {out / 'rejected.csv'}")
    draw_figures(out)
    print(f"Prepared images: {out / 'normal'} and {out / 'abnormal'}")


def write_tables(out: Path, records: pd.DataFrame) -> pd.DataFrame:
    """images.csv, rejected.csv and summary.csv, the summary printed; the usable records."""
    records = records.rename(columns={"path": "file"})
    write_csv(out / "images.csv", records)
    rejected = records[records.status == "rejected"]
    write_csv(out / "rejected.csv", rejected[["file", "reason"]])
    usable = records[records.status != "rejected"]
    summary = size_summary(usable)
    rejected_rows = [
        {"group": g, "size": "rejected", "images": (rejected.group == g).sum()} for g in GROUPS
    ]
    write_csv(out / "summary.csv", pd.concat([summary, pd.DataFrame(rejected_rows)]))
    print(format_summary(summary))
    print(f"rejected: {len(rejected)} (see {out / 'rejected.csv'})")
    print(crop_check(records[records.status == "written"]))
    return usable


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
    usable = records[records.status != "rejected"]
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
