"""visrc.evaluation.ytvis_eval against the official YouTube-VIS evaluator (mmdet 3.3.0's port).

The oracle is ``mmdet/evaluation/functional/ytvis.py`` + ``ytviseval.py`` of the installed mmdet,
loaded as standalone modules (they need only numpy and pycocotools), so the comparison does not
pay for importing torch. Every case compares all 12 summary values, the per-category AP and the
whole precision/recall arrays.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visrc.evaluation.oracle import load_oracle, run_oracle

from visrc.evaluation.ytvis_eval import SUMMARY_KEYS, evaluate_ytvis


# ----------------------------------------------------------------------------- oracle

def _load_oracle():
    try:
        return load_oracle()
    except ImportError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def oracle():
    _load_oracle()
    # mmdet 3.3.0's accumulate uses np.float, removed in numpy 1.24
    had = hasattr(np, "float")
    if not had:
        np.float = float

    def run(gt: dict, results: list) -> dict:
        return run_oracle(gt, results)

    yield run
    if not had:
        del np.float


def _assert_same(ours, ref, tol=1e-6):
    np.testing.assert_allclose(ours.stats_vector, ref["stats"], rtol=0, atol=tol)
    assert set(ours.per_category) == set(ref["per_category"])
    for c, v in ref["per_category"].items():
        assert abs(ours.per_category[c] - v) <= tol, (c, ours.per_category[c], v)
    # stronger: the whole arrays, bit for bit
    np.testing.assert_array_equal(ours.precision, ref["precision"])
    np.testing.assert_array_equal(ours.recall, ref["recall"])


# ----------------------------------------------------------------------------- random cases

SIZES = ((12, 16), (24, 20), (150, 180), (300, 400))


def _rect(rng, h, w, min_frac=0.05, max_frac=1.0):
    bw = int(rng.integers(max(1, int(w * min_frac)), max(2, int(w * max_frac)) + 1))
    bh = int(rng.integers(max(1, int(h * min_frac)), max(2, int(h * max_frac)) + 1))
    x = int(rng.integers(0, max(1, w - bw + 1)))
    y = int(rng.integers(0, max(1, h - bh + 1)))
    return [x, y, bw, bh]


def _rle_box(box, h, w):
    r = mask_utils.frPyObjects(np.array([box], np.float64), h, w)[0]
    r["counts"] = r["counts"].decode("ascii")
    return r


def _rle_dense(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    r["counts"] = r["counts"].decode("ascii")
    return r


def _jitter(rng, box, h, w, amount):
    x, y, bw, bh = box
    dx, dy = rng.normal(0, amount * bw), rng.normal(0, amount * bh)
    sw, sh = np.exp(rng.normal(0, amount, 2))
    nw, nh = max(1, int(round(bw * sw))), max(1, int(round(bh * sh)))
    nx = int(np.clip(round(x + dx), 0, w - 1))
    ny = int(np.clip(round(y + dy), 0, h - 1))
    return [nx, ny, max(1, min(nw, w - nx)), max(1, min(nh, h - ny))]


def random_case(seed: int, n_videos=None, n_cats=None, preds_per_video=None, p_crowd=0.15,
                p_null=0.2, polygons=False):
    """A small random GT + results pair exercising every branch of the evaluator."""
    rng = np.random.default_rng(seed)
    n_videos = n_videos or int(rng.integers(1, 6))
    n_cats = n_cats or int(rng.integers(1, 5))
    cat_ids = sorted(rng.choice(np.arange(1, 50), n_cats, replace=False).tolist())
    videos, anns, results = [], [], []
    vid_ids = sorted(rng.choice(np.arange(1, 1000), n_videos, replace=False).tolist())
    rng.shuffle(vid_ids)   # file order differs from id order
    for vid in vid_ids:
        h, w = SIZES[int(rng.integers(0, len(SIZES)))]
        length = int(rng.integers(1, 6))
        videos.append({"id": vid, "length": length, "height": h, "width": w,
                       "file_names": [f"{vid}/{t}.jpg" for t in range(length)]})
        n_gt = int(rng.integers(0, 5))   # 0: a video without GT
        tracks = []
        for _ in range(n_gt):
            cat = int(rng.choice(cat_ids))
            base = _rect(rng, h, w)
            segs, areas, boxes = [], [], []
            for t in range(length):
                if rng.random() < p_null:
                    segs.append(None)
                    areas.append(None)
                    boxes.append(None)
                    continue
                box = _jitter(rng, base, h, w, 0.1)
                if h <= 24 and rng.random() < 0.5:   # irregular shape
                    m = np.zeros((h, w), np.uint8)
                    x, y, bw, bh = box
                    m[y:y + bh, x:x + bw] = rng.random((bh, bw)) < 0.7
                    rle = _rle_dense(m)
                else:
                    rle = _rle_box(box, h, w)
                a = int(mask_utils.area(rle))
                if polygons and rng.random() < 0.5:
                    x, y, bw, bh = box
                    seg = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
                    rle_p = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
                    a = int(mask_utils.area(rle_p))
                    rle = seg
                segs.append(rle)
                areas.append(a if rng.random() > 0.05 else 0)   # an 'areas' entry of 0 is skipped
                boxes.append([float(v) for v in box])
            crowd = int(rng.random() < p_crowd)
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": cat, "iscrowd": crowd,
                         "segmentations": segs, "areas": areas, "bboxes": boxes})
            tracks.append((cat, segs))
        n_pred = preds_per_video if preds_per_video is not None else int(rng.integers(0, 12))
        for _ in range(n_pred):
            kind = rng.random()
            if tracks and kind < 0.6:   # a prediction of a GT track
                cat, gsegs = tracks[int(rng.integers(0, len(tracks)))]
                if rng.random() < 0.2:
                    cat = int(rng.choice(cat_ids))
                segs = []
                for s in gsegs:
                    if rng.random() < p_null / 2:
                        segs.append(None)
                    elif s is None:
                        segs.append(_rle_box(_rect(rng, h, w, 0.05, 0.3), h, w) if rng.random() < 0.3 else None)
                    else:
                        rle = s if isinstance(s, dict) else mask_utils.merge(mask_utils.frPyObjects(s, h, w))
                        if isinstance(rle["counts"], bytes):
                            rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                        bb = [int(round(v)) for v in mask_utils.toBbox(rle)]
                        if rng.random() < 0.3 or bb[2] == 0:
                            segs.append(dict(rle))     # exact copy: IoU ties
                        else:
                            segs.append(_rle_box(_jitter(rng, bb, h, w, 0.15), h, w))
            elif results and kind < 0.7:   # a duplicate of an earlier prediction, other category
                prev = results[int(rng.integers(0, len(results)))]
                if prev["video_id"] != vid:
                    continue
                segs = [dict(s) if s else None for s in prev["segmentations"]]
                cat = int(rng.choice(cat_ids))
            else:   # a false positive, maybe of a category absent from the GT
                segs = [None if rng.random() < p_null else _rle_box(_rect(rng, h, w), h, w) for _ in range(length)]
                cat = int(rng.choice(cat_ids)) if rng.random() < 0.9 else int(rng.integers(50, 60))
            score = float(rng.choice([0.1, 0.5, 0.9])) if rng.random() < 0.3 else float(np.round(rng.random(), 3))
            results.append({"video_id": vid, "category_id": cat, "score": score, "segmentations": segs})
    categories = [{"id": c, "name": f"c{c}"} for c in cat_ids]
    rng.shuffle(categories)
    return {"videos": videos, "annotations": anns, "categories": categories}, results


def crowded_case(seed: int, n_videos=3, length=8, n_gt=5, n_pred=24, h=20, w=24):
    """An OVIS-like crowd at tiny size: one class, every track inside the same region, so most
    same-frame (prediction, GT) mask pairs overlap; irregular masks (runs that start at pixel 0,
    full and empty masks) next to blobs."""
    rng = np.random.default_rng(seed)
    videos, anns, results = [], [], []
    for v in range(n_videos):
        vid = v + 1
        videos.append({"id": vid, "length": length, "height": h, "width": w,
                       "file_names": [f"{vid}/{t}.jpg" for t in range(length)]})

        def blob(cy, cx, r):
            yy, xx = np.mgrid[:h, :w]
            m = ((yy - cy) / r[0]) ** 2 + ((xx - cx) / r[1]) ** 2 <= 1
            kind = rng.random()
            if kind < 0.06:
                m &= rng.random((h, w)) < 0.8
            elif kind < 0.08:
                m[:] = kind < 0.07      # full or empty
            return _rle_dense(m)

        gts = []
        for _ in range(n_gt):
            c = rng.uniform([h * 0.3, w * 0.3], [h * 0.7, w * 0.7])
            r = rng.uniform(2, 8, 2)
            present = rng.random(length) > 0.1
            segs = [blob(*(c + rng.normal(0, 0.5, 2)), r) if present[t] else None for t in range(length)]
            anns.append({"id": len(anns) + 1, "video_id": vid, "category_id": 7, "iscrowd": 0,
                         "segmentations": segs,
                         "areas": [int(mask_utils.area(s)) if s else None for s in segs],
                         "bboxes": [mask_utils.toBbox(s).tolist() if s else None for s in segs]})
            gts.append((c, r))
        for _ in range(n_pred):
            c, r = gts[int(rng.integers(0, n_gt))]
            c, r = c + rng.normal(0, 0.7, 2), r * np.exp(rng.normal(0, 0.15, 2))
            segs = [blob(*(c + rng.normal(0, 0.5, 2)), r) if rng.random() > 0.1 else None for _ in range(length)]
            results.append({"video_id": vid, "category_id": 7, "score": float(np.round(rng.random(), 2)),
                            "segmentations": segs})
    return {"videos": videos, "annotations": anns, "categories": [{"id": 7, "name": "crowd"}]}, results


# ----------------------------------------------------------------------------- tests

@pytest.mark.parametrize("seed", range(60))
def test_random_cases_match_oracle(oracle, seed):
    gt, results = random_case(seed)
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


@pytest.mark.parametrize("seed", range(6))
def test_more_than_100_predictions_per_video(oracle, seed):
    gt, results = random_case(1000 + seed, n_videos=2, n_cats=2, preds_per_video=130)
    assert max(sum(r["video_id"] == v["id"] for r in results) for v in gt["videos"]) > 100
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


@pytest.mark.parametrize("seed", range(4))
def test_crowded_one_class_matches_oracle(oracle, seed):
    gt, results = crowded_case(3000 + seed)
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_rle_runs_areas_and_intersections_match_pycocotools():
    """Areas and intersections on the runs equal pycocotools' area and merge(intersect=True)."""
    from visrc.evaluation import rle_runs

    rng = np.random.default_rng(0)
    masks = []
    for h, w in ((1, 1), (3, 5), (7, 4), (16, 16)):
        for kind in range(8):
            m = np.zeros((h, w), bool)
            if kind == 1:
                m[:] = True
            elif kind == 2:
                m[0, 0] = True                                   # runs start at pixel 0
            elif kind == 3:
                m[-1, -1] = True                                 # a foreground run ends the mask
            elif kind >= 4:
                m = rng.random((h, w)) < (0.2 * kind - 0.6)
            masks.append(m)
    rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
    counts = [r["counts"] if i % 2 else r["counts"].decode("ascii") for i, r in enumerate(rles)]   # bytes and str
    np.testing.assert_array_equal(rle_runs.areas(counts), [mask_utils.area(r) for r in rles])
    pos, start, n_runs, area = rle_runs.decode(counts)
    np.testing.assert_array_equal(area, [m.sum() for m in masks])
    n = len(masks)
    inter = np.zeros(n * n, np.int64)
    same = np.array([[masks[a].shape == masks[b].shape for b in range(n)] for a in range(n)])
    lo, hi = np.argmax(same, axis=1), n - np.argmax(same[:, ::-1], axis=1)   # same-size masks are contiguous
    rle_runs.pair_intersections((pos, start, n_runs), (pos, start, n_runs), lo, hi,
                                np.arange(n) * n, np.arange(n), inter)
    want = np.array([[mask_utils.area(mask_utils.merge([rles[a], rles[b]], True)) if same[a, b] else 0
                      for b in range(n)] for a in range(n)])
    np.testing.assert_array_equal(inter.reshape(n, n), want)
    with pytest.raises(TypeError):
        rle_runs.decode([[1, 2, 3]])


@pytest.mark.parametrize("seed", range(4))
def test_crowd_heavy(oracle, seed):
    gt, results = random_case(2000 + seed, n_videos=4, p_crowd=0.6)
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


@pytest.mark.parametrize("seed", range(4))
def test_null_heavy(oracle, seed):
    gt, results = random_case(3000 + seed, n_videos=4, p_null=0.6)
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


@pytest.mark.parametrize("seed", range(4))
def test_gt_polygons(oracle, seed):
    gt, results = random_case(4000 + seed, n_videos=3, polygons=True)
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_empty_predictions(oracle):
    gt, _ = random_case(7, n_videos=4)
    assert gt["annotations"]
    ours = evaluate_ytvis(gt, [])
    _assert_same(ours, oracle(gt, []))
    assert all(v in (0.0, -1.0) for v in ours.stats.values())


def test_empty_gt_annotations(oracle):
    gt, results = random_case(8, n_videos=3)
    gt["annotations"] = []
    ours = evaluate_ytvis(gt, results)
    _assert_same(ours, oracle(gt, results))
    assert all(v == -1.0 for v in ours.stats.values())


def test_video_without_gt_counts_false_positives(oracle):
    gt, results = random_case(9, n_videos=3)
    extra = {"id": 5000, "length": 2, "height": 24, "width": 20, "file_names": ["a", "b"]}
    gt["videos"].append(extra)
    box = _rle_box([2, 2, 10, 10], 24, 20)
    results.append({"video_id": 5000, "category_id": gt["categories"][0]["id"], "score": 0.99,
                    "segmentations": [box, None]})
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_prediction_for_unknown_video_is_an_error(oracle):
    gt, results = random_case(10, n_videos=2)
    bad = results + [{"video_id": 999999, "category_id": gt["categories"][0]["id"], "score": 0.5,
                      "segmentations": [None]}]
    with pytest.raises(ValueError, match="999999"):
        evaluate_ytvis(gt, bad)
    with pytest.raises(AssertionError):   # the oracle refuses too
        oracle(gt, bad)


def test_categories_absent_from_gt(oracle):
    gt, results = random_case(11, n_videos=3, n_cats=2)
    gt["categories"].append({"id": 777, "name": "never"})    # listed, no GT track
    h = gt["videos"][0]
    segs = [_rle_box([0, 0, 5, 5], h["height"], h["width"])] * h["length"]
    results.append({"video_id": h["id"], "category_id": 777, "score": 0.7, "segmentations": segs})
    results.append({"video_id": h["id"], "category_id": 888, "score": 0.8, "segmentations": segs})  # not listed
    ours = evaluate_ytvis(gt, results)
    _assert_same(ours, oracle(gt, results))
    assert ours.per_category[777] == -1.0
    assert 888 not in ours.per_category


def test_score_ties_keep_file_order(oracle):
    """All scores equal: the stable sort keeps file order, per video and across videos."""
    gt, results = random_case(12, n_videos=4)
    for r in results:
        r["score"] = 0.5
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_perfect_predictions_score_one(oracle):
    gt, _ = random_case(13, n_videos=4, p_crowd=0.0, p_null=0.0)
    results = []
    for a in gt["annotations"]:
        if any(a["segmentations"]):
            results.append({"video_id": a["video_id"], "category_id": a["category_id"], "score": 0.9,
                            "segmentations": a["segmentations"]})
    ours = evaluate_ytvis(gt, results)
    _assert_same(ours, oracle(gt, results))
    assert ours.stats["AP"] == pytest.approx(1.0) and ours.stats["AR100"] == pytest.approx(1.0)


def test_inputs_not_mutated_and_paths_accepted(tmp_path):
    gt, results = random_case(14, n_videos=3)
    gt0, res0 = copy.deepcopy(gt), copy.deepcopy(results)
    a = evaluate_ytvis(gt, results)
    assert gt == gt0 and results == res0
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(results))
    b = evaluate_ytvis(tmp_path / "gt.json", str(tmp_path / "res.json"))
    np.testing.assert_array_equal(a.stats_vector, b.stats_vector)
    d = b.as_dict()
    assert set(d["metrics"]) == set(SUMMARY_KEYS)
    json.dumps(d)


def test_wrong_mask_size_is_an_error():
    """Where a mask meets GT masks, a wrong RLE size would make the oracle mis-score: refused."""
    gt, results = random_case(15, n_videos=2, preds_per_video=3)
    with_gt = {(a["video_id"], a["category_id"]) for a in gt["annotations"] if any(a["segmentations"])}
    i, r = next((i, r) for i, r in enumerate(results)
                if (r["video_id"], r["category_id"]) in with_gt and any(r["segmentations"]))
    t = next(t for t, s in enumerate(r["segmentations"]) if s)
    r["segmentations"][t] = _rle_box([0, 0, 3, 3], 7, 9)
    with pytest.raises(ValueError, match=r"result #%d: 'segmentations'\[%d\] has size \[7, 9\]" % (i, t)):
        evaluate_ytvis(gt, results)


def test_wrong_mask_size_without_gt_is_scored_like_the_oracle(oracle):
    """A prediction meeting no GT of its category only contributes its area, whatever its size."""
    gt, results = random_case(19, n_videos=3)
    v = gt["videos"][0]
    segs = [_rle_box([0, 0, 30, 20], 200, 300) for _ in range(v["length"])]   # 600 px: 'small'
    results.append({"video_id": v["id"], "category_id": 999, "score": 0.9, "segmentations": segs})
    gt["categories"].append({"id": 999, "name": "no_gt_here"})
    gt["annotations"].append({"id": 10 ** 6, "video_id": gt["videos"][-1]["id"], "category_id": 999, "iscrowd": 0,
                              "segmentations": [None] * gt["videos"][-1]["length"],
                              "areas": [None] * gt["videos"][-1]["length"],
                              "bboxes": [None] * gt["videos"][-1]["length"]})
    if gt["videos"][-1]["id"] == v["id"]:
        pytest.skip("needs two videos")
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_uncompressed_rle_predictions_are_accepted():
    gt, results = random_case(16, n_videos=2, preds_per_video=4)
    conv = copy.deepcopy(results)
    for r in conv:
        for t, s in enumerate(r["segmentations"]):
            if s:
                m = mask_utils.decode({"size": s["size"], "counts": s["counts"].encode()})
                flat = m.ravel(order="F")
                runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, len(flat)])
                counts = (np.r_[0, runs] if flat[0] else runs).tolist()
                r["segmentations"][t] = {"size": s["size"], "counts": counts}
    np.testing.assert_array_equal(evaluate_ytvis(gt, results).stats_vector, evaluate_ytvis(gt, conv).stats_vector)


def test_fractional_gt_areas(oracle):
    """GT 'areas' that are not integers (e.g. polygon areas) take the oracle's own mean."""
    gt, results = random_case(17, n_videos=4)
    rng = np.random.default_rng(0)
    for a in gt["annotations"]:
        a["areas"] = [None if v is None else v + float(rng.random()) for v in a["areas"]]
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))


def test_gt_without_areas_field_uses_mask_areas(oracle):
    """The oracle needs 'areas'; without it visrc falls back to the masks' own areas."""
    gt, results = random_case(18, n_videos=4)
    with_mask_areas = copy.deepcopy(gt)
    for a, b in zip(gt["annotations"], with_mask_areas["annotations"]):
        del a["areas"]
        b["areas"] = [None if s is None else float(mask_utils.area(s)) for s in b["segmentations"]]
    _assert_same(evaluate_ytvis(gt, results), oracle(with_mask_areas, results))


@pytest.mark.parametrize("chunk_chars", [1, 200])
def test_masks_decoded_in_small_chunks(oracle, monkeypatch, chunk_chars):
    """Masks decoded a (group, frame) slot at a time, or a few slots at a time, give the same IoUs."""
    import visrc.evaluation.ytvis_eval as ye

    gt, results = random_case(20, n_videos=3, preds_per_video=25)
    ref = oracle(gt, results)
    monkeypatch.setattr(ye, "_CHUNK_CHARS", chunk_chars)
    _assert_same(evaluate_ytvis(gt, results), ref)


def test_tracks_shorter_than_the_video_are_zipped_like_the_oracle(oracle):
    """The oracle zips the two mask sequences, so frames past the shorter one do not count."""
    gt, results = random_case(21, n_videos=3, preds_per_video=6)
    for i, r in enumerate(results):
        if i % 3 == 0 and len(r["segmentations"]) > 1:
            r["segmentations"] = r["segmentations"][:-1]
    for i, a in enumerate(gt["annotations"]):
        if i % 4 == 1 and len(a["segmentations"]) > 1:
            a["segmentations"] = a["segmentations"][1:]
    _assert_same(evaluate_ytvis(gt, results), oracle(gt, results))
