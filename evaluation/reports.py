"""Tables and Markdown reports of a run folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from preprocessing.files import write_text


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table (floats rounded to `digits`)."""

    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]], demo: bool) -> None:
    """`report.md`: a title, a demo-data warning where it applies, then (heading, body) sections."""
    parts = [f"# {title}"]
    if demo:
        parts.append(
            "> **Demo data.** These numbers come from the offline demo data that the project "
            "generates, not from the real data sets; they show that the pipeline runs, "
            "nothing more."
        )
    parts += [f"## {heading}\n\n{body}" for heading, body in sections]
    write_text(path, "\n\n".join(parts) + "\n")
