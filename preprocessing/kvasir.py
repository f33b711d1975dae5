"""Kvasir: download, class folders, presets, byte-identical copies, the prepared images.

Kvasir v1 (`meetnagadia/kvasir-dataset`, 8 classes x 500) unpacks to `kvasir-dataset/<class>/`;
Kvasir v2 (`plhalvorsen/kvasir-v2-a-gastrointestinal-tract-dataset`, 8 x 1,000) to
`<class>/<class>/`. The class folders are found wherever they sit; each class is read from one
folder (the one with most images), so a nested copy of the download is never counted twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from preprocessing.files import InputError
from preprocessing.synthetic_endoscopy import SYNTHETIC_MARKER

DEFAULT_SLUG = "meetnagadia/kvasir-dataset"
# Kvasir v1's three normal classes: 3 x 500 = the homework's 1,500 normal images.
NORMAL_CLASSES = ("normal-z-line", "normal-cecum", "normal-pylorus")
ABNORMAL_CLASSES = ("polyps",)
GROUPS = ("normal", "abnormal")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
PREPARE_HINT = "run python -m apps.prepare_kvasir --out DIR first"


@dataclasses.dataclass(frozen=True)
class Preset:
    """Which classes are normal, how the view is found (see `preprocessing.otsu_crop`), and
    whether byte-identical copies of a file are dropped."""

    normal_classes: tuple[str, ...]
    method: str
    dedup: bool

    def describe(self) -> str:
        copies = "dropped" if self.dedup else "kept and counted, as the homework counted files"
        return (
            f"normal = {' + '.join(self.normal_classes)}, polyp = {' + '.join(ABNORMAL_CLASSES)}"
            f"; crop {self.method}; byte-identical copies {copies}"
        )


PRESETS = {
    # The homework's set: 1,500 normal (its text names only z-line and cecum, 1,000 images in
    # Kvasir v1; its count needs the pylorus too, see the docs), the plain largest-contour crop.
    "homework": Preset(NORMAL_CLASSES, "otsu", dedup=False),
    # The same classes, the crop that keeps the whole view, and no frame twice (a copy could
    # land in training and validation both).
    "clean": Preset(NORMAL_CLASSES, "robust", dedup=True),
}


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


def find_class_folders(root: str | Path, classes: Sequence[str]) -> dict[str, list[Path]]:
    """Every folder under `root` named after one of `classes`, at any depth: per class, most
    images first, then shallowest first. Classes without a folder are left out."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (pass --data-dir DIR holding Kvasir)")
    found = defaultdict(list)
    for path in sorted(root.rglob("*")):
        if path.name in classes and path.is_dir():
            found[path.name].append(path)
    return {c: sorted(found[c], key=_rank, reverse=True) for c in classes if c in found}


def _rank(folder: Path) -> tuple[int, int]:
    """More images first; among as many (a nested copy of the download), the shallowest."""
    return _image_count(folder), -len(folder.parts)


def _image_count(folder: Path) -> int:
    """Files with an image suffix (Kvasir v2 also ships class folders of feature files)."""
    return sum(p.suffix.lower() in IMAGE_SUFFIXES for p in list_files(folder))


def list_files(folder: Path) -> list[Path]:
    """The visible files of a class folder, sorted; broken links too, so that they are
    rejected and counted with the non-images later rather than silently missing."""
    return sorted(
        p
        for p in folder.iterdir()
        if (p.is_file() or (p.is_symlink() and not p.exists())) and not p.name.startswith(".")
    )


def source_table(
    root: str | Path, normal_classes: Sequence[str] = NORMAL_CLASSES, every_class: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """One row per source file (group, class, path, duplicate_of), and notes on what was
    left out: other folders of a class's name, and, with `every_class` False, normal classes
    not found (then one normal class and every abnormal one suffice)."""
    groups = {c: "normal" for c in normal_classes} | {c: "abnormal" for c in ABNORMAL_CLASSES}
    folders = find_class_folders(root, list(groups))
    missing = [c for c in groups if c not in folders]
    if missing and (
        every_class
        or set(ABNORMAL_CLASSES) & set(missing)
        or not set(normal_classes) - set(missing)
    ):
        raise InputError(
            f"{root}: no class folder {', '.join(missing)} found at any depth "
            "(expected the Kvasir layout: one folder per class, e.g. polyps/)"
        )
    notes = [f"{c}: no folder of that name in {root}, left out" for c in missing]
    for name, (used, *others) in folders.items():
        notes += [
            f"{name}: read {used} ({_image_count(used)} images), left out {other} "
            f"({_image_count(other)} images)"
            for other in others
            if _image_count(other)
        ]
    rows = [
        {"group": groups[name], "class": name, "path": str(path)}
        for name, (folder, *_) in folders.items()
        for path in list_files(folder)
    ]
    table = pd.DataFrame(rows, columns=["group", "class", "path"])
    table["duplicate_of"] = find_duplicates(table.path)
    return table, notes


def find_duplicates(paths: Sequence[str]) -> list[str | None]:
    """Per file, the first earlier file with the very same bytes (None if there is none).

    Only files whose size another file shares are read; empty or unreadable files are never
    copies (they are rejected later).
    """
    sizes = {}
    for path in paths:
        try:
            sizes[path] = Path(path).stat().st_size
        except OSError:
            sizes[path] = 0
    shared = pd.Series(sizes).duplicated(keep=False)
    first: dict[bytes, str] = {}
    copies = []
    for path in paths:
        original = None
        if sizes[path] and shared[path]:
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).digest()
                original = first.setdefault(digest, path)
            except OSError:
                pass
        copies.append(original if original != path else None)
    return copies


def synthetic_marker(root: str | Path) -> Path | None:
    """The marker `write_synthetic_kvasir` leaves (copied by prepare_kvasir), if any."""
    return next(Path(root).rglob(SYNTHETIC_MARKER), None)


def is_synthetic(root: str | Path) -> bool:
    """Whether `root` holds synthetic frames (raw or prepared), not real Kvasir."""
    return synthetic_marker(root) is not None


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


def load_polyps(data: str | Path) -> np.ndarray | None:
    """The prepared abnormal (polyp) images, or None when the folder holds none."""
    folder = Path(data) / "abnormal"
    if not (folder.is_dir() and any(folder.glob("*.png"))):
        return None
    return load_processed(data, "abnormal")[0]
