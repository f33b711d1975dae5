"""MNIST-M: read in its canonical layout, or synthesized from colour photos."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from preprocessing.files import InputError, existing_path
from preprocessing.mnist import PARTS, SIZE
from preprocessing.mnistm_download import download_mnistm, is_download


def read_mnistm(root: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read MNIST-M in the canonical layout; returns [(images, labels)] for train and test.

    `root` holds `mnist_m_{train,test}/` and `mnist_m_{train,test}_labels.txt` with lines
    `00000000.png 5`. A set with only a train part (e.g. 70,000 images) is returned alone.
    """
    root = mnistm_folder(root)
    parts = []
    for part in PARTS:
        folder, label_file = root / f"mnist_m_{part}", root / f"mnist_m_{part}_labels.txt"
        if not folder.is_dir() and not label_file.exists() and part == "test":
            continue
        if not folder.is_dir():
            raise InputError(f"--mnistm {root}: folder {folder.name}/ is missing")
        if not label_file.is_file():
            raise InputError(f"--mnistm {root}: label file {label_file.name} is missing")
        names, labels = _read_labels(label_file)
        files = [folder / n for n in names]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise InputError(
                f"{label_file}: lists {len(files)} images but {len(missing)} are missing "
                f"from {folder.name}/ (first: {missing[0].name})"
            )
        unlisted = sum(1 for _ in folder.glob("*.png")) - len(files)
        if unlisted > 0:
            raise InputError(
                f"{label_file}: lists {len(files)} images but {folder.name}/ holds "
                f"{unlisted} more: the label file belongs to another copy of MNIST-M"
            )
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            images = np.stack(list(pool.map(_read_rgb32, files)))
        parts.append((images, labels))
    return parts


def _read_labels(label_file: Path) -> tuple[list[str], np.ndarray]:
    names, labels = [], []
    for number, line in enumerate(label_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise InputError(f"{label_file}:{number}: expected 'NAME.png LABEL', got {line!r}")
        names.append(fields[0])
        labels.append(int(fields[1]))
    return names, np.asarray(labels, dtype=np.int64)


def _read_rgb32(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    if image.shape[:2] != (SIZE, SIZE):
        raise InputError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]}, expected 32x32 "
            "(--mnistm wants the canonical 32x32 MNIST-M)"
        )
    return image[..., ::-1]


def synthesize_mnistm(digits: np.ndarray, photos: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """Ganin & Lempitsky's recipe: |random colour-photo patch - digit| per channel.

    `digits` are N x 32 x 32 x 3 uint8, `photos` RGB uint8 arrays of any size >= 32.
    """
    rng = np.random.default_rng(seed)
    usable = [p for p in photos if p.ndim == 3 and min(p.shape[:2]) >= SIZE]
    if not usable:
        raise InputError("no colour photo of at least 32x32 to take backgrounds from")
    out = np.empty_like(digits)
    choice = rng.integers(len(usable), size=len(digits))
    for i, digit in enumerate(digits):
        photo = usable[choice[i]]
        y0 = rng.integers(photo.shape[0] - SIZE + 1)
        x0 = rng.integers(photo.shape[1] - SIZE + 1)
        patch = photo[y0 : y0 + SIZE, x0 : x0 + SIZE, :3].astype(np.int16)
        out[i] = np.abs(patch - digit.astype(np.int16)).astype(np.uint8)
    return out


def read_photos(folder: str | Path) -> list[np.ndarray]:
    """Every readable colour image of a folder (e.g. BSDS500 train), as RGB uint8."""
    folder = photo_folder(folder)
    photos = []
    for path in sorted(folder.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is not None:
            photos.append(image[..., ::-1])
    if not photos:
        raise InputError(f"--mnistm-backgrounds {folder}: no readable images in it")
    return photos


def mnistm_folder(path: str | Path) -> Path:
    """`--mnistm`, an existing folder, or `download`: the public copy in the Keras cache,
    downloaded and extracted by the first call (`preprocessing.mnistm_download`)."""
    if is_download(path):
        return download_mnistm()
    return existing_path(
        path, "--mnistm", "the one holding mnist_m_train/, or download", folder=True
    )


def photo_folder(path: str | Path) -> Path:
    """`--mnistm-backgrounds`, an existing folder."""
    return existing_path(
        path, "--mnistm-backgrounds", "colour photos to synthesize MNIST-M from", folder=True
    )
