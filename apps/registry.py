"""The apps by name: how one app runs another (demo, train_pixelda's baseline) and how
make_figures finds the app that redraws a run folder's figures.

An app is imported only when it is used, so that an app needing no TensorFlow starts fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from preprocessing.files import InputError

APPS = (
    "prepare_kvasir",
    "train_classifier",
    "train_pixelda",
    "train_cyclegan",
    "train_endovae",
    "evaluate_endovae",
    "train_flow",
    "make_figures",
    "benchmark",
    "demo",
)
# The apps whose run folders make_figures redraws (evaluate_endovae writes into
# train_endovae's run folder, whose figures train_endovae draws).
FIGURES = ("prepare_kvasir", "train_classifier", "train_pixelda", "train_cyclegan")
FIGURES += ("train_endovae", "train_flow")


def module(name: str) -> ModuleType:
    """The module of app `name` (one of `APPS`)."""
    if name not in APPS:
        raise InputError(f"no app {name!r}: choose one of {', '.join(APPS)}")
    return importlib.import_module(f"apps.{name}")


def run(name: str, argv: list[str]) -> argparse.Namespace:
    """Run app `name` on the command line `argv` (in this process); its parsed flags."""
    app = module(name)
    args = app.parser().parse_args(argv)
    app.main(args)
    return args


def figure_drawer(name: str) -> Callable[[Path, bool], None] | None:
    """`draw_figures(run_folder, pdf)` of app `name`, None for an app that draws none."""
    return module(name).draw_figures if name in FIGURES else None
