"""Redraw every figure of a run folder from its saved files, without retraining.

python -m apps.make_figures --run DIR [--pdf]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from apps import registry
from apps.common import run_app
from preprocessing.files import InputError
from training.run_folder import CONFIG, FIGURES, read_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apps.make_figures", description=__doc__.splitlines()[0]
    )
    p.add_argument("--run", type=Path, required=True, help="a run folder written by any app")
    p.add_argument("--pdf", action="store_true", help="also write each figure as PDF")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(args: argparse.Namespace) -> None:
    if not (args.run / CONFIG).is_file():
        raise InputError(f"--run {args.run}: no config.json, so not a run folder of these apps")
    app = read_config(args.run).get("app")
    draw = registry.figure_drawer(app) if app in registry.APPS else None
    if draw is None:
        raise InputError(f"--run {args.run}: made by app {app!r}, which draws no figures")
    try:
        draw(args.run, args.pdf)
    except FileNotFoundError as err:
        raise InputError(
            f"--run {args.run}: {Path(err.filename).name} is missing; "
            "rerun the app with the same flags to finish the run"
        ) from err
    figures = sorted((args.run / FIGURES).glob("*.png"))
    print(f"Redrew {len(figures)} figures in {args.run / FIGURES}")


if __name__ == "__main__":
    run_app(main, parser())
