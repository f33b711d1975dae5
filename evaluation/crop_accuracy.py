"""How well the crop finds the view: box IoU on held-out synthetic frames with known boxes,
and the share of the bright view kept on real frames (see `crop_quality`).

    python -m evaluation.crop_accuracy --frames 500 --seed 2025 --real ../shared/data/kvasir/polyps
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from preprocessing.crop_cases import case_frame, random_case
from preprocessing.files import InputError
from preprocessing.otsu_crop import METHODS, Box, crop_quality, find_content_box, read_rgb

GOOD_IOU = 0.95  # a box this close to the true one counts as found
GOOD_KEPT = 0.9  # a real crop keeping less of the bright view than this counts as a failure


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def held_out_ious(frames: int, seed: int, methods: tuple[str, ...] = METHODS) -> np.ndarray:
    """IoU of each method's box with the true view box on `frames` random `case_frame`s
    (heights 256 to 640, width/height 1.0 to 1.8): shape (frames, len(methods))."""
    rng = np.random.default_rng(seed)
    ious = np.zeros((frames, len(methods)))
    for i in range(frames):
        case = random_case(rng)
        height = int(rng.integers(256, 641))
        frame, box = case_frame(rng, height, int(height * rng.uniform(1.0, 1.8)), case)
        ious[i] = [box_iou(find_content_box(frame, m), box) for m in methods]
    return ious


def bright_kept(
    paths: list[Path], methods: tuple[str, ...] = METHODS
) -> tuple[np.ndarray, list[str]]:
    """Share of each image's bright pixels inside each method's box, (images, len(methods)),
    and the images left out (unreadable, or no view: `InputError`) with the reason."""
    kept, skipped = [], []
    for path in paths:
        try:
            image = read_rgb(path)
            kept.append([crop_quality(image, find_content_box(image, m))[0] for m in methods])
        except InputError as err:
            skipped.append(f"{path}: {err}")
    return np.array(kept).reshape(-1, len(methods)), skipped


def report(ious: np.ndarray, kept: np.ndarray | None = None) -> str:
    """Markdown rows per method: held-out IoU (share >= `GOOD_IOU`, min) and, given real
    frames, the bright view kept (mean, min, frames under `GOOD_KEPT`)."""
    head = f"| method | held-out frames at IoU >= {GOOD_IOU} | min IoU |"
    if kept is not None:
        head += f" real: bright view kept, mean | min | frames under {GOOD_KEPT:.0%} |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for j, method in enumerate(METHODS):
        col = ious[:, j]
        row = f"| `{method}` | {np.mean(col >= GOOD_IOU):.1%} of {len(col)} | {col.min():.3f} |"
        if kept is not None:
            k = kept[:, j]
            row += f" {k.mean():.1%} | {k.min():.1%} | {(k < GOOD_KEPT).sum()} of {len(k)} |"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=500, help="held-out synthetic frames")
    p.add_argument("--seed", type=int, default=2025, help="seed of the held-out frames")
    p.add_argument("--real", type=Path, help="a folder of real frames (*.jpg, *.png)")
    args = p.parse_args()
    kept = None
    if args.real:
        if not args.real.is_dir():
            p.error(f"--real {args.real}: not a folder; give a folder of .jpg/.png frames")
        paths = sorted(q for q in args.real.iterdir() if q.suffix.lower() in (".jpg", ".png"))
        kept, skipped = bright_kept(paths)
        for line in skipped:
            print(f"skipped {line}")
        if len(kept) == 0:
            p.error(f"--real {args.real}: no readable .jpg/.png frame in it")
    print(report(held_out_ious(args.frames, args.seed), kept))


if __name__ == "__main__":
    main()
