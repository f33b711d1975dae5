"""What every app shares: common flags and one-line errors."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from preprocessing.files import InputError


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
    parser.add_argument(
        "--tensorboard",
        action=TensorBoardFlag,
        help="also log every epoch to OUT/tensorboard/ (Colab: %%tensorboard --logdir OUT)",
    )
    devices = parser.add_argument_group("devices")
    devices.add_argument(
        "--strategy",
        choices=("auto", "mirrored", "tpu", "multiworker"),
        default="auto",
        help="tf.distribute: auto = all GPUs if several, else one device; multiworker = "
        "several machines, from TF_CONFIG (docs/devices-and-speed.md)",
    )
    devices.add_argument(
        "--mixed-precision",
        action="store_true",
        help="float16 compute, float32 losses and loss scaling (for GPUs)",
    )
    devices.add_argument(
        "--jit",
        action="store_true",
        help="compile the train step: XLA on TensorFlow (for GPUs; slower on CPU), "
        "torch.compile on PyTorch (JAX always compiles)",
    )


class TensorBoardFlag(argparse.Action):
    """--tensorboard, refused at once where the tensorboard package is missing."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if importlib.util.find_spec("tensorboard") is None:
            parser.error("--tensorboard needs the tensorboard package: pip install tensorboard")
        setattr(namespace, self.dest, True)


def add_inception_flag(parser: argparse.ArgumentParser, note: str = "") -> None:
    """--inception: FID, KID and PRDC in InceptionV3 features too (`note` adds to the help)."""
    parser.add_argument(
        "--inception",
        action="store_true",
        help=f"also FID/KID/PRDC in InceptionV3 features (downloads its weights: Colab){note}",
    )


def inception_from_flags(args: argparse.Namespace, value_range: tuple[float, float]):
    """InceptionV3's feature space when --inception is given (loaded first, so that an
    offline machine fails before training), else None."""
    from evaluation.feature_spaces import inception_space

    return inception_space(value_range=value_range) if args.inception else None


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


def add_pair_flags(parser: argparse.ArgumentParser) -> None:
    """Flags choosing the digit domains (see `preprocessing.digits.load_pair`)."""
    from preprocessing.mnist import RESIZES
    from training.task_classifier import BATCH_SIZE  # TensorFlow loads for the digit apps only

    parser.add_argument(
        "--pair",
        choices=("mnist-mnistm", "digits-demo"),
        default="mnist-mnistm",
        help="MNIST -> MNIST-M, or the offline demo pair (sklearn digits -> skimage photos)",
    )
    parser.add_argument("--mnist", type=Path, help="MNIST npz (default: keras download)")
    parser.add_argument(
        "--mnistm",
        type=Path,
        help="MNIST-M folder in the canonical layout, or 'download': Ganin's copy, downloaded "
        "once into the Keras cache",
    )
    parser.add_argument(
        "--mnistm-backgrounds", type=Path, help="colour photos to synthesize MNIST-M from"
    )
    parser.add_argument(
        "--mnist-resize",
        choices=RESIZES,
        default="bilinear",
        help="MNIST 28x28 -> 32x32: bilinear as the homework, or zero padding",
    )
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)


def check_pair_flags(args: argparse.Namespace) -> None:
    """Refuse pair flags that name a missing file or folder (`preprocessing.digits.check_pair`)."""
    from preprocessing.digits import check_pair

    check_pair(args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds)


def pair_from_flags(args: argparse.Namespace):
    """The digit pair (`preprocessing.digits.DigitPair`) of the flags `add_pair_flags` adds."""
    from preprocessing.digits import load_pair

    return load_pair(
        args.pair, args.mnist, args.mnistm, args.mnistm_backgrounds, args.seed, args.mnist_resize
    )
