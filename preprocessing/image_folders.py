"""A folder of images of any kind and size, read as one RGB uint8 array (CycleGAN's domains)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from preprocessing.files import InputError, existing_path


def image_folder(folder: Path, flag: str) -> Path:
    """`folder`, an existing folder (else an `InputError` naming `flag`)."""
    return existing_path(folder, flag, "unpaired images of one domain", folder=True)


def read_image_folder(folder: Path, size: int, flag: str) -> np.ndarray:
    """Every readable image of `folder` (sorted by name), RGB uint8 resized to size x size.

    Unreadable files are skipped and counted in one line; a missing folder or one without
    any readable image is an `InputError`.
    """
    folder = image_folder(folder, flag)
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
