"""Held-out synthetic frames for judging the crop, the hard cases one `FrameCase` at a time:
white text in the black border (any corner, several lines, fonts and sizes), the green position
box in the view's corner or out in the border, round, octagonal, elliptical and
rounded-rectangle views with dark edges, a dark lumen or fold inside the view, views that fill
the whole frame, JPEG artefacts.

They are not Kvasir; `evaluation.crop_accuracy` measures the crop on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from preprocessing.synthetic_endoscopy import (
    VIEW_SHAPES,
    Box,
    add_polyp,
    distance2,
    tissue,
    view_mask,
)

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
OVERLAY_LINES = (
    "Pat. 0042",
    "12/03/2016",
    "10:22:31",
    "CVP 8",
    "D/N",
    "Ins: 57",
    "lcA3",
    "-- -- --",
)
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX)
GAPS = (0.002, 0.04)  # black gap of border overlays to the view box: share of the height, >= 1 px


@dataclass(frozen=True)
class FrameCase:
    """What one held-out frame shows (see `case_frame`)."""

    shape: str = "octagon"  # one of VIEW_SHAPES
    border: bool = True  # False: the view fills the whole frame
    text_corners: tuple[str, ...] = ()  # frame corners (CORNERS) with a block of overlay text
    green_box: str = ""  # "", "view" (in the view box's lower-left corner) or "border"
    lumen: str = ""  # "", "blob" (a dark hole with a black core) or "fold" (a dark band across)
    polyp: bool = False
    jpeg: int = 0  # the JPEG quality the frame goes through; 0 for none


def random_case(rng: np.random.Generator) -> FrameCase:
    """A random mix of every `FrameCase` feature (text in no corner about 1 time in 5)."""
    return FrameCase(
        shape=VIEW_SHAPES[int(rng.integers(len(VIEW_SHAPES)))],
        border=bool(rng.random() > 0.1),
        text_corners=tuple(c for c in CORNERS if rng.random() < 0.35),
        green_box=("", "view", "border")[int(rng.integers(3))],
        lumen=("", "blob", "fold")[int(rng.integers(3))],
        polyp=bool(rng.random() < 0.3),
        jpeg=int(rng.choice([0, 75, 90])),
    )


def _case_box(rng: np.random.Generator, height: int, width: int, case: FrameCase) -> Box:
    """The view box, leaving room in the border on the sides that carry overlays."""
    if not case.border:
        return 0, 0, width, height
    aspect = {"round": (0.95, 1.1), "octagon": (1.0, 1.2), "ellipse": (1.25, 1.6)}
    h = int(height * rng.uniform(0.75, 0.97))
    w = min(int(h * rng.uniform(*aspect.get(case.shape, (1.0, 1.4)))), int(width * 0.9))
    left = case.green_box == "border" or any(c.endswith("left") for c in case.text_corners)
    right = any(c.endswith("right") for c in case.text_corners)
    share = {(True, False): (0.8, 1.0), (False, True): (0.0, 0.2), (True, True): (0.35, 0.65)}
    x = int((width - w) * rng.uniform(*share.get((left, right), (0.0, 1.0))))
    return x, int((height - h) * rng.random()), w, h


def _text_block(rng: np.random.Generator, height: int) -> np.ndarray:
    """A tight uint8 coverage mask of 1 to 8 overlay lines in a random font and size."""
    lines = rng.choice(OVERLAY_LINES, int(rng.integers(1, 9)))
    font = FONTS[int(rng.integers(len(FONTS)))]
    scale = height / 576 * rng.uniform(0.35, 1.1)
    thick = 1 + int(rng.random() < 0.3)
    (_, th), base = cv2.getTextSize("Ag", font, scale, thick)
    step = int((th + base) * rng.uniform(1.2, 1.8)) + 1
    wide = max(cv2.getTextSize(str(line), font, scale, thick)[0][0] for line in lines)
    canvas = np.zeros((step * len(lines) + th + 4 * thick, wide + 4 * thick), np.uint8)
    antialias = cv2.LINE_AA if rng.random() < 0.5 else cv2.LINE_8
    for i, line in enumerate(lines):
        cv2.putText(
            canvas, str(line), (thick, th + thick + i * step), font, scale, 255, thick, antialias
        )
    x, y, w, h = cv2.boundingRect(canvas)
    return canvas[y : y + h, x : x + w]


def _top_left_origin(
    rng: np.random.Generator,
    size: tuple[int, int],
    shape: tuple[int, int],
    box: Box,
    gap: int,
    pad: int,
) -> tuple[int, int] | None:
    """Where a (height, width) block goes in the frame's top-left part: beside the view box
    (down to a third of its height), else above it, else inside its corner; None if nowhere."""
    bh, bw = size
    height, width = shape
    x, y, w, h = box
    if x - gap - pad >= bw and bh <= height - 2 * pad:
        lowest = max(pad, min(y + h // 3, height - pad - bh))
        ox = x - gap - bw if rng.random() < 0.5 else int(rng.integers(pad, x - gap - bw + 1))
        return ox, int(rng.integers(pad, lowest + 1))
    if y - gap - pad >= bh and bw <= width - 2 * pad:
        rightmost = max(pad, min(x + w // 3, width - pad - bw))
        return int(rng.integers(pad, rightmost + 1)), int(rng.integers(pad, y - gap - bh + 1))
    if bw <= w // 2 and bh <= h // 3:
        return x + pad, y + pad
    return None


def _darken(rng: np.random.Generator, image: np.ndarray, box: Box, lumen: str) -> None:
    """A dark lumen in the view's centre part: a hole with a black core or a dark band across."""
    x, y, w, h = box
    cx, cy = x + rng.uniform(0.3, 0.7) * w, y + rng.uniform(0.3, 0.7) * h
    if lumen == "blob":
        r = rng.uniform(0.05, 0.15) * min(w, h)
        dark = rng.uniform(0.9, 0.99) * np.exp(-distance2(*image.shape[:2], cx, cy) / (2 * r**2))
        image *= 1 - dark[..., None]
    elif lumen == "fold":
        band = np.zeros(image.shape[:2], np.uint8)
        dx, dy = np.cos(angle := rng.uniform(0, np.pi)) * 2 * w, np.sin(angle) * 2 * h
        ends = (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy))
        cv2.line(band, *ends, 255, max(2, int(rng.uniform(0.04, 0.12) * min(w, h))))
        inside = band > 0
        gray = image[inside] @ np.array([0.299, 0.587, 0.114], np.float32)
        image[inside] *= rng.uniform(30, 45) / max(1.0, float(np.median(gray)))  # dark, not black
    elif lumen:
        raise ValueError(f"lumen must be '', 'blob' or 'fold', not {lumen!r}")


def case_frame(
    rng: np.random.Generator, height: int, width: int, case: FrameCase
) -> tuple[np.ndarray, Box]:
    """A held-out RGB uint8 frame showing `case`, and the (x, y, w, h) box of its view.

    Overlays outside the view box (text, a green box in the border) keep a black gap of at
    least 1 px (`GAPS`); overlays inside it (on the view, in its cut corners) are part of the view.
    """
    box = _case_box(rng, height, width, case)
    x, y, w, h = box
    image = tissue(rng, height, width)
    if case.polyp:
        add_polyp(rng, image, box)
    _darken(rng, image, box, case.lumen)
    cx, cy = x + w / 2, y + h / 2
    yy, xx = np.ogrid[:height, :width]
    edge = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2  # 1 on the ellipse
    image *= np.maximum(0.45, 1 - rng.uniform(0, 0.45) * edge)[..., None]  # darker edges
    inside = view_mask(height, width, box, case.shape) > 0 if case.border else True
    noise = rng.integers(0, rng.choice([1, 4, 11]), (height, width, 3))  # 0 (as in Kvasir) or noisy
    frame = np.where(np.broadcast_to(inside, (height, width))[..., None], image.clip(0, 255), noise)
    frame = frame.astype(np.uint8)
    gap = max(1, int(height * np.exp(rng.uniform(*np.log(GAPS)))))  # small gaps as often as large
    pad = int(rng.uniform(0.005, 0.02) * height)
    if case.green_box:
        side = max(4, int(h * rng.uniform(0.15, 0.3)))
        ox, oy = x, y + h - side
        if case.green_box == "border" and x - gap - pad >= side:
            ox, oy = int(rng.integers(pad, x - gap - side + 1)), height - pad - side
        frame[oy : oy + side, ox : ox + side] = np.array([20, 150, 120]) * rng.uniform(0.85, 1.1)
        cv2.circle(frame, (ox + side // 2, oy + side // 2), side // 4, (220, 255, 220), 1)
    for corner in case.text_corners:  # mirror the frame to put each corner at the top left
        sy, sx = (1 if corner.startswith("top") else -1), (1 if corner.endswith("left") else -1)
        view = frame[::sy, ::sx]
        mirrored = (x if sx == 1 else width - x - w, y if sy == 1 else height - y - h, w, h)
        block = _text_block(rng, height)
        for _ in range(6):  # a smaller block where it does not fit
            if origin := _top_left_origin(rng, block.shape, view.shape[:2], mirrored, gap, pad):
                break
            smaller = (max(1, block.shape[1] * 7 // 10), max(1, block.shape[0] * 7 // 10))
            block = cv2.resize(block, smaller, interpolation=cv2.INTER_AREA)
        else:
            continue
        ox, oy = origin
        bh, bw = block.shape
        alpha = block[::sy, ::sx, None] / 255.0
        patch = view[oy : oy + bh, ox : ox + bw]
        patch[:] = patch * (1 - alpha) + rng.uniform(190, 255) * alpha
    if case.jpeg:
        data = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, case.jpeg])[1]
        frame = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return frame, box
