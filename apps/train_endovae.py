"""Train the EndoVAE on the healthy images of a folder written by prepare_kvasir.

python -m apps.train_endovae --data DIR --out DIR [--preset homework|clean] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import keras
import pandas as pd

from apps.common import add_training_flags, make_parser, run_app
from evaluation.endovae_figures import endovae_figures
from evaluation.figures import save_figures
from evaluation.vae_quality import unused_latent
from models.endovae import PRESET_FLAGS, PRESETS, RECONSTRUCTIONS, EndoVAE, Preset
from preprocessing.files import writing
from preprocessing.kvasir import is_synthetic, load_processed
from preprocessing.kvasir_split import (
    ORDERS,
    split_images,
    split_names,
    training_count,
    training_images,
)
from preprocessing.pipelines import array_batches, steps_per_epoch
from training.callbacks import LinearWarmup, plateau_callbacks
from training.devices import device_strategy, jit_compile, seed_everything
from training.run_folder import (
    BEST,
    FIGURES,
    SAMPLES,
    SCORES,
    completed_epochs,
    read_config,
    read_history,
    read_samples,
    start_run,
    stored_split,
)

QUICK_EPOCHS, QUICK_BATCH = 30, 16
MONITOR = "val_total_loss"


def parser() -> argparse.ArgumentParser:
    p = make_parser("train_endovae", __doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder written by prepare_kvasir")
    p.add_argument("--preset", choices=sorted(PRESETS), default="homework")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    override = p.add_argument_group("preset values (default: the preset's)")
    override.add_argument("--batch-size", type=int, help=f"(--quick: {QUICK_BATCH})")
    override.add_argument("--learning-rate", type=float, help="initial Adam LR")
    override.add_argument("--val-fraction", type=float, help="normal items held out")
    override.add_argument("--copies", type=int, help="augmented copies per image")
    override.add_argument("--reconstruction", choices=RECONSTRUCTIONS, help="BCE reduction")
    override.add_argument("--split-order", choices=ORDERS, help="split before or after copies")
    override.add_argument(
        "--warmup-steps",
        type=int,
        help="linear LR warm-up (0: none; default: at most 1/3 of the run)",
    )
    add_training_flags(p)
    return p


def settings(args: argparse.Namespace) -> Preset:
    """The preset with the flags given over it (and --quick's batch and epochs)."""
    preset = PRESETS[args.preset]
    if args.quick:
        preset = dataclasses.replace(preset, batch_size=QUICK_BATCH, epochs=QUICK_EPOCHS)
    given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Preset)}
    if args.epochs:
        given["epochs"] = args.epochs
    return dataclasses.replace(preset, **{k: v for k, v in given.items() if v is not None})


def main(args: argparse.Namespace) -> None:
    chosen = settings(args)
    normal, names = load_processed(args.data, "normal")  # inputs first: then the run folder
    split = split_names(
        names, chosen.val_fraction, args.seed, args.quick, chosen.split_order, chosen.copies
    )
    if args.warmup_steps is None:  # the preset's, at most a third of the run
        steps = steps_per_epoch(training_count(split, chosen.copies), chosen.batch_size)
        chosen = dataclasses.replace(chosen, warmup_steps=chosen.warmup_for(steps * chosen.epochs))
    vars(args).update(dataclasses.asdict(chosen))  # config.json holds every value used
    strategy = device_strategy(args.strategy, args.mixed_precision)  # before any device work
    out = start_run(args, identity=("data", "seed", "quick", "beta", "preset", *PRESET_FLAGS))
    seed_everything(args.seed)
    split = stored_split(out, split)
    images = split_images(normal, names, split)
    train = training_images(images, split, chosen.copies, args.seed)
    print(
        f"preset {args.preset}: {len(normal)} normal images, {chosen.split_order.replace('_', ' ')}"
        f" (x{chosen.copies + 1}): {len(train)} training, {len(images['validation'])} "
        f"validation items; batch {chosen.batch_size}, {chosen.epochs} epochs, "
        f"{chosen.reconstruction} BCE, warm-up {chosen.warmup_steps} steps"
    )

    with strategy.scope():
        model = EndoVAE(beta=args.beta, seed=args.seed, reconstruction=chosen.reconstruction)
        model.compile(
            optimizer=keras.optimizers.Adam(chosen.learning_rate), jit_compile=jit_compile(args.jit)
        )
    warmup = (
        [LinearWarmup(chosen.learning_rate, chosen.warmup_steps)] if chosen.warmup_steps else []
    )
    model.fit(
        array_batches(train, chosen.batch_size, args.seed, completed_epochs(out)),
        steps_per_epoch=steps_per_epoch(len(train), chosen.batch_size),
        validation_data=array_batches(images["validation"], chosen.batch_size),
        epochs=chosen.epochs,
        callbacks=[*warmup, *plateau_callbacks(out, MONITOR, tensorboard=args.tensorboard)],
        verbose=2,
    )
    if writing():  # the chief of a multi-worker run draws
        draw_figures(out)
    warning = unused_latent(read_history(out))
    if warning:
        print(f"WARNING: {warning}")
    print(f"Best model: {out / BEST}")
    print(f"Next: python -m apps.evaluate_endovae --run {out}")


def draw_figures(out: Path, pdf: bool = False) -> None:
    """Redraw this run's figures from its saved files (`apps.make_figures`): the history,
    and once evaluate_endovae has run, its samples and anomaly scores."""
    demo = is_synthetic(read_config(out)["data"])
    samples = scores = None
    if (out / SAMPLES).exists():
        samples = read_samples(out)
        scores = pd.read_csv(out / SCORES)
    save_figures(endovae_figures(read_history(out), samples, scores, demo), out / FIGURES, pdf)


if __name__ == "__main__":
    run_app(main, parser())
