"""Digit domains for PixelDA: MNIST, MNIST-M (read or synthesized) and the offline demo pair.

A `DigitPair` holds a labelled source domain and a target domain that pair by index
(target image i shows source digit i on a new background). Target labels are kept for
evaluation only; the training pipelines in this module never yield them.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf
from PIL import Image

from preprocessing.files import InputError, existing_path
from preprocessing.pipelines import array_batches, epoch_indices

SIZE = 32
MNISTM_PARTS = ("train", "test")
RESIZES = ("bilinear", "pad")  # MNIST 28x28 -> 32x32 (`mnist_to_rgb32`)
DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")


@dataclasses.dataclass
class DigitPair:
    """Source and target images (uint8, N x 32 x 32 x 3) that pair by index."""

    name: str
    source: np.ndarray
    labels: np.ndarray
    target: np.ndarray
    target_labels: np.ndarray  # evaluation only
    demo: bool = False

    def __post_init__(self):
        if not len(self.source) == len(self.labels) == len(self.target) == len(self.target_labels):
            raise InputError(f"{self.name}: source and target sets differ in size")

    @property
    def source_name(self) -> str:
        return domain_names(self.demo)[0]

    @property
    def target_name(self) -> str:
        return domain_names(self.demo)[1]


def domain_names(demo: bool) -> tuple[str, str]:
    """How figures and reports name the source and target domains."""
    if demo:
        return "demo source (sklearn digits)", "demo target (skimage photos)"
    return "MNIST", "MNIST-M"


# ---------------------------------------------------------------- MNIST


Split = tuple[np.ndarray, np.ndarray]


def load_mnist(path: str | Path | None = None) -> tuple[Split, Split]:
    """MNIST as `((x_train, y_train), (x_test, y_test))`, 28x28 uint8, like keras.

    `path` is an npz in the `keras.datasets.mnist` layout; without it keras downloads
    (and caches) the data.
    """
    if path is None:
        import keras

        try:
            return keras.datasets.mnist.load_data()
        except Exception as err:  # network errors come in many types
            raise InputError(
                f"cannot download MNIST ({err.__class__.__name__}): pass --mnist PATH "
                "to an npz with x_train, y_train, x_test, y_test"
            ) from err
    path = _mnist_file(path)
    try:
        with np.load(path) as data:
            parts = [(data[f"x_{p}"], data[f"y_{p}"]) for p in MNISTM_PARTS]
    except (KeyError, ValueError, OSError) as err:
        raise InputError(
            f"--mnist {path}: not an npz with x_train, y_train, x_test, y_test ({err})"
        ) from err
    for x, _ in parts:
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise InputError(f"--mnist {path}: images are {x.shape[1:]}, expected 28x28")
    (xa, ya), (xb, yb) = parts
    return (xa.astype(np.uint8), ya.astype(np.int64)), (xb.astype(np.uint8), yb.astype(np.int64))


def mnist_to_rgb32(digits: np.ndarray, resize: str = "bilinear") -> np.ndarray:
    """28x28 grey digits -> 32x32x3.

    "bilinear": the homework's `transforms.Resize(32)` on PIL images (PIL's bilinear; the
    official PixelDA code resizes too); "pad": zero padding of 2, the digit at the scale
    MNIST-M shows it.
    """
    if resize == "pad":
        grey = np.pad(digits, ((0, 0), (2, 2), (2, 2)))
    elif resize == "bilinear":
        size = (SIZE, SIZE)
        grey = np.stack(
            [np.asarray(Image.fromarray(d).resize(size, Image.BILINEAR)) for d in digits]
        )
    else:
        raise InputError(f"--mnist-resize {resize}: choose one of {', '.join(RESIZES)}")
    return np.repeat(grey[..., None], 3, axis=-1)


# ---------------------------------------------------------------- MNIST-M


def read_mnistm(root: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read MNIST-M in the canonical layout; returns [(images, labels)] for train and test.

    `root` holds `mnist_m_{train,test}/` and `mnist_m_{train,test}_labels.txt` with lines
    `00000000.png 5`. A set with only a train part (e.g. 70,000 images) is returned alone.
    """
    root = _mnistm_folder(root)
    parts = []
    for part in MNISTM_PARTS:
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


def pair_mnist_mnistm(
    mnist: tuple[Split, Split], mnistm: list[Split], resize: str = "bilinear"
) -> DigitPair:
    """Pair MNIST-M with MNIST by index: its train part with MNIST train, its test part with
    MNIST test; a single part (e.g. 70,000 images) pairs with all of MNIST in order. MNIST
    goes to 32x32 by `resize` (`mnist_to_rgb32`)."""
    if len(mnistm) == 1:
        mnist = (
            (
                np.concatenate([mnist[0][0], mnist[1][0]]),
                np.concatenate([mnist[0][1], mnist[1][1]]),
            ),
        )
    source, labels = [], []
    for (x, y), (images, target_labels) in zip(mnist, mnistm, strict=False):
        if len(images) > len(x):
            raise InputError(
                f"MNIST-M has {len(images)} images in a part where MNIST has {len(x)}: "
                "the --mnistm folder does not pair with --mnist"
            )
        agree = np.mean(y[: len(images)] == target_labels)
        if agree < 0.99:
            raise InputError(
                f"MNIST-M labels agree with MNIST on only {agree:.0%} of paired indices: "
                "the --mnistm folder does not pair with --mnist by index"
            )
        source.append(mnist_to_rgb32(x[: len(images)], resize))
        labels.append(y[: len(images)])
    return DigitPair(
        "MNIST -> MNIST-M",
        np.concatenate(source),
        np.concatenate(labels),
        np.concatenate([images for images, _ in mnistm]),
        np.concatenate([lab for _, lab in mnistm]),
    )


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
    folder = _photo_folder(folder)
    photos = []
    for path in sorted(folder.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is not None:
            photos.append(image[..., ::-1])
    if not photos:
        raise InputError(f"--mnistm-backgrounds {folder}: no readable images in it")
    return photos


# ---------------------------------------------------------------- demo pair


def demo_pair(seed: int = 0) -> DigitPair:
    """Offline demo data: scikit-learn's 1,797 real 8x8 digits upsampled to 32x32, and the
    MNIST-M recipe over the colour photos bundled with scikit-image. Nothing downloaded."""
    from skimage import data
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = (bunch.images * (255.0 / 16.0)).astype(np.float32)
    big = np.stack([cv2.resize(g, (24, 24), interpolation=cv2.INTER_CUBIC) for g in grey])
    digits = np.pad(np.clip(big, 0, 255).astype(np.uint8), ((0, 0), (4, 4), (4, 4)))
    source = np.repeat(digits[..., None], 3, axis=-1)
    photos = [getattr(data, name)() for name in DEMO_PHOTOS]
    target = synthesize_mnistm(source, [p[..., :3] for p in photos if p.ndim == 3], seed)
    labels = bunch.target.astype(np.int64)
    return DigitPair(
        "demo data (sklearn digits -> skimage photos)", source, labels, target, labels, demo=True
    )


def check_pair(
    pair: str,
    mnist: str | Path | None = None,
    mnistm: str | Path | None = None,
    backgrounds: str | Path | None = None,
) -> None:
    """Refuse flags of a digit pair (`load_pair`'s) that name a missing file or folder, leave
    MNIST-M out or give it twice; cheap, so apps call it before they write anything."""
    if pair == "digits-demo":
        return
    if pair != "mnist-mnistm":
        raise InputError(f"--pair {pair}: choose mnist-mnistm or digits-demo")
    if mnist is not None:
        _mnist_file(mnist)
    if mnistm is not None and backgrounds is not None:
        raise InputError(
            "--mnistm and --mnistm-backgrounds: pass one (MNIST-M read, or synthesized)"
        )
    if mnistm is None and backgrounds is None:
        raise InputError(
            "MNIST-M is needed: pass --mnistm DIR (canonical layout), or --mnistm-backgrounds "
            "DIR of colour photos (e.g. BSDS500) to synthesize it, or --pair digits-demo"
        )
    if mnistm is not None:
        _mnistm_folder(mnistm)
    else:
        _photo_folder(backgrounds)


def load_pair(
    pair: str,
    mnist: str | Path | None = None,
    mnistm: str | Path | None = None,
    backgrounds: str | Path | None = None,
    seed: int = 0,
    resize: str = "bilinear",
) -> DigitPair:
    """The digit pair the apps' flags describe (`--pair`, `--mnist`, `--mnistm`,
    `--mnistm-backgrounds`, `--mnist-resize`; see `check_pair`). Synthesized MNIST-M puts
    the padded digit on its backgrounds, at the scale of the canonical set."""
    check_pair(pair, mnist, mnistm, backgrounds)
    if pair == "digits-demo":
        return demo_pair(seed)
    parts = load_mnist(mnist)
    if mnistm is not None:
        return pair_mnist_mnistm(parts, read_mnistm(mnistm), resize)
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.concatenate([parts[0][1], parts[1][1]])
    target = synthesize_mnistm(mnist_to_rgb32(x, "pad"), read_photos(backgrounds), seed)
    return DigitPair("MNIST -> MNIST-M (synthesized)", mnist_to_rgb32(x, resize), y, target, y)


def _mnist_file(path: str | Path) -> Path:
    return existing_path(path, "--mnist", "an npz like keras' mnist.npz")


def _mnistm_folder(path: str | Path) -> Path:
    return existing_path(path, "--mnistm", "the one holding mnist_m_train/", folder=True)


def _photo_folder(path: str | Path) -> Path:
    return existing_path(
        path, "--mnistm-backgrounds", "colour photos to synthesize MNIST-M from", folder=True
    )


# ---------------------------------------------------------------- splits and pipelines


def paired_split(
    n: int, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One seeded random split of pair indices, applied to both domains alike."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], PixelDA's pixel range."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def labelled_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    start_epoch: int = 0,
) -> tf.data.Dataset:
    """(image, label) batches in [-1, 1]: one pass in order without a seed, else the
    endless seeded stream of `array_batches`."""
    return array_batches(
        (images, labels),
        batch_size,
        shuffle_seed,
        start_epoch,
        lambda x, y: (to_unit_range(x), y),
    )


def adaptation_dataset(
    source: np.ndarray,
    labels: np.ndarray,
    target: np.ndarray,
    batch_size: int,
    seed: int = 0,
    start_step: int = 0,
) -> tf.data.Dataset:
    """Endless `((x_s, y_s), x_t)` batches in [-1, 1] for domain adaptation.

    Source and target each pass epoch after epoch in their own seeded order
    (`epoch_indices`), so training never sees the index pairing; target labels are not an
    argument. Batches are full (static shape); `start_step` skips the batches a resumed
    run has already trained on, so it sees exactly the batches of an uninterrupted run.
    """

    def endless(n: int, stream_seed: int) -> tf.data.Dataset:
        indices = epoch_indices(n, batch_size, stream_seed).unbatch()
        return indices.batch(batch_size, drop_remainder=True)

    ds = tf.data.Dataset.zip(endless(len(source), seed), endless(len(target), seed + 1))
    source, labels, target = (tf.constant(a) for a in (source, labels, target))
    ds = ds.skip(start_step).map(
        lambda i, j: (
            (to_unit_range(tf.gather(source, i)), tf.gather(labels, i)),
            to_unit_range(tf.gather(target, j)),
        ),
        tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)
