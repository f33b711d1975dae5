"""The offline demo: every pipeline on data the project makes itself (demo data).

python -m apps.demo --out runs/demo
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from apps import train_classifier
from apps.common import make_parser, run_app
from preprocessing.files import write_text


def stages(out: Path, seed: int) -> list[tuple[str, object, list[str]]]:
    """(title, app module, its arguments) for each step of the demo."""
    common = ["--seed", str(seed)]
    return [
        (
            "Source-only classifier on the demo digit pair",
            train_classifier,
            ["--pair", "digits-demo", "--epochs", "5", "--out", str(out / "classifier"), *common],
        ),
    ]


def main(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    sections = []
    for number, (title, app, argv) in enumerate(stages(args.out, args.seed), 1):
        print(f"[{number}] {title} ...", flush=True)
        began = time.perf_counter()
        app_args = app.parser().parse_args(argv)
        app.main(app_args)
        print(f"[{number}] done in {time.perf_counter() - began:.0f} s", flush=True)
        folder = Path(app_args.out).relative_to(args.out)
        report = (Path(app_args.out) / "report.md").read_text()
        sections.append(report.replace("](figures/", f"]({folder}/figures/"))
    write_text(
        args.out / "report.md",
        "# Offline demo (demo data, not the real data sets)\n\n" + "\n\n".join(sections),
    )
    print(f"Demo finished in {time.perf_counter() - start:.0f} s: {args.out / 'report.md'}")


if __name__ == "__main__":
    run_app(main, make_parser("demo", __doc__.splitlines()[0]))
