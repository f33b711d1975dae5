"""Kvasir layout, presets, copies, the homework's summary, prepare_kvasir on tiny trees with
bad files, reruns."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from apps import prepare_kvasir
from preprocessing import kvasir, kvasir_prepare, kvasir_summary
from preprocessing.files import InputError
from preprocessing.synthetic_endoscopy import synthetic_frame, write_synthetic_kvasir

SIZE = (160, 128)  # width, height of the synthetic frames


def write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), image)


@pytest.fixture
def tree(tmp_path) -> Path:
    """A Kvasir-like tree one level down, with one bad or odd file of each kind in polyps/."""
    root = write_synthetic_kvasir(tmp_path / "download" / "kvasir-dataset", 2, seed=0, size=SIZE)
    polyps = root / "polyps"
    frame, _ = synthetic_frame(np.random.default_rng(1), 120, 150, "octagon", polyp=True)
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    write_png(polyps / "gray.png", bgr[..., 1])
    write_png(polyps / "rgba.png", np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    write_png(polyps / "deep.png", bgr.astype(np.uint16) * 257)
    (polyps / "empty.jpg").write_bytes(b"")
    (polyps / "notes.txt").write_text("not an image\n")
    (polyps / "broken.jpg").write_bytes((polyps / "polyps-0000.jpg").read_bytes()[:40])
    write_png(polyps / "black.png", np.zeros((50, 60, 3), np.uint8))
    write_png(polyps / "tiny.png", bgr[:20, :20])
    return root.parent


def run(args: list[str]) -> None:
    prepare_kvasir.main(prepare_kvasir.parser().parse_args(args))


def test_find_class_folders_at_any_depth(tree):
    folders = kvasir.find_class_folders(tree, ["polyps", "normal-cecum", "normal-pylorus"])
    assert folders == {
        "polyps": [tree / "kvasir-dataset" / "polyps"],
        "normal-cecum": [tree / "kvasir-dataset" / "normal-cecum"],
    }
    features = tree / "kvasir-dataset-features" / "polyps"  # as in Kvasir v2's download
    features.mkdir(parents=True)
    for i in range(12):
        (features / f"polyps-{i:04d}.features").write_text("JCD 0.1 0.2\n")
    assert kvasir.find_class_folders(tree, ["polyps"])["polyps"][0].parent.name == "kvasir-dataset"
    v2 = tree / "v2" / "polyps" / "polyps"  # Kaggle's Kvasir v2: <class>/<class>/*.jpg
    v2.mkdir(parents=True)
    for i in range(11):  # more images than v1's 10 polyps below
        (v2 / f"v2-{i}.jpg").write_bytes(b"jpeg")
    assert kvasir.find_class_folders(tree / "v2", ["polyps"])["polyps"] == [v2, v2.parent]
    assert kvasir.find_class_folders(tree, ["polyps"])["polyps"][0] == v2
    with pytest.raises(InputError, match="--data-dir"):
        kvasir.find_class_folders(tree / "missing", ["polyps"])


def test_source_table_needs_every_class_named_but_not_every_preset_class(tree):
    with pytest.raises(InputError, match="no class folder normal-pylorus found at any depth"):
        kvasir.source_table(tree)
    table, notes = kvasir.source_table(tree, every_class=False)
    assert table.groupby("group").size().to_dict() == {"normal": 4, "abnormal": 10}
    assert set(table["class"]) == {"normal-z-line", "normal-cecum", "polyps"}
    assert notes == [f"normal-pylorus: no folder of that name in {tree}, left out"]
    assert table.duplicate_of.isna().all()
    with pytest.raises(InputError, match="no class folder normal-pylorus found"):
        kvasir.source_table(tree, ["normal-pylorus"], every_class=False)  # no normal class
    with pytest.raises(InputError, match="no class folder esophagitis, normal-pylorus found"):
        kvasir.source_table(tree, ["normal-cecum", "esophagitis", "normal-pylorus"])
    shutil.rmtree(tree / "kvasir-dataset" / "polyps")
    with pytest.raises(InputError, match="no class folder normal-pylorus, polyps found"):
        kvasir.source_table(tree, every_class=False)


def test_find_duplicates_by_content(tmp_path):
    names = {"a": b"frame 1", "b": b"frame 2", "c": b"frame 1", "d": b"frame 3", "e": b"frame 1"}
    for name, data in names.items():
        (tmp_path / name).write_bytes(data)  # a, b, c, d and e are all 7 bytes long
    (tmp_path / "empty1").write_bytes(b"")
    (tmp_path / "empty2").write_bytes(b"")
    paths = [str(tmp_path / n) for n in [*names, "empty1", "empty2", "missing"]]
    a = paths[0]
    assert kvasir.find_duplicates(paths) == [None, None, a, None, a, None, None, None]


def test_size_summary_and_the_homeworks_printout():
    records = pd.DataFrame(
        {
            "group": ["normal"] * 4 + ["abnormal"] * 2,
            "width": [720, 1920, 1280, 720, 720, 1920],
            "height": [576, 1072, 1024, 576, 576, 1072],
        }
    )
    summary = kvasir_summary.size_summary(records)
    assert summary.values.tolist() == [
        ["normal", "all", 4],
        ["normal", "(1920, 1072)", 1],
        ["normal", "(1280, 1024)", 1],
        ["normal", "(720, 576)", 2],
        ["abnormal", "all", 2],
        ["abnormal", "(1920, 1072)", 1],
        ["abnormal", "(720, 576)", 1],
    ]
    rejected = pd.DataFrame([{"group": "normal", "size": "rejected", "images": 5}])
    assert kvasir_summary.format_summary(pd.concat([summary, rejected])) == (
        "Total normal images: 4\n"
        "  (1920, 1072): 1 images\n"
        "  (1280, 1024): 1 images\n"
        "  (720, 576): 2 images\n"
        "Total polyp images: 2\n"
        "  (1920, 1072): 1 images\n"
        "  (720, 576): 1 images"
    )


def test_download_failure_names_data_dir(monkeypatch):
    kagglehub = pytest.importorskip("kagglehub")

    def offline(slug):
        raise ConnectionError("no network")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(InputError, match="--data-dir DIR"):
        kvasir.download("someone/kvasir")


def test_load_processed_before_prepare(tmp_path):
    with pytest.raises(InputError, match="run python -m apps.prepare_kvasir --out DIR first"):
        kvasir.load_processed(tmp_path, "normal")


def test_prepare_processes_or_rejects_every_file_and_skips_on_rerun(tree, tmp_path, capsys):
    out = tmp_path / "prepared"
    run(["--data-dir", str(tree), "--out", str(out), "--size", "32", "--workers", "1"])
    rejected = pd.read_csv(out / "rejected.csv")
    reasons = {Path(f).name: r for f, r in zip(rejected.file, rejected.reason, strict=True)}
    assert set(reasons) == {"empty.jpg", "notes.txt", "broken.jpg", "black.png", "tiny.png"}
    assert "empty" in reasons["empty.jpg"] and "not a readable image" in reasons["notes.txt"]
    assert "all black" in reasons["black.png"] and "too small" in reasons["tiny.png"]

    images, names = kvasir.load_processed(out, "abnormal")
    assert names == sorted(
        ["deep.png", "gray.png", "rgba.png", "polyps-0000.png", "polyps-0001.png"]
    )
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    (out / "normal" / ".tmp-123-normal-cecum-0001.png").write_bytes(b"\x89PNG half")  # killed
    normal, _ = kvasir.load_processed(out, "normal")
    assert normal.shape == (4, 32, 32, 3)

    summary = pd.read_csv(out / "summary.csv")
    rows = {(g, s): n for g, s, n in summary.itertuples(index=False)}
    assert rows[("normal", "all")] == 4 and rows[("normal", "(160, 128)")] == 4
    assert rows[("abnormal", "(150, 120)")] == 3 and rows[("abnormal", "rejected")] == 5
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"samples.png", "augmentation.png"} <= figures
    assert sum(name.startswith("crop_steps_") for name in figures) == 6
    printed = capsys.readouterr().out
    assert "(160, 128): 4 images" in printed and "crop check (9 images)" in printed
    per_image = pd.read_csv(out / "images.csv")
    assert len(per_image) == 14 and per_image.bright_kept.min() > 0.95
    assert kvasir.is_synthetic(out)  # made from synthetic frames: every later step knows

    shutil.rmtree(out / "figures")  # figures are redrawn from the prepared folder alone
    prepare_kvasir.draw_figures(out)
    assert {p.name for p in (out / "figures").iterdir()} == figures

    written = out / "normal" / "normal-cecum-0000.png"
    stamp = written.stat().st_mtime_ns
    run(["--data-dir", str(tree), "--out", str(out), "--size", "32", "--workers", "1"])
    assert "9 done before, 5 to process" in capsys.readouterr().out
    assert written.stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "summary.csv").equals(summary)
    with pytest.raises(InputError, match="prepared with --size 32"):
        run(["--data-dir", str(tree), "--out", str(out), "--size", "48"])
    with pytest.raises(InputError, match="prepared with --method otsu, --dedup False"):
        run(["--data-dir", str(tree), "--out", str(out), "--size", "32", "--preset", "clean"])
    with pytest.raises(InputError, match="--normal-classes normal-z-line normal-cecum normal-py"):
        two = ["--normal-classes", "normal-z-line", "normal-cecum"]
        run(["--data-dir", str(tree), "--out", str(out), "--size", "32", *two])


def test_process_pool_matches_one_worker(tmp_path):
    root = write_synthetic_kvasir(tmp_path / "data", 2, seed=1, size=SIZE)
    files, _ = kvasir.source_table(root, ["normal-z-line", "normal-cecum"])
    one = kvasir_prepare.prepare(files, tmp_path / "one", 24, workers=1)
    pool = kvasir_prepare.prepare(files, tmp_path / "pool", 24, workers=2)
    assert one.equals(pool) and (one.status == "written").all()
    for name in ("normal/normal-cecum-0001.png", "abnormal/polyps-0000.png"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes()


def test_bad_data_dir_is_one_line_and_exit_2(tmp_path):
    command = [sys.executable, "-m", "apps.prepare_kvasir", "--out", str(tmp_path / "x")]
    failed = subprocess.run(
        command + ["--data-dir", str(tmp_path / "nowhere")], capture_output=True, text=True
    )
    assert failed.returncode == 2
    assert failed.stderr.strip().count("\n") == 0 and "--data-dir" in failed.stderr


def test_a_group_without_usable_images_stops_the_run(tmp_path):
    root = write_synthetic_kvasir(tmp_path / "data", 1, seed=2, size=SIZE)
    for image in (root / "polyps").iterdir():
        image.write_bytes(b"")
    out = tmp_path / "out"
    with pytest.raises(InputError, match="a group has no usable image"):
        run(["--data-dir", str(root), "--out", str(out), "--workers", "1"])
    assert pd.read_csv(out / "rejected.csv").reason.tolist() == ["empty file (0 bytes)"]


def write_frames(folder: Path, n: int, size: tuple[int, int], seed: int) -> list[Path]:
    """`n` synthetic JPEG frames of (width, height) `size` in `folder`, named after it."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        frame, _ = synthetic_frame(rng, size[1], size[0], "round", polyp=folder.name == "polyps")
        paths.append(folder / f"{folder.name}-{i:04d}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return paths


@pytest.fixture
def kaggle_tree(tmp_path) -> Path:
    """Kvasir v1 as kagglehub unpacks it (`kvasir-dataset/<class>/`), 8 classes cut to a few
    frames, plus a nested copy of polyps/ and one frame filed twice in normal-cecum/."""
    root = tmp_path / "versions" / "1"
    data = root / "kvasir-dataset"
    write_frames(data / "normal-z-line", 2, (160, 128), seed=0)
    cecum = write_frames(data / "normal-cecum", 2, (200, 160), seed=1)
    (data / "normal-cecum" / "normal-cecum-copy.jpg").write_bytes(cecum[0].read_bytes())
    write_frames(data / "normal-pylorus", 1, (160, 128), seed=2)
    for i, name in enumerate(["esophagitis", "dyed-lifted-polyps", "ulcerative-colitis"]):
        write_frames(data / name, 1, (160, 128), seed=3 + i)
    for polyp in write_frames(data / "polyps", 3, (160, 128), seed=9):
        nested = data / "kvasir-dataset" / "polyps" / polyp.name
        nested.parent.mkdir(parents=True, exist_ok=True)
        nested.write_bytes(polyp.read_bytes())
    return root


def test_presets_count_like_the_homework_or_drop_copies(kaggle_tree, tmp_path, capsys):
    """The homework preset counts the three normal classes and every file, the clean preset
    drops the byte-identical copy; a nested copy of a class folder is never read."""
    common = ["--data-dir", str(kaggle_tree), "--size", "32", "--workers", "1"]
    run([*common, "--out", str(tmp_path / "homework")])
    printed = capsys.readouterr().out
    header = (
        "preset homework: normal = normal-z-line + normal-cecum + normal-pylorus, polyp = "
        "polyps; crop otsu; byte-identical copies kept and counted, as the homework counted "
        "files\n"
        f"polyps: read {kaggle_tree / 'kvasir-dataset' / 'polyps'} (3 images), left out "
        f"{kaggle_tree / 'kvasir-dataset' / 'kvasir-dataset' / 'polyps'} (3 images)\n"
    )
    block = (
        "Total normal images: 6\n"
        "  (200, 160): 3 images\n"
        "  (160, 128): 3 images\n"
        "Total polyp images: 3\n"
        "  (160, 128): 3 images\n"
        "per class: normal-z-line 2, normal-cecum 3, normal-pylorus 1, polyps 3\n"
        "byte-identical copies: 1 (images.csv: duplicate_of), 1 kept and counted above, as "
        "the homework counted files\n"
    )
    assert printed.startswith(header) and block in printed
    homework = tmp_path / "homework"
    assert (homework / "summary.txt").read_text().startswith(header + block)
    config = json.loads((homework / "config.json").read_text())
    assert {k: config[k] for k in ("preset", "method", "dedup", "overrides")} == {
        "preset": "homework",
        "method": "otsu",
        "dedup": False,
        "overrides": [],
    }
    assert config["normal_classes"] == ["normal-z-line", "normal-cecum", "normal-pylorus"]
    assert len(list((homework / "normal").glob("*.png"))) == 6

    run([*common, "--out", str(tmp_path / "clean"), "--preset", "clean"])
    printed = capsys.readouterr().out
    assert "9 images: 1 left out as copies, 0 done before, 8 to process" in printed
    assert (
        "Total normal images: 5\n  (200, 160): 2 images\n  (160, 128): 3 images\n"
        "Total polyp images: 3\n  (160, 128): 3 images\n"
        "per class: normal-z-line 2, normal-cecum 2, normal-pylorus 1, polyps 3\n"
        "byte-identical copies: 1 (images.csv: duplicate_of), 1 dropped\n"
    ) in printed
    records = pd.read_csv(tmp_path / "clean" / "images.csv").set_index("file")
    copy = str(kaggle_tree / "kvasir-dataset" / "normal-cecum" / "normal-cecum-copy.jpg")
    assert records.loc[copy, "status"] == "duplicate"
    assert records.loc[copy, "duplicate_of"].endswith("normal-cecum-0000.jpg")
    assert not (tmp_path / "clean" / "normal" / "normal-cecum-copy.png").exists()
    summary = pd.read_csv(tmp_path / "clean" / "summary.csv").set_index(["group", "size"])
    assert summary.images["normal", "all"] == 5 and summary.images["normal", "copies"] == 1
    config = json.loads((tmp_path / "clean" / "config.json").read_text())
    assert (config["preset"], config["method"], config["dedup"]) == ("clean", "robust", True)


def test_flags_over_the_preset_are_used_and_recorded():
    args = prepare_kvasir.parser().parse_args(["--preset", "clean", "--method", "otsu"])
    choices = prepare_kvasir.resolve_choices(args)
    assert choices == kvasir.Preset(kvasir.NORMAL_CLASSES, "otsu", dedup=True)
    assert (args.method, args.dedup, args.overrides) == ("otsu", True, ["method"])
    args = prepare_kvasir.parser().parse_args(["--no-dedup", "--normal-classes", "polyps"])
    choices = prepare_kvasir.resolve_choices(args)
    assert choices == kvasir.Preset(("polyps",), "otsu", dedup=False)
    assert args.overrides == ["dedup", "normal_classes"] and args.normal_classes == ["polyps"]
