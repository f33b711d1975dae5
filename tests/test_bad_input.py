"""Every bad input tried and what the apps do with it (the README's "Bad input" table).

Odd files in an image folder are processed or rejected one by one, each with its reason in
rejected.csv, and the run goes on. Bad paths, layouts, checkpoints and run folders raise an
`InputError` naming the thing and the fix; the apps print it as one line and exit with status
2 (checked through real subprocesses for a few cases; the others call `main` in-process).

Cases tested elsewhere are not repeated: tests/test_kvasir.py (grayscale, RGBA, 16-bit RGB,
empty, 40-byte JPEG, text file, all-black and tiny frames; a group with no usable image stops
the run; a folder prepared with another --size; a wrong --data-dir through a subprocess; no
network for Kaggle), tests/test_digits.py (MNIST-M label lines, missing images, labels that
do not pair with MNIST, a background folder without images), tests/test_otsu_crop.py (noisy
black frames), tests/test_training.py (--restart clears a run folder of other flags).
"""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from apps import prepare_kvasir
from preprocessing.files import InputError
from preprocessing.synthetic_endoscopy import synthetic_frame, write_synthetic_kvasir
from tests.endovae_helpers import random_images, tiny_vae, write_prepared
from tests.test_digits import write_mnist, write_mnistm
from training.resume import ResumeState

SOURCES = [
    Path(__file__).parents[1] / d
    for d in ("apps", "training", "models", "preprocessing", "evaluation")
]

# ---------------------------------------------------------------- odd files in an image folder


def frame(height: int = 120, width: int = 150) -> np.ndarray:
    """A synthetic endoscopy frame (RGB uint8) with its black border."""
    return synthetic_frame(np.random.default_rng(3), height, width, "round", polyp=True)[0]


JPEG = cv2.imencode(".jpg", frame()[..., ::-1])[1].tobytes()


def raw(data: bytes):
    return lambda path: path.write_bytes(data)


def pil(image: np.ndarray, mode: str = "RGB"):
    return lambda path: Image.fromarray(image).convert(mode).save(path)


def opencv(image: np.ndarray):
    return lambda path: cv2.imwrite(str(path), image)


# file written into polyps/ -> (writer, status, reason regex)
ODD_FILES = {
    "half.jpg": (raw(JPEG[: len(JPEG) // 2]), "rejected", "not a readable image"),
    "garbled.jpg": (raw(JPEG[:600] + bytes(300) + JPEG[900:]), "rejected", "not a readable"),
    "zero.png": (raw(b""), "rejected", r"empty file \(0 bytes\)"),
    "html.jpg": (raw(b"<html>404</html>"), "rejected", "not a readable image"),
    "table.csv": (raw(b"a,b\n1,2\n"), "rejected", "not a readable image"),
    "float.tiff": (opencv(frame().astype(np.float32)), "rejected", "unsupported pixel type"),
    "gray16.png": (opencv(frame()[..., 0].astype(np.uint16) * 257), "written", ""),
    "gray-alpha.png": (pil(frame(), "LA"), "written", ""),
    "palette.png": (pil(frame(), "P"), "written", ""),
    "small.png": (pil(frame(50, 60)), "written", ""),  # smaller than 96 px: upscaled
    "tiny-view.png": (pil(frame(30, 30)), "rejected", r"view too small \(\d+x\d+ px"),
    "borderless.png": (pil(frame()[30:90, 45:105]), "written", ""),
    "white.png": (opencv(np.full((80, 90, 3), 255, np.uint8)), "rejected", "uniform"),
    "polyps-0000.png": (pil(frame()), "rejected", "duplicate name in group"),  # as the .jpg
    # `ln -s ../x.jpg folder/` links to folder/../x.jpg: a link to nothing
    "link.jpg": (lambda path: path.symlink_to("../nowhere.jpg"), "rejected", "broken link to"),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """prepare_kvasir over a tiny tree holding every odd file: its folder and images.csv."""
    tmp = tmp_path_factory.mktemp("odd")
    root = write_synthetic_kvasir(tmp / "kvasir", 2, seed=0, size=(160, 128))
    for name, (write, _, _) in ODD_FILES.items():
        write(root / "polyps" / name)
    out = tmp / "prepared"
    argv = ["--data-dir", str(root), "--out", str(out), "--size", "32", "--workers", "1"]
    prepare_kvasir.main(prepare_kvasir.parser().parse_args(argv))
    records = pd.read_csv(out / "images.csv")
    return out, records.set_index(records.file.map(lambda f: Path(f).name))


@pytest.mark.parametrize("name", ODD_FILES)
def test_odd_image_is_processed_or_rejected_with_its_reason(prepared, name):
    out, records = prepared
    _, status, reason = ODD_FILES[name]
    assert records.loc[name, "status"] == status
    rejected = pd.read_csv(out / "rejected.csv")
    listed = rejected[rejected.file.map(lambda f: Path(f).name) == name]
    if status == "rejected":
        assert re.search(reason, listed.reason.item())
    else:
        assert listed.empty and (out / "abnormal" / f"{Path(name).stem}.png").is_file()


def test_odd_images_are_counted_in_the_summary(prepared):
    out, records = prepared
    abnormal = records[records.group == "abnormal"]
    summary = pd.read_csv(out / "summary.csv").set_index(["group", "size"]).images
    assert summary["abnormal", "all"] == (abnormal.status == "written").sum() == 2 + 5
    assert summary["abnormal", "rejected"] == (abnormal.status == "rejected").sum() == 10
    assert summary["normal", "rejected"] == 0


# ---------------------------------------------------------------- paths, layouts, run folders


def mnist(tmp: Path) -> list[str]:
    write_mnist(tmp / "mnist.npz")
    return ["--mnist", str(tmp / "mnist.npz")]


def mnistm(breakage):
    """Flags for a 4-image MNIST-M folder (paired with MNIST), broken by `breakage(root)`."""

    def build(tmp: Path) -> list[str]:
        labels = write_mnist(tmp / "mnist.npz")["y_train"][:4]
        write_mnistm(tmp / "mm", {"train": labels})
        breakage(tmp / "mm")
        return ["--mnist", str(tmp / "mnist.npz"), "--mnistm", str(tmp / "mm")]

    return build


def run_folder(app: str, best=None, **config):
    """Flag value of a run folder written by `app` (config.json); `best(path)` writes a
    checkpoints/best.keras. Data paths in `config` are relative to the test's folder."""

    def build(tmp: Path) -> str:
        folder = tmp / "run"
        (folder / "checkpoints").mkdir(parents=True)
        config.update({k: str(tmp / v) for k, v in config.items() if k == "data"})
        (folder / "config.json").write_text(json.dumps({"app": app, **config}))
        if best is not None:
            best(folder / "checkpoints" / "best.keras")
        return str(folder)

    return build


def small_model(path: Path) -> None:
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)


def truncated(path: Path) -> None:
    small_model(path)
    path.write_bytes(path.read_bytes()[:2000])


def with_lambda(path: Path) -> None:
    keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)


def endovae(path: Path) -> None:
    model = tiny_vae()
    model(random_images(1))  # built, not trained
    model.save(path)


def prepared_data(breakage=None):
    def build(tmp: Path) -> str:
        data = write_prepared(tmp / "data", normal=3, abnormal=0)
        if breakage:
            breakage(data)
        return str(data)

    return build


def raw_kvasir(tmp: Path) -> str:
    return str(write_synthetic_kvasir(tmp / "kvasir", 1, size=(80, 64)))


def unlink(name: str):
    return lambda folder: (folder / name).unlink()


def put(name: str, image: np.ndarray | None = None):
    """Write `image` (or a few junk bytes) as folder/name."""

    def write(folder: Path) -> None:
        path = folder / name
        path.write_bytes(b"junk") if image is None else cv2.imwrite(str(path), image)
        return str(folder)

    return write


def flags(*parts):
    """argv from strings and builders (called with the test's folder)."""
    return lambda tmp: [p(tmp) if callable(p) else p for p in parts]


def missing(name: str):
    return lambda tmp: str(tmp / name)


CROSS = re.escape("a run folder of train_endovae, not of train_classifier")
# (app, argv builder, message regex); every app also gets --out except evaluate and figures
CASES = [
    pytest.param(
        "train_classifier",
        flags("--mnist", missing("no.npz")),
        r"--mnist .*no\.npz: no such file",
        id="--mnist missing file",
    ),
    pytest.param(
        "train_classifier",
        flags(
            "--mnist",
            lambda t: put("m.txt")(t) + "/m.txt",
            "--mnistm-backgrounds",
            lambda t: str(t),
        ),
        r"--mnist .*m\.txt: not an npz with x_train",
        id="--mnist not an npz",
    ),
    pytest.param(
        "train_classifier",
        lambda t: [*mnist(t), "--mnistm", str(t / "nowhere")],
        r"--mnistm .*nowhere: no such folder",
        id="--mnistm missing folder",
    ),
    pytest.param(
        "train_classifier",
        mnistm(unlink("mnist_m_train_labels.txt")),
        r"--mnistm .*mm: label file mnist_m_train_labels\.txt is missing",
        id="--mnistm without its label file",
    ),
    pytest.param(
        "train_classifier",
        mnistm(put("mnist_m_train/00000009.png", np.zeros((32, 32, 3), np.uint8))),
        r"mnist_m_train_labels\.txt: lists 4 images but mnist_m_train/ holds 1 more",
        id="--mnistm more images than labels",
    ),
    pytest.param(
        "train_classifier",
        mnistm(put("mnist_m_train/00000001.png", np.zeros((28, 28, 3), np.uint8))),
        r"00000001\.png: image is 28x28, expected 32x32",
        id="--mnistm wrong image size",
    ),
    pytest.param(
        "train_classifier",
        mnistm(put("mnist_m_train/00000001.png")),
        r"00000001\.png: not a readable image",
        id="--mnistm corrupt image",
    ),
    pytest.param(
        "train_classifier",
        lambda t: [*mnist(t), "--mnistm-backgrounds", str(t / "nowhere")],
        r"--mnistm-backgrounds .*nowhere: no such folder",
        id="--mnistm-backgrounds missing folder",
    ),
    pytest.param(
        "train_pixelda",
        flags("--pair", "digits-demo", "--baseline", missing("nowhere")),
        r"--baseline .*nowhere: no config\.json, train first with python -m apps\.train_class",
        id="--baseline missing folder",
    ),
    pytest.param(
        "train_pixelda",
        flags("--pair", "digits-demo", "--baseline", lambda t: str(t)),
        r"--baseline .*: no config\.json, train first",
        id="--baseline empty folder",
    ),
    pytest.param(
        "train_pixelda",
        flags("--pair", "digits-demo", "--baseline", run_folder("train_endovae")),
        rf"--baseline .*run: {CROSS}",
        id="--baseline an EndoVAE run",
    ),
    pytest.param(
        "train_pixelda",
        flags("--pair", "digits-demo", "--baseline", run_folder("train_classifier", small_model)),
        r"--baseline .*run: no metrics\.csv, the run did not finish: rerun its command",
        id="--baseline an unfinished classifier run",
    ),
    pytest.param(
        "train_endovae",
        flags("--data", missing("nowhere")),
        r"nowhere/normal: no prepared images \(run python -m apps\.prepare_kvasir",
        id="--data missing folder",
    ),
    pytest.param(
        "train_endovae",
        flags("--data", raw_kvasir),
        r"kvasir/normal: no prepared images \(run python -m apps\.prepare_kvasir",
        id="--data never prepared (raw Kvasir)",
    ),
    pytest.param(
        "train_endovae",
        flags("--data", prepared_data(put("normal/normal-001.png"))),
        r"normal-001\.png: unreadable prepared image \(delete it and rerun .*prepare_kvasir",
        id="--data with a corrupt prepared image",
    ),
    pytest.param(
        "train_endovae",
        flags(
            "--data", prepared_data(put("normal/normal-009.png", np.zeros((64, 64, 3), np.uint8)))
        ),
        r"normal: prepared images of different sizes",
        id="--data with mixed sizes",
    ),
    pytest.param(
        "train_endovae",
        flags("--data", prepared_data(), "--val-fraction", "1.5"),
        r"--val-fraction 1\.5: choose a value between 0 and 1",
        id="--val-fraction out of range",
    ),
    pytest.param(
        "train_endovae",
        lambda t: ["--data", prepared_data()(t), "--out", run_folder("train_endovae", seed=1)(t)],
        r"run holds a run made with --seed 1 \(now 0\): .* pass --restart",
        id="run folder with other flags",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", missing("nowhere")),
        r"--run .*nowhere: no config\.json, train first with python -m apps\.train_endovae",
        id="--run missing folder",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_classifier", small_model)),
        r"--run .*run: a run folder of train_classifier, not of train_endovae",
        id="--run a classifier run",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_endovae", data="data")),
        r"best\.keras not found: train first",
        id="--run without best.keras",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_endovae", truncated, data="data")),
        r"best\.keras: cannot load it \(.*\); pass the right run folder, or retrain with --rest",
        id="--run truncated best.keras",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_endovae", small_model, data="data")),
        r"best\.keras: holds a Sequential model where EndoVAE was expected",
        id="--run best.keras of another model",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_endovae", with_lambda, data="data")),
        r"best\.keras: cannot load it \(Requested the deserialization of a `Lambda` layer",
        id="--run best.keras with a Lambda layer (safe mode)",
    ),
    pytest.param(
        "evaluate_endovae",
        flags("--run", run_folder("train_endovae", endovae, data="nowhere")),
        r"nowhere/normal: no prepared images",
        id="--run whose --data is gone",
    ),
    pytest.param(
        "make_figures",
        flags("--run", missing("nowhere")),
        r"--run .*nowhere: no config\.json, so not a run folder",
        id="make_figures --run missing folder",
    ),
    pytest.param(
        "make_figures",
        flags("--run", run_folder("train_classifier", pair="digits-demo")),
        r"--run .*run: samples\.npz is missing; rerun the app with the same flags",
        id="make_figures --run unfinished",
    ),
    pytest.param(
        "make_figures",
        flags("--run", lambda t: put("config.json")(t)),
        r"config\.json: cannot read JSON",
        id="make_figures corrupt config.json",
    ),
    pytest.param(
        "prepare_kvasir",
        flags("--data-dir", lambda t: str(t)),
        r"no class folder normal-z-line, normal-cecum, normal-pylorus, polyps found at any depth",
        id="--data-dir without class folders",
    ),
    pytest.param(
        "prepare_kvasir",
        flags("--data-dir", raw_kvasir, "--normal-classes", "normal-zline"),
        r"no class folder normal-zline found",
        id="--normal-classes typo",
    ),
]
OUT_APPS = {"train_classifier", "train_pixelda", "train_endovae", "prepare_kvasir"}


@pytest.mark.backends
@pytest.mark.parametrize(("app", "build", "message"), CASES)
def test_bad_input_is_an_input_error_naming_it(tmp_path, app, build, message):
    module = importlib.import_module(f"apps.{app}")
    argv = build(tmp_path)
    if app in OUT_APPS and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    with pytest.raises(InputError, match=message) as caught:
        module.main(module.parser().parse_args(argv))
    assert "\n" not in str(caught.value)


def test_no_network_for_mnist_names_the_flag(tmp_path, monkeypatch):
    def offline():
        raise ConnectionError("no network")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    module = importlib.import_module("apps.train_classifier")
    argv = ["--mnistm-backgrounds", str(tmp_path), "--out", str(tmp_path / "out")]
    with pytest.raises(InputError, match=r"cannot download MNIST .*: pass --mnist PATH"):
        module.main(module.parser().parse_args(argv))


def test_corrupt_resume_state_says_restart(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    folder = tmp_path / "resume"
    folder.mkdir()
    (folder / "epoch-00001.weights.h5").write_bytes(b"\x89HDF\r\n half")
    (folder / "state.json").write_text(
        json.dumps({"epoch": 1, "weights": "epoch-00001.weights.h5", "callbacks": []})
    )
    with pytest.raises(InputError, match=r"epoch-00001\.weights\.h5: unreadable .* --restart"):
        model.fit(np.zeros((2, 2)), np.zeros(2), epochs=2, callbacks=[ResumeState(folder)])


def test_nothing_loads_models_outside_safe_mode():
    unsafe = ("safe_mode=False", "enable_unsafe_deserialization")
    found = [
        f"{path}: {word}"
        for folder in SOURCES
        for path in folder.glob("*.py")
        for word in unsafe
        if word in path.read_text()
    ]
    assert not found


# ---------------------------------------------------------------- the command line


def start(app: str, *argv: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", f"apps.{app}", *argv]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_command_line_gives_one_line_and_exit_2_and_a_traceback_with_debug(tmp_path):
    processes = {  # started together; only evaluate_endovae imports TensorFlow
        "evaluate": start("evaluate_endovae", "--run", run_folder("train_classifier")(tmp_path)),
        "figures": start("make_figures", "--run", str(tmp_path / "nowhere")),
        "debug": start("make_figures", "--run", str(tmp_path / "nowhere"), "--debug"),
    }
    stderr = {k: p.communicate(timeout=180)[1].decode() for k, p in processes.items()}
    for name in ("evaluate", "figures"):
        errors = [line for line in stderr[name].splitlines() if line.startswith("error")]
        assert processes[name].returncode == 2 and "Traceback" not in stderr[name]
        assert errors == [stderr[name].strip().splitlines()[-1]]  # TensorFlow's log aside
        assert errors[0].startswith("error: --run "), errors
    assert "of train_classifier, not of train_endovae" in stderr["evaluate"]
    assert processes["debug"].returncode == 1
    assert "Traceback" in stderr["debug"] and "InputError: --run" in stderr["debug"]


@pytest.mark.backends
def test_tf_distribute_is_refused_off_tensorflow_before_anything_is_written(tmp_path):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("tf.distribute strategies run on TensorFlow")
    from apps import train_endovae

    data = write_prepared(tmp_path / "data", normal=4, abnormal=1)
    argv = ["--data", str(data), "--out", str(tmp_path / "out"), "--strategy", "mirrored"]
    message = r"--strategy mirrored is TensorFlow's tf\.distribute: rerun with KERAS_BACKEND"
    with pytest.raises(InputError, match=message):
        train_endovae.main(train_endovae.parser().parse_args(argv))
    assert not (tmp_path / "out").exists()
