"""The segmentation checks of visrc.data.masks: the same objects through visrc.data.ytvis, both
decoding paths of rle_string_sums, and check_segmentation's one-line messages."""
from __future__ import annotations

import numpy as np
import pytest

from visrc.data import masks, ytvis
from visrc.data.masks import (YTVISFormatError, check_rle_strings, check_segmentation, encode_mask,
                              rle_string_sums)

SHARED = ("YTVISFormatError", "FormatWarnings", "check_segmentation", "check_rle_strings", "rle_string_sums",
          "is_int", "is_number", "show", "what", "AREA_TOLERANCE")


@pytest.mark.parametrize("name", SHARED)
def test_ytvis_reexports_the_mask_checks(name):
    assert getattr(ytvis, name) is getattr(masks, name)


def test_numpy_and_compiled_paths_agree(monkeypatch):
    rng = np.random.default_rng(3)
    strings = [encode_mask(rng.random((7, 9)) < 0.4)["counts"] for _ in range(40)]
    strings += ["", "o", "61", "P" * 7 + "0", "é1", "ab!"]
    a = rle_string_sums(strings)
    monkeypatch.setattr(masks, "RLE_NUMPY_CHARS", -1)        # every string through the compiled loop
    b = rle_string_sums(strings)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1][a[0] >= 0], b[1][b[0] >= 0])
    assert (a[0][:40] == 63).all() and a[0][40:].tolist() == [0, -1, 7, -1, -1, -1]


def _check(segm, compressed_only=False):
    pending: list = []
    check_segmentation(segm, "annotation id=7", "'segmentations'[0]", 4, 5, "gt.json", pending,
                       compressed_only=compressed_only, at=" (annotations[0])")
    check_rle_strings(pending, "gt.json")


@pytest.mark.parametrize("segm, message", [
    ({"size": [4, 5]}, "'segmentations'[0] is an RLE without 'counts'"),
    ({"size": [4, 6], "counts": "0"}, "has size [4, 6] but the video is [4, 5]"),
    ({"size": "4x5", "counts": "0"}, "['size'] must be [height, width] integers"),
    ({"size": [4, 5], "counts": "garbage"}, "is not a compressed RLE of a 4x5 mask (it does not decode)"),
    ({"size": [4, 5], "counts": [3, 4]}, "['counts'] adds up to 7 pixels, not 4x5 = 20"),
    ({"size": [4, 5], "counts": [30, -10]}, "['counts'] must hold non-negative integers, got int -10"),
    ({"size": [4, 5], "counts": 5}, "['counts'] must be a string or a list of run lengths, got int"),
    ([], "is an empty list of polygons"),
    ([[0, 0, 1, 1]], "[0] must be a polygon [x1, y1, x2, y2, ...] of >= 3 points"),
    ([[0, 0, 1, 1, 500, 1]], "has the point (500, 1) far outside the 5x4 image"),
    ("garbage", "must be null or an RLE {'size', 'counts'} or a list of polygons, got str 'garbage'"),
])
def test_bad_segmentations_name_file_record_and_field(segm, message):
    with pytest.raises(YTVISFormatError) as e:
        _check(segm)
    text = str(e.value)
    assert text.startswith("gt.json: annotation id=7: 'segmentations'[0]") and message in text
    assert text.endswith(" (annotations[0])") and "\n" not in text


def test_valid_segmentations_pass():
    m = np.zeros((4, 5), np.uint8)
    m[1:3, 1:4] = 1
    for segm in (None, encode_mask(m), {"size": [4, 5], "counts": [5, 15]}, [[0, 0, 3, 0, 3, 2]]):
        _check(segm)
    with pytest.raises(YTVISFormatError, match="must be compressed RLE"):
        _check({"size": [4, 5], "counts": [5, 15]}, compressed_only=True)
