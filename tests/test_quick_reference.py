"""Numbers do not drift: the quick notebooks' metrics equal the committed reference, exactly.

``tests/reference/quick_metrics/<cpu slug>/<name>_metrics.json`` holds each notebook's quick-mode
metrics on one CPU model (pinned numbers repeat on a CPU model, not across models), less
their volatile entries (:func:`visrc.reproduce.strip_volatile`). The comparison reuses the metrics
that ``tests/test_notebooks.py`` produced earlier in the same session (its per-test ``figures/``
directories); run alone, it executes the quick notebooks itself. Refresh the reference after a
change that is meant to move the numbers::

    VISRC_RUNS_DIR=$(mktemp -d) VISRC_FIGURES_DIR=$(mktemp -d) \\
        .venv/bin/python -m visrc reproduce --quick --update-reference tests/reference/quick_metrics
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from visrc import numerics, reproduce

REFERENCE_ROOT = Path(__file__).resolve().parent / "reference" / "quick_metrics"
REFERENCE = reproduce.reference_for_this_cpu(REFERENCE_ROOT)


def _metrics_of_this_session(tmp_path_factory) -> dict[str, Path]:
    """notebook -> the metrics file tests/test_notebooks.py wrote in this session (if it ran)."""
    base = tmp_path_factory.getbasetemp()
    return {f.name[:-len("_metrics.json")]: f
            for f in sorted(base.glob("test_notebook_executes_quick*/figures/*_metrics.json"))}


def test_quick_metrics_match_the_reference(tmp_path_factory, tmp_path, monkeypatch):
    refs = sorted(REFERENCE.glob("*_metrics.json"))
    if not refs:
        known = sorted(p.name for p in REFERENCE_ROOT.iterdir() if p.is_dir()) if REFERENCE_ROOT.is_dir() else []
        pytest.skip(f"no reference for this CPU ({numerics.cpu_model()!r}) in {REFERENCE}; references exist for "
                    f"{known}; write one with `VISRC_RUNS_DIR=$(mktemp -d) VISRC_FIGURES_DIR=$(mktemp -d) "
                    f"visrc reproduce --quick --update-reference tests/reference/quick_metrics`")
    if numerics.mode() != "pinned":
        pytest.skip("VISRC_NUMERICS=native: the reference holds pinned numbers")
    found = _metrics_of_this_session(tmp_path_factory)
    if not found:                                    # the notebook tests did not run in this session
        monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
        monkeypatch.setenv("VISRC_FIGURES_DIR", str(tmp_path / "figures"))
        for nb in reproduce.notebooks():             # in order: 05 after the 04 it reads
            reproduce.execute(nb, quick=True, out_dir=tmp_path / "executed")
        found = {nb.stem: tmp_path / "figures" / f"{nb.stem}_metrics.json" for nb in reproduce.notebooks()}
    names = {f.name[:-len("_metrics.json")] for f in refs}
    compared, problems = [], []
    for name in sorted(names | set(found)):
        ref = REFERENCE / f"{name}_metrics.json"
        if name not in found:
            continue                                  # its notebook test failed or was deselected
        if not ref.is_file():
            problems.append(f"{name}: no reference (refresh tests/reference/quick_metrics)")
            continue
        diffs = reproduce.compare_metrics(json.loads(found[name].read_text()), json.loads(ref.read_text()))
        problems += [f"{name}: {d}" for d in diffs]
        compared.append(name)
    assert compared, "no notebook metrics to compare"
    assert not problems, (f"quick metrics drifted from {REFERENCE} (refresh it only if the "
                          "change is meant to move the numbers):\n" + "\n".join(problems[:40]))


# ---------------------------------------------------------------- the comparison itself
def _doc(**over):
    doc = {"data": "toy:small", "runs": [{"AP": 0.25, "AP50": 0.5, "row": "A", "seed": 0},
                                         {"AP": 0.125, "AP50": float("nan"), "row": "B", "seed": 0}],
           "pseudo_labels": [{"precision": 0.75, "pseudo_json": "/tmp/x/runs/pseudo.json"}],
           "train_seconds": 12.5, "refine": True,
           "numerics": {"mode": "pinned", "torch": "2.13.0+cpu", "cpu_capability": "AVX2", "cpu": "AMD EPYC",
                        "torch_threads": 1, "missing": [], "variables": dict(numerics.PINNED)}}
    doc.update(over)
    return doc


def test_compare_ignores_volatile_entries_only():
    a = _doc()
    b = _doc(train_seconds=99.0, pseudo_labels=[{"precision": 0.75, "pseudo_json": "/home/ci/runs/other.json"}])
    b["numerics"] = dict(a["numerics"], cpu="Intel(R) Xeon(R)")
    assert reproduce.compare_metrics(a, b) == []             # timings, paths, the CPU's name
    assert reproduce.compare_metrics(a, a) == []             # NaN equals NaN
    stripped = reproduce.strip_volatile(a)
    assert "train_seconds" not in stripped and "cpu" not in stripped["numerics"]
    assert stripped["pseudo_labels"] == [{"precision": 0.75}]
    assert stripped["runs"] == a["runs"] and a["train_seconds"] == 12.5    # the input is not modified


def test_compare_reports_every_difference_exactly():
    a = _doc()
    one_ulp = math.nextafter(0.25, 1.0)
    b = _doc(runs=[{"AP": one_ulp, "AP50": 0.5, "row": "A", "seed": 0},
                   {"AP": 0.125, "AP50": 0.0, "row": "B", "seed": 0}], refine=1, extra=3)
    b["numerics"] = dict(a["numerics"], cpu_capability="AVX512", torch_threads=2)
    del b["data"]
    diffs = reproduce.compare_metrics(a, b)
    assert diffs == [
        "data: not in the reference ('toy:small')",
        "extra: missing (reference 3)",
        "numerics.cpu_capability: 'AVX2' != reference 'AVX512'",
        "numerics.torch_threads: 1 != reference 2",
        "refine: True != reference 1",
        f"runs[0].AP: 0.25 != reference {one_ulp!r}",
        "runs[1].AP50: nan != reference 0.0",
    ]
    assert reproduce.compare_metrics({"runs": [1, 2]}, {"runs": [1]}) == ["runs: 2 entries != reference 1"]
    assert reproduce.compare_metrics({"n": 2}, {"n": 2.0}) == []          # JSON numbers, compared by value
    assert reproduce.compare_metrics({"v": [1]}, {"v": {"a": 1}}) == ["v: [1] != reference {'a': 1}"]


def test_update_then_check_reference_round_trip(tmp_path, monkeypatch):
    figures, ref = tmp_path / "figures", tmp_path / "ref"
    monkeypatch.setenv("VISRC_FIGURES_DIR", str(figures))
    figures.mkdir()
    (figures / "01_a_metrics.json").write_text(json.dumps(_doc()))
    (figures / "02_b_metrics.json").write_text(json.dumps({"AP": 0.5, "numerics": _doc()["numerics"]}))
    written = reproduce.update_reference(ref, ["01_a", "02_b"])
    assert [p.name for p in written] == ["01_a_metrics.json", "02_b_metrics.json"]
    saved = json.loads((ref / "01_a_metrics.json").read_text())
    assert "train_seconds" not in saved and "cpu" not in saved["numerics"]     # committed without volatiles
    assert reproduce.check_reference(ref, ["01_a", "02_b"]) == {}
    (figures / "02_b_metrics.json").write_text(json.dumps({"AP": 0.25, "numerics": _doc()["numerics"]}))
    assert reproduce.check_reference(ref, ["01_a", "02_b", "03_c"]) == {
        "02_b": ["AP: 0.25 != reference 0.5"],
        "03_c": [f"no reference {ref / '03_c_metrics.json'}"]}
    with pytest.raises(FileNotFoundError, match="--update-reference"):
        reproduce.check_reference(tmp_path / "nowhere", ["01_a"])


def test_reproduce_cli_check_and_update(tmp_path, monkeypatch):
    """``visrc reproduce --check-reference`` exits 1 on a drift, 0 on a match; native numerics and a
    missing directory are refused before any notebook runs."""
    figures, ref = tmp_path / "figures", tmp_path / "ref"
    monkeypatch.setenv("VISRC_FIGURES_DIR", str(figures))
    figures.mkdir()
    values = iter([0.5, 0.5, 0.25])

    def fake_execute(nb, quick=False, log_output=False, **kw):
        (figures / f"{nb.stem}_metrics.json").write_text(json.dumps({"AP": next(values), "wall_seconds": 3.0}))
        return tmp_path / nb.name

    monkeypatch.setattr(reproduce, "notebooks", lambda: [tmp_path / "01_a.ipynb"])
    monkeypatch.setattr(reproduce, "execute", fake_execute)
    args = dict(only=None, quick=True, quiet=True, param=[], check_reference=None, update_reference=None)
    monkeypatch.setattr(numerics, "cpu_model", lambda: "AMD EPYC 7B13 64-Core Processor")
    assert reproduce.run(SimpleNamespace(**dict(args, update_reference=str(ref)))) == 0
    folder = f"amd-epyc-7b13-64-core-processor-{numerics.KERNELS}"              # one per CPU model and kernels
    assert [p.name for p in ref.iterdir()] == [folder]
    assert json.loads((ref / folder / "01_a_metrics.json").read_text()) == {"AP": 0.5}
    assert reproduce.run(SimpleNamespace(**dict(args, check_reference=str(ref)))) == 0
    assert reproduce.run(SimpleNamespace(**dict(args, check_reference=str(ref)))) == 1
    monkeypatch.setattr(numerics, "cpu_model", lambda: "Intel(R) Xeon(R) Processor")   # another CPU: no reference
    with pytest.raises(SystemExit, match=f"intel-xeon-processor-{numerics.KERNELS}: no such directory"):
        reproduce.run(SimpleNamespace(**dict(args, check_reference=str(ref))))
    with pytest.raises(SystemExit, match="no such directory"):
        reproduce.run(SimpleNamespace(**dict(args, check_reference=str(tmp_path / "nowhere"))))
    monkeypatch.setenv("VISRC_NUMERICS", "native")
    with pytest.raises(SystemExit, match="pinned numerics"):
        reproduce.run(SimpleNamespace(**dict(args, check_reference=str(ref))))


def test_kernels_start_with_the_pinned_environment(monkeypatch):
    """Side-by-side notebooks all see the pinned environment while any of them runs; the caller's is
    restored after the last one."""
    monkeypatch.delenv("VISRC_NUMERICS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    with reproduce.kernel_environment():
        with reproduce.kernel_environment():
            assert os.environ["OMP_NUM_THREADS"] == "1"
        assert os.environ["ATEN_CPU_CAPABILITY"] == numerics.PINNED["ATEN_CPU_CAPABILITY"]   # one notebook still runs
    assert os.environ["OMP_NUM_THREADS"] == "7" and "ATEN_CPU_CAPABILITY" not in os.environ
    monkeypatch.setenv("VISRC_NUMERICS", "native")
    with reproduce.kernel_environment():
        assert os.environ["OMP_NUM_THREADS"] == "7"
