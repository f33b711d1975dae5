"""Kvasir layout, summary table, prepare_kvasir on a tiny tree with bad files, reruns."""

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from apps import prepare_kvasir
from preprocessing import kvasir
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
    folders = kvasir.find_class_folders(tree, ["polyps", "normal-cecum"])
    assert folders["polyps"] == tree / "kvasir-dataset" / "polyps"
    features = tree / "kvasir-dataset-features" / "polyps"  # as in Kvasir v2's download
    features.mkdir(parents=True)
    for i in range(12):
        (features / f"polyps-{i:04d}.features").write_text("JCD 0.1 0.2\n")
    assert kvasir.find_class_folders(tree, ["polyps"])["polyps"].parent.name == "kvasir-dataset"
    with pytest.raises(InputError, match="normal-pylorus"):
        kvasir.find_class_folders(tree, ["normal-pylorus"])
    with pytest.raises(InputError, match="--data-dir"):
        kvasir.find_class_folders(tree / "missing", ["polyps"])


def test_source_table_groups(tree):
    table = kvasir.source_table(tree)
    assert table.groupby("group").size().to_dict() == {"normal": 4, "abnormal": 10}
    assert set(table["class"]) == {"normal-z-line", "normal-cecum", "polyps"}


def test_size_summary_like_the_homework():
    records = pd.DataFrame(
        {
            "group": ["normal"] * 3 + ["abnormal"] * 2,
            "width": [720, 720, 1280, 720, 720],
            "height": [576, 576, 1024, 576, 576],
        }
    )
    summary = kvasir.size_summary(records)
    assert summary.values.tolist() == [
        ["normal", "all", 3],
        ["normal", "(720, 576)", 2],
        ["normal", "(1280, 1024)", 1],
        ["abnormal", "all", 2],
        ["abnormal", "(720, 576)", 2],
    ]
    text = kvasir.format_summary(summary)
    assert "normal: 3 images\n  (720, 576): 2 images\n  (1280, 1024): 1 images" in text


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
    with pytest.raises(InputError, match="prepared with --method robust"):
        run(["--data-dir", str(tree), "--out", str(out), "--size", "32", "--method", "otsu"])


def test_process_pool_matches_one_worker(tmp_path):
    root = write_synthetic_kvasir(tmp_path / "data", 2, seed=1, size=SIZE)
    files = kvasir.source_table(root)
    one = prepare_kvasir.prepare(files, tmp_path / "one", 24, workers=1)
    pool = prepare_kvasir.prepare(files, tmp_path / "pool", 24, workers=2)
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
