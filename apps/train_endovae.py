"""Train the EndoVAE on the healthy images of a folder written by prepare_kvasir.

python -m apps.train_endovae --data DIR --out DIR [--epochs 1000] [--batch-size 128] [--quick]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import keras
import numpy as np

from apps.common import add_training_flags, make_parser, run_app, start_run
from apps.training import completed_epochs, device_strategy, run_callbacks, seed_everything
from evaluation.endovae_figures import draw_endovae_figures
from models.endovae import EndoVAE
from preprocessing.augment import augment_with_copies
from preprocessing.files import InputError, read_json, write_json
from preprocessing.kvasir import is_synthetic, load_processed
from preprocessing.pipelines import array_batches, steps_per_epoch

EPOCHS, BATCH = 1000, 128
QUICK_EPOCHS, QUICK_BATCH, QUICK_TRAIN, QUICK_VALIDATION = 15, 16, 150, 50
MONITOR = "val_total_loss"


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_endovae", __doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder written by prepare_kvasir")
    p.add_argument("--batch-size", type=int, help=f"default {BATCH} ({QUICK_BATCH} with --quick)")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="initial Adam LR")
    p.add_argument("--val-fraction", type=float, default=0.2, help="normal images held out")
    p.add_argument("--copies", type=int, default=2, help="augmented copies per training image")
    add_training_flags(p)
    return p


def split_names(
    names: list[str], val_fraction: float, seed: int, quick: bool = False
) -> dict[str, list[str]]:
    """Seeded split of the normal images into {"train": names, "validation": names}."""
    if not 0 < val_fraction < 1:
        raise InputError(f"--val-fraction {val_fraction}: choose a value between 0 and 1")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_val = max(1, round(len(names) * val_fraction))
    train, validation = order[n_val:], order[:n_val]
    if quick:
        train, validation = train[:QUICK_TRAIN], validation[:QUICK_VALIDATION]
    if not train:
        raise InputError(f"only {len(names)} normal images: too few to split for training")
    return {"train": sorted(train), "validation": sorted(validation)}


def split_images(
    images: np.ndarray, names: list[str], split: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """The images of each part of `split`, by file name."""
    index = {name: i for i, name in enumerate(names)}
    missing = [n for part in split.values() for n in part if n not in index]
    if missing:
        raise InputError(
            f"the normal images lack {len(missing)} of the run's split (e.g. {missing[0]}): "
            "pass the --data folder the run was trained on"
        )
    return {part: images[[index[n] for n in split[part]]] for part in split}


def read_split(data: Path, run: Path) -> dict[str, np.ndarray]:
    """The normal images of a run's stored split (`split.json`)."""
    return split_images(*load_processed(data, "normal"), read_json(run / "split.json"))


def plateau_callbacks(
    out: Path,
    monitor: str = MONITOR,
    lr_patience: int = 10,
    stop_patience: int = 50,
    min_lr: float = 1e-6,
) -> list[keras.callbacks.Callback]:
    """LR halving and early stopping on `monitor` (a loss), plus the harness's callbacks."""
    extra = [
        keras.callbacks.ReduceLROnPlateau(
            monitor, factor=0.5, patience=lr_patience, min_lr=min_lr, mode="min", verbose=1
        ),
        keras.callbacks.EarlyStopping(
            monitor, patience=stop_patience, mode="min", restore_best_weights=True, verbose=1
        ),
    ]
    # no last.keras: 133 MB an epoch on Drive, and the resume state holds those weights
    return run_callbacks(out, monitor, "min", extra=extra, save_last=False)


def main(args: argparse.Namespace) -> None:
    normal, names = load_processed(args.data, "normal")  # inputs first: then the run folder
    split = split_names(names, args.val_fraction, args.seed, args.quick)
    args.batch_size = args.batch_size or (QUICK_BATCH if args.quick else BATCH)
    identity = ("data", "seed", "quick", "batch_size", "beta", "val_fraction", "copies")
    out = start_run(args, identity=identity)
    seed_everything(args.seed)
    if completed_epochs(out) and (out / "split.json").exists():
        split = read_json(out / "split.json")  # a resumed run keeps its split
    else:
        write_json(out / "split.json", split)
    images = split_images(normal, names, split)
    train = augment_with_copies(images["train"], copies=args.copies, seed=args.seed)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    print(
        f"{len(images['train'])} normal training images (x{args.copies + 1} with augmentation), "
        f"{len(images['validation'])} validation, batch {args.batch_size}, {epochs} epochs"
    )

    with device_strategy(args.strategy, args.mixed_precision).scope():
        model = EndoVAE(beta=args.beta, seed=args.seed)
        model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), jit_compile=args.jit)
    model.fit(
        array_batches(train, args.batch_size, args.seed, completed_epochs(out)),
        steps_per_epoch=steps_per_epoch(len(train), args.batch_size),
        validation_data=array_batches(images["validation"], args.batch_size),
        epochs=epochs,
        callbacks=plateau_callbacks(out),
        verbose=2,
    )
    draw_figures(out)
    print(f"Best model: {out / 'checkpoints' / 'best.keras'}")
    print(f"Next: python -m apps.evaluate_endovae --run {out}")


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from its saved files (`apps.make_figures`)."""
    draw_endovae_figures(out, pdf, is_synthetic(read_json(out / "config.json")["data"]))


if __name__ == "__main__":
    run_app(main, parser())
