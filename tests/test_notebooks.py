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


def test_reproduce_runs_side_by_side_and_respects_needs(monkeypatch, tmp_path):
    import threading
    import time
    from types import SimpleNamespace

    from visrc import reproduce

    events, lock = [], threading.Lock()

    def fake_execute(nb, quick=False, log_output=False, **kw):
        with lock:
            events.append(("start", nb.stem))
        time.sleep(0.2)
        if nb.stem == "03_fails":
            raise RuntimeError("cell 3 failed")
        with lock:
            events.append(("end", nb.stem))
        return tmp_path / nb.name

    names = ["01_a", "03_fails", "04_ensemble", "05_pseudo_label"]
    monkeypatch.setattr(reproduce, "notebooks", lambda: [tmp_path / f"{n}.ipynb" for n in names])
    monkeypatch.setattr(reproduce, "execute", fake_execute)
    rc = reproduce.run(SimpleNamespace(only=None, quick=True, quiet=True))
    assert rc == 1                                            # one notebook failed
    starts = [e for e in events if e[0] == "start"]
    assert {s[1] for s in starts[:3]} == {"01_a", "03_fails", "04_ensemble"}   # side by side
    assert events.index(("end", "04_ensemble")) < events.index(("start", "05_pseudo_label"))


def test_reproduce_param_parsing():
    import pytest as _pytest

    from visrc.reproduce import parse_params

    assert parse_params(["seeds=[0,1,2]", "toy_preset=small", "x=0.5"]) == {"seeds": [0, 1, 2], "toy_preset": "small",
                                                                           "x": 0.5}
    with _pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_params(["seeds"])
