"""EndoVAE's healthy frames: the seeded validation split and the augmented copies.

Two orders. The homework's (`"augment_then_split"`): every normal frame and its augmented
copies (1,500 -> 4,500) are split together, so a validation item can be a copy of a
training frame. Split first (`"split_then_augment"`): only training frames are copied and
the validation frames are originals never trained on.

A split is a dict `{"train": [...], "validation": [...], "order", "copies", "seed"}` of item
names (file names; the k-th augmented copy of `a.png` is `a.png+copy1`), kept as the run's
`split.json`, so evaluation and the flows rebuild exactly the same images.
"""

from __future__ import annotations

import numpy as np

from preprocessing.augment import augment_with_copies
from preprocessing.files import InputError

ORDERS = ("augment_then_split", "split_then_augment")
COPY = "+copy"
QUICK_TRAIN, QUICK_VALIDATION = 150, 50  # items of a --quick run


def split_names(
    names: list[str],
    val_fraction: float,
    seed: int,
    quick: bool = False,
    order: str = "split_then_augment",
    copies: int = 0,
) -> dict:
    """The seeded split of the normal frames' items (see the module docstring)."""
    if not 0 < val_fraction < 1:
        raise InputError(f"--val-fraction {val_fraction}: choose a value between 0 and 1")
    if order not in ORDERS:
        raise InputError(f"split order {order!r}: choose one of {', '.join(ORDERS)}")
    items = list(names)
    if order == "augment_then_split":
        items += [f"{name}{COPY}{k}" for k in range(1, copies + 1) for name in names]
    shuffled = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    n_val = max(1, round(len(items) * val_fraction))
    train, validation = shuffled[n_val:], shuffled[:n_val]
    if quick:
        train, validation = train[:QUICK_TRAIN], validation[:QUICK_VALIDATION]
    if not train:
        raise InputError(f"only {len(names)} normal images: too few to split for training")
    return {
        "train": sorted(train),
        "validation": sorted(validation),
        "order": order,
        "copies": copies,
        "seed": seed,
    }


def split_images(images: np.ndarray, names: list[str], split: dict) -> dict[str, np.ndarray]:
    """The images of each part of `split`, by item name (copies regenerated exactly: the same
    frames, copies and seed give the same augmentation)."""
    index = {name: i for i, name in enumerate(names)}
    copies = split.get("copies", 0) if split.get("order") == "augment_then_split" else 0
    pool = augment_with_copies(images, copies, split.get("seed", 0)) if copies else images
    for k in range(1, copies + 1):
        index.update({f"{name}{COPY}{k}": k * len(names) + i for i, name in enumerate(names)})
    missing = [n for part in ("train", "validation") for n in split[part] if n not in index]
    if missing:
        raise InputError(
            f"the normal images lack {len(missing)} of the run's split (e.g. {missing[0]}): "
            "pass the --data folder the run was trained on"
        )
    return {part: pool[[index[n] for n in split[part]]] for part in ("train", "validation")}


def training_count(split: dict, copies: int) -> int:
    """How many items `training_images` returns for `split`."""
    n = len(split["train"])
    return n if split.get("order") == "augment_then_split" else n * (copies + 1)


def training_images(parts: dict[str, np.ndarray], split: dict, copies: int, seed: int):
    """What the VAE trains on: the training part as split (its copies came before the split)
    or the training part with `copies` augmented copies of each frame."""
    if split.get("order") == "augment_then_split":
        return parts["train"]
    return augment_with_copies(parts["train"], copies=copies, seed=seed)
