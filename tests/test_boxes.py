"""visrc.data.boxes (box IoU), visrc.data.embeddings (unit rows) and the batch helpers of visrc.data.masks."""
from __future__ import annotations

import numpy as np
import pytest

from visrc.data.boxes import box_iou, paired_box_iou
from visrc.data.embeddings import unit_rows
from visrc.data.masks import box_rle, decode_rle, decode_rles, encode_masks


def _random_xywh(rng, n: int) -> np.ndarray:
    """Random boxes with integer-grid ones mixed in (touching, identical, zero-area)."""
    real = np.c_[rng.uniform(0, 50, (n, 2)), rng.uniform(0, 30, (n, 2))]
    grid = np.c_[rng.integers(0, 6, (n, 2)), rng.integers(0, 4, (n, 2))].astype(float)
    return np.where(rng.random((n, 1)) < 0.5, real, grid)


# --- xywh ----------------------------------------------------------------------------------------

def test_xywh_known_values():
    a = np.array([[0, 0, 10, 10]] * 5)
    b = np.array([[0, 0, 10, 10],     # identical -> 1
                  [20, 20, 5, 5],     # disjoint -> 0
                  [5, 0, 10, 10],     # half shifted: inter 50, union 150 -> 1/3
                  [0, 0, 5, 10],      # contained half: inter 50, union 100 -> 1/2
                  [10, 0, 10, 10]])   # touching edge -> 0
    np.testing.assert_allclose(paired_box_iou(a, b, "xywh"), [1.0, 0.0, 1 / 3, 0.5, 0.0])
    np.testing.assert_allclose(paired_box_iou(b, a, "xywh"), paired_box_iou(a, b, "xywh"))   # symmetric
    np.testing.assert_array_equal(box_iou(a[:1], b, "xywh")[0], paired_box_iou(a, b, "xywh"))


def test_xywh_zero_area_is_zero_not_nan():
    iou = paired_box_iou([[3, 3, 0, 0], [3, 3, 0, 5]], [[3, 3, 0, 0], [3, 3, 0, 5]], "xywh")
    assert iou.tolist() == [0.0, 0.0]


def test_xywh_matrix_equals_pycocotools_bit_for_bit():
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (7, 3), (60, 45)]:
        a, b = _random_xywh(rng, n), _random_xywh(rng, m)
        ref = mask_utils.iou(a, b, np.zeros(m, np.uint8))
        got = box_iou(a, b, "xywh")
        assert got.shape == (n, m) and got.dtype == np.float64
        np.testing.assert_array_equal(got, ref)


# --- xyxy ----------------------------------------------------------------------------------------

def test_xyxy_matrix_known_values_and_shapes():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 20], [10, 0, 20, 10], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[0.5, 0, 1], [0, 0, 0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3) and box_iou(a, np.zeros((0, 4))).shape == (2, 0)
    assert box_iou([1, 1, 1, 1], [1, 1, 1, 1]).tolist() == [[0.0]]   # zero area: 0, not NaN
    assert box_iou([2, 2, 1, 1], [0, 0, 3, 3]).tolist() == [[0.0]]   # inverted box: area 0


def test_xyxy_nan_box_gives_nan_and_broadcasts():
    f = np.array([[[0, 0, 10, 10], [np.nan] * 4]])          # (1, T=2, 4): absent in frame 1
    g = np.array([[[0, 0, 10, 20], [0, 0, 5, 5]]] * 3)      # (3, T=2, 4)
    iou = paired_box_iou(f[:, None], g[None])               # (1, 3, 2)
    assert iou.shape == (1, 3, 2) and np.all(iou[..., 0] == 0.5) and np.all(np.isnan(iou[..., 1]))


def test_unknown_format():
    with pytest.raises(ValueError, match="fmt"):
        box_iou(np.zeros((1, 4)), np.zeros((1, 4)), "cxcywh")


# --- embeddings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reduce", ["einsum", "sum"])
def test_unit_rows(reduce):
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(unit_rows(x, reduce=reduce), [[0.6, 0.8], [0, 0]])   # zero rows stay zero
    assert unit_rows(x, np.float32, reduce).dtype == np.float32
    np.testing.assert_allclose(unit_rows(np.array([0.0, 2.0]), reduce=reduce), [0, 1])   # one vector
    with pytest.raises(ValueError, match="reduce"):
        unit_rows(x, reduce="max")


# --- masks ---------------------------------------------------------------------------------------

def test_decode_rles_stacks_like_decode_rle():
    rng = np.random.default_rng(1)
    masks = (rng.random((4, 7, 5)) < 0.4).astype(np.uint8)
    rles = encode_masks(masks)
    got = decode_rles(rles)
    assert got.shape == (4, 7, 5) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.stack([decode_rle(r) for r in rles]))
    with pytest.raises(ValueError, match="no masks"):
        decode_rles([])
    with pytest.raises(ValueError, match="several sizes"):
        decode_rles([rles[0], encode_masks(np.zeros((1, 3, 3), np.uint8))[0]])


def test_box_rle():
    rle = box_rle([1, 2, 3, 2], 6, 8)
    assert rle["size"] == [6, 8] and isinstance(rle["counts"], str)
    want = np.zeros((6, 8), np.uint8)
    want[2:4, 1:4] = 1
    np.testing.assert_array_equal(decode_rle(rle), want)
