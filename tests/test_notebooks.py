"""Every numbered notebook executes headlessly under papermill with its QUICK parameters."""
import json

import nbformat
import pytest

from visrc.reproduce import execute, notebooks

NOTEBOOKS = notebooks()


def test_there_are_notebooks():
    assert [nb.stem for nb in NOTEBOOKS][:1] == ["01_overlap_histogram"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_is_thin(nb):
    cells = nbformat.read(nb, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.source.splitlines()), \
        "helpers belong in visrc, not in notebooks"
    assert "record_metrics" in code[-1].source


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_executes_quick(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    figures = tmp_path / "figures"
    monkeypatch.setenv("VISRC_FIGURES_DIR", str(figures))
    out = execute(nb, quick=True, out_dir=tmp_path / "executed")
    assert out.is_file()
    metrics = json.loads((figures / f"{nb.stem}_metrics.json").read_text())
    assert metrics
    assert list(figures.glob("*.png")), "every notebook draws at least one figure"
