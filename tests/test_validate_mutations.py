"""Seeded mutations of a valid GT and a valid results file, field by field.

For each named mutation ``visrc validate`` (the CLI entry point, in process) either rejects the file
with exit code 1 and one stderr line naming the file, the record and the field, or accepts it; an
accepted file then goes through ``visrc evaluate`` (perfect predictions still score AP 1) and, on
the GT side, the overlap analysis and one training iteration, without an exception. Each mutation
states which outcome it must have, so a validator that stops checking a field fails here.
"""
from __future__ import annotations

import copy
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from visrc.cli import main

# ------------------------------------------------------------------------------------- base files


@pytest.fixture(scope="module")
def base(toy_small):
    """The toy train split (6 videos of 6 frames, 72x128, compressed RLE) and its frames."""
    data = json.loads((Path(toy_small) / "train" / "instances.json").read_text())
    return data, Path(toy_small) / "train" / "JPEGImages"


def _target(data: dict) -> tuple[int, int]:
    """(index of the first annotation of the first video with a mask in frame 0, 0): the frame the
    training batch (the first two frames of video 1) sees."""
    vid = data["videos"][0]["id"]
    for i, a in enumerate(data["annotations"]):
        if a["video_id"] == vid and a["segmentations"][0] is not None:
            return i, 0
    raise AssertionError("the toy split has no annotation in frame 0 of its first video")


def _split_dir(tmp: Path, data, frames: Path, text: str | None = None) -> Path:
    """``tmp/split/instances.json`` beside ``tmp/split/JPEGImages`` (its video folders linked to the toy's)."""
    split = tmp / "split"
    (split / "JPEGImages").mkdir(parents=True, exist_ok=True)
    for d in frames.iterdir():
        link = split / "JPEGImages" / d.name
        if not link.exists():
            link.symlink_to(d, target_is_directory=True)
    path = split / "instances.json"
    path.write_text(json.dumps(data) if text is None else text)
    return path


def perfect_results(data: dict) -> list[dict]:
    """Every GT track as a prediction (compressed RLE), so a valid GT scores AP 1."""
    from visrc.data.masks import to_rle

    size = {v["id"]: (v["height"], v["width"]) for v in data["videos"]}
    return [{"video_id": a["video_id"], "category_id": a["category_id"], "score": round(0.99 - 0.01 * i, 4),
             "segmentations": [to_rle(s, *size[a["video_id"]]) for s in a["segmentations"]]}
            for i, a in enumerate(data.get("annotations") or [])]


def _rle(mask: np.ndarray) -> dict:
    from visrc.data.masks import encode_mask

    return encode_mask(mask)


def _uncompressed(rle: dict) -> dict:
    from visrc.data.masks import decode_rle

    flat = decode_rle(rle).flatten(order="F")
    bounds = np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]
    counts = np.diff(bounds).tolist()
    return {"size": rle["size"], "counts": ([0] + counts) if flat[0] else counts}


# --------------------------------------------------------------------------------- GT mutations
# name -> (mutate(data, ctx), expected, parts). ``ctx``: the target annotation ``a`` (index ``ai``,
# frame ``t``), the first video ``v``, the split folder ``root``. ``expected`` is "reject" (parts:
# substrings of the error line besides the file) or "accept" (parts: substrings of a warning line).
# ``mutate`` may return a string: the file's text instead of the JSON of ``data``.

def _set(path_fn, value):
    def mutate(d, c):
        obj, key = path_fn(d, c)
        obj[key] = value(d, c) if callable(value) else value
    return mutate


def _seg(value):
    return _set(lambda d, c: (c["a"]["segmentations"], c["t"]), value)


def _rle_field(key, value):
    return _set(lambda d, c: (c["a"]["segmentations"][c["t"]], key), value)


def _del(path_fn):
    def mutate(d, c):
        obj, key = path_fn(d, c)
        del obj[key]
    return mutate


V = lambda key: (lambda d, c: (c["v"], key))            # noqa: E731  the first video's field
A = lambda key: (lambda d, c: (c["a"], key))            # noqa: E731  the target annotation's field
AF = lambda key: (lambda d, c: (c["a"][key], c["t"]))   # noqa: E731  its entry of the target frame
ANN = ["annotation id={aid}", "annotations[{ai}]"]
VID = ["video id={vid}", "videos[0]"]


def _mixed_sizes(d, c):
    from PIL import Image
    (c["root"] / "JPEGImages" / "odd").mkdir()
    Image.new("RGB", (130, 72)).save(c["root"] / "JPEGImages" / "odd" / "00000.jpg")
    c["v"]["file_names"][0] = "odd/00000.jpg"


def _box_outside(d, c):
    x, y, w, h = c["a"]["bboxes"][c["t"]]
    c["a"]["bboxes"][c["t"]] = [x, y, w, 72 - y + 3.5]     # 3.5 px below the 72-pixel image


def _uncompressed_frame(d, c):
    c["a"]["segmentations"][c["t"]] = _uncompressed(c["a"]["segmentations"][c["t"]])


def _polygon_frame(d, c):
    x, y, w, h = c["a"]["bboxes"][c["t"]]
    c["a"]["segmentations"][c["t"]] = [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _null_frame(d, c):
    for f in ("segmentations", "bboxes", "areas"):
        c["a"][f][c["t"]] = None


def _box_only(d, c):
    c["a"]["segmentations"][c["t"]] = c["a"]["areas"][c["t"]] = None


def _extra_fields(d, c):
    c["a"]["note"], c["v"]["date_captured"] = "checked by hand", "2019-01-01"
    d["info"] = {"description": "mutated"}
    d["categories"].append({"id": 99, "name": "zebra", "supercategory": "animal"})


def _drop_video_annotations(d, c):
    vid = d["videos"][1]["id"]
    d["annotations"] = [a for a in d["annotations"] if a["video_id"] != vid]


def _extra_run(d, c):
    c["a"]["segmentations"][c["t"]]["counts"] += "1"      # one more pixel than the image has


def _wrong_size_rle(d, c):
    c["a"]["segmentations"][c["t"]] = _rle(np.ones((72, 129), np.uint8))


GT_MUTATIONS = {
    # --- videos
    "video_height_string": (_set(V("height"), "abc"), "reject", VID + ["'height'"]),
    "video_height_null": (_set(V("height"), None), "reject", VID + ["'height'"]),
    "video_height_float": (_set(V("height"), 72.0), "reject", VID + ["'height'"]),
    "video_width_zero": (_set(V("width"), 0), "reject", VID + ["'width'"]),
    "video_id_list": (_set(V("id"), [1]), "reject", ["videos[0]", "'id'"]),
    "video_length_bool": (_set(V("length"), True), "reject", VID + ["'length'"]),
    "video_length_disagrees": (_set(V("length"), 7), "reject", VID + ["'length'", "'file_names'"]),
    "video_duplicate_id": (_set(lambda d, c: (d["videos"][1], "id"), lambda d, c: c["v"]["id"]), "reject",
                           ["video id={vid}", "videos[1]", "'id'", "duplicate"]),
    "file_name_not_string": (_set(lambda d, c: (c["v"]["file_names"], 2), 5), "reject", VID + ["'file_names'[2]"]),
    "frame_missing_on_disk": (_set(lambda d, c: (c["v"]["file_names"], 1), "nope/00001.jpg"), "reject",
                              VID + ["'file_names'[1]", "no such file"]),
    "frames_of_mixed_sizes": (_mixed_sizes, "reject", VID + ["'file_names'[0]", "130x72"]),
    "videos_missing": (_del(lambda d, c: (d, "videos")), "reject", ["top level", "'videos'"]),
    # --- categories
    "category_id_string": (_set(lambda d, c: (d["categories"][0], "id"), "1"), "reject", ["categories[0]", "'id'"]),
    "category_name_null": (_set(lambda d, c: (d["categories"][0], "name"), None), "reject",
                           ["category id=1", "categories[0]", "'name'"]),
    "category_duplicate_name": (_set(lambda d, c: (d["categories"][1], "name"), "fish"), "reject",
                                ["categories[1]", "'name'"]),
    # --- annotations: ids and references
    "annotation_id_bool": (_set(A("id"), True), "reject", ["annotations[{ai}]", "'id'"]),
    "annotation_id_beyond_64_bits": (_set(A("id"), 10 ** 30), "reject", ["annotations[{ai}]", "'id'", "64 bits"]),
    "annotation_duplicate_id": (_set(lambda d, c: (d["annotations"][c["ai"] + 1], "id"), lambda d, c: c["a"]["id"]),
                                "reject", ["annotation id={aid}", "annotations[{ai1}]", "'id'", "duplicate"]),
    "annotation_missing_video_id": (_del(A("video_id")), "reject", ANN + ["'video_id'"]),
    "annotation_video_id_list": (_set(A("video_id"), [1]), "reject", ANN + ["'video_id'"]),
    "annotation_unknown_video": (_set(A("video_id"), 999), "reject", ANN + ["'video_id'"]),
    "annotation_unknown_category": (_set(A("category_id"), 99), "reject", ANN + ["'category_id'"]),
    "annotation_category_float": (_set(A("category_id"), 3.0), "reject", ANN + ["'category_id'"]),
    "annotation_not_an_object": (lambda d, c: d["annotations"].append("x"), "reject",
                                 ["annotations[{n_ann}]", "expected an object"]),
    "annotations_not_a_list": (_set(lambda d, c: (d, "annotations"), {}), "reject", ["top level", "'annotations'"]),
    "iscrowd_yes": (_set(A("iscrowd"), "yes"), "reject", ANN + ["'iscrowd'"]),
    "iscrowd_2": (_set(A("iscrowd"), 2), "reject", ANN + ["'iscrowd'"]),
    "iscrowd_true": (_set(A("iscrowd"), True), "reject", ANN + ["'iscrowd'"]),
    "weak_mask_string": (_set(A("weak_mask"), "no"), "reject", ANN + ["'weak_mask'"]),
    # --- per-frame lists
    "segmentations_shorter": (_set(A("segmentations"), lambda d, c: c["a"]["segmentations"][:-1]), "reject",
                              ANN + ["'segmentations'"]),
    "segmentations_not_a_list": (_set(A("segmentations"), {}), "reject", ANN + ["'segmentations'"]),
    "areas_longer": (_set(A("areas"), lambda d, c: c["a"]["areas"] + [None]), "reject", ANN + ["'areas'"]),
    "segmentation_garbage_string": (_seg("garbage"), "reject", ANN + ["'segmentations'[{t}]"]),
    "segmentation_number": (_seg(7), "reject", ANN + ["'segmentations'[{t}]"]),
    "rle_counts_undecodable": (_rle_field("counts", "garbage!"), "reject", ANN + ["'segmentations'[{t}]['counts']"]),
    "rle_counts_truncated": (_rle_field("counts", lambda d, c: c["a"]["segmentations"][c["t"]]["counts"][:-1]),
                             "reject", ANN + ["'segmentations'[{t}]['counts']"]),
    "rle_counts_extra_run": (_extra_run, "reject", ANN + ["'segmentations'[{t}]['counts']"]),
    "rle_counts_number": (_rle_field("counts", 5), "reject", ANN + ["'segmentations'[{t}]['counts']"]),
    "rle_missing_counts": (_del(lambda d, c: (c["a"]["segmentations"][c["t"]], "counts")), "reject",
                           ANN + ["'segmentations'[{t}]", "'counts'"]),
    "rle_size_of_strings": (_rle_field("size", ["72", "128"]), "reject", ANN + ["'segmentations'[{t}]['size']"]),
    "rle_wrong_size": (_wrong_size_rle, "reject", ANN + ["'segmentations'[{t}]", "[72, 129]"]),
    "uncompressed_rle_wrong_sum": (_seg({"size": [72, 128], "counts": [72 * 128 - 1]}), "reject",
                                   ANN + ["'segmentations'[{t}]['counts']"]),
    "uncompressed_rle_negative": (_seg({"size": [72, 128], "counts": [-1, 72 * 128 + 1]}), "reject",
                                  ANN + ["'segmentations'[{t}]['counts']"]),
    "polygon_too_short": (_seg([[1.0, 2.0, 3.0, 4.0]]), "reject", ANN + ["'segmentations'[{t}][0]"]),
    "polygon_with_string": (_seg([[1, 2, 30, 2, 30, "9"]]), "reject", ANN + ["'segmentations'[{t}][0]"]),
    "polygon_list_empty": (_seg([]), "reject", ANN + ["'segmentations'[{t}]"]),
    "polygon_far_outside": (_seg([[0, 0, 10 ** 6, 0, 10 ** 6, 10, 0, 10]]), "reject",
                            ANN + ["'segmentations'[{t}][0]", "far outside"]),
    "bbox_string": (_set(AF("bboxes"), "1,2,3,4"), "reject", ANN + ["'bboxes'[{t}]"]),
    "bbox_nan": (_set(AF("bboxes"), [math.nan, 1.0, 2.0, 3.0]), "reject", ANN + ["'bboxes'[{t}]"]),
    "bbox_negative_width": (_set(AF("bboxes"), [1.0, 1.0, -2.0, 3.0]), "reject", ANN + ["'bboxes'[{t}]"]),
    "area_string": (_set(AF("areas"), "big"), "reject", ANN + ["'areas'[{t}]"]),
    "area_negative": (_set(AF("areas"), -5.0), "reject", ANN + ["'areas'[{t}]"]),
    "area_infinite": (_set(AF("areas"), math.inf), "reject", ANN + ["'areas'[{t}]"]),
    "area_null_beside_a_mask": (_set(AF("areas"), None), "reject", ANN + ["'areas'[{t}]"]),
    # --- the file itself
    "top_level_list": (lambda d, c: "[]", "reject", ["top level"]),
    "truncated_json": (lambda d, c: json.dumps(d)[:500], "reject", ["not valid JSON", "line 1"]),
    # --- accepted: what does not change the metric, and legal variants
    "box_outside_image": (_box_outside, "accept", ANN + ["'bboxes'[{t}]", "outside"]),
    "area_disagrees_with_mask": (_set(AF("areas"), lambda d, c: c["a"]["areas"][c["t"]] + 50), "accept",
                                 ANN + ["'segmentations'[{t}]", "pixels"]),
    "box_without_mask": (_box_only, "accept", ANN + ["frame {t}", "a box but no mask"]),
    "iscrowd_1": (_set(A("iscrowd"), 1), "accept", []),
    "iscrowd_missing": (_del(A("iscrowd")), "accept", []),
    "weak_mask_true": (_set(A("weak_mask"), True), "accept", []),
    "uncompressed_rle": (_uncompressed_frame, "accept", []),
    "polygon": (_polygon_frame, "accept", []),
    "polygon_a_little_outside": (_seg([[-3.0, -3.0, 20.0, -3.0, 20.0, 20.0, -3.0, 20.0]]), "accept", []),
    "null_frame": (_null_frame, "accept", []),
    "extra_fields_and_category": (_extra_fields, "accept", []),
    "video_without_annotations": (_drop_video_annotations, "accept", []),
    "no_annotations_key": (_del(lambda d, c: (d, "annotations")), "accept", []),
    "large_annotation_id": (_set(A("id"), 10 ** 12), "accept", []),
}


def _ctx(data: dict, root: Path) -> dict:
    ai, t = _target(data)
    return {"a": data["annotations"][ai], "ai": ai, "t": t, "v": data["videos"][0], "root": root}


def mutated_gt(name: str, base, tmp: Path) -> tuple[Path, dict, list[str]]:
    """Apply GT mutation ``name`` to a copy of the base split; returns (file, data, expected parts)."""
    mutate, _, parts = GT_MUTATIONS[name]
    data, frames = copy.deepcopy(base[0]), base[1]
    path = _split_dir(tmp, {}, frames)
    c = _ctx(data, path.parent)
    ids = dict(aid=c["a"]["id"], ai=c["ai"], ai1=c["ai"] + 1, t=c["t"], vid=c["v"]["id"],
               n_ann=len(data["annotations"]))
    text = mutate(data, c)
    path.write_text(text if isinstance(text, str) else json.dumps(data))
    return path, data, [p.format(**ids) for p in parts]


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in lines[0]
    return lines[0]


def _evaluate(gt: Path, results: Path, tmp: Path, capsys) -> dict:
    out = tmp / "metrics.json"
    rc = main(["evaluate", "--gt", str(gt), "--results", str(results), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(out.read_text())["metrics"]


def test_enough_distinct_mutations():
    assert len(GT_MUTATIONS) + len(RESULT_MUTATIONS) >= 30
    for table in (GT_MUTATIONS, RESULT_MUTATIONS):
        outcomes = {e[1] for e in table.values()}
        assert outcomes == {"reject", "accept"}


@pytest.mark.parametrize("name", sorted(GT_MUTATIONS))
def test_gt_mutation(name, base, tmp_path, capsys):
    from visrc.analysis.overlap import object_overlap, overlap_summary

    _, expected_outcome, _ = GT_MUTATIONS[name]
    path, data, parts = mutated_gt(name, base, tmp_path)
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    if expected_outcome == "reject":
        assert rc == 1, f"accepted: {out}{err}"
        line = _one_line(err)
        assert line.startswith(f"visrc validate: error: {path}"), line
        for p in parts:
            assert p in line, f"{p!r} not in {line!r}"
        return
    assert rc == 0, err
    assert "OK" in out and "frames checked" in out
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == len(err.strip().splitlines()), err      # nothing else on stderr
    if parts:
        assert len(warnings) == 1 and str(path) in warnings[0], err
        for p in parts:
            assert p in warnings[0], f"{p!r} not in {warnings[0]!r}"
    else:
        assert not warnings, err
    # the accepted file: evaluate (perfect predictions score AP 1) and the overlap analysis
    res = tmp_path / "results.json"
    res.write_text(json.dumps(perfect_results(data)))
    metrics = _evaluate(path, res, tmp_path, capsys)
    assert metrics["AP"] == (1.0 if data.get("annotations") else -1.0), metrics
    df = object_overlap(data)
    assert len(df) == len(data.get("annotations", []))
    overlap_summary(df)


# ------------------------------------------------------------------------- seeded random mutations

POOL = [None, "garbage", "1", -1, 0, 1, 2.5, True, [], {}, [1], math.nan, math.inf, 10 ** 30]


TOP = {"annotations": 0.6, "videos": 0.25, "categories": 0.1, "info": 0.05}


def random_mutation(data, rng, top: dict | None = TOP) -> tuple[list, str]:
    """Walk from the top (by the weights ``top`` of its keys, if given) to a random field, entering a
    container with probability 0.8, and replace it with a value of :data:`POOL` or delete it.
    Returns (its path, what was done)."""
    node, path = data, []
    while True:
        if not path and top:
            key = str(rng.choice(list(top), p=list(top.values())))
        else:
            key = str(rng.choice(sorted(node))) if isinstance(node, dict) else int(rng.integers(len(node)))
        child = node[key]
        path.append(key)
        if isinstance(child, (dict, list)) and child and rng.random() < 0.8:
            node = child
            continue
        if isinstance(node, dict) and rng.random() < 0.15:
            del node[key]
            return path, "deleted"
        node[key] = copy.deepcopy(POOL[int(rng.integers(len(POOL)))])
        return path, f"set to {node[key]!r}"


@pytest.mark.parametrize("seed", range(40))
def test_seeded_random_gt_mutation(seed, base, tmp_path, capsys):
    """Rejected with one line naming the file and the field, or accepted and then evaluated and
    analysed without an exception."""
    from visrc.analysis.overlap import object_overlap, overlap_summary

    data = copy.deepcopy(base[0])
    path_in_file, done = random_mutation(data, np.random.default_rng(seed))
    path = _split_dir(tmp_path, data, base[1])
    rc = main(["validate", str(path)])
    out, err = capsys.readouterr()
    if rc != 0:
        line = _one_line(err)
        assert line.startswith(f"visrc validate: error: {path}: "), line
        field = [k for k in path_in_file if isinstance(k, str)][-1]
        assert field in line, f"{path_in_file} {done}: {line}"
        return
    assert "OK" in out, err
    res = tmp_path / "results.json"
    res.write_text(json.dumps(perfect_results(data)))
    _evaluate(path, res, tmp_path, capsys)
    overlap_summary(object_overlap(data))


# ----------------------------------------------------------------------------- results mutations

@pytest.fixture(scope="module")
def gt_file(base, tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gt") / "instances.json"
    path.write_text(json.dumps(base[0]))
    return path, base[0]


def _results(gt: dict) -> list[dict]:
    """Perfect predictions plus a false positive of another class (the first track's masks)."""
    res = perfect_results(gt)
    fp = copy.deepcopy(res[0])
    fp["category_id"], fp["score"] = 1 + fp["category_id"] % 6, 0.05
    return res + [fp]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _r(i, key, value):
    def mutate(r):
        r[i][key] = value(r) if callable(value) else value
    return mutate


def _rseg(i, t, value):
    def mutate(r):
        r[i]["segmentations"][t] = value(r) if callable(value) else value
    return mutate


def _first_mask(r) -> int:
    return next(t for t, s in enumerate(r[1]["segmentations"]) if s is not None)


def _rmask(key, value):
    def mutate(r):
        s = r[1]["segmentations"][_first_mask(r)]
        s[key] = value(s) if callable(value) else value
    return mutate


# name -> (mutate(results) -> None | ("json", text) | ("zip", bytes), expected, parts); "{t}" is the
# first frame of result[1] with a mask, "{file}" the name of the results file.
RESULT_MUTATIONS = {
    "results_not_a_list": (lambda r: ("json", json.dumps({"results": r})), "reject", ["top level", "list"]),
    "result_not_an_object": (lambda r: r.__setitem__(1, "x"), "reject", ["result[1]", "expected an object"]),
    "result_missing_score": (lambda r: r[1].pop("score"), "reject", ["result[1]", "'score'"]),
    "score_nan": (_r(1, "score", math.nan), "reject", ["result[1]", "'score'"]),
    "score_infinite": (_r(1, "score", math.inf), "reject", ["result[1]", "'score'"]),
    "score_string": (_r(1, "score", "0.9"), "reject", ["result[1]", "'score'"]),
    "score_bool": (_r(1, "score", True), "reject", ["result[1]", "'score'"]),
    "video_id_list": (_r(1, "video_id", [1]), "reject", ["result[1]", "'video_id'"]),
    "video_id_float": (_r(1, "video_id", 1.0), "reject", ["result[1]", "'video_id'"]),
    "video_id_unknown": (_r(1, "video_id", 999), "reject", ["result[1]", "'video_id'"]),
    "category_id_unknown": (_r(1, "category_id", 99), "reject", ["result[1]", "'category_id'"]),
    "category_id_null": (_r(1, "category_id", None), "reject", ["result[1]", "'category_id'"]),
    "segmentations_shorter": (_r(1, "segmentations", lambda r: r[1]["segmentations"][:-1]), "reject",
                              ["result[1]", "'segmentations'"]),
    "segmentations_string": (_r(1, "segmentations", "garbage"), "reject", ["result[1]", "'segmentations'"]),
    "segmentation_garbage_string": (lambda r: _rseg(1, _first_mask(r), "garbage")(r), "reject",
                                    ["result[1]", "'segmentations'[{t}]"]),
    "segmentation_empty_object": (lambda r: _rseg(1, _first_mask(r), {})(r), "reject",
                                  ["result[1]", "'segmentations'[{t}]"]),
    "segmentation_polygon": (lambda r: _rseg(1, _first_mask(r), [[1, 1, 9, 1, 9, 9]])(r), "reject",
                             ["result[1]", "'segmentations'[{t}]"]),
    "rle_uncompressed": (_rmask("counts", [72 * 128]), "reject", ["result[1]", "'segmentations'[{t}]", "compressed"]),
    "rle_counts_undecodable": (_rmask("counts", "!!!"), "reject", ["result[1]", "'segmentations'[{t}]['counts']"]),
    "rle_counts_extra_run": (_rmask("counts", lambda s: s["counts"] + "1"), "reject",
                             ["result[1]", "'segmentations'[{t}]['counts']"]),
    "rle_wrong_size": (_rmask("size", [10, 10]), "reject", ["result[1]", "'segmentations'[{t}]", "[10, 10]"]),
    "truncated_json": (lambda r: ("json", json.dumps(r)[:300]), "reject", ["not valid JSON"]),
    "zip_empty": (lambda r: ("zip", _zip({})), "reject", ["results.json", "zip"]),
    "zip_corrupt": (lambda r: ("zip", b"PK\x03\x04 not really a zip" * 20), "reject", ["zip"]),
    "zip_truncated": (lambda r: ("zip", _zip({"results.json": json.dumps(r).encode()})[:200]), "reject", ["zip"]),
    "zip_wrong_member": (lambda r: ("zip", _zip({"res.json": json.dumps(r).encode()})), "reject",
                         ["results.json", "res.json"]),
    "zip_bad_json": (lambda r: ("zip", _zip({"results.json": b"[{"})), "reject", ["results.json", "not valid JSON"]),
    "zip_invalid_entry": (lambda r: ("zip", _zip({"results.json": json.dumps(
        [dict(r[0], score=math.nan)]).encode()})), "reject", ["result[0]", "'score'"]),
    # --- accepted
    "empty_list": (lambda r: r.clear(), "accept", []),
    "track_without_masks": (lambda r: r[-1].__setitem__("segmentations", [None] * len(r[-1]["segmentations"])),
                            "accept", ["result[{last}]", "no frame has a mask"]),
    "extra_fields": (_r(0, "model", "toy"), "accept", []),
    "integer_score": (_r(0, "score", 1), "accept", []),
    "negative_score": (lambda r: r[-1].__setitem__("score", -0.5), "accept", []),   # the false positive
    "duplicate_prediction": (lambda r: r.append(dict(copy.deepcopy(r[0]), score=0.01)), "accept", []),
    "zip": (lambda r: ("zip", _zip({"results.json": json.dumps(r).encode()})), "accept", []),
    "zip_in_a_folder": (lambda r: ("zip", _zip({"sub/results.json": json.dumps(r).encode()})), "accept",
                        ["sub/results.json", "top of the zip"]),
}


@pytest.mark.parametrize("name", sorted(RESULT_MUTATIONS))
def test_results_mutation(name, gt_file, tmp_path, capsys):
    gt_path, gt = gt_file
    mutate, expected_outcome, parts = RESULT_MUTATIONS[name]
    results = _results(gt)
    t = _first_mask(results)
    out = mutate(results)
    kind, payload = out if isinstance(out, tuple) else ("json", json.dumps(results))
    path = tmp_path / ("submission.zip" if kind == "zip" else "results.json")
    path.write_bytes(payload if isinstance(payload, bytes) else payload.encode())
    rc = main(["validate", str(path), "--gt", str(gt_path)])
    stdout, err = capsys.readouterr()
    parts = [p.format(t=t, last=len(results) - 1) for p in parts]
    if expected_outcome == "reject":
        assert rc == 1, f"accepted: {stdout}{err}"
        line = _one_line(err)
        assert line.startswith(f"visrc validate: error: {path}"), line
        for p in parts:
            assert p in line, f"{p!r} not in {line!r}"
        return
    assert rc == 0, err
    warnings = err.strip().splitlines()
    if parts:
        assert len(warnings) == 1 and warnings[0].startswith(f"warning: {path}"), err
        for p in parts:
            assert p in warnings[0], f"{p!r} not in {warnings[0]!r}"
    else:
        assert not warnings, err
    metrics = _evaluate(gt_path, path, tmp_path, capsys)
    assert metrics["AP"] == (0.0 if name == "empty_list" else 1.0), metrics


@pytest.mark.parametrize("seed", range(20))
def test_seeded_random_results_mutation(seed, gt_file, tmp_path, capsys):
    gt_path, gt = gt_file
    results = _results(gt)
    path_in_file, done = random_mutation(results, np.random.default_rng(1000 + seed), top=None)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    rc = main(["validate", str(path), "--gt", str(gt_path)])
    err = capsys.readouterr().err
    if rc != 0:
        line = _one_line(err)
        assert line.startswith(f"visrc validate: error: {path}: "), line
        named = [k for k in path_in_file if isinstance(k, str)]
        assert (named[-1] if named else "result[") in line, f"{path_in_file} {done}: {line}"
        return
    _evaluate(gt_path, path, tmp_path, capsys)


# ------------------------------------------------------------------- training on an accepted GT

TRAINED = ["iscrowd_1", "polygon", "polygon_a_little_outside", "uncompressed_rle", "box_outside_image", "box_without_mask",
           "area_disagrees_with_mask", "extra_fields_and_category"]
# one GT with several accepted changes, each on a frame the training batch (frames 0 and 1 of video 1) sees
COMBINED = [("polygon", 0, 0), ("iscrowd_1", 0, 0), ("box_outside_image", 0, 1), ("uncompressed_rle", 1, 0),
            ("area_disagrees_with_mask", 1, 1), ("extra_fields_and_category", 1, 1)]


@pytest.fixture(scope="module")
def model():
    import torch
    from mmdet.registry import MODELS

    from helpers import tiny_cfg

    torch.manual_seed(0)
    return MODELS.build(tiny_cfg("toy_baseline").model).train()


def _train_one_iteration(gt_text: str, frames: Path, model, tmp: Path) -> None:
    """One forward/backward pass of toy_baseline on the first two frames of a data root holding this GT."""
    import torch

    from helpers import tiny_cfg, video_batch

    root = tmp / "root"
    (root / "train").mkdir(parents=True)
    (root / "train" / "instances.json").write_text(gt_text)
    (root / "train" / "JPEGImages").symlink_to(frames, target_is_directory=True)
    _, batch = video_batch(tiny_cfg("toy_baseline", root))
    model.zero_grad()
    loss, _ = model.parse_losses(model.loss(**model.data_preprocessor(batch, True)))
    assert torch.isfinite(loss)
    loss.backward()


def test_one_training_iteration_on_an_accepted_gt(base, model, tmp_path, capsys):
    data = copy.deepcopy(base[0])
    path = _split_dir(tmp_path, data, base[1])
    vid = data["videos"][0]["id"]
    seen = [i for i, a in enumerate(data["annotations"])
            if a["video_id"] == vid and a["segmentations"][0] is not None and a["segmentations"][1] is not None]
    assert len(seen) >= 2
    for name, k, t in COMBINED:
        assert GT_MUTATIONS[name][1] == "accept"
        GT_MUTATIONS[name][0](data, {"a": data["annotations"][seen[k]], "ai": seen[k], "t": t,
                                     "v": data["videos"][0], "root": path.parent})
    path.write_text(json.dumps(data))
    assert main(["validate", str(path)]) == 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 2        # the box and the area warnings
    _train_one_iteration(path.read_text(), base[1], model, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED)
def test_one_training_iteration_per_accepted_mutation(name, base, model, tmp_path):
    assert GT_MUTATIONS[name][1] == "accept"
    path, _, _ = mutated_gt(name, base, tmp_path / "data")
    _train_one_iteration(path.read_text(), path.parent / "JPEGImages", model, tmp_path)
