"""File helpers every step shares: the user-facing error type and atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class InputError(Exception):
    """A bad path, layout or flag: the apps print it as one line and exit with status 2."""


_writing = True  # False on the workers of a multi-worker run that are not its chief


def stop_writing() -> None:
    """From now on this process writes no file: every write of this module goes to a scratch
    folder that is deleted at once. The workers of a multi-worker run that are not its chief
    call it (`training.devices`), so the run folder they share is written by the chief only."""
    global _writing
    _writing = False


def writing() -> bool:
    """Whether this process writes files (see `stop_writing`)."""
    return _writing


def existing_path(path: str | Path, flag: str, what: str, folder: bool = False) -> Path:
    """`path`, an existing file (or `folder`); else an `InputError` naming `flag` and `what`
    it should hold. Apps check their paths with it before they write anything."""
    path = Path(path)
    kind, other = ("folder", "file") if folder else ("file", "folder")
    if not (path.is_dir() if folder else path.is_file()):
        found = f"a {other}, not a" if path.exists() else "no such"
        raise InputError(f"{flag} {path}: {found} {kind} ({what})")
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; it replaces `path` only if the block succeeds
    (in a process that does not write, a path that is thrown away).

    The temporary name keeps the full file ending (`.keras`, `.weights.h5`, `.png`), so
    libraries that choose a format by suffix behave as for the real path.
    """
    path = Path(path)
    if not _writing:
        with tempfile.TemporaryDirectory() as scratch:
            yield Path(scratch) / path.name
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_npz(path: str | Path, **arrays) -> None:
    """`np.savez_compressed` of `arrays`, atomically."""
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def remove(path: str | Path) -> None:
    """Delete a file or a folder tree if it exists (in a process that writes)."""
    path = Path(path)
    if _writing:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read JSON ({err})") from err
