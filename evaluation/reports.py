"""Tables and Markdown reports of a run folder."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd

from preprocessing.files import read_json, write_text

HTML_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 8px}}
img{{max-width:100%}}blockquote{{background:#fff3cd;margin:0;padding:.5em 1em}}</style>
</head><body>
{body}
</body></html>
"""


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


def settings_section(preset: str, values: dict) -> tuple[str, str]:
    """The report section naming a run's preset and every value it trained with."""
    rows = pd.DataFrame({"setting": list(values), "value": [str(v) for v in values.values()]})
    return "Settings", f"Preset `{preset}` (docs/fidelity.md lists each homework detail).\n\n" + (
        markdown_table(rows)
    )


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]], demo: bool) -> None:
    """`report.md`: a title, a demo-data warning where it applies, the Keras backend the run
    trained on (its config.json's), then (heading, body) sections."""
    parts = [f"# {title}"]
    config = Path(path).with_name("config.json")
    backend = read_json(config).get("backend", "tensorflow") if config.exists() else None
    if backend:
        parts.append(f"Trained on the Keras `{backend}` backend.")
    if demo:
        parts.append(
            "> **Demo data.** These numbers come from the offline demo data that the project "
            "generates, not from the real data sets; they show that the pipeline runs, "
            "nothing more."
        )
    parts += [f"## {heading}\n\n{body}" for heading, body in sections]
    write_text(path, "\n\n".join(parts) + "\n")


def markdown_to_html(text: str, root: str | Path) -> str:
    """A self-contained HTML page of a Markdown report: images under `root` are embedded."""
    import markdown

    def embed(match: re.Match) -> str:
        path = Path(root) / match.group(1)
        if not path.is_file():
            return match.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = markdown.markdown(text, extensions=["tables"])
    title = text.splitlines()[0].lstrip("# ") if text else "report"
    return HTML_PAGE.format(title=title, body=re.sub(r'src="([^"]+\.png)"', embed, body))
