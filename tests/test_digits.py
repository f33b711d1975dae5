"""Digit domains: MNIST npz, the canonical MNIST-M reader, synthesis, demo pair, splits."""

import cv2
import numpy as np
import pytest

from models.pixels import to_unit_range
from preprocessing.digit_pipelines import labelled_dataset
from preprocessing.digit_splits import paired_split
from preprocessing.digits import DigitPair, demo_pair, load_pair, pair_mnist_mnistm
from preprocessing.files import InputError
from preprocessing.mnist import load_mnist, mnist_to_rgb32
from preprocessing.mnistm import read_mnistm, synthesize_mnistm


def write_mnist(path, n_train=12, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    data = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    np.savez(path, **data)
    return data


def write_mnistm(root, labels_by_part, size=32, seed=0):
    """A canonical MNIST-M folder; returns the images written, by part."""
    rng = np.random.default_rng(seed)
    written = {}
    for part, labels in labels_by_part.items():
        folder = root / f"mnist_m_{part}"
        folder.mkdir(parents=True)
        lines, images = [], []
        for i, label in enumerate(labels):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i:08d}.png"), image[..., ::-1])
            lines.append(f"{i:08d}.png {label}")
            images.append(image)
        (root / f"mnist_m_{part}_labels.txt").write_text("\n".join(lines) + "\n")
        written[part] = np.stack(images)
    return written


def test_mnist_npz_in_the_keras_layout(tmp_path):
    data = write_mnist(tmp_path / "mnist.npz")
    (xa, ya), (xb, yb) = load_mnist(tmp_path / "mnist.npz")
    assert xa.shape == (12, 28, 28) and xb.dtype == np.uint8
    np.testing.assert_array_equal(xb, data["x_test"])
    np.testing.assert_array_equal(ya, data["y_train"])


def test_rgb32_pads_and_repeats_grey():
    digits = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    rgb = mnist_to_rgb32(digits, "pad")
    assert rgb.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(rgb[:, 2:30, 2:30, 1], digits)
    assert rgb[:, :2].max() == 0 and (rgb[..., 0] == rgb[..., 2]).all()


def bilinear_by_hand(image: np.ndarray, size: int) -> np.ndarray:
    """transforms.Resize's bilinear upsampling in float64: pixel centres at (i + 0.5) * in/out
    - 0.5, linear weights between the two nearest input pixels, clamped at the edges."""
    n = image.shape[0]
    centre = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    low = np.floor(centre).astype(int)
    high = np.minimum(low + 1, n - 1)
    w = centre - low
    rows = image[low] * (1 - w)[:, None] + image[high] * w[:, None]
    return rows[:, low] * (1 - w) + rows[:, high] * w


def test_rgb32_resizes_bilinear_as_the_homework():
    digits = np.random.default_rng(0).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    rgb = mnist_to_rgb32(digits)  # the default: the homework's transforms.Resize(32)
    assert rgb.shape == (3, 32, 32, 3) and rgb.dtype == np.uint8
    for digit, resized in zip(digits, rgb, strict=True):
        expected = bilinear_by_hand(digit.astype(np.float64), 32)
        # PIL rounds to uint8 after each of its two passes: at most 0.5 + 0.5 grey levels
        assert np.abs(resized[..., 0].astype(np.float64) - expected).max() <= 1.0
    with pytest.raises(InputError, match="--mnist-resize nearest: choose one of bilinear"):
        mnist_to_rgb32(digits, "nearest")


def test_canonical_mnistm_reader_pairs_by_index(tmp_path):
    data = write_mnist(tmp_path / "mnist.npz")
    written = write_mnistm(
        tmp_path / "mm", {"train": data["y_train"][:5], "test": data["y_test"][:3]}
    )
    parts = read_mnistm(tmp_path / "mm")
    np.testing.assert_array_equal(parts[0][0], written["train"])  # RGB order kept
    pair = pair_mnist_mnistm(load_mnist(tmp_path / "mnist.npz"), parts, "pad")
    assert len(pair.source) == 8
    np.testing.assert_array_equal(pair.labels, pair.target_labels)
    # MNIST-M test image 0 pairs with MNIST test image 0
    np.testing.assert_array_equal(pair.source[5, 2:30, 2:30, 0], data["x_test"][0])


def test_single_part_of_70000_style_pairs_in_order(tmp_path):
    data = write_mnist(tmp_path / "mnist.npz")
    labels = np.concatenate([data["y_train"], data["y_test"]])[:10]
    write_mnistm(tmp_path / "mm", {"train": labels})
    pair = pair_mnist_mnistm(load_mnist(tmp_path / "mnist.npz"), read_mnistm(tmp_path / "mm"))
    np.testing.assert_array_equal(pair.labels, labels)
    np.testing.assert_array_equal(pair.source, mnist_to_rgb32(data["x_train"][:10]))


def test_labels_that_do_not_pair_are_refused(tmp_path):
    data = write_mnist(tmp_path / "mnist.npz")
    write_mnistm(tmp_path / "mm", {"train": (data["y_train"][:8] + 1) % 10})
    with pytest.raises(InputError, match="does not pair"):
        pair_mnist_mnistm(load_mnist(tmp_path / "mnist.npz"), read_mnistm(tmp_path / "mm"))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_folder", "no such folder"),
        ("no_labels", "label file mnist_m_train_labels.txt is missing"),
        ("missing_image", "lists 4 images but 1 are missing"),
        ("bad_line", "expected 'NAME.png LABEL'"),
        ("wrong_size", "expected 32x32"),
    ],
)
def test_bad_mnistm_layouts_name_the_file(tmp_path, breakage, message):
    root = tmp_path / "mm"
    write_mnistm(root, {"train": [1, 2, 3, 4]})
    if breakage == "no_folder":
        root = tmp_path / "nowhere"
    elif breakage == "no_labels":
        (root / "mnist_m_train_labels.txt").unlink()
    elif breakage == "missing_image":
        (root / "mnist_m_train" / "00000002.png").unlink()
    elif breakage == "bad_line":
        (root / "mnist_m_train_labels.txt").write_text("00000000.png five\n")
    elif breakage == "wrong_size":
        cv2.imwrite(str(root / "mnist_m_train" / "00000001.png"), np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(InputError, match=message):
        read_mnistm(root)


def test_bad_mnist_paths(tmp_path):
    with pytest.raises(InputError, match="--mnist .*no such file"):
        load_mnist(tmp_path / "missing.npz")
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(InputError, match="x_train"):
        load_mnist(tmp_path / "wrong.npz")


def test_mnistm_needed_without_download(tmp_path):
    write_mnist(tmp_path / "mnist.npz")
    with pytest.raises(InputError, match="--mnistm DIR"):
        load_pair("mnist-mnistm", mnist=tmp_path / "mnist.npz")


def test_synthesis_is_abs_difference_of_a_photo_patch():
    photo = np.full((40, 50, 3), (200, 100, 50), dtype=np.uint8)
    digits = np.zeros((3, 32, 32, 3), np.uint8)
    digits[:, 10:20, 10:20] = 255
    out = synthesize_mnistm(digits, [photo], seed=1)
    np.testing.assert_array_equal(out[:, 0, 0], [[200, 100, 50]] * 3)
    np.testing.assert_array_equal(out[:, 15, 15], [[55, 155, 205]] * 3)
    np.testing.assert_array_equal(out, synthesize_mnistm(digits, [photo], seed=1))
    with pytest.raises(InputError, match="colour photo"):
        synthesize_mnistm(digits, [np.zeros((10, 10, 3), np.uint8)])


def test_mnistm_synthesized_from_a_photo_folder(tmp_path):
    write_mnist(tmp_path / "mnist.npz")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(photos / "a.jpg"), rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    (photos / "notes.txt").write_text("not an image")
    pair = load_pair("mnist-mnistm", mnist=tmp_path / "mnist.npz", backgrounds=photos)
    assert pair.target.shape == (18, 32, 32, 3) and "synthesized" in pair.name
    with pytest.raises(InputError, match="--mnistm-backgrounds .*no readable images"):
        load_pair("mnist-mnistm", mnist=tmp_path / "mnist.npz", backgrounds=tmp_path)


def test_demo_pair_is_offline_and_labelled_demo():
    pair = demo_pair(seed=0)
    assert pair.demo and "demo" in pair.name and "MNIST" not in pair.name
    assert pair.source.shape == pair.target.shape == (1797, 32, 32, 3)
    assert pair.source.dtype == pair.target.dtype == np.uint8
    assert "demo" in pair.source_name and "demo" in pair.target_name
    # the target carries colour where the source is grey
    assert np.ptp(pair.target.astype(int), axis=-1).mean() > np.ptp(pair.source, axis=-1).mean()


def test_paired_split_is_seeded_and_disjoint():
    train, test = paired_split(100, 0.2, seed=3)
    assert len(test) == 20 and len(train) == 80
    assert not set(train) & set(test) and set(train) | set(test) == set(range(100))
    np.testing.assert_array_equal(test, paired_split(100, 0.2, seed=3)[1])
    assert not np.array_equal(test, paired_split(100, 0.2, seed=4)[1])


def test_split_keeps_pairs():
    source = np.arange(10)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    pair = DigitPair("t", source, np.arange(10), source + 1, np.arange(10))
    train, test = paired_split(10, 0.3, seed=0)
    np.testing.assert_array_equal(pair.target[test] - 1, pair.source[test])
    np.testing.assert_array_equal(pair.labels[train], pair.target_labels[train])


def test_pipeline_range_and_batches():
    images = np.array([[[[0, 255, 128]]]] * 5, dtype=np.uint8)
    x = to_unit_range(images).numpy()
    np.testing.assert_allclose(x[0, 0, 0], [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
    batches = list(labelled_dataset(images, np.arange(5), batch_size=2))
    assert [len(b[1]) for b in batches] == [2, 2, 1]


def test_training_stream_shuffles_each_epoch_by_seed_and_epoch():
    images = np.zeros((5, 1, 1, 3), np.uint8)

    def epochs(seed, start=0, n=2):
        stream = labelled_dataset(images, np.arange(5), 2, shuffle_seed=seed, start_epoch=start)
        labels = [b[1].numpy() for b in stream.take(3 * n)]  # 3 batches per epoch
        return [np.concatenate(labels[3 * e : 3 * e + 3]).tolist() for e in range(n)]

    first, second = epochs(seed=0)
    assert sorted(first) == sorted(second) == list(range(5)) and first != second
    assert epochs(seed=0, start=1, n=1) == [second]  # a resumed run sees epoch 2's order
    assert epochs(seed=1) != [first, second]
