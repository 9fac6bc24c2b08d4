"""Every numbered notebook executes headlessly under papermill with its QUICK parameters, writes the
metrics its last cell records (keys and value ranges checked per notebook) and every figure and table
its source names."""
import json
import math
import re

import nbformat
import pytest

from visrc.reproduce import QUICK_PARAMETERS, execute, notebooks

NOTEBOOKS = notebooks()
TABLE_METRICS = ("AP", "AP50", "AP75", "AR1", "AR10")


def declared_outputs(nb) -> set[str]:
    """File names the notebook's code says it writes under figures/: ``savefig(fig, "x")`` -> x.png,
    ``savetable(t, "x")`` -> x.csv and x.md, a plotting call's ``name="x"`` -> x.png."""
    code = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code")
    names = {f"{n}.png" for n in re.findall(r'savefig\([^\n]*?"([A-Za-z0-9_.-]+)"\)', code)}
    names |= {f"{n}.png" for n in re.findall(r'\bname="([A-Za-z0-9_.-]+)"', code)}
    for n in re.findall(r'savetable\([^\n]*?"([A-Za-z0-9_.-]+)"\)', code):
        names |= {f"{n}.csv", f"{n}.md"}
    return names


def _unit(x) -> bool:
    return isinstance(x, (int, float)) and 0.0 <= x <= 1.0


def _check_runs(runs, rows, seeds=(0,)):
    """``runs``: one ``{"row", "seed", <table metrics>}`` per row and seed, every metric in [0, 1]."""
    assert sorted((r["row"], r["seed"]) for r in runs) == sorted((row, s) for row in rows for s in seeds)
    for r in runs:
        assert set(r) == {"row", "seed", *TABLE_METRICS}, r
        assert all(_unit(r[k]) for k in TABLE_METRICS), r


def _check_01(m, toy):
    assert set(m) == {"data", "mean_iou", "median_iou", "n_above", "n_measured", "n_objects", "n_unmeasured",
                      "n_videos", "share_above", "threshold"}
    assert m["data"] == "toy:small/train" and m["threshold"] == 0.8
    assert m["n_objects"] == len(toy["train"]["annotations"])
    assert 0 < m["n_measured"] == m["n_objects"] - m["n_unmeasured"]
    assert 0 < m["n_videos"] <= len(toy["train"]["videos"])
    assert 0 <= m["n_above"] <= m["n_measured"] and math.isclose(m["share_above"], m["n_above"] / m["n_measured"])
    assert _unit(m["mean_iou"]) and _unit(m["median_iou"])


def _check_02(m, toy):
    q = QUICK_PARAMETERS["02_frame_sampling"]
    assert set(m) == {"runs", "schedules", "data"} and m["data"] == "toy:small" and m["schedules"] == q["schedules"]
    frames = ["all" if n is None else n for n in q["frames_per_video"]]
    assert sorted((r["schedule"], str(r["frames"]), r["seed"]) for r in m["runs"]) == \
        sorted((s, str(n), 0) for s in q["schedules"] for n in frames)
    for r in m["runs"]:
        assert set(r) == {"schedule", "frames", "seed", *TABLE_METRICS} and all(_unit(r[k]) for k in TABLE_METRICS)


def _check_03(m, toy):
    from visrc.experiments.table1 import TABLE1_ROWS, TRACKER_GRID

    assert set(m) == {"runs", "seeds", "tracker", "merge_iou_thr", "tracker_sensitivity", "data"}
    assert m["data"] == "toy:small" and m["seeds"] == [0] and m["merge_iou_thr"] == 0.5
    rows = [row for row, _ in TABLE1_ROWS]
    _check_runs(m["runs"], rows + [rows[-1] + "+BiTrack"])
    grid = [list(p) for p in TRACKER_GRID]
    assert [m["tracker"]["init_score_thr"], m["tracker"]["obj_score_thr"]] in grid
    sens = m["tracker_sensitivity"]
    assert sorted((r["row"], r["init_score_thr"], r["obj_score_thr"]) for r in sens) == \
        sorted((row, *p) for row in rows for p in TRACKER_GRID)
    assert all(_unit(r["AP"]) for r in sens)
    best = max(r["AP"] for r in sens if r["row"] == rows[0])      # the tracker is the baseline row's best
    assert [r["AP"] for r in sens if r["row"] == rows[0] and r["init_score_thr"] == m["tracker"]["init_score_thr"]
            and r["obj_score_thr"] == m["tracker"]["obj_score_thr"]] == [best]
    baseline = next(r for r in m["runs"] if r["row"] == rows[0])
    assert baseline["AP"] == best                                  # tracked with the chosen thresholds


def _check_04(m, toy):
    assert set(m) == {"runs", "seeds", "scales", "iou_thr", "refine", "models", "data"}
    assert m["data"] == "toy:small" and m["scales"] == QUICK_PARAMETERS["04_ensemble"]["scales"]
    assert m["models"] == [["A", "toy_baseline"], ["B", "toy_swin"]] and m["refine"] is True
    _check_runs(m["runs"], ["A", "B", "Ensemble (A, B)", "A multi-scale", "B multi-scale",
                            "Ensemble (A, B) multi-scale"])


def _check_05(m, toy):
    assert set(m) == {"runs", "pseudo_labels", "seeds", "scales", "pseudo_tracker", "models", "retrain", "data"}
    assert m["data"] == "toy:small" and m["retrain"]["epochs"] == 1 and m["retrain"]["control"] is True
    _check_runs(m["runs"], ["A", "B", "Ensemble (A, B)", "A + fine-tune, no pseudo (control)",
                            "B + fine-tune, no pseudo (control)", "A + pseudo", "B + pseudo",
                            "Ensemble (A, B, A+P, B+P)"])
    (pl,) = m["pseudo_labels"]
    assert pl["seed"] == 0 and pl["gt_boxes"] == sum(b is not None for a in toy["valid"]["annotations"]
                                                     for b in a["bboxes"])
    assert pl["boxes_in"] > 0 and pl["boxes_in_above_thr"] == pl["boxes_in"]      # pseudo_score_thr=0: all pass
    # the quick pseudo tracker starts tracks at 0.05, so the one-epoch ensemble's boxes become pseudo labels
    assert 0 < pl["tracks_kept"] <= pl["boxes_kept"] <= pl["boxes_in"]           # pseudo_min_track_len=1
    assert m["pseudo_tracker"] == {"init_score_thr": 0.05, "obj_score_thr": 0.05}
    assert 0 <= pl["true_positives"] <= min(pl["boxes_kept"], pl["gt_boxes"])
    assert math.isclose(pl["gt_recall"], pl["true_positives"] / pl["gt_boxes"])
    if pl["boxes_kept"]:
        assert 0 <= pl["precision"] <= pl["precision_agnostic"] <= 1
        assert math.isclose(pl["precision"], pl["true_positives"] / pl["boxes_kept"])
    else:
        assert math.isnan(pl["precision"]) and math.isnan(pl["precision_agnostic"])


def _check_06(m, toy):
    from visrc.evaluation.ytvis_eval import SUMMARY_KEYS

    assert set(m) == {"source", "merge_iou_thr", "min_valid_frames", "example_video", "gt_noisy"} | \
        {f"{mode}_{k}" for mode in ("forward", "bitrack") for k in SUMMARY_KEYS}
    assert m["source"] == "gt_noisy" and m["merge_iou_thr"] == 0.5 and m["min_valid_frames"] == 1
    assert set(m["gt_noisy"]) == {"emb_noise", "label_flip", "box_jitter", "miss_rate", "duplicate_rate"}
    assert m["example_video"] in {v["id"] for v in toy["valid"]["videos"]}
    assert all(v == -1.0 or _unit(v) for k, v in m.items() if k.startswith(("forward_", "bitrack_")))
    assert all(0 < m[f"{mode}_AP"] <= 1 for mode in ("forward", "bitrack"))      # detections from the GT


CHECKS = {"01_overlap_histogram": _check_01, "02_frame_sampling": _check_02, "03_ablation": _check_03,
          "04_ensemble": _check_04, "05_pseudo_label": _check_05, "06_bitrack_explorer": _check_06}


def test_there_are_notebooks():
    assert [nb.stem for nb in NOTEBOOKS][:1] == ["01_overlap_histogram"]
    assert set(CHECKS) == {nb.stem for nb in NOTEBOOKS} == set(QUICK_PARAMETERS)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_declares_its_outputs(nb):
    """The names the quick run checks for; a notebook without any would pass that check vacuously."""
    declared = declared_outputs(nb)
    assert any(n.endswith(".png") for n in declared), declared
    code = nbformat.read(nb, as_version=4).cells[-1].source
    assert f'record_metrics("{nb.stem}"' in code          # metrics under the notebook's own name


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
    metrics.pop("numerics", None)      # the kernel's numeric environment: record_metrics adds it to every notebook's
    toy_dir = tmp_path / "runs" / "data" / "toy_small_seed0"          # the quick parameters' toy benchmark
    toy = {split: json.loads((toy_dir / split / "instances.json").read_text()) for split in ("train", "valid")}
    CHECKS[nb.stem](metrics, toy)
    declared = declared_outputs(nb)
    assert any(n.endswith(".png") for n in declared), "every notebook draws at least one figure"
    missing = sorted(n for n in declared if not (figures / n).is_file())
    assert not missing, f"declared but not written: {missing}"


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
