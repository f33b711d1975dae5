"""What `prepare_kvasir` prints and keeps: the homework's (width, height) summary, the
copies, the rejections and the crop check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preprocessing.kvasir import GROUPS
from preprocessing.kvasir_prepare import USABLE

GROUP_WORDS = {"normal": "normal", "abnormal": "polyp"}  # as the homework's summary words them


def size_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Images per group, and per group the count of each (width, height), largest first.

    `records` has columns group, width, height (one row per usable image).
    """
    rows = []
    for group in GROUPS:
        part = records[records["group"] == group].astype({"width": int, "height": int})
        rows.append({"group": group, "size": "all", "images": len(part)})
        counts = part.groupby(["width", "height"]).size().sort_index(ascending=False)
        rows += [
            {"group": group, "size": f"({w}, {h})", "images": int(n)}
            for (w, h), n in counts.items()
        ]
    return pd.DataFrame(rows, columns=["group", "size", "images"])


def format_summary(summary: pd.DataFrame) -> str:
    """The homework's printout: "Total normal images: 1500", then "  (720, 576): 592 images"
    lines; then the polyps. Rows other than "all" and sizes (e.g. "rejected") are not shown."""
    lines = []
    for group in GROUPS:
        part = summary[summary["group"] == group]
        total = part.loc[part["size"] == "all", "images"].sum()
        lines.append(f"Total {GROUP_WORDS[group]} images: {total}")
        sizes = part[part["size"].str.startswith("(")]
        lines += [f"  {r.size}: {r.images} images" for r in sizes.itertuples()]
    return "\n".join(lines)


def summary_table(records: pd.DataFrame) -> pd.DataFrame:
    """`size_summary` of the usable images, then per group the rejected images and the
    byte-identical copies of other files (`records`: one row per source file)."""
    usable = records[records.status.isin(USABLE)]
    extra_rows = [
        {"group": g, "size": size, "images": (part.group == g).sum()}
        for size, part in (
            ("rejected", records[records.status == "rejected"]),
            ("copies", records[records.duplicate_of.notna()]),
        )
        for g in GROUPS
    ]
    return pd.concat([size_summary(usable), pd.DataFrame(extra_rows)])


def summary_lines(records: pd.DataFrame, rejected_file: Path) -> list[str]:
    """The homework's summary, images per class, copies, rejections (listed in
    `rejected_file`) and the crop check, one line each (the summary takes several)."""
    usable = records[records.status.isin(USABLE)]
    per_class = usable.groupby("class", sort=False).size()
    return [
        format_summary(size_summary(usable)),
        "per class: " + ", ".join(f"{name} {n}" for name, n in per_class.items()),
        copies_line(records[records.duplicate_of.notna()]),
        f"rejected: {(records.status == 'rejected').sum()} (see {rejected_file})",
        crop_check(records[records.status == "written"]),
    ]


def copies_line(copies: pd.DataFrame) -> str:
    """What became of the byte-identical copies of other files (see images.csv duplicate_of)."""
    if copies.empty:
        return "byte-identical copies: none"
    dropped = (copies.status == "duplicate").sum()
    kept = copies.status.isin(USABLE).sum()
    line = f"byte-identical copies: {len(copies)} (images.csv: duplicate_of)"
    if dropped:
        line += f", {dropped} dropped"
    if kept:
        line += f", {kept} kept and counted above, as the homework counted files"
    return line


def crop_check(written: pd.DataFrame) -> str:
    """One line on the crops of this run (see `crop_quality`; per image in images.csv)."""
    if written.empty:
        return "crop check: no image processed in this run"
    kept = written.bright_kept
    return (
        f"crop check ({len(written)} images): bright pixels kept by the box: mean {kept.mean():.1%}"
        f", min {kept.min():.1%}, {(kept < 0.9).sum()} images below 90%; near-black pixels "
        f"along the box edges: {written.edge_black.mean():.1%}"
    )
