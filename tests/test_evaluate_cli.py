"""``visrc evaluate``: warns (and scores) on what does not change the metric, refuses with one line
what would, and checks ``--out`` before the work."""
from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils

from visrc.cli import main


def _files(tmp_path, mutate_gt=None, mutate_results=None):
    h, w = 12, 16
    masks = []
    for x0 in (1, 8):
        m = np.zeros((h, w), np.uint8)
        m[2:9, x0:x0 + 6] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        masks.append({"size": [h, w], "counts": rle["counts"].decode()})
    gt = {"videos": [{"id": 1, "length": 2, "height": h, "width": w, "file_names": ["v/0.jpg", "v/1.jpg"]}],
          "categories": [{"id": 1, "name": "cat"}],
          "annotations": [{"id": k + 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                           "segmentations": [masks[k], masks[k]], "bboxes": [[1.0 + 7 * k, 2.0, 6.0, 7.0]] * 2,
                           "areas": [42.0, 42.0]} for k in range(2)]}
    results = [{"video_id": 1, "category_id": 1, "score": 0.9 - 0.1 * k, "segmentations": [masks[k], masks[k]]}
               for k in range(2)]
    if mutate_gt:
        mutate_gt(gt)
    if mutate_results:
        mutate_results(results)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    return ["evaluate", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"),
            "--no-per-category"]


def _ap(out: str) -> float:
    return float(next(ln.split()[1] for ln in out.splitlines() if ln.startswith("AP ")))


def test_perfect_results_score_100(tmp_path, capsys):
    assert main(_files(tmp_path)) == 0
    captured = capsys.readouterr()
    assert _ap(captured.out) == 100.0 and captured.err == ""


def test_gt_box_outside_the_image_is_a_warning(tmp_path, capsys):
    def outside(gt):
        gt["annotations"][1]["bboxes"][0] = [8.0, 2.0, 11.0, 7.0]      # 3 px past the right edge

    assert main(_files(tmp_path, outside)) == 0
    captured = capsys.readouterr()
    assert _ap(captured.out) == 100.0
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {tmp_path / 'gt.json'}: annotation id=2: 'bboxes'[0]")


def test_area_that_disagrees_with_its_mask_is_a_warning(tmp_path, capsys):
    def area(gt):
        gt["annotations"][0]["areas"][1] = 60.0

    assert main(_files(tmp_path, area)) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "annotation id=1" in err[0] and "'segmentations'[1]" in err[0] and "42 pixels" in err[0]


def test_undecodable_gt_counts_are_refused_not_scored(tmp_path, capsys):
    def garbage(gt):
        gt["annotations"][0]["segmentations"][1] = dict(gt["annotations"][0]["segmentations"][1], counts="zz")

    assert main(_files(tmp_path, garbage)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"visrc evaluate: error: {tmp_path / 'gt.json'}: annotation id=1: 'segmentations'[1]['counts'] = 'zz' is not "
        "a compressed RLE of a 12x16 mask (it does not decode) (annotations[0])")


def test_invalid_results_are_one_line(tmp_path, capsys):
    def nan(results):
        results[1]["score"] = float("nan")

    assert main(_files(tmp_path, mutate_results=nan)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (f"visrc evaluate: error: {tmp_path / 'res.json'}: result[1]: 'score' must be a "
                                    "finite number, got float nan")


def test_out_is_checked_before_the_work(tmp_path, capsys):
    (tmp_path / "metrics").mkdir()
    assert main(_files(tmp_path) + ["--out", str(tmp_path / "metrics")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "metrics" in captured.err


def test_no_validate_skips_the_checks(tmp_path, capsys):
    def outside(gt):
        gt["annotations"][1]["bboxes"][0] = [8.0, 2.0, 11.0, 7.0]

    assert main(_files(tmp_path, outside) + ["--no-validate"]) == 0
    captured = capsys.readouterr()
    assert _ap(captured.out) == 100.0 and captured.err == ""
