"""visrc.data.ytvis (load / validate / write) and visrc.data.masks (RLE helpers)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visrc.data import masks as M
from visrc.data.ytvis import (
    YTVISFormatError,
    index_annotations,
    load_ytvis,
    validate_ytvis,
    write_ytvis,
)

H1, W1 = 24, 32  # video 1
H2, W2 = 20, 20  # video 2


def rect_mask(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def valid_data() -> dict:
    """A small valid YouTube-VIS 2021 dict: RLE masks, polygons, uncompressed RLE, None frames."""
    m0 = rect_mask(H1, W1, 2, 3, 10, 8)
    m1 = rect_mask(H1, W1, 4, 3, 12, 9)
    poly = [[1.0, 1.0, 9.0, 1.0, 9.0, 6.0, 1.0, 6.0]]
    unc = mask_utils.frPyObjects(poly, H2, W2)[0]  # compressed; make an uncompressed one by hand below
    dense = M.decode_rle({"size": unc["size"], "counts": unc["counts"].decode()})
    return {
        "info": {"description": "hand-made"},
        "licenses": [],
        "categories": [{"id": 1, "name": "person", "supercategory": "object"},
                       {"id": 2, "name": "giant_panda", "supercategory": "object"}],
        "videos": [
            {"id": 1, "width": W1, "height": H1, "length": 3,
             "file_names": ["a/00000.jpg", "a/00005.jpg", "a/00010.jpg"]},
            {"id": 2, "width": W2, "height": H2, "length": 2, "file_names": ["b/00000.jpg", "b/00005.jpg"]},
        ],
        "annotations": [
            {"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentations": [M.encode_mask(m0), None, M.encode_mask(m1)],
             "bboxes": [M.rle_bbox(M.encode_mask(m0)), None, M.rle_bbox(M.encode_mask(m1))],
             "areas": [float(m0.sum()), None, float(m1.sum())]},
            {"id": 2, "video_id": 2, "category_id": 2, "iscrowd": 0,
             "segmentations": [poly, uncompressed_rle(dense)],
             "bboxes": [[1.0, 1.0, 8.0, 5.0], M.rle_bbox(M.to_rle(poly, H2, W2))],
             "areas": [40.0, float(dense.sum())]},
            {"id": 3, "video_id": 1, "category_id": 2, "iscrowd": 0,
             "segmentations": [None, None, None], "bboxes": [None, None, None], "areas": [None, None, None]},
        ],
    }


def uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed RLE computed densely: run lengths in column-major order, starting with zeros."""
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, change, flat.size]
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def dense_bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


# --- round trip ----------------------------------------------------------------------------------

def test_valid_data_is_valid():
    validate_ytvis(valid_data())


def test_round_trip(tmp_path):
    data = valid_data()
    path = write_ytvis(data, tmp_path / "sub" / "train.json")
    assert path == tmp_path / "sub" / "train.json"
    loaded = load_ytvis(path)
    assert loaded == json.loads(json.dumps(data))  # identical up to JSON types
    assert loaded == data
    # masks survive: RLE and polygons decode to the same pixels
    a1 = loaded["annotations"][0]
    assert isinstance(a1["segmentations"][0]["counts"], str)
    assert a1["segmentations"][1] is None
    np.testing.assert_array_equal(M.decode_rle(a1["segmentations"][0]), rect_mask(H1, W1, 2, 3, 10, 8))
    a2 = loaded["annotations"][1]
    np.testing.assert_array_equal(M.decode_rle(M.to_rle(a2["segmentations"][0], H2, W2)),
                                  M.decode_rle(M.to_rle(a2["segmentations"][1], H2, W2)))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left


def test_written_file_is_compact_json(tmp_path):
    path = write_ytvis(valid_data(), tmp_path / "a.json")
    text = path.read_text()
    assert "\n" not in text and ", " not in text and '": ' not in text


def test_write_refuses_invalid_data_and_writes_nothing(tmp_path):
    data = valid_data()
    data["annotations"][0]["category_id"] = 99
    with pytest.raises(YTVISFormatError, match="category_id"):
        write_ytvis(data, tmp_path / "bad.json")
    assert list(tmp_path.iterdir()) == []
    write_ytvis(data, tmp_path / "bad.json", validate=False)  # the escape hatch
    with pytest.raises(YTVISFormatError):
        load_ytvis(tmp_path / "bad.json")
    assert load_ytvis(tmp_path / "bad.json", validate=False) == data


def test_annotations_are_optional():
    data = valid_data()
    del data["annotations"]  # test-set files have none
    validate_ytvis(data)
    assert index_annotations(data) == {1: [], 2: []}


def test_null_annotations_mean_none(tmp_path, capsys):
    """``"annotations": null`` (some YouTube-VIS valid/test releases) reads as no annotations wherever a
    GT file is loaded; any other non-list value is still refused."""
    from visrc.cli import main

    data = valid_data()
    data["annotations"] = None
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(data))
    for validate in (True, False):
        loaded = load_ytvis(path, validate=validate)
        assert loaded["annotations"] == [] and index_annotations(loaded) == {1: [], 2: []}
    in_memory = dict(data)
    assert validate_ytvis(in_memory) == [] and in_memory["annotations"] == []
    assert main(["validate", str(path), "--no-frames"]) == 0
    assert "0 tracks" in capsys.readouterr().out
    (tmp_path / "results.json").write_text("[]")
    assert main(["evaluate", "--gt", str(path), "--results", str(tmp_path / "results.json"), "--no-per-category"]) == 0
    assert "0 GT tracks" in capsys.readouterr().out
    data["annotations"] = "none"
    with pytest.raises(YTVISFormatError, match=r"top level: 'annotations' must be a list or null, got str"):
        validate_ytvis(data, "valid.json")


def test_index_annotations():
    data = valid_data()
    idx = index_annotations(data)
    assert [a["id"] for a in idx[1]] == [1, 3]
    assert [a["id"] for a in idx[2]] == [2]


# --- validation errors name the file, the record and the field -------------------------------------

def check_error(tmp_path, data, *parts):
    """Write ``data`` unvalidated, load it, and check the error names the file and every part."""
    path = tmp_path / "ann.json"
    write_ytvis(data, path, validate=False)
    with pytest.raises(YTVISFormatError) as e:
        load_ytvis(path)
    msg = str(e.value)
    assert msg.startswith(str(path)), msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"
    # and validating in memory names the given source
    with pytest.raises(YTVISFormatError, match="^<memory>: "):
        validate_ytvis(data)
    return msg


@pytest.mark.parametrize("field", ["file_names", "length", "height", "width"])
def test_video_missing_field_names_field(tmp_path, field):
    data = valid_data()
    del data["videos"][1][field]
    check_error(tmp_path, data, f"'{field}'", "missing")


@pytest.mark.parametrize("field", ["file_names", "length"])
def test_video_missing_field_names_video_id(tmp_path, field):
    data = valid_data()
    del data["videos"][1][field]
    check_error(tmp_path, data, "video id=2", f"'{field}'")


def test_video_missing_id(tmp_path):
    data = valid_data()
    del data["videos"][1]["id"]
    check_error(tmp_path, data, "videos[1]", "'id'")


@pytest.mark.parametrize("field", ["video_id", "category_id", "segmentations", "bboxes", "areas"])
def test_annotation_missing_field(tmp_path, field):
    data = valid_data()
    del data["annotations"][1][field]
    check_error(tmp_path, data, "annotation id=2", f"missing field '{field}'")


def test_annotation_missing_id(tmp_path):
    data = valid_data()
    del data["annotations"][2]["id"]
    check_error(tmp_path, data, "annotations[2]", "'id'")


@pytest.mark.parametrize("field", ["id", "name"])
def test_category_missing_field(tmp_path, field):
    data = valid_data()
    del data["categories"][1][field]
    check_error(tmp_path, data, "categories[1]", f"'{field}'")


@pytest.mark.parametrize("key", ["videos", "categories"])
def test_top_level_missing(tmp_path, key):
    data = valid_data()
    del data[key]
    check_error(tmp_path, data, "top level", f"'{key}'")


@pytest.mark.parametrize("key", ["videos", "categories", "annotations"])
def test_top_level_not_a_list(tmp_path, key):
    data = valid_data()
    data[key] = {}
    check_error(tmp_path, data, "top level", f"'{key}'")


@pytest.mark.parametrize("bad", [[], "x", None])
def test_top_level_not_an_object(tmp_path, bad):
    check_error(tmp_path, bad, "top level")


@pytest.mark.parametrize("bad", ["x", 3])
def test_record_not_an_object(tmp_path, bad):
    data = valid_data()
    data["annotations"].append(bad)
    check_error(tmp_path, data, "annotations[3]", "expected an object")


def test_file_names_length_disagrees(tmp_path):
    data = valid_data()
    data["videos"][0]["file_names"].pop()
    check_error(tmp_path, data, "video id=1", "'file_names' has 2 entries", "'length' is 3")


def test_length_disagrees_with_file_names(tmp_path):
    data = valid_data()
    data["videos"][1]["length"] = 5
    check_error(tmp_path, data, "video id=2", "'file_names'", "5")


@pytest.mark.parametrize("field", ["segmentations", "bboxes", "areas"])
@pytest.mark.parametrize("change", ["shorter", "longer"])
def test_annotation_list_length_disagrees(tmp_path, field, change):
    data = valid_data()
    lst = data["annotations"][0][field]
    lst.pop() if change == "shorter" else lst.append(None)
    n = 2 if change == "shorter" else 4
    check_error(tmp_path, data, "annotation id=1", f"'{field}' has {n} entries", "video 1 has length 3")


@pytest.mark.parametrize("field", ["segmentations", "bboxes", "areas"])
def test_annotation_list_not_a_list(tmp_path, field):
    data = valid_data()
    data["annotations"][2][field] = None
    check_error(tmp_path, data, "annotation id=3", f"'{field}'")


@pytest.mark.parametrize("box", [
    [30.0, 3.0, 5.0, 5.0],     # right edge 35 > 32 + 1
    [2.0, 20.0, 5.0, 6.0],     # bottom 26 > 24 + 1
    [-2.0, 3.0, 5.0, 5.0],     # x < -1
    [2.0, -1.5, 5.0, 5.0],     # y < -1
])
def test_box_outside_image_is_a_warning(tmp_path, box):
    data = valid_data()
    data["annotations"][0]["bboxes"][2] = box
    # the official evaluator scores masks only: a box outside the image is a warning, not a refusal
    warnings = validate_ytvis(data)
    assert len([w for w in warnings if "'bboxes'[2]" in w]) == 1
    assert any("outside" in w and "'bboxes'[2]" in w for w in warnings)


@pytest.mark.parametrize("box", [[2.0, 3.0, -1.0, 5.0], [2.0, 3.0, 5.0, -0.5], [2.0, 3.0, 5.0]])
def test_box_malformed(tmp_path, box):
    data = valid_data()
    data["annotations"][0]["bboxes"][0] = box
    check_error(tmp_path, data, "annotation id=1", "'bboxes'[0]", "[x, y, w, h]")


def test_box_not_a_list(tmp_path):
    data = valid_data()
    data["annotations"][0]["bboxes"][0] = 5
    check_error(tmp_path, data, "annotation id=1", "'bboxes'[0]")


@pytest.mark.parametrize("box", [[0.0, 0.0, 32.0, 24.0], [-1.0, -1.0, 33.5, 25.5], [31.5, 23.5, 0.0, 0.0]])
def test_box_on_the_border_within_tolerance_is_valid(box):
    data = valid_data()
    data["annotations"][0]["bboxes"][0] = box
    validate_ytvis(data)


def test_unknown_category(tmp_path):
    data = valid_data()
    data["annotations"][1]["category_id"] = 40
    check_error(tmp_path, data, "annotation id=2", "'category_id' 40")


def test_unknown_video(tmp_path):
    data = valid_data()
    data["annotations"][1]["video_id"] = 7
    check_error(tmp_path, data, "annotation id=2", "'video_id' 7")


def test_duplicate_video_id(tmp_path):
    data = valid_data()
    data["videos"].append(copy.deepcopy(data["videos"][0]))
    check_error(tmp_path, data, "video id=1", "duplicate", "'id'")


def test_duplicate_annotation_id(tmp_path):
    data = valid_data()
    data["annotations"][2]["id"] = 1
    check_error(tmp_path, data, "annotation id=1", "duplicate", "'id'")


def test_duplicate_category_id(tmp_path):
    data = valid_data()
    data["categories"][1]["id"] = 1
    check_error(tmp_path, data, "category id=1", "duplicate", "'id'")


def test_non_positive_image_size(tmp_path):
    data = valid_data()
    data["videos"][1]["height"] = 0
    check_error(tmp_path, data, "video id=2", "'height'/'width'")


@pytest.mark.parametrize("frame", [0, 2])
def test_mask_size_disagrees_with_video(tmp_path, frame):
    data = valid_data()
    data["annotations"][0]["segmentations"][frame] = M.encode_mask(np.ones((H1, W1 + 1), np.uint8))
    msg = check_error(tmp_path, data, "annotation id=1", f"'segmentations'[{frame}]", f"[{H1}, {W1 + 1}]")
    assert f"[{H1}, {W1}]" in msg
    validate_ytvis(data, check_masks=False)  # mask checks can be turned off


def test_uncompressed_rle_size_checked(tmp_path):
    data = valid_data()
    data["annotations"][1]["segmentations"][1] = uncompressed_rle(np.ones((H2 + 2, W2), np.uint8))
    check_error(tmp_path, data, "annotation id=2", "'segmentations'[1]")


def test_source_accepts_paths(tmp_path):
    data = valid_data()
    data["annotations"][1]["category_id"] = 40
    with pytest.raises(YTVISFormatError, match=r"^/x/y\.json: annotation id=2: "):
        validate_ytvis(data, source=__import__("pathlib").Path("/x/y.json"))


def test_error_is_a_value_error():
    assert issubclass(YTVISFormatError, ValueError)


# --- masks ----------------------------------------------------------------------------------------

def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    m = (rng.random((17, 23)) > 0.6).astype(np.uint8)
    rle = M.encode_mask(m)
    assert rle["size"] == [17, 23] and isinstance(rle["counts"], str)
    json.dumps(rle)
    np.testing.assert_array_equal(M.decode_rle(rle), m)
    np.testing.assert_array_equal(M.decode_rle(M.encode_mask(m.astype(bool))), m)


def test_encode_masks_matches_encode_mask():
    rng = np.random.default_rng(1)
    ms = (rng.random((4, 9, 13)) > 0.5).astype(np.uint8)
    assert M.encode_masks(ms) == [M.encode_mask(m) for m in ms]
    assert M.encode_masks(np.zeros((0, 9, 13), np.uint8)) == []


def test_to_rle_none():
    assert M.to_rle(None, 10, 10) is None


def test_to_rle_compressed_str_and_bytes():
    m = rect_mask(10, 12, 1, 2, 5, 7)
    rle = M.encode_mask(m)
    assert M.to_rle(rle, 10, 12) == rle
    as_bytes = {"size": tuple(rle["size"]), "counts": rle["counts"].encode("ascii")}
    out = M.to_rle(as_bytes, 10, 12)
    assert out == rle and isinstance(out["counts"], str) and isinstance(out["size"], list)


def test_to_rle_uncompressed():
    rng = np.random.default_rng(2)
    for m in [(rng.random((11, 7)) > 0.5).astype(np.uint8), np.ones((5, 6), np.uint8),
              np.zeros((5, 6), np.uint8)]:
        rle = M.to_rle(uncompressed_rle(m), *m.shape)
        assert isinstance(rle["counts"], str) and rle["size"] == list(m.shape)
        json.dumps(rle)
        np.testing.assert_array_equal(M.decode_rle(rle), m)


def test_to_rle_polygons():
    poly = [[2.0, 3.0, 10.0, 3.0, 10.0, 8.0, 2.0, 8.0]]  # rectangle x 2..10, y 3..8
    rle = M.to_rle(poly, 20, 20)
    assert isinstance(rle["counts"], str) and rle["size"] == [20, 20]
    json.dumps(rle)
    np.testing.assert_array_equal(M.decode_rle(rle), rect_mask(20, 20, 2, 3, 10, 8))
    # several polygons of one object are merged into one mask
    two = poly + [[12.0, 12.0, 16.0, 12.0, 16.0, 18.0, 12.0, 18.0]]
    m = M.decode_rle(M.to_rle(two, 20, 20))
    np.testing.assert_array_equal(m, rect_mask(20, 20, 2, 3, 10, 8) | rect_mask(20, 20, 12, 12, 16, 18))
    # same as pycocotools' own path
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(two, 20, 20)))
    np.testing.assert_array_equal(m, ref)


@pytest.mark.parametrize("seed", range(5))
def test_rle_area_and_bbox_match_dense(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 40, 2)
    m = np.zeros((h, w), np.uint8)
    y0, x0 = rng.integers(0, h), rng.integers(0, w)
    m[y0:rng.integers(y0, h + 1), x0:rng.integers(x0, w + 1)] = 1
    m |= (rng.random((h, w)) > 0.97).astype(np.uint8)
    rle = M.encode_mask(m)
    assert M.rle_area(rle) == float(m.sum())
    assert M.rle_bbox(rle) == dense_bbox(m)


def test_rle_area_and_bbox_edge_masks():
    empty = M.encode_mask(np.zeros((6, 8), np.uint8))
    assert M.rle_area(empty) == 0.0 and M.rle_bbox(empty) == [0.0, 0.0, 0.0, 0.0]
    full = M.encode_mask(np.ones((6, 8), np.uint8))
    assert M.rle_area(full) == 48.0 and M.rle_bbox(full) == [0.0, 0.0, 8.0, 6.0]
    one = np.zeros((6, 8), np.uint8)
    one[5, 7] = 1
    assert M.rle_bbox(M.encode_mask(one)) == [7.0, 5.0, 1.0, 1.0]


def test_rle_area_bbox_accept_bytes_counts():
    m = rect_mask(10, 10, 1, 1, 4, 6)
    rle = M.encode_mask(m)
    b = {"size": rle["size"], "counts": rle["counts"].encode()}
    assert M.rle_area(b) == 15.0 and M.rle_bbox(b) == [1.0, 1.0, 3.0, 5.0]


def test_nan_box_is_rejected(tmp_path):
    data = valid_data()
    data["annotations"][0]["bboxes"][0] = [float("nan"), 0, 1, 1]
    check_error(tmp_path, data, "annotation id=1", "'bboxes'[0]", "finite")


def test_degenerate_polygons_give_empty_masks():
    from visrc.data.masks import decode_rle, to_rle

    assert decode_rle(to_rle([], 4, 5)).sum() == 0
    assert decode_rle(to_rle([[1, 1, 3, 3]], 4, 5)).sum() == 0
