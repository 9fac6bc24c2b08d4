"""Box IoU: the one implementation every layer uses.

Two box formats: ``"xyxy"`` (corners ``[x0, y0, x1, y1]``: detections, :mod:`visrc.data.predictions`)
and ``"xywh"`` (``[x, y, w, h]``: YouTube-VIS / COCO JSON). Two shapes of answer:

* :func:`box_iou` — every pair of two sets: a (N, 4), b (M, 4) -> (N, M);
* :func:`paired_box_iou` — box i of one set with box i of the other: a, b broadcastable
  (..., 4) -> (...).

Shared rules: continuous coordinates (no "+1 pixel"), float64, IoU = intersection / union;
disjoint or touching boxes give 0, and so does a zero union (two zero-area boxes). The formats
differ where their callers need it:

* ``"xyxy"``: a box's area is ``max(x1 - x0, 0) * max(y1 - y0, 0)``; a NaN coordinate gives NaN
  (tracklet boxes are NaN in the frames a tracklet misses);
* ``"xywh"``: a box's area is ``w * h`` and a NaN coordinate gives 0, exactly pycocotools'
  ``mask.iou`` on boxes (not a conversion to xyxy: ``(x + w) - x`` need not equal ``w`` in
  floating point).
"""
from __future__ import annotations

import numpy as np

FORMATS = ("xyxy", "xywh")


def box_iou(a: np.ndarray, b: np.ndarray, fmt: str = "xyxy") -> np.ndarray:
    """IoU of every pair: a (N, 4), b (M, 4) boxes in ``fmt`` -> (N, M) float64."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return paired_box_iou(a[:, None, :], b[None, :, :], fmt)


def paired_box_iou(a: np.ndarray, b: np.ndarray, fmt: str = "xyxy") -> np.ndarray:
    """IoU of corresponding boxes: a, b broadcastable (..., 4) in ``fmt`` -> (...) float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if fmt == "xyxy":
        a_hi, b_hi = a[..., 2:], b[..., 2:]
        area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
        area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    elif fmt == "xywh":
        a_hi, b_hi = a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:]
        area_a, area_b = a[..., 2] * a[..., 3], b[..., 2] * b[..., 3]
    else:
        raise ValueError(f"box IoU: fmt {fmt!r} is not one of {FORMATS}")
    iw = np.clip(np.minimum(a_hi[..., 0], b_hi[..., 0]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a_hi[..., 1], b_hi[..., 1]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = area_a + area_b - inter
    ok = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
    if fmt == "xyxy":
        iou = np.where(np.isnan(union), np.nan, iou)
    return iou
