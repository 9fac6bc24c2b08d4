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


INTERVAL = ("AP_low", "AP_high", "AP_boot_std")


def _check_interval(r):
    """A row's bootstrap columns over videos: an interval within [0, 1] and a spread."""
    assert _unit(r["AP_low"]) and _unit(r["AP_high"]) and r["AP_low"] <= r["AP_high"], r
    assert 0 <= r["AP_boot_std"] <= 1, r


def _check_runs(runs, rows, seeds=(0,), extra=()):
    """``runs``: one ``{"row", "seed", <table metrics>, <interval>, *extra}`` per row and seed (``extra``:
    keys some rows carry), every metric in [0, 1]."""
    assert sorted((r["row"], r["seed"]) for r in runs) == sorted((row, s) for row in rows for s in seeds)
    for r in runs:
        assert {"row", "seed", *TABLE_METRICS, *INTERVAL} <= set(r) <= {"row", "seed", *TABLE_METRICS, *INTERVAL,
                                                                       *extra}, r
        assert all(_unit(r[k]) for k in TABLE_METRICS), r
        _check_interval(r)


def _check_01(m, toy):
    assert set(m) == {"data", "mean_iou", "median_iou", "n_above", "n_measured", "n_objects", "n_unmeasured",
                      "n_videos", "share_above", "threshold"}
    assert m["data"] == "toy:small/train" and m["threshold"] == 0.8
    assert m["n_objects"] == len(toy["train"]["annotations"])
    assert 0 < m["n_measured"] == m["n_objects"] - m["n_unmeasured"]
    assert 0 < m["n_videos"] <= len(toy["train"]["videos"])
    assert 0 <= m["n_above"] <= m["n_measured"] and math.isclose(m["share_above"], m["n_above"] / m["n_measured"])
    assert _unit(m["mean_iou"]) and _unit(m["median_iou"])


# one seed: no seed spread, so the valid-size studies of 02-04 are skipped (tests/test_valid_size.py runs them)
SKIPPED_VALID_SIZE = {"runs": [], "sizes": [], "eval_root": None, "same_as_table": True,
                      "note": "skipped (fewer than 2 seeds: no seed spread)"}


def _check_02(m, toy):
    q = QUICK_PARAMETERS["02_frame_sampling"]
    assert set(m) == {"runs", "schedules", "pseudo_reference", "valid_size", "init", "data"}
    assert m["data"] == "toy:small" and m["schedules"] == q["schedules"]
    assert m["valid_size"] == SKIPPED_VALID_SIZE
    assert m["pseudo_reference"] == "every_key_frame" and m["init"] == "pretrained"
    frames = ["all" if n is None else n for n in q["frames_per_video"]]
    assert sorted((r["schedule"], str(r["frames"]), r["seed"]) for r in m["runs"]) == \
        sorted((s, str(n), 0) for s in q["schedules"] for n in frames)
    for r in m["runs"]:
        assert set(r) == {"schedule", "frames", "seed", "init", "pseudo_reference", *TABLE_METRICS, *INTERVAL}
        assert all(_unit(r[k]) for k in TABLE_METRICS) and r["init"] == "toy COCO pretraining"
        assert r["pseudo_reference"] == ("real frames" if r["frames"] == "all" else "every_key_frame")
        _check_interval(r)


def _check_03(m, toy):
    from visrc.experiments.table1 import EQUAL_COMPUTE_SUFFIX, MERGE_IOU_GRID, TABLE1_ROWS, TRACKER_GRID

    assert set(m) == {"runs", "seeds", "choices", "tracker", "merge_iou_thr", "tracker_sensitivity", "valid_size",
                      "data"}
    assert m["data"] == "toy:small" and m["seeds"] == [0] and m["merge_iou_thr"] in MERGE_IOU_GRID
    assert m["valid_size"] == SKIPPED_VALID_SIZE
    rows = [row for row, _ in TABLE1_ROWS]
    trained = rows + [rows[-1] + EQUAL_COMPUTE_SUFFIX]
    _check_runs(m["runs"], trained + [rows[-1] + "+BiTrack"], extra=("init",))
    assert {r["init"] for r in m["runs"]} == {"toy COCO pretraining"}
    assert m["choices"]["association"]["split"] == m["choices"]["merge_iou_thr"]["split"] == "tune"
    grid = [list(p) for p in TRACKER_GRID]
    assert [m["tracker"]["init_score_thr"], m["tracker"]["obj_score_thr"]] in grid
    sens = m["tracker_sensitivity"]
    assoc = [r for r in sens if "init_score_thr" in r]
    assert sorted((r["row"], r["init_score_thr"], r["obj_score_thr"]) for r in assoc) == \
        sorted((row, *p) for row in trained for p in TRACKER_GRID)
    merges = [r for r in sens if "merge_iou_thr" in r]
    assert sorted(r["merge_iou_thr"] for r in merges) == sorted(MERGE_IOU_GRID)
    assert all(_unit(r["AP"]) for r in sens)
    best = max(r["AP"] for r in assoc if r["row"] == rows[0])      # the tracker is the baseline row's best on tune
    assert best in [r["AP"] for r in assoc if r["row"] == rows[0] and r["init_score_thr"] == m["tracker"]["init_score_thr"]
                    and r["obj_score_thr"] == m["tracker"]["obj_score_thr"]]
    assert max(r["AP"] for r in merges) in [r["AP"] for r in merges if r["merge_iou_thr"] == m["merge_iou_thr"]]


def _check_04(m, toy):
    assert set(m) == {"runs", "seeds", "scales", "iou_thr", "refine", "models", "mode", "init", "valid_size",
                      "selection", "data"}
    assert m["data"] == "toy:small" and m["scales"] == QUICK_PARAMETERS["04_ensemble"]["scales"]
    assert m["valid_size"] == SKIPPED_VALID_SIZE
    assert m["models"] == [["A", "toy_tcis_multitask_msd"], ["B", "toy_swin_tcis_multitask_msd"]]
    assert m["refine"] is True and m["mode"] == "bitrack" and m["init"] == "pretrained"
    _check_runs(m["runs"], ["A", "B", "Ensemble (A, B)", "A multi-scale", "B multi-scale",
                            "Ensemble (A, B) multi-scale"], extra=("init", "members"))
    chosen = m["selection"]["chosen"]["0"]
    assert m["selection"]["split"] == "tune" and 1 <= len(chosen["members"]) == len(chosen["tune_AP"]) <= 2
    assert set(chosen["members"]) <= {"A", "B"} and chosen["tune_AP"] == sorted(chosen["tune_AP"])
    ens = next(r for r in m["runs"] if r["row"] == "Ensemble (A, B)")
    assert ens["members"] == ", ".join(chosen["members"])


def _check_05(m, toy):
    assert set(m) == {"runs", "pseudo_labels", "pseudo_choice", "seeds", "scales", "pseudo_tracker", "models", "mode",
                      "init", "retrain", "data"}
    assert m["data"] == "toy:small" and m["retrain"]["epochs"] == 1 and m["retrain"]["kind"] == "new"
    _check_runs(m["runs"], ["A", "B", "Ensemble (A, B)", "A + pseudo", "B + pseudo", "Ensemble (A, B, A+P, B+P)"],
                extra=("init", "members", "retrain"))
    (pl,) = m["pseudo_labels"]
    assert pl["seed"] == 0 and pl["gt_boxes"] == sum(b is not None for a in toy["valid"]["annotations"]
                                                     for b in a["bboxes"])
    assert pl["chosen_on"] == "tune" and (pl["score_thr"], pl["min_track_len"]) == (0.0, 1)   # the quick grid
    assert [(c["score_thr"], c["min_track_len"], c["split"]) for c in m["pseudo_choice"]] == [(0.0, 1, "tune")]
    assert pl["boxes_in"] > 0 and pl["boxes_in_above_thr"] == pl["boxes_in"]      # pseudo score_thr 0: all pass
    # the quick pseudo tracker starts a track at any score, so the one-epoch ensemble's boxes become pseudo labels
    assert 0 < pl["tracks_kept"] <= pl["boxes_kept"] <= pl["boxes_in"]           # min_track_len 1
    assert m["pseudo_tracker"] == QUICK_PARAMETERS["05_pseudo_label"]["pseudo_tracker"]
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


def test_reproduce_runs_every_notebook_side_by_side(monkeypatch, tmp_path, capsys):
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
    monkeypatch.setenv("VISRC_RUNS_DIR", str(tmp_path / "runs"))
    rc = reproduce.run(SimpleNamespace(only=None, quick=True, quiet=True))
    assert rc == 1                                            # one notebook failed
    starts = [e for e in events if e[0] == "start"]
    assert [e[0] for e in events[:4]] == ["start"] * 4 and {s[1] for s in starts} == set(names)   # all at once:
    # 05 reuses 04's models and ensembles through the locked caches, not by waiting for 04 to end
    out = capsys.readouterr().out
    assert "!! 03_fails failed: cell 3 failed" in out and "trainings: none (every run was cached)" in out


def test_reproduce_param_parsing():
    import pytest as _pytest

    from visrc.reproduce import parse_params

    assert parse_params(["seeds=[0,1,2]", "toy_preset=small", "x=0.5"]) == {"seeds": [0, 1, 2], "toy_preset": "small",
                                                                           "x": 0.5}
    with _pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_params(["seeds"])
