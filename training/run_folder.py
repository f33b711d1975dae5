"""The run folder: the names of its files and folders, its config, and reading it back.

Every app writes to `--out DIR`: `config.json` (every flag), `history.csv` (one row per
epoch), `checkpoints/` (`best.keras`, `last.keras`, the resume state in `resume/`),
`figures/`, `metrics.csv`, `report.md`, `samples.npz`, `split.json` (EndoVAE and flows),
`tensorboard/` (with `--tensorboard`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from preprocessing.files import InputError, read_json, remove, write_json

CONFIG = "config.json"
HISTORY = "history.csv"
METRICS = "metrics.csv"
REPORT = "report.md"
SAMPLES = "samples.npz"
SPLIT = "split.json"
GENERATIVE = "generative.csv"  # FID, KID, PRDC
SCORES = "scores.csv"  # anomaly scores per image
ANOMALY = "anomaly.csv"  # AUROC and AUPRC per detector
FIGURES = "figures"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
BEST = f"{CHECKPOINTS}/best.keras"
LAST = f"{CHECKPOINTS}/last.keras"
RESUME = f"{CHECKPOINTS}/resume"
RESUME_STATE = "state.json"  # in RESUME: the newest complete epoch
# What --restart clears (figures are redrawn anyway).
RUN_STATE = (CHECKPOINTS, HISTORY, METRICS, REPORT, TENSORBOARD)


def run_folder(out: Path, flag: str = "--out") -> Path:
    """`out` as a run folder: refused when it names an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{flag} {out}: a file, not a folder: choose a folder for the run")
    return out


def start_run(args: argparse.Namespace, identity: Iterable[str]) -> Path:
    """Create the run folder and write `config.json` (every flag, and the Keras backend:
    a run resumes, and its checkpoints load, on any backend); apps check their inputs
    first, so a wrong path leaves no half-made run folder.

    A folder holding state from another configuration (the flags named in `identity`
    differ) is refused unless `--restart` clears it; the same flags resume.
    """
    import keras  # here: apps that train nothing start without a deep-learning framework

    out = run_folder(args.out)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    config["backend"] = keras.backend.backend()
    previous = out / CONFIG
    if getattr(args, "restart", False):
        for name in RUN_STATE:
            remove(out / name)
    elif previous.exists() and (out / CHECKPOINTS).exists():
        old = read_json(previous)
        changed = [k for k in identity if k in old and old[k] != config.get(k)]
        if changed:
            diffs = ", ".join(
                f"--{k.replace('_', '-')} {old[k]} (now {config.get(k)})" for k in changed
            )
            raise InputError(
                f"{out} holds a run made with {diffs}: rerun with those flags to resume, "
                "or pass --restart to start over, or choose another --out"
            )
    write_json(out / CONFIG, config)
    return out


def read_config(folder: Path) -> dict:
    """A run folder's config.json."""
    return read_json(Path(folder) / CONFIG)


def read_run_config(folder: Path, app: str, flag: str) -> dict:
    """The config.json of a run folder written by `app`; `flag` names it in the errors."""
    path = Path(folder) / CONFIG
    command = f"python -m apps.{app}"
    if not path.is_file():
        raise InputError(f"{flag} {folder}: no config.json, train first with {command}")
    config = read_json(path)
    if config.get("app") != app:
        raise InputError(
            f"{flag} {folder}: a run folder of {config.get('app')}, not of {app}: "
            f"pass one written by {command}"
        )
    return config


def read_metrics_row(folder: Path, app: str, flag: str, column: str) -> dict:
    """The first row of the metrics.csv of a finished `app` run folder (`flag` names it),
    which must hold `column`."""
    read_run_config(folder, app, flag)
    path = Path(folder) / METRICS
    if not path.is_file():
        raise InputError(
            f"{flag} {folder}: no metrics.csv, the run did not finish: rerun its command"
        )
    rows = pd.read_csv(path)
    if column not in rows or not len(rows):
        raise InputError(f"{path}: not a {app} metrics.csv")
    return rows.iloc[0].to_dict()


def completed_epochs(out: Path) -> int:
    """Epochs a run folder's resume state has completed (0 for a new run)."""
    state = Path(out) / RESUME / RESUME_STATE
    return read_json(state).get("epoch", 0) if state.exists() else 0


def stored_split(out: Path, split: dict) -> dict:
    """The split.json a resumed run stored, else `split`, now stored: a run keeps its split."""
    path = Path(out) / SPLIT
    if completed_epochs(out) and path.exists():
        return read_json(path)
    write_json(path, split)
    return split


def read_history(out: Path) -> pd.DataFrame:
    """A run's history.csv."""
    return pd.read_csv(Path(out) / HISTORY)


def read_samples(out: Path) -> dict[str, np.ndarray]:
    """Every array of a run's samples.npz."""
    with np.load(Path(out) / SAMPLES) as saved:
        return {key: saved[key] for key in saved.files}
