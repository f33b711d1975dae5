"""Synthetic endoscopy-like frames with a known view box, and a Kvasir-like tree of them.

`synthetic_frame` (the demo's frames): a black border around a bright, textured, reddish round
or octagonal view, with optionally a green position box in the view box's lower-left corner and
overlay text in its upper-left corner (both as in Kvasir), and optionally a polyp: a raised
reddish blob with a highlight.

These frames are for tests, the offline demo and benchmarks; everything made from them is
labelled synthetic. They are not Kvasir. `preprocessing.crop_cases` builds the held-out
frames of the crop measurements from the same parts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from preprocessing.files import write_bytes, write_text

Box = tuple[int, int, int, int]
SHAPES = ("round", "octagon")  # the demo's views
VIEW_SHAPES = ("round", "octagon", "ellipse", "rounded")  # what `view_mask` draws
CLASSES = {"normal-z-line": False, "normal-cecum": False, "polyps": True}  # name -> polyp
SYNTHETIC_MARKER = "SYNTHETIC.txt"


def smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse grid of noise, upsampled."""
    coarse = rng.random((cells, max(2, cells * width // height))).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def distance2(height: int, width: int, cx: float, cy: float) -> np.ndarray:
    """Squared distance of every pixel to (cx, cy), float32."""
    yy, xx = np.ogrid[:height, :width]
    return ((xx - cx) ** 2 + (yy - cy) ** 2).astype(np.float32)


def view_mask(height: int, width: int, box: Box, shape: str) -> np.ndarray:
    x, y, w, h = box
    mask = np.zeros((height, width), np.uint8)
    if shape in ("round", "ellipse"):  # the ellipse inscribed in the box
        cv2.ellipse(mask, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 255, -1)
    elif shape == "rounded":
        r = min(w, h) // 4
        cv2.rectangle(mask, (x + r, y), (x + w - 1 - r, y + h - 1), 255, -1)
        cv2.rectangle(mask, (x, y + r), (x + w - 1, y + h - 1 - r), 255, -1)
        for cx, cy in itertools.product((x + r, x + w - 1 - r), (y + r, y + h - 1 - r)):
            cv2.circle(mask, (cx, cy), r, 255, -1)
    elif shape == "octagon":
        c = min(w, h) // 5
        points = [(x + c, y), (x + w - 1 - c, y), (x + w - 1, y + c), (x + w - 1, y + h - 1 - c)]
        points += [(x + w - 1 - c, y + h - 1), (x + c, y + h - 1), (x, y + h - 1 - c), (x, y + c)]
        cv2.fillPoly(mask, [np.array(points, np.int32)], 255)
    else:
        raise ValueError(f"shape must be one of {VIEW_SHAPES}, not {shape!r}")
    return mask


def tissue(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Reddish mucosa: smooth shading, fine texture, a darker lumen, specular highlights."""
    shade = 0.55 + 0.45 * smooth_noise(rng, height, width, 4)
    texture = 0.85 + 0.15 * smooth_noise(rng, height, width, 40)
    light = shade * texture
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    r = rng.uniform(0.08, 0.15) * min(height, width)
    light *= 1 - 0.5 * np.exp(-distance2(height, width, cx, cy) / (2 * r**2))
    base = np.array([225, 120, 100], np.float32) * rng.uniform(0.9, 1.1, 3)
    image = light[..., None] * base
    for _ in range(rng.integers(2, 6)):
        spot = (int(rng.uniform(0.1, 0.9) * width), int(rng.uniform(0.1, 0.9) * height))
        cv2.circle(image, spot, max(1, min(height, width) // 80), (255, 255, 255), -1)
    return image


def add_polyp(rng: np.random.Generator, image: np.ndarray, box: Box) -> None:
    """A raised reddish blob with shading and a highlight, inside the view box's centre."""
    x, y, w, h = box
    r = rng.uniform(0.12, 0.2) * min(w, h)
    cx, cy = x + rng.uniform(0.35, 0.65) * w, y + rng.uniform(0.35, 0.65) * h
    dome = np.clip(1 - distance2(*image.shape[:2], cx, cy) / r**2, 0, 1) ** 0.5
    colour = np.array([200, 60, 70], np.float32)
    weight = np.clip(dome * 3, 0, 1)[..., None]
    image[:] = image * (1 - weight) + colour * (0.6 + 0.5 * dome[..., None]) * weight
    cv2.circle(image, (int(cx - r / 3), int(cy - r / 3)), max(1, int(r / 6)), (255, 230, 230), -1)


def varied_tissue(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Mucosa whose look is mostly a few global factors, as in real frames: brightness, hue,
    the direction light falls from, and a large dark lumen anywhere in the view; finer
    shading, texture and highlights on top. The hue stays orange-pink (green/red 0.45-0.65),
    apart from a polyp's saturated red (0.3)."""
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    side = min(height, width)
    angle = rng.uniform(0, 2 * np.pi)
    slope = (np.cos(angle) * (xx - width / 2) + np.sin(angle) * (yy - height / 2)) / side
    light = rng.uniform(0.55, 1.0) * (1 + rng.uniform(0.2, 0.7) * slope.clip(-0.5, 0.5))
    light *= (0.85 + 0.15 * smooth_noise(rng, height, width, 4)) * (
        0.9 + 0.1 * smooth_noise(rng, height, width, 40)
    )
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    r = rng.uniform(0.12, 0.25) * side
    light *= 1 - rng.uniform(0.4, 0.7) * np.exp(-distance2(height, width, cx, cy) / (2 * r**2))
    green = rng.uniform(0.45, 0.65)
    base = np.array([235, 235 * green, 235 * green * rng.uniform(0.75, 0.95)], np.float32)
    image = light.clip(0, 1.2)[..., None] * base
    for _ in range(rng.integers(2, 6)):
        spot = (int(rng.uniform(0.1, 0.9) * width), int(rng.uniform(0.1, 0.9) * height))
        cv2.circle(image, spot, max(1, side // 80), (255, 255, 255), -1)
    return image


def synthetic_frame(
    rng: np.random.Generator,
    height: int,
    width: int,
    shape: str = "round",
    green_box: bool = True,
    text: bool = True,
    polyp: bool = False,
    paint: Callable[[np.random.Generator, int, int], np.ndarray] = tissue,
) -> tuple[np.ndarray, Box]:
    """An RGB uint8 frame and the (x, y, w, h) box of its view; `paint(rng, height, width)`
    draws the mucosa (float RGB)."""
    vh = int(height * rng.uniform(0.86, 0.96))
    vw = min(int(width * 0.96), int(vh * rng.uniform(1.0, 1.2)))
    box = (
        int(rng.integers(0, width - vw + 1)),
        int(rng.integers(0, height - vh + 1)),
        vw,
        vh,
    )
    image = paint(rng, height, width)
    if polyp:
        add_polyp(rng, image, box)
    mask = view_mask(height, width, box, shape) > 0
    noise = rng.integers(0, 6, (height, width, 3))  # the border is black, not exactly 0
    frame = np.where(mask[..., None], image.clip(0, 255), noise).astype(np.uint8)
    x, y, w, h = box
    unit = min(w, h)
    if green_box:
        side = unit // 5
        frame[y + h - side : y + h, x : x + side] = (20, 150, 120)
        cv2.circle(frame, (x + side // 2, y + h - side // 2), side // 4, (220, 255, 220), 1)
    if text:
        scale = unit / 700
        for i, line in enumerate(("Pat. 0042", "12/03/2016", "CVP 8")):
            origin = (x + 2, y + int((i + 1) * 28 * scale))
            cv2.putText(frame, line, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (235,) * 3, 1)
    return frame, box


def write_synthetic_kvasir(
    folder: str | Path,
    n_per_class: int,
    seed: int = 0,
    size: tuple[int, int] = (720, 576),
    varied: bool = False,
) -> Path:
    """A Kvasir-like tree of JPEGs: `normal-z-line/`, `normal-cecum/`, `polyps/`.

    `size` is (width, height); `varied`: the mucosa of `varied_tissue` (the demo's frames),
    else `tissue`. A marker file tells `prepare_kvasir` the data is synthetic.
    """
    paint = varied_tissue if varied else tissue
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    width, height = size
    for name, polyp in CLASSES.items():
        for i in range(n_per_class):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            frame, _ = synthetic_frame(rng, height, width, shape, polyp=polyp, paint=paint)
            _, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            write_bytes(folder / name / f"{name}-{i:04d}.jpg", data.tobytes())
    write_text(folder / SYNTHETIC_MARKER, "Synthetic endoscopy-like frames, not Kvasir.\n")
    return folder
