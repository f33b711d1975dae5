"""The Colab notebook runs headless, end to end, in its tiny SMOKE mode on offline demo data."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colab.ipynb"


def set_parameters(notebook: nbformat.NotebookNode, **values: object) -> None:
    """Rewrite the assignments of the cell tagged "parameters"; each name must be there."""
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    for name, value in values.items():
        cell.source, count = re.subn(
            rf"^{name} = .*$", f"{name} = {value!r}", cell.source, flags=re.MULTILINE
        )
        assert count == 1, f"no parameter {name} in the notebook"


def test_notebook_runs_every_step_in_smoke_mode(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    set_parameters(notebook, SMOKE=True, DEMO=True, INSTALL=False, OUT_ROOT=str(tmp_path))
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError, with the cell's output, if a command fails

    for run in ("classifier", "pixelda", "kvasir", "endovae"):
        assert (tmp_path / run / "config.json").is_file(), run
        assert list((tmp_path / run / "figures").glob("*.png")), run
    for run in ("classifier", "pixelda", "endovae"):
        assert "Demo data" in (tmp_path / run / "report.md").read_text(), run
        assert (tmp_path / run / "metrics.csv").is_file(), run
    for figure in ("pixelda/figures/samples.png", "endovae/figures/generated.png"):
        assert (tmp_path / figure).stat().st_size > 1_000, figure
    shown = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(shown) == 2
