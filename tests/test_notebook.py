"""The Colab notebook runs headless, end to end, in its tiny SMOKE mode on offline demo data."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


def load(**parameters: object) -> nbformat.NotebookNode:
    """The notebook with the assignments of its "parameters" cell rewritten."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    for name, value in parameters.items():
        cell.source, count = re.subn(
            rf"^{name} = .*$", f"{name} = {value!r}", cell.source, flags=re.MULTILINE
        )
        assert count == 1, f"no parameter {name} in the notebook"
    return notebook


def execute(notebook: nbformat.NotebookNode) -> None:
    """Run every cell in a fresh kernel from the repository root; a failing cell raises."""
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()


def test_notebook_runs_every_step_in_smoke_mode(tmp_path):
    notebook = load(SMOKE=True, DEMO=True, INSTALL=False, OUT_ROOT=str(tmp_path))
    execute(notebook)

    for run in ("classifier", "pixelda", "kvasir", "endovae"):
        assert (tmp_path / run / "config.json").is_file(), run
        assert list((tmp_path / run / "figures").glob("*.png")), run
    for run in ("classifier", "pixelda", "endovae"):
        assert "Demo data" in (tmp_path / run / "report.md").read_text(), run
        assert (tmp_path / run / "metrics.csv").is_file(), run
    for figure in ("pixelda/figures/samples.png", "endovae/figures/generated.png"):
        assert (tmp_path / figure).stat().st_size > 1_000, figure
    outputs = [o.get("data", {}) for c in notebook.cells for o in c.get("outputs", [])]
    assert any("image/png" in data for data in outputs)
    assert sum("text/markdown" in data for data in outputs) >= 3  # the reports


def test_a_failing_command_stops_the_notebook(tmp_path):
    notebook = load(INSTALL=False, OUT_ROOT=str(tmp_path))
    defines_run = next(i for i, c in enumerate(notebook.cells) if "def run(" in c.source)
    notebook.cells = [
        *notebook.cells[: defines_run + 1],
        nbformat.v4.new_code_cell('run("python -m apps.make_figures --run nowhere")'),
        nbformat.v4.new_code_cell('print("not reached")'),
    ]
    with pytest.raises(CellExecutionError, match="CalledProcessError"):
        execute(notebook)
    shown = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "error: --run nowhere" in shown and "not reached" not in shown
