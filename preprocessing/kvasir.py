"""Kvasir: download, class folders, the (width, height) summary, and the prepared images.

Kvasir v1 (`meetnagadia/kvasir-dataset`) and v2 (`plhalvorsen/kvasir-v2-a-gastrointestinal-
tract-dataset`) hold one folder per class (`normal-z-line/`, `polyps/`, ...) somewhere
inside the download; the folders are found wherever they sit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from preprocessing.files import InputError
from preprocessing.synthetic_endoscopy import SYNTHETIC_MARKER

DEFAULT_SLUG = "meetnagadia/kvasir-dataset"
NORMAL_CLASSES = ("normal-z-line", "normal-cecum")
ABNORMAL_CLASSES = ("polyps",)
GROUPS = ("normal", "abnormal")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
PREPARE_HINT = "run python -m apps.prepare_kvasir --out DIR first"


def download(slug: str = DEFAULT_SLUG) -> Path:
    """Download (or reuse kagglehub's cache of) a Kaggle dataset; return its folder."""
    try:
        import kagglehub  # only needed without --data-dir

        return Path(kagglehub.dataset_download(slug))
    except Exception as err:  # kagglehub raises many types: network, auth, not found
        raise InputError(
            f"cannot download Kaggle dataset {slug!r} ({type(err).__name__}: {err}); "
            "without network or Kaggle credentials, download Kvasir and pass --data-dir DIR"
        ) from err


def find_class_folders(root: str | Path, classes: Sequence[str]) -> dict[str, Path]:
    """The folder of each class under `root`, at any depth (the one with most images wins)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (pass --data-dir DIR holding Kvasir)")
    candidates = sorted(p for p in root.rglob("*") if p.is_dir() and p.name in classes)
    found = {
        name: max(options, key=_image_count)
        for name in classes
        if (options := [p for p in candidates if p.name == name])
    }
    missing = [c for c in classes if c not in found]
    if missing:
        raise InputError(
            f"{root}: no class folder {', '.join(missing)} found at any depth "
            "(expected the Kvasir layout: one folder per class, e.g. polyps/)"
        )
    return found


def _image_count(folder: Path) -> int:
    """Files with an image suffix (Kvasir v2 also ships class folders of feature files)."""
    return sum(p.suffix.lower() in IMAGE_SUFFIXES for p in list_files(folder))


def list_files(folder: Path) -> list[Path]:
    """The visible files of a class folder, sorted (non-images are rejected later)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def source_table(root: str | Path, normal_classes: Sequence[str] = NORMAL_CLASSES) -> pd.DataFrame:
    """One row per source file: group, class, path."""
    groups = {c: "normal" for c in normal_classes} | {c: "abnormal" for c in ABNORMAL_CLASSES}
    folders = find_class_folders(root, list(groups))
    rows = [
        {"group": groups[name], "class": name, "path": str(path)}
        for name, folder in folders.items()
        for path in list_files(folder)
    ]
    return pd.DataFrame(rows, columns=["group", "class", "path"])


def synthetic_marker(root: str | Path) -> Path | None:
    """The marker `write_synthetic_kvasir` leaves (copied by prepare_kvasir), if any."""
    return next(Path(root).rglob(SYNTHETIC_MARKER), None)


def is_synthetic(root: str | Path) -> bool:
    """Whether `root` holds synthetic frames (raw or prepared), not real Kvasir."""
    return synthetic_marker(root) is not None


def size_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Images per group, and per group the count of each (width, height), largest first.

    `records` has columns group, width, height (one row per readable image).
    """
    rows = []
    for group in GROUPS:
        part = records[records["group"] == group].astype({"width": int, "height": int})
        rows.append({"group": group, "size": "all", "images": len(part)})
        counts = part.groupby(["width", "height"]).size().sort_values(ascending=False)
        rows += [
            {"group": group, "size": f"({w}, {h})", "images": int(n)}
            for (w, h), n in counts.items()
        ]
    return pd.DataFrame(rows, columns=["group", "size", "images"])


def format_summary(summary: pd.DataFrame) -> str:
    """The homework's printout: per group its total, then "(720, 576): 592 images" lines."""
    lines = []
    for group, part in summary.groupby("group", sort=False):
        total = part.loc[part["size"] == "all", "images"].sum()
        lines.append(f"{group}: {total} images")
        lines += [
            f"  {r.size}: {r.images} images" for r in part[part["size"] != "all"].itertuples()
        ]
    return "\n".join(lines)


def load_processed(folder: str | Path, group: str) -> tuple[np.ndarray, list[str]]:
    """The PNGs `prepare_kvasir` wrote under `folder/<group>/`, sorted by name.

    Returns float32 (N, size, size, 3) in [0, 1] and the file names.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, not {group!r}")
    path = Path(folder) / group
    # Hidden files are temporaries of a write that was killed (see `atomic_path`).
    files = [f for f in sorted(path.glob("*.png")) if not f.name.startswith(".")]
    if not files:
        raise InputError(f"{path}: no prepared images ({PREPARE_HINT})")
    images = []
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(
                f"{file}: unreadable prepared image (delete it and rerun "
                "python -m apps.prepare_kvasir with the same --out)"
            )
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if len({i.shape for i in images}) > 1:
        raise InputError(f"{path}: prepared images of different sizes ({PREPARE_HINT} again)")
    return np.stack(images).astype(np.float32) / 255.0, [f.name for f in files]
