"""The offline demo: both pipelines end to end on data the project makes itself.

Digits: the demo pair (scikit-learn's bundled digits -> the same digits on scikit-image's
bundled photos). Endoscopy: synthetic endoscopy-like frames (not Kvasir). Everything is
labelled demo data; nothing is downloaded.

python -m apps.demo --out runs/demo
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from apps import registry
from apps.common import make_parser, run_app
from evaluation.reports import markdown_to_html
from preprocessing.files import write_text
from preprocessing.synthetic_endoscopy import write_synthetic_kvasir
from training.run_folder import REPORT, run_folder

FRAMES_PER_CLASS, FRAME_SIZE = 30, (320, 256)  # synthetic endoscopy frames


def stages(out: Path) -> list[tuple[str, str, list[str]]]:
    """(title, app name, its arguments) for each step of the demo."""
    frames, prepared = out / "synthetic_frames", out / "kvasir_prepared"
    return [
        (
            "Source-only classifier on the demo digit pair",
            "train_classifier",
            ["--pair", "digits-demo", "--epochs", "5", "--out", str(out / "classifier")],
        ),
        (
            "CycleGAN on the demo digit pair, the task classifier on its translations",
            "train_cyclegan",
            ["--pair", "digits-demo", "--steps", "150", "--epochs", "3", "--filters", "32"]
            + ["--classifier-epochs", "5", "--out", str(out / "cyclegan")],
        ),
        (
            "PixelDA on the demo digit pair",
            "train_pixelda",
            [
                "--pair",
                "digits-demo",
                "--steps",
                "300",
                "--epochs",
                "3",
                "--baseline",
                str(out / "classifier"),
                "--compare",
                str(out / "cyclegan"),
                "--out",
                str(out / "pixelda"),
            ],
        ),
        (
            "Otsu-contour cropping of synthetic endoscopy frames",
            "prepare_kvasir",
            ["--data-dir", str(frames), "--out", str(prepared)],
        ),
        (
            "EndoVAE on the synthetic healthy frames",
            "train_endovae",
            [
                "--data",
                str(prepared),
                "--epochs",
                "6",
                "--batch-size",
                "16",
                "--out",
                str(out / "endovae"),
            ],
        ),
        (
            "EndoVAE evaluation: generation, reconstruction, SSIM/PSNR, anomaly scores",
            "evaluate_endovae",
            ["--run", str(out / "endovae")],
        ),
        *[
            (
                f"MAF on {space} of the synthetic healthy frames, compared with the EndoVAE",
                "train_flow",
                [
                    "--data",
                    str(prepared),
                    "--space",
                    space,
                    "--vae-run",
                    str(out / "endovae"),
                    "--epochs",
                    "10",
                    "--batch-size",
                    "16",
                    "--out",
                    str(out / f"flow_{space}"),
                    *compare,
                ],
            )
            for space, compare in (
                ("pixels", []),
                ("latent", ["--compare", str(out / "flow_pixels")]),
            )
        ],
    ]


def main(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    frames = run_folder(args.out) / "synthetic_frames"
    if not frames.exists():
        write_synthetic_kvasir(frames, FRAMES_PER_CLASS, args.seed, FRAME_SIZE)
    runs: dict[Path, str] = {}  # run folder -> title, in order
    plan = stages(args.out)
    for number, (title, app, argv) in enumerate(plan, 1):
        print(f"[{number}/{len(plan)}] {title} ...", flush=True)
        began = time.perf_counter()
        app_args = registry.run(app, [*argv, "--seed", str(args.seed)])
        print(f"[{number}/{len(plan)}] done in {time.perf_counter() - began:.0f} s", flush=True)
        runs.setdefault(Path(getattr(app_args, "run", None) or app_args.out), title)
    text = "# Offline demo (demo data, not the real data sets)\n\n" + "\n\n".join(
        run_section(run, title, args.out) for run, title in runs.items()
    )
    write_text(args.out / "report.md", text)
    write_text(args.out / "report.html", markdown_to_html(text, args.out))
    print(
        f"Demo finished in {time.perf_counter() - start:.0f} s: "
        f"{args.out / 'report.md'} and {args.out / 'report.html'}"
    )


def run_section(run: Path, title: str, root: Path) -> str:
    """A run's report.md one heading level down (or its figures), links relative to `root`."""
    folder = run.relative_to(root)
    report = run / REPORT
    if report.exists():
        body = re.sub(r"^(#+) ", r"#\1 ", report.read_text(), flags=re.MULTILINE)
    else:
        figures = sorted(run.glob("figures/*.png"))
        body = f"## {title}\n\n" + "\n\n".join(f"![{f.stem}](figures/{f.name})" for f in figures)
    return body.replace("](figures/", f"]({folder}/figures/")


def parser() -> argparse.ArgumentParser:
    return make_parser("demo", __doc__.splitlines()[0])


if __name__ == "__main__":
    run_app(main, parser())
