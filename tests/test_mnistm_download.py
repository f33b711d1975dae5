"""`--mnistm download`: the archive fetched once into the Keras cache, extracted atomically,
checked, and read back paired with MNIST; offline and corrupt archives give one-line errors.

No network: the "public copy" is a tiny archive in the same format (a tar.gz of a canonical
`mnist_m/` folder) that each test makes and serves through a file:// URL with its own MD5.
"""

import hashlib
import importlib
import tarfile

import numpy as np
import pytest

from preprocessing import mnistm_download
from preprocessing.digits import load_pair
from preprocessing.files import InputError
from tests.test_digits import write_mnist, write_mnistm


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty Keras home; the download expects 3 train and 2 test images."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(mnistm_download, "COUNTS", {"train": 3, "test": 2})
    return tmp_path / "keras"


def serve(monkeypatch, archive):
    """Make `archive` the public copy: its file:// URL and its MD5."""
    monkeypatch.setattr(mnistm_download, "URL", archive.as_uri())
    monkeypatch.setattr(mnistm_download, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())


def make_archive(tmp_path, labels):
    """mnist_m.tar.gz holding mnist_m/ in the canonical layout; returns it and its images."""
    source = tmp_path / "source"
    images = write_mnistm(source / "mnist_m", labels)
    archive = tmp_path / "served" / "mnist_m.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "mnist_m", arcname="mnist_m")
    return archive, images


def cache_entries(home):
    datasets = home / "datasets"
    return sorted(p.name for p in datasets.iterdir()) if datasets.is_dir() else []


def test_download_is_extracted_cached_and_pairs_with_mnist(tmp_path, home, monkeypatch):
    mnist = write_mnist(tmp_path / "mnist.npz", n_train=5, n_test=3)
    labels = {"train": mnist["y_train"][:3], "test": mnist["y_test"][:2]}
    archive, images = make_archive(tmp_path, labels)
    serve(monkeypatch, archive)

    folder = mnistm_download.download_mnistm()
    assert folder == home / "datasets" / "mnist_m"
    assert cache_entries(home) == ["mnist_m", "mnist_m.tar.gz"]  # no temporary folder left
    pair = load_pair("mnist-mnistm", mnist=tmp_path / "mnist.npz", mnistm="download")
    np.testing.assert_array_equal(pair.target, np.concatenate([images["train"], images["test"]]))
    np.testing.assert_array_equal(pair.target_labels, np.concatenate(list(labels.values())))
    np.testing.assert_array_equal(pair.labels, pair.target_labels)  # MNIST's, by index

    archive.unlink()  # the public copy is gone: a second call must not need it

    def no_fetch(*args):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(mnistm_download, "fetch", no_fetch)
    assert mnistm_download.download_mnistm() == folder


def test_downloaded_copy_is_checked_against_mnist(tmp_path, home, monkeypatch):
    mnist = write_mnist(tmp_path / "mnist.npz", n_train=5, n_test=3)
    wrong = {"train": (mnist["y_train"][:3] + 1) % 10, "test": mnist["y_test"][:2]}
    serve(monkeypatch, make_archive(tmp_path, wrong)[0])
    with pytest.raises(InputError, match="does not pair with --mnist by index"):
        load_pair("mnist-mnistm", mnist=tmp_path / "mnist.npz", mnistm="download")


def test_offline_is_one_line_naming_the_flag_and_writes_nothing(tmp_path, home, monkeypatch):
    monkeypatch.setattr(mnistm_download, "URL", (tmp_path / "unreachable.tar.gz").as_uri())
    app = importlib.import_module("apps.train_classifier")
    out = tmp_path / "out"
    args = app.parser().parse_args(["--mnistm", "download", "--out", str(out)])
    with pytest.raises(InputError) as caught:
        app.main(args)
    message = str(caught.value)
    assert message.startswith("--mnistm download: could not reach file://")
    assert "connect to the internet" in message and "--mnistm DIR" in message
    assert "\n" not in message
    assert not out.exists() and cache_entries(home) == []


def test_corrupt_archive_leaves_nothing_a_later_call_would_trust(tmp_path, home, monkeypatch):
    archive, _ = make_archive(tmp_path, {"train": [1, 2, 3], "test": [4, 5]})
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])  # a truncated download
    serve(monkeypatch, archive)
    with pytest.raises(InputError, match=r"^--mnistm download: could not extract .*") as caught:
        mnistm_download.download_mnistm()
    assert "\n" not in str(caught.value) and "run again" in str(caught.value)
    assert cache_entries(home) == []  # neither a half-extracted folder nor the bad archive

    archive.write_bytes(good)  # the copy is whole again: the next call downloads it anew
    serve(monkeypatch, archive)
    assert (mnistm_download.download_mnistm() / "mnist_m_test_labels.txt").is_file()


def test_archive_with_missing_images_is_refused(tmp_path, home, monkeypatch):
    serve(monkeypatch, make_archive(tmp_path, {"train": [1, 2], "test": [4, 5]})[0])
    with pytest.raises(InputError, match=r"holds 2 train images and 2 labels, expected 3"):
        mnistm_download.download_mnistm()
    assert cache_entries(home) == []


def test_download_with_another_md5_is_refused(tmp_path, home, monkeypatch):
    serve(monkeypatch, make_archive(tmp_path, {"train": [1, 2, 3], "test": [4, 5]})[0])
    monkeypatch.setattr(mnistm_download, "MD5", "0" * 32)  # a changed or broken download
    with pytest.raises(InputError, match=r"^--mnistm download: .* MD5 is not 0{32} .*run again"):
        mnistm_download.download_mnistm()
    assert "mnist_m" not in cache_entries(home)
