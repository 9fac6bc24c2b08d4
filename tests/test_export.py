"""Results export (results.json, submission.zip), validation against GT, and `visrc evaluate`."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visrc.cli import main as cli_main
from visrc.data.ytvis import YTVISFormatError, write_ytvis
from visrc.evaluation import (evaluate_ytvis, load_results, validate_results, write_results,
                              write_submission_zip)


def _rle(box, h, w, as_bytes=False):
    r = mask_utils.frPyObjects(np.array([box], np.float64), h, w)[0]
    if not as_bytes:
        r["counts"] = r["counts"].decode("ascii")
    return r


def _case(seed=0):
    """A valid GT (3 videos, 2 categories) and results with a mix of hits, misses and null frames."""
    rng = np.random.default_rng(seed)
    videos, anns, results = [], [], []
    for v, (h, w, n) in enumerate([(40, 60, 3), (30, 30, 2), (50, 40, 4)], start=1):
        videos.append({"id": v, "length": n, "height": h, "width": w, "file_names": [f"{v}/{t}.jpg" for t in range(n)]})
        for j in range(2):
            boxes = [[int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2)), w // 3, h // 3] for _ in range(n)]
            segs = [_rle(b, h, w) for b in boxes]
            segs[-1] = None if j else segs[-1]
            anns.append({"id": len(anns) + 1, "video_id": v, "category_id": j + 1, "iscrowd": 0,
                         "segmentations": segs, "bboxes": [b if s else None for b, s in zip(boxes, segs)],
                         "areas": [float(mask_utils.area(s)) if s else None for s in segs]})
            results.append({"video_id": v, "category_id": j + 1, "score": float(rng.random()),
                            "segmentations": [_rle([b[0] + 1, b[1], b[2], b[3]], h, w) if s else None
                                              for b, s in zip(boxes, segs)]})
    gt = {"videos": videos, "annotations": anns, "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}
    return gt, results


def test_write_results_roundtrip_and_plain_types(tmp_path):
    gt, results = _case()
    # numpy scalars and bytes counts (what pycocotools returns) are written as plain JSON
    results[0]["score"] = np.float32(0.25)
    results[0]["video_id"] = np.int64(results[0]["video_id"])
    h, w = gt["videos"][0]["height"], gt["videos"][0]["width"]
    results[0]["segmentations"][0] = _rle([0, 0, 5, 5], h, w, as_bytes=True)
    p = write_results(results, tmp_path / "out" / "results.json", gt=gt)
    back = json.loads(p.read_text())
    assert len(back) == len(results)
    assert back[0]["score"] == 0.25 and isinstance(back[0]["video_id"], int)
    assert isinstance(back[0]["segmentations"][0]["counts"], str)
    validate_results(back, gt)
    assert [f for f in os.listdir(p.parent) if f.endswith(".tmp")] == []


def test_submission_zip_holds_results_json(tmp_path):
    gt, results = _case()
    p = write_submission_zip(results, tmp_path / "submission.zip", gt=gt)
    with zipfile.ZipFile(p) as z:
        assert z.namelist() == ["results.json"]
        inside = json.loads(z.read("results.json"))
    assert inside == json.loads(write_results(results, tmp_path / "r.json").read_text())
    # the zip evaluates like the plain file
    a = evaluate_ytvis(gt, load_results(p, gt))
    b = evaluate_ytvis(gt, results)
    np.testing.assert_array_equal(a.stats_vector, b.stats_vector)


def test_failed_write_keeps_the_old_file(tmp_path):
    gt, results = _case()
    p = write_results(results, tmp_path / "results.json")
    before = p.read_bytes()
    bad = [dict(results[0], video_id=12345)]
    with pytest.raises(YTVISFormatError):
        write_results(bad, p, gt=gt)
    bad = [dict(results[0], score=object())]
    with pytest.raises(TypeError):
        write_submission_zip(bad, tmp_path / "results.json")
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["results.json"]


@pytest.mark.parametrize("mutate, pattern", [
    (lambda r, gt: r.__setitem__("video_id", 999), r"result\[1\]: 'video_id' 999 is not an id of a GT video"),
    (lambda r, gt: r.__setitem__("category_id", 77), r"result\[1\]: 'category_id' 77 is not an id of a GT category"),
    (lambda r, gt: r.__setitem__("score", float("nan")), r"result\[1\]: 'score' must be a finite number"),
    (lambda r, gt: r.__setitem__("score", "0.5"), r"result\[1\]: 'score' must be a finite number"),
    (lambda r, gt: r["segmentations"].pop(), r"result\[1\]: 'segmentations' has 2 entries but video 1 has 3 frames"),
    (lambda r, gt: r["segmentations"].__setitem__(0, _rle([0, 0, 2, 2], 10, 10)),
     r"result\[1\]: 'segmentations'\[0\] has size \[10, 10\] but the video is \[40, 60\]"),
    (lambda r, gt: r["segmentations"].__setitem__(1, {"size": [40, 60], "counts": [2400]}),
     r"result\[1\]: 'segmentations'\[1\] must be compressed RLE"),
    (lambda r, gt: r["segmentations"].__setitem__(1, [[0, 0, 5, 0, 5, 5]]),
     r"result\[1\]: 'segmentations'\[1\] must be null or an RLE"),
    (lambda r, gt: r.pop("score"), r"result\[1\]: missing field 'score'"),
])
def test_validation_names_file_index_and_field(tmp_path, mutate, pattern):
    gt, results = _case()
    mutate(results[1], gt)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(results))
    with pytest.raises(YTVISFormatError, match=pattern) as e:
        load_results(p, gt)
    assert str(p) in str(e.value)


def test_validation_rejects_non_list(tmp_path):
    gt, _ = _case()
    with pytest.raises(YTVISFormatError, match="expected a list"):
        validate_results({"video_id": 1}, gt, source="x.json")


def test_cli_evaluate_prints_table_and_writes_metrics(tmp_path, capsys):
    gt, results = _case()
    write_ytvis(gt, tmp_path / "gt.json")
    write_results(results, tmp_path / "res.json")
    rc = cli_main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"),
                   "--out", str(tmp_path / "m" / "metrics.json")])
    out = capsys.readouterr().out
    assert rc == 0
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"):
        assert f"\n{key} " in out
    assert "cat" in out and "dog" in out
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    ref = evaluate_ytvis(gt, results)
    assert m["metrics"] == pytest.approx(ref.stats)
    assert [c["name"] for c in m["per_category"]] == ["cat", "dog"]


def test_cli_evaluate_reports_invalid_results(tmp_path, capsys):
    gt, results = _case()
    results[2]["segmentations"] = results[2]["segmentations"][:-1]
    write_ytvis(gt, tmp_path / "gt.json")
    (tmp_path / "res.json").write_text(json.dumps(results))
    rc = cli_main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "visrc evaluate: error:" in err and "result[2]" in err and "'segmentations'" in err
