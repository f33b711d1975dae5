"""Throughput on this machine: train steps (bare and through `fit`) against the machine's own
convolution rate, data preparation, inference, and (optionally) the PyTorch peers side by side.

python -m apps.benchmark [--quick] [--json FILE] [--torch-python PY]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import SUPPRESS
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from apps.common import run_app
from evaluation.reports import markdown_table
from models.backend import BACKEND
from models.classifier import build_classifier, compiled_classifier
from models.endovae import EndoVAE
from models.flows import MAF
from models.pixelda import PRESETS, build_pixelda
from preprocessing.digit_pipelines import adaptation_dataset, labelled_dataset
from preprocessing.digits import demo_pair
from preprocessing.files import InputError, existing_path, write_json
from preprocessing.kvasir_prepare import init_worker, process_file
from preprocessing.pipelines import array_batches
from preprocessing.synthetic_endoscopy import write_synthetic_kvasir
from training.throughput import fit_seconds, machine_rates, median_seconds, step_flops

PARTS = ("classifier", "pixelda", "endovae", "inference", "flow", "prepare_kvasir")
FRAME_SIZE = (1280, 1024)  # width, height of the generated endoscopy-like frames
TORCH_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "torch_reference.py"
TORCH_MODES = ("eager", "channels_last", "compile", "channels_last+compile")
FIT_EPOCH_SECONDS = 2.0
# Variables that cap the instruction set: oneDNN's (TensorFlow, PyTorch's mkldnn) and ATen's
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apps.benchmark", description=__doc__.splitlines()[0]
    )
    p.add_argument("--quick", action="store_true", help="fewer and shorter timing windows")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    p.add_argument("--torch-python", help="a Python with torch, to time the PyTorch reference")
    p.add_argument("--torch-reference", type=Path, default=TORCH_REFERENCE)
    p.add_argument(
        "--only", nargs="*", choices=PARTS, help=f"parts to time (default all: {' '.join(PARTS)})"
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--count-flops", choices=("classifier", "pixelda", "endovae"), help=SUPPRESS)
    return p


def train_rates(model: keras.Model, dataset: tf.data.Dataset, batch: int, windows: int, steps: int):
    """(train-step images/s on one batch held in memory, `fit` images/s through the real
    pipeline). A `fit` epoch lasts at least `FIT_EPOCH_SECONDS`, so that its fixed cost
    (callbacks, the iterator) weighs on a cheap step no more than in a real run's epochs."""
    first = next(iter(dataset))
    bare = fit_seconds(model, tf.data.Dataset.from_tensors(first).repeat(), steps, windows)
    steps = max(steps, math.ceil(FIT_EPOCH_SECONDS / bare))
    return batch / bare, batch / fit_seconds(model, dataset, steps, windows)


def gflop_per_image(name: str, quick: bool) -> float:
    """FLOPs of one train step of model case `name` per image, counted on TensorFlow's graph
    (in a TensorFlow process when this one runs another backend: the same arithmetic)."""
    if BACKEND == "tensorflow":
        keras.utils.set_random_seed(0)
        model, dataset, batch = model_cases(quick)[name]()
        return step_flops(model, next(iter(dataset))) / batch / 1e9
    command = [sys.executable, "-m", "apps.benchmark", "--count-flops", name]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def model_cases(quick: bool) -> dict[str, Callable[[], tuple[keras.Model, tf.data.Dataset, int]]]:
    """Each model at its homework batch size, fed by its real tf.data pipeline."""
    pair = demo_pair()
    images = np.random.default_rng(0).random((512, 96, 96, 3), dtype=np.float32)

    def classifier():
        dataset = labelled_dataset(pair.source, pair.labels, 32, shuffle_seed=0)
        return compiled_classifier(), dataset, 32

    def pixelda():
        model = build_pixelda(PRESETS["homework"], seed=0)
        return model, adaptation_dataset(pair.source, pair.labels, pair.target, 32, 0), 32

    def endovae():
        model = EndoVAE(seed=0)
        model.compile(keras.optimizers.Adam(1e-3))
        return model, array_batches(images, 128, seed=0), 128

    return {"classifier": classifier, "pixelda": pixelda, "endovae": endovae}


def inference_rows(windows: int, steps: int) -> list[dict]:
    """Images/s of the classifier on MNIST-M-like images and of VAE reconstruction (z = mu)."""
    target = demo_pair().target
    digits = np.resize(target, (256, *target.shape[1:]))
    frames = np.random.default_rng(0).random((128, 96, 96, 3), dtype=np.float32)
    cases = [
        ("classifier inference (batch 256)", build_classifier(), digits),
        ("EndoVAE reconstruction (batch 128)", EndoVAE(seed=0), frames),
    ]
    rows = []
    for measure, model, images in cases:
        seconds = median_seconds(lambda m=model, x=images: m.predict_on_batch(x), windows, steps)
        rows.append({"measure": measure, "inference_img_s": len(images) / seconds})
    return rows


def flow_rows(windows: int) -> list[dict]:
    """MAF on 16x16x3 pixels (K = 5, the app's defaults), 64 images: scoring (one pass) vs
    sampling (one pass per dimension and transform)."""
    flow = MAF(16 * 16 * 3, seed=0)
    images = np.random.default_rng(0).random((64, flow.dims), dtype=np.float32)
    scoring = median_seconds(lambda: flow.predict_on_batch(images), windows, 10)
    noise = np.random.default_rng(0).standard_normal((64, flow.dims)).astype(np.float32)
    sampling = median_seconds(lambda: flow.inverse(noise), windows, 1)
    return [
        {"measure": "MAF pixels: score 64 (one pass)", "inference_img_s": 64 / scoring},
        {"measure": "MAF pixels: sample 64 (sequential)", "inference_img_s": 64 / sampling,
         "sample_over_score_time": sampling / scoring},
    ]  # fmt: skip


def prepare_rows(frames: int, repeats: int) -> list[dict]:
    """`prepare_kvasir` images/s with 1 worker and with all cores, alternating, on generated
    1280x1024 frames; the pool's start-up is outside the timing."""
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_kvasir(Path(tmp) / "frames", frames // 3, size=FRAME_SIZE)
        sources = sorted(str(p) for p in root.rglob("*.jpg"))
        rates: dict[int, list[float]] = {1: [], workers: []}
        for repeat in range(repeats):
            for n in rates:
                out = Path(tmp) / f"out{n}-{repeat}"
                tasks = [(s, str(out / f"{i}.png"), 96, "robust") for i, s in enumerate(sources)]
                with get_context("spawn").Pool(n, initializer=init_worker) as pool:
                    pool.map(process_file, tasks[: 2 * n], chunksize=1)  # workers ready
                    start = time.perf_counter()
                    pool.map(process_file, tasks, chunksize=1)
                    rates[n].append(len(tasks) / (time.perf_counter() - start))
    one, many = statistics.median(rates[1]), statistics.median(rates[workers])
    return [
        {"measure": f"prepare_kvasir, {len(sources)} frames 1280x1024, 1 worker",
         "prepare_img_s": one},
        {"measure": f"prepare_kvasir, {workers} workers", "prepare_img_s": many,
         "workers_over_one": many / one},
    ]  # fmt: skip


def torch_rate(python: str, reference: Path, which: str, steps: int, mode: str) -> float:
    """Images/s of the PyTorch reference step (batch 32) in one of `TORCH_MODES`, run in its
    own Python; NaN, said on stderr, when that mode fails on this machine."""
    command = [python, str(reference), which, str(steps), mode]
    done = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"->\s*([\d.]+) img/s", done.stdout)
    if done.returncode == 0 and found:
        return float(found.group(1))
    code = done.returncode
    how = signal.Signals(-code).name if code < 0 else f"exit code {code}"
    print(f"torch peer {which} {mode} failed ({how}): left out of the best peer", file=sys.stderr)
    return math.nan


def check_inputs(args: argparse.Namespace) -> None:
    """Refuse a wrong --torch-python, --torch-reference or --json before timing anything."""
    if args.torch_python:
        if shutil.which(args.torch_python) is None:
            raise InputError(f"--torch-python {args.torch_python}: no such program")
        existing_path(args.torch_reference, "--torch-reference", "the PyTorch reference script")
    if args.json is not None and args.json.is_dir():
        raise InputError(f"--json {args.json}: a folder, not a file: name the JSON file")


def main(args: argparse.Namespace) -> None:
    if args.count_flops:  # on TensorFlow, for a benchmark running another backend
        print(gflop_per_image(args.count_flops, quick=True))
        return
    check_inputs(args)
    windows, steps = (3, 3) if args.quick else (5, 10)
    parts = args.only or PARTS
    rows = []
    rows.append({"measure": "machine: conv 3x3 64->64 @32x32 b32, matmul 2048",
                 **machine_rates(windows)})  # fmt: skip
    print(rows[-1], flush=True)
    for name, make in model_cases(args.quick).items():
        if name not in parts:
            continue
        gflop = gflop_per_image(name, args.quick)
        keras.utils.set_random_seed(0)
        model, dataset, batch = make()
        conv = machine_rates(windows)["conv_gflop_s"]  # the machine's rate just now
        bare, fit = train_rates(model, dataset, batch, windows, steps)
        rows.append(
            {"measure": f"{name} train (batch {batch}, {BACKEND})", "bare_step_img_s": bare,
             "fit_img_s": fit,
             "fit_over_bare": fit / bare, "gflop_per_img": gflop, "conv_gflop_s": conv,
             "fraction_of_conv_rate": bare * gflop / conv}
        )  # fmt: skip
        print(rows[-1], flush=True)
    if "inference" in parts:
        rows += inference_rows(windows, steps)
        print(*rows[-2:], sep="\n", flush=True)
    if "flow" in parts:
        rows += flow_rows(windows)
        print(*rows[-2:], sep="\n", flush=True)
    if "prepare_kvasir" in parts:
        rows += prepare_rows(48 if args.quick else 150, 1 if args.quick else 3)
        print(*rows[-2:], sep="\n", flush=True)
    if args.torch_python:
        for name in ("pixelda", "endovae"):
            if name not in parts:
                continue
            keras.utils.set_random_seed(0)
            model, dataset, _ = model_cases(args.quick)[name]()
            batch = next(iter(dataset.unbatch().batch(32) if name == "endovae" else dataset))
            memory = tf.data.Dataset.from_tensors(batch).repeat()
            keras_rate = 32 / fit_seconds(model, memory, steps, windows)
            peers = {
                mode: torch_rate(args.torch_python, args.torch_reference, name, steps, mode)
                for mode in TORCH_MODES
            }
            ran = {mode: rate for mode, rate in peers.items() if not math.isnan(rate)}
            if not ran:
                raise InputError(f"--torch-python {args.torch_python}: no PyTorch peer ran")
            best = max(ran, key=ran.get)
            rows.append(
                {"measure": f"{name} train step, batch 32, {BACKEND}: Keras / best PyTorch "
                 f"peer ({best})",
                 "bare_step_img_s": keras_rate,
                 **{f"torch_{mode}_img_s": rate for mode, rate in peers.items()},
                 "keras_over_best_torch": keras_rate / peers[best]}
            )  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    versions = {"tensorflow": tf.__version__}
    if BACKEND != "tensorflow":
        versions[BACKEND] = importlib.metadata.version(BACKEND)
    cpuinfo = Path("/proc/cpuinfo")
    isa = ", AVX-512" if cpuinfo.exists() and "avx512" in cpuinfo.read_text() else ""
    limits = [f"{k}={os.environ[k]}" for k in ISA_LIMITS if k in os.environ]
    machine = (
        f"{platform.machine()}{isa}, {os.cpu_count()} cores, Keras {keras.__version__} on "
        f"{BACKEND}; " + ", ".join([f"{k} {v}" for k, v in versions.items()] + limits)
    )
    print(f"\n{machine}\n")
    print(markdown_table(table.astype(object).where(table.notna(), ""), digits=2))
    if args.json:
        write_json(args.json, {"machine": machine, "results": rows})


if __name__ == "__main__":
    run_app(main, parser())
