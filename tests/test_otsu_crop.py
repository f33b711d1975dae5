"""Otsu-contour cropping on synthetic frames whose view box is known."""

import cv2
import numpy as np
import pytest

from preprocessing.files import InputError
from preprocessing.otsu_crop import (
    crop_quality,
    crop_steps,
    decode_rgb,
    find_content_box,
    preprocess_endoscopy_image,
    square_crop,
)
from preprocessing.synthetic_endoscopy import synthetic_frame


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


def encode(image: np.ndarray, ext: str = ".png") -> bytes:
    return cv2.imencode(ext, image)[1].tobytes()


@pytest.mark.parametrize("shape", ["round", "octagon"])
@pytest.mark.parametrize("height,width", [(96, 96), (128, 200), (300, 240), (576, 720)])
@pytest.mark.parametrize("method", ["robust", "otsu"])
def test_box_matches_known_view(shape, height, width, method):
    rng = np.random.default_rng(height + width)
    for polyp in (False, True):
        frame, box = synthetic_frame(rng, height, width, shape, polyp=polyp)
        assert iou(find_content_box(frame, method), box) >= 0.95


def test_large_frame_with_jpeg_artefacts():
    frame, box = synthetic_frame(np.random.default_rng(1), 1024, 1280, "octagon")
    decoded = decode_rgb(encode(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), ".jpg"))
    for method in ("robust", "otsu"):
        assert iou(find_content_box(decoded, method), box) >= 0.95


def test_small_blobs_never_win():
    frame, box = synthetic_frame(np.random.default_rng(2), 240, 400, "round", text=False)
    x = box[0]
    assert x > 60, "the view must leave room for blobs in the border"
    frame[:, : x - 2] = 0
    cv2.putText(frame, "ID 1234", (2, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    frame[200:215, 5:20] = (20, 150, 120)  # a detached position box
    frame[100:102, 30:32] = 255  # noise
    for method in ("robust", "otsu"):
        assert iou(find_content_box(frame, method), box) >= 0.95


def test_view_split_by_dark_band_keeps_whole_view():
    frame, box = synthetic_frame(np.random.default_rng(3), 300, 400, "octagon", text=False)
    x, y, w, h = box
    frame[y : y + h, x + w // 3 : x + w // 3 + w // 8] = 30  # dark lumen fold, not black
    assert iou(find_content_box(frame, "robust"), box) >= 0.95
    assert iou(find_content_box(frame, "otsu"), box) < 0.9  # the plain recipe loses a piece


def test_dark_lumen_at_view_edge_is_kept():
    frame, box = synthetic_frame(np.random.default_rng(4), 300, 400, "octagon", text=False)
    x, y, w, h = box
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.rectangle(mask, (x, y), (x + w - 1, y + h - 1), 255, -1)
    cv2.circle(mask, (x + w, y + h // 2), h, 0, -1)  # keep the left part of the view only
    frame[(mask == 0) & (frame.max(axis=2) > 10)] = 35  # the right part: dark tissue
    assert iou(find_content_box(frame, "robust"), box) >= 0.95


def test_no_border_gives_whole_image():
    rng = np.random.default_rng(5)
    textured = rng.integers(40, 256, (120, 160, 3), dtype=np.uint8)
    assert find_content_box(textured) == (0, 0, 160, 120)
    frame, (x, y, w, h) = synthetic_frame(rng, 200, 260, "round")
    assert iou(find_content_box(frame[y : y + h, x : x + w]), (0, 0, w, h)) >= 0.95


@pytest.mark.parametrize("value,reason", [(0, "all black"), (3, "all black"), (255, "uniform")])
def test_uniform_image_is_a_clear_error(value, reason):
    with pytest.raises(InputError, match=f"no view to crop: the image is {reason}"):
        find_content_box(np.full((64, 64, 3), value, np.uint8))


def test_noisy_black_frame_is_all_black():
    noise = np.random.default_rng(11).integers(0, 14, (120, 160, 3), dtype=np.uint8)
    noise[50:53, 70:73] = 200  # a stray bright speck
    with pytest.raises(InputError, match="all black"):
        find_content_box(noise)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        find_content_box(synthetic_frame(np.random.default_rng(0), 64, 64)[0], "largest")


@pytest.mark.parametrize("size", [96, 64])
def test_preprocess_square_float_in_unit_range(size):
    frame, _ = synthetic_frame(np.random.default_rng(6), 300, 500, "octagon")
    out = preprocess_endoscopy_image(frame, size)
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.mean() > 0.2


def test_crop_quality_tells_good_boxes_from_bad():
    frame, box = synthetic_frame(np.random.default_rng(10), 200, 300, "octagon", text=False)
    kept, black = crop_quality(frame, box)
    assert kept == 1.0 and black < 0.6
    assert crop_quality(frame, (0, 0, 300, 200)) == (1.0, 1.0)  # the border left in
    x, y, w, h = box
    assert crop_quality(frame, (x, y, w // 2, h))[0] < 0.6  # half the view lost


def test_square_crop_is_centred():
    image = np.arange(10 * 20).reshape(10, 20)
    assert (square_crop(image, (2, 0, 16, 10)) == image[:, 5:15]).all()


def test_tiny_view_is_rejected():
    frame, _ = synthetic_frame(np.random.default_rng(7), 24, 24, "round", text=False)
    with pytest.raises(InputError, match="too small"):
        preprocess_endoscopy_image(frame)


def test_crop_steps():
    frame, box = synthetic_frame(np.random.default_rng(8), 200, 240, "round")
    steps = crop_steps(frame, size=48)
    assert 0 < steps.threshold < 255 and set(np.unique(steps.mask)) == {0, 255}
    assert steps.gray.shape == frame.shape[:2] and steps.contour.shape == frame.shape
    assert iou(steps.box, box) >= 0.95 and steps.final.shape == (48, 48, 3)


def test_decode_colour_variants():
    rng = np.random.default_rng(9)
    bgr = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    rgb = decode_rgb(encode(bgr))
    assert (rgb == bgr[..., ::-1]).all()
    gray = decode_rgb(encode(bgr[..., 0]))
    assert gray.shape == (8, 10, 3) and (gray[..., 1] == bgr[..., 0]).all()
    rgba = decode_rgb(encode(np.dstack([bgr, np.full((8, 10), 255, np.uint8)])))
    assert (rgba == rgb).all()
    deep = decode_rgb(encode(bgr.astype(np.uint16) * 257))
    assert deep.dtype == np.uint8 and (deep == rgb).all()
    assert decode_rgb(encode(bgr[..., 0].astype(np.uint16) * 257)).shape == (8, 10, 3)


@pytest.mark.parametrize(
    "data,reason",
    [(b"", "empty"), (b"just some text\n", "not a readable image"), (b"\xff\xd8\xff" * 5, "not")],
)
def test_decode_bad_bytes_gives_reason(data, reason):
    with pytest.raises(InputError, match=reason):
        decode_rgb(data)
