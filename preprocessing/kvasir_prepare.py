"""Preparing Kvasir for EndoVAE, file by file: Otsu-contour crop, square, resize, PNG.

`process_file` is the per-file worker (a plain module-level function, so that a process
pool and the benchmark can call it); `prepare` runs it over a table of source files in
parallel and returns one record per file.
"""

from __future__ import annotations

import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from preprocessing.files import InputError, write_bytes
from preprocessing.otsu_crop import crop_quality, find_content_box, read_rgb, resize_view

RECORD_COLUMNS = ["status", "width", "height", "bright_kept", "edge_black", "reason"]
USABLE = ("written", "done before")  # the other statuses: "rejected", "duplicate" (dropped)


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
