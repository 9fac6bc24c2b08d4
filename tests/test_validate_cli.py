"""The pieces behind ``visrc validate``: the compressed-RLE checker (against pycocotools, on valid and
random strings), the frame check, grouped warnings, and the command's own options."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visrc.cli import main
from visrc.data import masks
from visrc.data.ytvis import YTVISFormatError, rle_string_sums, validate_ytvis


def _encoded(rng, n):
    """``n`` random masks (some empty, some full) as (compressed RLE string, h * w, foreground)."""
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        if i % 5 == 0:
            m[:] = 0
        elif i % 7 == 0:
            m[:] = 1
        out.append((mask_utils.encode(np.asfortranarray(m))["counts"].decode(), h * w, int(m.sum())))
    return out


def _both_paths(strings, monkeypatch):
    """rle_string_sums through numpy and through the compiled loop; they must agree on validity and totals."""
    a = rle_string_sums(strings)
    monkeypatch.setattr(masks, "RLE_NUMPY_CHARS", -1)
    b = rle_string_sums(strings)
    monkeypatch.undo()
    np.testing.assert_array_equal(a[0], b[0])
    ok = a[0] >= 0
    np.testing.assert_array_equal(a[1][ok], b[1][ok])
    return a


def test_rle_sums_of_valid_strings_match_pycocotools(monkeypatch):
    cases = _encoded(np.random.default_rng(0), 200)
    big = np.zeros((300, 700), np.uint8)
    big[3:290, 5:650] = 1                                      # long runs: multi-character counts
    cases.append((mask_utils.encode(np.asfortranarray(big))["counts"].decode(), big.size, int(big.sum())))
    total, fg = _both_paths([c[0] for c in cases], monkeypatch)
    assert total.tolist() == [c[1] for c in cases]
    assert fg.tolist() == [c[2] for c in cases]


def test_rle_sums_of_random_strings_decode_as_pycocotools_does(monkeypatch):
    """A string called valid decodes in pycocotools to exactly the pixels it reports; the rest are -1."""
    rng = np.random.default_rng(1)
    strings = ["".join(map(chr, rng.integers(40, 120, int(rng.integers(0, 12))))) for _ in range(3000)]
    strings += ["", "é1", "P" * 7 + "0", "o" * 7 + "0", "61", "6", "o"]
    total, fg = _both_paths(strings, monkeypatch)
    valid = np.flatnonzero((total > 0) & (total < 10 ** 6))
    assert 50 < len(valid) < len(strings) - 1000               # both kinds occur
    for i in valid:
        m = mask_utils.decode({"size": [1, int(total[i])], "counts": strings[i].encode()})
        assert int(m.sum()) == fg[i], strings[i]
    by = dict(zip(strings[-7:], total[-7:].tolist()))
    assert by == {"": 0, "é1": -1, "P" * 7 + "0": -1, "o" * 7 + "0": -1, "61": 7, "6": 6, "o": -1}


def _gt(h=8, w=10):
    m = np.zeros((h, w), np.uint8)
    m[2:5, 3:7] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    rle["counts"] = rle["counts"].decode()
    return {"videos": [{"id": 1, "length": 2, "height": h, "width": w, "file_names": ["v/0.jpg", "v/1.jpg"]}],
            "categories": [{"id": 1, "name": "cat"}],
            "annotations": [{"id": k, "video_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentations": [rle, dict(rle)], "bboxes": [[3.0, 2.0, 4.0, 3.0]] * 2,
                             "areas": [12.0, 12.0]} for k in (1, 2, 3)]}


def test_warnings_are_grouped_by_kind():
    data = _gt()
    for a in data["annotations"]:
        a["bboxes"][1] = [3.0, 2.0, 9.0, 3.0]                  # 2 px past the right edge
    data["annotations"][2]["areas"][0] = 40.0
    lines = validate_ytvis(data, "gt.json")
    assert len(lines) == 2, lines
    assert lines[0].startswith("gt.json: boxes outside their image in 3 places, e.g. annotation id=1: 'bboxes'[1]")
    assert lines[1].startswith("gt.json: annotation id=3: the area of 'segmentations'[0] is 40.0 but its mask has "
                               "12 pixels (annotations[2])")


def test_area_within_tolerance_is_no_warning():
    data = _gt()
    data["annotations"][0]["areas"][0] = 12.9
    assert validate_ytvis(data) == []


def test_check_masks_false_skips_decoding():
    data = _gt()
    data["annotations"][0]["segmentations"][0]["counts"] = "!!"
    with pytest.raises(YTVISFormatError, match=r"annotation id=1: 'segmentations'\[0\]\['counts'\]"):
        validate_ytvis(data)
    assert validate_ytvis(data, check_masks=False) == []
    data["annotations"][0]["segmentations"][0] = "garbage"     # the type is still checked
    with pytest.raises(YTVISFormatError, match=r"'segmentations'\[0\] must be null"):
        validate_ytvis(data, check_masks=False)


def _split(tmp_path, data, size=(10, 8)):
    from PIL import Image

    (tmp_path / "JPEGImages" / "v").mkdir(parents=True)
    for f in ("0.jpg", "1.jpg"):
        Image.new("RGB", size).save(tmp_path / "JPEGImages" / "v" / f)
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_validate_checks_frames_beside_the_file(tmp_path, capsys):
    path = _split(tmp_path, _gt())
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "frames checked in" in out and "1 videos, 2 frames, 3 tracks, 1 categories" in out
    from PIL import Image
    Image.new("RGB", (10, 9)).save(tmp_path / "JPEGImages" / "v" / "1.jpg")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"visrc validate: error: {path}: video id=1: 'file_names'[1]: ") and "10x9" in err
    assert main(["validate", str(path), "--no-frames"]) == 0    # the JSON alone is fine
    assert "frames checked" not in capsys.readouterr().out


def test_validate_frames_option(tmp_path, capsys):
    path = _split(tmp_path / "a", _gt())
    elsewhere = tmp_path / "b" / "x.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(path.read_text())
    assert main(["validate", str(elsewhere)]) == 0             # no JPEGImages/ beside it: JSON only
    assert "frames checked" not in capsys.readouterr().out
    assert main(["validate", str(elsewhere), "--frames", str(tmp_path / "a" / "JPEGImages")]) == 0
    assert "frames checked" in capsys.readouterr().out
    assert main(["validate", str(elsewhere), "--frames", str(tmp_path / "nope")]) == 1
    assert "nope: no such folder (--frames)" in capsys.readouterr().err


def test_validate_results_needs_gt(tmp_path, capsys):
    (tmp_path / "res.json").write_text("[]")
    assert main(["validate", str(tmp_path / "res.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "res.json: top level" in err and "--gt" in err
    (tmp_path / "sub.zip").write_bytes(b"")
    assert main(["validate", str(tmp_path / "sub.zip")]) == 1
    err = capsys.readouterr().err
    assert "sub.zip" in err and "--gt" in err


def test_validate_results_ok_line(tmp_path, capsys):
    gt = _gt()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    res = [{"video_id": 1, "category_id": 1, "score": 0.5, "segmentations": a["segmentations"]}
           for a in gt["annotations"]]
    (tmp_path / "res.json").write_text(json.dumps(res))
    assert main(["validate", str(tmp_path / "res.json"), "--gt", str(tmp_path / "gt.json")]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{tmp_path / 'res.json'}: OK (3 predictions over 1 videos)"
    assert captured.err == ""


def test_gt_errors_name_the_gt_file(tmp_path, capsys):
    gt = _gt()
    gt["videos"][0]["height"] = "8"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text("[]")
    assert main(["validate", str(tmp_path / "res.json"), "--gt", str(tmp_path / "gt.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"visrc validate: error: {tmp_path / 'gt.json'}: video id=1: 'height' must be an integer, " \
                  "got str '8' (videos[0])"


def test_box_outside_image_is_a_warning_not_an_error():
    """The official evaluator scores masks; a box past the border is reported, not refused."""
    data = _gt()
    data["annotations"][0]["bboxes"][0] = [3.0, 2.0, 4.0, 9.0]
    lines = validate_ytvis(data, "gt.json")
    assert lines == ["gt.json: annotation id=1: 'bboxes'[0] = [3.0, 2.0, 4.0, 9.0] lies outside the 10x8 image "
                     "(masks are scored, boxes are not) (annotations[0])"]
