"""What every app shares: common flags, one-line errors, the run folder and its config."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from preprocessing.files import InputError, read_json, write_json

# Files of a run folder that --restart clears (figures are redrawn anyway).
RUN_STATE = ("checkpoints", "history.csv", "metrics.csv", "report.md")


def make_parser(app: str, description: str) -> argparse.ArgumentParser:
    """An argparse parser with the flags every app takes: --out, --seed, --quick, --debug."""
    parser = argparse.ArgumentParser(prog=f"python -m apps.{app}", description=description)
    parser.set_defaults(app=app)
    parser.add_argument("--out", type=Path, default=Path("runs") / app, help="run folder")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits, init and noise")
    parser.add_argument("--quick", action="store_true", help="a few minutes on a laptop CPU")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the training apps: --epochs, --restart and the device flags."""
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    parser.add_argument("--restart", action="store_true", help="discard the run folder's state")
    devices = parser.add_argument_group("devices")
    devices.add_argument(
        "--strategy",
        choices=("auto", "mirrored", "tpu"),
        default="auto",
        help="tf.distribute: auto = all GPUs if several, else one device",
    )
    devices.add_argument(
        "--mixed-precision",
        action="store_true",
        help="float16 compute, float32 losses and loss scaling (for GPUs)",
    )
    devices.add_argument(
        "--jit", action="store_true", help="XLA-compile the train step (for GPUs; slower on CPU)"
    )


def run_app(main: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser) -> None:
    """Parse the command line and run `main`; an `InputError` becomes one line and exit 2."""
    args = parser.parse_args()
    try:
        main(args)
    except InputError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def start_run(args: argparse.Namespace, identity: Iterable[str]) -> Path:
    """Create the run folder and write `config.json` (every flag); apps check their inputs
    first, so a wrong path leaves no half-made run folder.

    A folder holding state from another configuration (the flags named in `identity`
    differ) is refused unless `--restart` clears it; the same flags resume.
    """
    out = run_folder(args.out)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    previous = out / "config.json"
    if getattr(args, "restart", False):
        for name in RUN_STATE:
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    elif previous.exists() and (out / "checkpoints").exists():
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
    write_json(out / "config.json", config)
    return out


def run_folder(out: Path, flag: str = "--out") -> Path:
    """`out` as a run folder: refused when it names an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{flag} {out}: a file, not a folder: choose a folder for the run")
    return out


def read_run_config(folder: Path, app: str, flag: str) -> dict:
    """The config.json of a run folder written by `app`; `flag` names it in the errors."""
    path = Path(folder) / "config.json"
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


def add_pair_flags(parser: argparse.ArgumentParser) -> None:
    """Flags choosing the digit domains (see `preprocessing.digits.load_pair`)."""
    from preprocessing.digits import RESIZES  # TensorFlow loads for the digit apps only

    parser.add_argument(
        "--pair",
        choices=("mnist-mnistm", "digits-demo"),
        default="mnist-mnistm",
        help="MNIST -> MNIST-M, or the offline demo pair (sklearn digits -> skimage photos)",
    )
    parser.add_argument("--mnist", type=Path, help="MNIST npz (default: keras download)")
    parser.add_argument("--mnistm", type=Path, help="MNIST-M folder in the canonical layout")
    parser.add_argument(
        "--mnistm-backgrounds", type=Path, help="colour photos to synthesize MNIST-M from"
    )
    parser.add_argument(
        "--mnist-resize",
        choices=RESIZES,
        default="bilinear",
        help="MNIST 28x28 -> 32x32: bilinear as the homework, or zero padding",
    )
    parser.add_argument("--batch-size", type=int, default=32)


def pair_from_flags(args: argparse.Namespace):
    """The digit pair (`preprocessing.digits.DigitPair`) of the flags `add_pair_flags` adds."""
    from preprocessing.digits import load_pair

    return load_pair(
        args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds, args.seed, args.mnist_resize
    )
