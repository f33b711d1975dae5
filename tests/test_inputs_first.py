"""Every app checks its inputs before it writes anything: run with a wrong path (or flags
that do not go together) it raises an `InputError`, and its output folder stays absent, or
as an earlier run left it (the same files with the same sizes and modification times)."""

import importlib
import json
from pathlib import Path

import pytest

from preprocessing import kvasir
from preprocessing.files import InputError
from tests.endovae_helpers import random_images, tiny_vae
from tests.test_bad_input import flags, missing, prepared_data

OUT_FLAG = {"evaluate_endovae": "--run", "make_figures": "--run", "benchmark": "--json"}
RUN_OF = {"evaluate_endovae": "train_endovae", "make_figures": "train_classifier"}


def folder(tmp: Path) -> str:
    (tmp / "folder").mkdir(exist_ok=True)
    return str(tmp / "folder")


def case(description: str, app: str, build, message: str):
    return pytest.param(app, build, message, id=f"{app} {description}")


NOWHERE = r"nowhere: no such folder"
CASES = [  # (app, argv besides the output flag, message regex)
    case(
        "--mnist missing",
        "train_classifier",
        flags("--mnist", missing("no.npz")),
        r"--mnist .*no\.npz: no such file",
    ),
    case(
        "--mnistm-backgrounds missing",
        "train_classifier",
        flags("--mnistm-backgrounds", missing("nowhere")),
        rf"--mnistm-backgrounds .*{NOWHERE}",
    ),
    case(
        "--mnistm with --mnistm-backgrounds",
        "train_classifier",
        flags("--mnistm", folder, "--mnistm-backgrounds", folder),
        "--mnistm and --mnistm-backgrounds: pass one",
    ),
    case(
        "--mnistm missing",
        "train_pixelda",
        flags("--mnistm", missing("nowhere")),
        rf"--mnistm .*{NOWHERE}",
    ),
    case(
        "--baseline missing",
        "train_pixelda",
        flags("--pair", "digits-demo", "--baseline", missing("nowhere")),
        r"--baseline .*nowhere: no config\.json",
    ),
    case(
        "--compare missing",
        "train_pixelda",
        flags("--pair", "digits-demo", "--compare", missing("nowhere")),
        r"--compare .*nowhere: no config\.json",
    ),
    case(
        "--mnist a folder",
        "train_cyclegan",
        flags("--mnist", folder),
        r"--mnist .*folder: a folder, not a file",
    ),
    case(
        "--domain-a missing",
        "train_cyclegan",
        flags("--domain-a", missing("nowhere"), "--domain-b", folder),
        rf"--domain-a .*{NOWHERE}",
    ),
    case(
        "--data missing",
        "train_endovae",
        flags("--data", missing("nowhere")),
        r"nowhere/normal: no prepared images",
    ),
    case(
        "--val-fraction out of range",
        "train_endovae",
        flags("--data", prepared_data(), "--val-fraction", "1.5"),
        r"--val-fraction 1\.5: choose a value between 0 and 1",
    ),
    case(
        "--data missing",
        "train_flow",
        flags("--data", missing("nowhere")),
        r"nowhere/normal: no prepared images",
    ),
    case(
        "--vae-run missing",
        "train_flow",
        flags("--data", prepared_data(), "--vae-run", missing("nowhere")),
        r"--vae-run .*nowhere: no config\.json",
    ),
    case(
        "--data missing",
        "evaluate_endovae",
        flags("--data", missing("nowhere")),
        r"no config\.json, train first|nowhere/normal: no prepared images",  # no run / its data
    ),
    case(
        "--data-dir missing",
        "prepare_kvasir",
        flags("--data-dir", missing("nowhere")),
        r"nowhere: no such folder",
    ),
    case(
        "--data-dir without Kvasir",
        "prepare_kvasir",
        flags("--data-dir", folder),
        r"folder: no class folder normal-z-line",
    ),
    case(
        "--run not a finished run",
        "make_figures",
        flags(),
        r"no config\.json|samples\.npz is missing",  # no run / an unfinished one
    ),
    case(
        "--torch-python missing",
        "benchmark",
        flags("--torch-python", missing("nowhere")),
        r"--torch-python .*nowhere: no such program",
    ),
]


def earlier_run(out: Path, app: str) -> None:
    """What an earlier run of `app` (or of the app whose run folder it reads) left in `out`."""
    if app == "benchmark":
        out.write_text('{"results": []}\n')
        return
    (out / "checkpoints").mkdir(parents=True)
    config = {"app": RUN_OF.get(app, app), "data": str(out.parent / "nowhere")}
    homework = kvasir.PRESETS["homework"]  # prepare_kvasir's default choices
    config |= {"pair": "digits-demo", "size": 96, "method": homework.method, "dedup": False}
    config |= {"normal_classes": list(homework.normal_classes)}
    (out / "config.json").write_text(json.dumps(config))
    (out / "history.csv").write_text("epoch,loss\n1,0.5\n")
    if app == "evaluate_endovae":
        model = tiny_vae()
        model(random_images(1))
        model.save(out / "checkpoints" / "best.keras")


def snapshot(path: Path) -> dict:
    """Every file and folder under `path` with its size and modification time."""
    if not path.exists():
        return {}
    entries = [path, *path.rglob("*")] if path.is_dir() else [path]
    return {str(p): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in entries}


@pytest.mark.parametrize("earlier", [False, True], ids=["no output", "an earlier run's output"])
@pytest.mark.parametrize(("app", "build", "message"), CASES)
def test_wrong_input_is_refused_before_anything_is_written(tmp_path, app, build, message, earlier):
    out = tmp_path / ("out.json" if app == "benchmark" else "out")
    if earlier:
        earlier_run(out, app)
    before = snapshot(out)
    module = importlib.import_module(f"apps.{app}")
    argv = [*build(tmp_path), OUT_FLAG.get(app, "--out"), str(out)]
    with pytest.raises(InputError, match=message):
        module.main(module.parser().parse_args(argv))
    assert snapshot(out) == before
    assert earlier or not out.exists()


@pytest.mark.parametrize("app", ["train_classifier", "demo"])
def test_out_naming_a_file_is_refused(tmp_path, app):
    out = tmp_path / "file"
    out.write_text("not a run folder")
    before = snapshot(out)
    module = importlib.import_module(f"apps.{app}")
    argv = ["--out", str(out)] if app == "demo" else ["--pair", "digits-demo", "--out", str(out)]
    with pytest.raises(InputError, match=r"--out .*file: a file, not a folder"):
        module.main(module.parser().parse_args(argv))
    assert snapshot(out) == before
