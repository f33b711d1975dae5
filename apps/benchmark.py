"""Throughput on this machine: train steps (bare and through `fit`), data preparation,
inference, and (optionally) the eager PyTorch reference side by side.

python -m apps.benchmark [--quick] [--json FILE] [--torch-python PY]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from apps.common import run_app
from evaluation.reports import markdown_table
from models.classifier import build_classifier, paper_optimizer
from models.endovae import EndoVAE
from models.pixelda import PRESETS, build_pixelda
from preprocessing.digits import adaptation_dataset, demo_pair, labelled_dataset
from preprocessing.files import write_json
from preprocessing.pipelines import array_batches

TORCH_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "torch_reference.py"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apps.benchmark", description=__doc__.splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="fewer and shorter timing windows")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.add_argument("--torch-python", help="a Python with torch, to time the PyTorch reference")
    p.add_argument("--torch-reference", type=Path, default=TORCH_REFERENCE)
    p.add_argument("--only", nargs="*", help="models to time (classifier pixelda endovae)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def median_seconds(call: Callable[[], object], windows: int, repeats: int) -> float:
    """Median over `windows` timed windows of `repeats` calls, after one warm-up window."""
    call()
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(repeats):
            result = call()
        _wait(result)
        times.append((time.perf_counter() - start) / repeats)
    return statistics.median(times)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train_rates(model: keras.Model, dataset: tf.data.Dataset, batch: int, windows: int, steps: int):
    """(bare train-step images/s, `fit` images/s) on the same batches of `dataset`."""
    step = tf.function(model.train_step)
    first = next(iter(dataset))
    bare = median_seconds(lambda: step(first), windows, steps)
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=windows + 1, verbose=0, callbacks=[timer])
    fit = statistics.median(timer.seconds[1:]) / steps
    return batch / bare, batch / fit


def model_cases(quick: bool) -> dict[str, Callable[[], tuple[keras.Model, tf.data.Dataset, int]]]:
    """Each model at its homework batch size, fed by its real tf.data pipeline."""
    pair = demo_pair()
    images = np.random.default_rng(0).random((512, 96, 96, 3), dtype=np.float32)

    def classifier():
        model = build_classifier()
        model.compile(
            paper_optimizer(),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model, labelled_dataset(pair.source, pair.labels, 32, shuffle_seed=0), 32

    def pixelda():
        model = build_pixelda(PRESETS["homework"], seed=0)
        return model, adaptation_dataset(pair.source, pair.labels, pair.target, 32, 0), 32

    def endovae():
        model = EndoVAE(seed=0)
        model.compile(keras.optimizers.Adam(1e-3))
        return model, array_batches(images, 128, seed=0), 128

    return {"classifier": classifier, "pixelda": pixelda, "endovae": endovae}


def torch_rate(python: str, reference: Path, which: str, steps: int) -> float:
    """Images/s of the eager PyTorch reference step (batch 32), run in its own Python."""
    out = subprocess.run(
        [python, str(reference), which, str(steps)], capture_output=True, text=True, check=True
    ).stdout
    return float(re.search(r"->\s*([\d.]+) img/s", out).group(1))


def main(args: argparse.Namespace) -> None:
    windows, steps = (3, 3) if args.quick else (5, 10)
    rows = []
    for name, make in model_cases(args.quick).items():
        if args.only and name not in args.only:
            continue
        keras.utils.set_random_seed(0)
        model, dataset, batch = make()
        bare, fit = train_rates(model, dataset, batch, windows, steps)
        rows.append(
            {"measure": f"{name} train (batch {batch})", "bare_step_img_s": bare, "fit_img_s": fit,
             "fit_over_bare": fit / bare}
        )  # fmt: skip
        print(rows[-1], flush=True)
    if args.torch_python:
        for name in ("pixelda", "endovae"):
            if args.only and name not in args.only:
                continue
            keras.utils.set_random_seed(0)
            model, dataset, _ = model_cases(args.quick)[name]()
            batch = (
                next(iter(dataset.unbatch().batch(32)))
                if name == "endovae"
                else next(iter(dataset))
            )
            step = tf.function(model.train_step)
            keras_rate = 32 / median_seconds(lambda b=batch, s=step: s(b), windows, steps)
            torch = torch_rate(args.torch_python, args.torch_reference, name, steps)
            rows.append(
                {"measure": f"{name} train step, batch 32: Keras / eager PyTorch",
                 "bare_step_img_s": keras_rate, "torch_img_s": torch,
                 "keras_over_torch": keras_rate / torch}
            )  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"TF {tf.__version__}, Keras {keras.__version__}"
    )
    print(f"\n{machine}\n")
    print(markdown_table(table.fillna(""), digits=2))
    if args.json:
        write_json(args.json, {"machine": machine, "results": rows})


def _wait(result) -> None:
    """Block until an asynchronous TensorFlow result is computed."""
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()
            return


if __name__ == "__main__":
    run_app(main, parser())
