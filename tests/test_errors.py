"""TIVE error analysis (:mod:`visrc.evaluation.errors`): each error type planted alone is the only one
reported and its ΔAP is that of the hand-fixed files re-evaluated by the official evaluator; the
assignment order; empty and false-positive-only results; one-frame GT tracks; FalsePos / FalseNeg;
length bins; ``visrc errors``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visrc.cli import main
from visrc.evaluation.errors import FIXES, PRED_TYPES, error_analysis, fixed_inputs
from visrc.evaluation.ytvis_eval import evaluate_ytvis

H, W = 6, 20


def box(x0: int, x1: int) -> dict:
    """A mask of columns x0:x1 (all rows) as compressed RLE."""
    m = np.zeros((H, W), np.uint8)
    m[:, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": rle["counts"].decode()}


def track(cols, frames, length):
    """Columns ``cols`` in ``frames`` (others null) of a video of ``length`` frames."""
    return [box(*cols) if t in frames else None for t in range(length)]


def dataset(gts, length=4, n_videos=1):
    """GT dict of ``gts``: (category, cols, frames[, video]) with ids 1.."""
    videos = [{"id": v, "length": length, "height": H, "width": W,
               "file_names": [f"{v}/{t}.jpg" for t in range(length)]} for v in range(1, n_videos + 1)]
    anns = []
    for i, g in enumerate(gts):
        cat, cols, frames = g[:3]
        segs = track(cols, frames, length)
        anns.append({"id": i + 1, "video_id": g[3] if len(g) > 3 else 1, "category_id": cat, "iscrowd": 0,
                     "segmentations": segs, "areas": [H * (cols[1] - cols[0]) if s else None for s in segs],
                     "bboxes": [[float(cols[0]), 0.0, float(cols[1] - cols[0]), float(H)] if s else None
                                for s in segs]})
    return {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def pred(cat, cols, frames, score, length=4, video=1):
    return {"video_id": video, "category_id": cat, "score": score, "segmentations": track(cols, frames, length)}


ALL = range(4)
A, B = (0, 4), (14, 18)        # the two GT tracks' columns (class 1), 10 pixels apart


def two_gt():
    return dataset([(1, A, ALL), (1, B, ALL)])


def delta_of(gt, results, fixed_gt, fixed_results):
    """ΔAP and ΔAP50 of hand-fixed inputs, re-evaluated by the evaluator."""
    base, fixed = evaluate_ytvis(gt, results).stats, evaluate_ytvis(fixed_gt, fixed_results).stats
    return fixed["AP"] - base["AP"], fixed["AP50"] - base["AP50"]


def only(report, kind):
    """The non-zero error counts are exactly ``kind``'s (Missed counted with the prediction types)."""
    c = report["counts"]
    got = {t for t in PRED_TYPES + ("Missed",) if c[t]}
    assert got == {kind}, got


def assert_delta(report, fix, expected):
    d = report["delta_ap"][fix]
    assert d["AP"]["value"] == pytest.approx(expected[0], abs=1e-12)
    assert d["AP50"]["value"] == pytest.approx(expected[1], abs=1e-12)


def assert_consistent(gt, results, report):
    """Every fix's ΔAP equals a plain re-evaluation of fixed_inputs (the reference path)."""
    for fix in FIXES:
        g2, r2 = fixed_inputs(gt, results, report, fix)
        base, fixed = evaluate_ytvis(gt, results).stats, evaluate_ytvis(g2, r2).stats
        for m in ("AP", "AP50"):
            d = report["delta_ap"][fix][m]["value"]
            if fixed[m] == -1 or base[m] == -1:
                assert d is None, (fix, m)
            else:
                assert d == pytest.approx(fixed[m] - base[m], abs=1e-12), (fix, m)


# ---- each type planted alone

def test_classification():
    gt = two_gt()
    res = [pred(2, A, ALL, 0.95), pred(1, B, ALL, 0.8)]     # A's masks with class 2; A has no other prediction
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Classification")
    p = rep["predictions"][0]
    assert p["type"] == "Classification" and p["fix"] == "relabel" and p["gt"]["id"] == 1 and p["gt"]["iou"] == 1.0
    assert [g["status"] for g in rep["gt_tracks"]] == ["recoverable", "matched"]
    assert rep["gt_tracks"][0]["prediction"] == 0 and rep["gt_tracks"][1]["prediction"] == 1
    fixed = [dict(res[0], category_id=1), res[1]]
    assert_delta(rep, "Classification", delta_of(gt, res, gt, fixed))
    assert rep["delta_ap"]["Classification"]["AP"]["value"] > 0
    assert_consistent(gt, res, rep)


def test_spatial():
    gt = two_gt()
    res = [pred(1, (0, 10), ALL, 0.9), pred(1, B, ALL, 0.8)]   # IoU 4/10 with A in every frame
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Spatial")
    p = rep["predictions"][0]
    assert p["fix"] == "replace" and p["gt"]["iou"] == pytest.approx(0.4) and p["temporal_overlap"] == 1.0
    fixed = [dict(res[0], segmentations=gt["annotations"][0]["segmentations"]), res[1]]
    assert_delta(rep, "Spatial", delta_of(gt, res, gt, fixed))
    assert rep["delta_ap"]["Spatial"]["AP"]["value"] > 0
    assert_consistent(gt, res, rep)


def test_temporal():
    gt = two_gt()
    res = [pred(1, A, {0}, 0.9), pred(1, B, ALL, 0.8)]         # right mask, one frame of four: IoU 0.25
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Temporal")
    p = rep["predictions"][0]
    assert p["gt"]["iou"] == pytest.approx(0.25) and p["temporal_overlap"] == pytest.approx(0.25)
    fixed = [dict(res[0], segmentations=gt["annotations"][0]["segmentations"]), res[1]]
    assert_delta(rep, "Temporal", delta_of(gt, res, gt, fixed))
    assert_consistent(gt, res, rep)


def test_duplicate():
    gt = two_gt()
    res = [pred(1, A, ALL, 0.9), pred(1, A, ALL, 0.85), pred(1, B, ALL, 0.8)]
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Duplicate")
    assert rep["predictions"][1]["type"] == "Duplicate" and rep["predictions"][1]["gt"]["id"] == 1
    assert_delta(rep, "Duplicate", delta_of(gt, res, gt, [res[0], res[2]]))
    assert rep["delta_ap"]["Duplicate"]["AP"]["value"] > 0
    assert_consistent(gt, res, rep)


def test_background():
    gt = two_gt()
    res = [pred(1, (6, 12), ALL, 0.95), pred(1, A, ALL, 0.9), pred(1, B, ALL, 0.8)]   # between A and B
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Background")
    assert rep["predictions"][0]["gt"] is None and rep["predictions"][0]["fix"] == "delete"
    assert_delta(rep, "Background", delta_of(gt, res, gt, res[1:]))
    assert rep["delta_ap"]["Background"]["AP"]["value"] > 0
    assert_consistent(gt, res, rep)


def test_both():
    gt = two_gt()
    res = [pred(2, (0, 10), ALL, 0.95), pred(1, A, ALL, 0.9), pred(1, B, ALL, 0.8)]   # wrong class, IoU 0.4
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Both")
    assert rep["predictions"][0]["gt"]["id"] == 1
    assert_delta(rep, "Both", delta_of(gt, res, gt, res[1:]))
    assert_consistent(gt, res, rep)


def test_missed():
    gt = dataset([(1, A, ALL), (1, B, ALL), (1, (7, 11), ALL)])
    res = [pred(1, A, ALL, 0.9), pred(1, B, ALL, 0.8)]
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Missed")
    assert [g["status"] for g in rep["gt_tracks"]] == ["matched", "matched", "missed"]
    fixed_gt = dict(gt, annotations=gt["annotations"][:2])
    assert_delta(rep, "Missed", delta_of(gt, res, fixed_gt, res))
    assert rep["delta_ap"]["Missed"]["AP"]["value"] > 0
    assert rep["delta_ap"]["FalseNeg"] == rep["delta_ap"]["Missed"]
    assert_consistent(gt, res, rep)


# ---- order, choices, edge cases

def test_a_prediction_fitting_two_types_gets_the_first():
    # Spatial (IoU 0.4 with same-class A) beats Classification (IoU 0.8 with class-2 D)
    gt = dataset([(1, A, ALL), (2, (0, 8), ALL)])
    rep = error_analysis(gt, [pred(1, (0, 10), ALL, 0.9)], n_boot=0)
    assert rep["predictions"][0]["type"] == "Spatial" and rep["predictions"][0]["gt"]["id"] == 1
    # Classification (IoU 1 with class-1 A) beats Duplicate (IoU 0.8 with class-2 D, matched by the first)
    gt = dataset([(1, (0, 5), ALL), (2, (0, 4), ALL)])
    rep = error_analysis(gt, [pred(2, (0, 4), ALL, 0.9), pred(2, (0, 5), ALL, 0.8)], n_boot=0)
    assert [p["type"] for p in rep["predictions"]] == ["matched", "Classification"]
    assert rep["predictions"][1]["gt"]["id"] == 1


def test_classification_onto_a_matched_gt_is_deleted():
    """Choice 2: relabelling onto a GT that is already matched would be a duplicate: the fix deletes."""
    gt = two_gt()
    res = [pred(2, A, ALL, 0.95), pred(1, A, ALL, 0.9), pred(1, B, ALL, 0.8)]
    rep = error_analysis(gt, res, n_boot=0)
    assert rep["predictions"][0]["type"] == "Classification" and rep["predictions"][0]["fix"] == "delete"
    assert rep["counts"]["Missed"] == 0
    # class 2 has no GT: its AP is undefined either way, so deleting changes nothing
    assert_delta(rep, "Classification", delta_of(gt, res, gt, res[1:]))
    assert_consistent(gt, res, rep)


def test_two_spatial_predictions_of_one_gt_only_the_first_is_replaced():
    gt = two_gt()
    res = [pred(1, (0, 10), ALL, 0.9), pred(1, (0, 9), ALL, 0.7), pred(1, B, ALL, 0.8)]
    rep = error_analysis(gt, res, n_boot=0)
    assert [p["fix"] for p in rep["predictions"]] == ["replace", "delete", None]
    fixed = [dict(res[0], segmentations=gt["annotations"][0]["segmentations"]), res[2]]
    assert_delta(rep, "Spatial", delta_of(gt, res, gt, fixed))
    assert_consistent(gt, res, rep)


def test_empty_results():
    gt = two_gt()
    rep = error_analysis(gt, [], n_boot=10)
    assert rep["predictions"] == [] and rep["base"] == {"AP": 0.0, "AP50": 0.0}
    assert [g["status"] for g in rep["gt_tracks"]] == ["missed", "missed"]
    assert rep["delta_ap"]["Missed"]["AP"]["value"] is None         # no GT left: AP undefined
    assert rep["delta_ap"]["FalsePos"]["AP"] == {"value": 0.0, "low": 0.0, "high": 0.0, "std": 0.0}


def test_only_false_positives():
    gt = two_gt()
    res = [pred(1, (6, 12), ALL, 0.9), pred(2, (6, 12), {0, 1}, 0.5)]
    rep = error_analysis(gt, res, n_boot=10)
    assert [p["type"] for p in rep["predictions"]] == ["Background", "Background"]
    assert rep["counts"]["Missed"] == 2 and rep["base"]["AP"] == 0.0
    for fix in ("Background", "FalsePos"):
        assert rep["delta_ap"][fix]["AP"]["value"] == 0.0
    assert_consistent(gt, res, rep)


def test_gt_track_of_one_frame():
    gt = dataset([(1, A, {2}), (1, B, ALL)])
    res = [pred(1, A, ALL, 0.9), pred(1, B, ALL, 0.8)]      # A's masks in all four frames: IoU 1/4
    rep = error_analysis(gt, res, n_boot=0)
    only(rep, "Temporal")
    assert rep["gt_tracks"][0]["length"] == 1 and rep["gt_tracks"][0]["bin"] == "short"
    assert rep["predictions"][0]["temporal_overlap"] == pytest.approx(0.25)
    exact = error_analysis(gt, [pred(1, A, {2}, 0.9), res[1]], n_boot=0)
    assert exact["counts"]["matched"] == 2 and exact["base"]["AP"] == pytest.approx(1.0)
    assert_consistent(gt, res, rep)


def test_false_pos_and_false_neg():
    gt = dataset([(1, A, ALL), (1, B, ALL), (1, (7, 11), ALL)])
    res = [pred(1, A, ALL, 0.9), pred(1, A, ALL, 0.85), pred(1, (18, 20), ALL, 0.95), pred(1, B, ALL, 0.8)]
    rep = error_analysis(gt, res, n_boot=0)
    assert rep["counts"]["Duplicate"] == 1 and rep["counts"]["Background"] == 1 and rep["counts"]["Missed"] == 1
    kept = [res[0], res[3]]
    assert_delta(rep, "FalsePos", delta_of(gt, res, gt, kept))
    assert_delta(rep, "FalseNeg", delta_of(gt, res, dict(gt, annotations=gt["annotations"][:2]), res))
    fp = rep["delta_ap"]["FalsePos"]["AP"]["value"]
    assert fp >= rep["delta_ap"]["Duplicate"]["AP"]["value"] and fp >= rep["delta_ap"]["Background"]["AP"]["value"]
    assert_consistent(gt, res, rep)


def test_by_length_bins():
    L = 8
    gt = dataset([(1, A, {0, 1}), (1, B, range(L))], length=L)          # lengths 2 and 8
    res = [pred(1, (6, 10), {0, 1}, 0.95, length=L), pred(1, B, range(L), 0.9, length=L)]
    rep = error_analysis(gt, res, length_bins=(3,), n_boot=0)
    bl = rep["by_length"]
    assert [b["name"] for b in bl["bins"]] == ["1-3", ">3"]
    assert [g["bin"] for g in rep["gt_tracks"]] == ["1-3", ">3"]
    assert bl["base"]["1-3"]["AP"] == 0.0 and bl["base"][">3"]["AP"] == pytest.approx(1.0)
    # the long bin ignores the short GT track and the short false positive: the evaluator on the rest
    assert bl["base"][">3"]["AP"] == evaluate_ytvis(dict(gt, annotations=gt["annotations"][1:]), res[1:]).stats["AP"]
    assert rep["delta_ap"]["Background"]["AP"]["value"] > 0
    assert bl["delta_ap"]["1-3"]["Background"]["AP"]["value"] == 0.0
    assert bl["delta_ap"][">3"]["Background"]["AP"]["value"] == 0.0
    assert bl["delta_ap"]["1-3"]["Missed"]["AP"]["value"] is None     # no GT left in the bin
    assert bl["delta_ap"][">3"]["Missed"]["AP"]["value"] == 0.0
    assert rep["delta_ap"]["Missed"]["AP"]["value"] > 0
    default = error_analysis(gt, res, n_boot=0)["by_length"]
    assert [b["name"] for b in default["bins"]] == ["short", "medium", "long"]
    assert default["base"]["medium"]["AP"] is None                     # no GT track of 17-32 frames
    many = error_analysis(gt, res, length_bins=(1, 2, 4, 6), n_boot=0)["by_length"]   # two chunks of bins
    assert [b["name"] for b in many["bins"]] == ["1-1", "2-2", "3-4", "5-6", ">6"]
    assert many["base"]["2-2"]["AP"] == 0.0 and many["base"][">6"]["AP"] == pytest.approx(1.0)


def test_bootstrap_intervals_and_random_case_match_the_reference():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_evaluation import make_inputs

    gt, res10, _ = make_inputs(8, 24, n_cats=4, seed=3)
    rep = error_analysis(gt, res10, n_boot=50, seed=1)
    assert_consistent(gt, res10, rep)
    assert rep["base"]["AP"] == evaluate_ytvis(gt, res10).stats["AP"]
    for fix in FIXES:
        d = rep["delta_ap"][fix]["AP"]
        assert d["low"] <= d["value"] + 1e-12 or d["low"] <= d["high"]
        assert d["low"] <= d["high"]
    again = error_analysis(gt, res10, n_boot=50, seed=1)
    assert again["delta_ap"] == rep["delta_ap"]
    json.dumps(rep)                                                     # JSON-able


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="t_f"):
        error_analysis(two_gt(), [], t_f=0.52)
    with pytest.raises(ValueError, match="t_b"):
        error_analysis(two_gt(), [], t_b=0.6)
    with pytest.raises(ValueError, match="length_bins"):
        error_analysis(two_gt(), [], length_bins=(32, 16))


# ---- the command line

def _write(tmp_path, gt, res):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(res))
    return ["errors", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json")]


def test_cli_writes_report_and_plot(tmp_path, capsys):
    argv = _write(tmp_path, two_gt(), [pred(1, (0, 10), ALL, 0.9), pred(1, B, ALL, 0.8)])
    out, png = tmp_path / "errors.json", tmp_path / "errors.png"
    assert main(argv + ["--out", str(out), "--plot", str(png), "--n-boot", "20"]) == 0
    text = capsys.readouterr().out
    assert "Spatial" in text and "FalseNeg" in text and "by GT track length" in text
    rep = json.loads(out.read_text())
    assert rep["counts"]["Spatial"] == 1 and rep["inputs"]["gt"].endswith("gt.json")
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("case", ["missing", "bad_json", "bad_field"])
def test_cli_one_line_error_on_a_bad_file(tmp_path, capsys, case):
    argv = _write(tmp_path, two_gt(), [pred(1, A, ALL, 0.9)])
    if case == "missing":
        argv[4] = str(tmp_path / "nope.json")
        name = "nope.json"
    elif case == "bad_json":
        (tmp_path / "res.json").write_text("[{not json")
        name = "res.json"
    else:
        (tmp_path / "res.json").write_text(json.dumps([{"video_id": 1, "category_id": 1, "score": "high",
                                                        "segmentations": [None] * 4}]))
        name = "res.json"
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("visrc errors: error: ") and name in err[0]
    if case == "bad_field":
        assert "result[0]" in err[0] and "'score'" in err[0]
