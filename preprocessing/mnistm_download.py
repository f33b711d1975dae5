"""`--mnistm download`: Ganin & Lempitsky's own MNIST-M archive, fetched once into the Keras
cache and extracted there in the canonical layout that `preprocessing.mnistm.read_mnistm` reads.

The archive is `mnist_m.tar.gz` (a `mnist_m/` folder: `mnist_m_{train,test}/` of 32x32 PNGs and
`mnist_m_{train,test}_labels.txt`), from the public mirror that pytorch-adapt's `MNISTM` downloads
with the same MD5 (docs/pixelda.md, "MNIST-M").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import zlib
from pathlib import Path

from preprocessing.files import InputError

DOWNLOAD = "download"  # the value of --mnistm that asks for this download
URL = "https://cornell.box.com/shared/static/jado7quprg6hzzdubvwzh9umr75damwi"
MD5 = "859df31c91afe82e80e5012ba928f279"
ARCHIVE = "mnist_m.tar.gz"
FOLDER = "mnist_m"  # the extracted copy, next to the archive in the Keras cache
COUNTS = {"train": 59_001, "test": 9_001}  # images (and label lines) of each part
FIX = f"download {ARCHIVE} (Ganin's MNIST-M) yourself, extract it and pass --mnistm DIR/{FOLDER}"


def is_download(path: str | Path | None) -> bool:
    """Whether an `--mnistm` value asks for the download (a folder named `download`: give
    its absolute path)."""
    return path is not None and str(path) == DOWNLOAD


def download_mnistm() -> Path:
    """The canonical MNIST-M folder in the Keras cache (`$KERAS_HOME`, default `~/.keras`,
    under `datasets/`); the first call downloads and extracts it, later calls only return it."""
    folder = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets" / FOLDER
    if folder.is_dir():
        return folder
    archive = fetch(folder.parent.parent)
    folder = archive.parent / FOLDER  # keras may have fallen back to /tmp/.keras
    if not folder.is_dir():
        extract(archive, folder)
    return folder


def fetch(cache_dir: Path) -> Path:
    """`mnist_m.tar.gz` in `cache_dir/datasets/`, downloaded by keras unless it is there with
    the right MD5."""
    import keras

    with contextlib.suppress(OSError):  # keras falls back to /tmp/.keras if it is not writable
        cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            ARCHIVE, URL, file_hash=MD5, hash_algorithm="md5", cache_dir=str(cache_dir)
        )
    except ValueError as err:  # keras: the MD5 does not match (keras re-downloads next time)
        raise InputError(
            f"--mnistm download: {URL} sent a file whose MD5 is not {MD5} (a broken or changed "
            f"download): run again, or {FIX}"
        ) from err
    except Exception as err:  # network errors come in many types
        raise InputError(
            f"--mnistm download: could not reach {URL} ({_network_reason(err)}): "
            f"connect to the internet, or {FIX}"
        ) from err
    return Path(path)


def extract(archive: Path, folder: Path) -> None:
    """Unpack `archive` into a temporary sibling of `folder`, check its image counts (`COUNTS`),
    then rename it to `folder`: a half-done extraction never sits at `folder`. A bad archive
    is deleted, so that the next call downloads it anew."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}-", dir=folder.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            archive.unlink(missing_ok=True)
            raise InputError(
                f"--mnistm download: could not extract {archive} ({_reason(err)}; deleted): "
                f"run again to download it anew, or {FIX}"
            ) from err
        root = tmp / FOLDER if (tmp / FOLDER).is_dir() else tmp
        for part, expected in COUNTS.items():
            images, labels = _count(root, part)
            if images != expected or labels != expected:
                archive.unlink(missing_ok=True)
                raise InputError(
                    f"--mnistm download: {archive} holds {images:,} {part} images and "
                    f"{labels:,} labels, expected {expected:,} of each (deleted): "
                    f"run again to download it anew, or {FIX}"
                )
        try:
            os.replace(root, folder)
        except OSError:
            if not folder.is_dir():  # else another process has just put it there
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _count(root: Path, part: str) -> tuple[int, int]:
    """PNG files and non-empty label lines of one part of an extracted copy."""
    images = root / f"mnist_m_{part}"
    labels = root / f"mnist_m_{part}_labels.txt"
    n_images = sum(1 for _ in images.glob("*.png")) if images.is_dir() else 0
    lines = labels.read_text().splitlines() if labels.is_file() else []
    return n_images, sum(1 for line in lines if line.strip())


def _network_reason(err: Exception) -> str:
    """Why keras' download failed: the urllib error it wraps, if any."""
    inner = err.__context__
    if isinstance(inner, urllib.error.HTTPError):
        return _reason(inner)  # e.g. "HTTP Error 404: Not Found"
    if isinstance(inner, urllib.error.URLError):
        return _reason(inner.reason)  # e.g. "[Errno -2] Name or service not known"
    return _reason(err)


def _reason(err: BaseException | str) -> str:
    """An exception's message on one line."""
    return " ".join(str(err).split()) or err.__class__.__name__
