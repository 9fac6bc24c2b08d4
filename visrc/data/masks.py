"""Mask encodings used in YouTube-VIS JSON, all through pycocotools.

A frame's segmentation in YouTube-VIS is one of: compressed RLE ``{"size": [h, w], "counts": str}``,
uncompressed RLE (``counts`` a list of ints), a list of polygons, or ``None`` (object not present).
Inside visrc a mask is always a compressed RLE dict whose ``counts`` is a ``str`` (JSON-safe).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict  # {"size": [h, w], "counts": str}


def encode_mask(mask: np.ndarray) -> RLE:
    """Encode a binary mask (H, W) as compressed RLE with ``counts`` as str."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def encode_masks(masks: np.ndarray) -> list[RLE]:
    """Encode a stack of binary masks (N, H, W) in one pycocotools call."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


def _bytes_rle(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def decode_rle(rle: RLE) -> np.ndarray:
    """Compressed RLE -> uint8 mask (H, W)."""
    return mask_utils.decode(_bytes_rle(rle))


def decode_rles(rles: list[RLE]) -> np.ndarray:
    """N >= 1 compressed RLEs of one size -> uint8 masks (N, H, W), in one pycocotools call."""
    if len(rles) == 0:
        raise ValueError("decode_rles: no masks (their size is unknown)")
    sizes = {tuple(int(v) for v in r["size"]) for r in rles}
    if len(sizes) > 1:
        raise ValueError(f"decode_rles: masks of several sizes {sorted(sizes)}")
    return mask_utils.decode([_bytes_rle(r) for r in rles]).transpose(2, 0, 1)


def to_rle(segm: Any, height: int, width: int) -> RLE | None:
    """Normalise any YouTube-VIS segmentation (polygons, RLE, uncompressed RLE, None) to compressed RLE."""
    if segm is None:
        return None
    if isinstance(segm, list):  # polygons: each a flat [x1, y1, x2, y2, ...] with >= 3 points
        polys = [p for p in segm if isinstance(p, (list, tuple)) and len(p) >= 6]
        if not polys:
            return encode_mask(np.zeros((height, width), np.uint8))
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segm.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        return {"size": list(segm["size"]), "counts": segm["counts"] if isinstance(segm["counts"], str) else segm["counts"].decode("ascii")}
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def box_rle(box_xywh: list[float], height: int, width: int) -> RLE:
    """The mask of a box ``[x, y, w, h]`` in an image (height, width), rasterized by pycocotools."""
    rle = mask_utils.frPyObjects(np.asarray([box_xywh], np.float64), height, width)[0]  # (1, 4) array: boxes
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_area(rle: RLE) -> float:
    return float(mask_utils.area(_bytes_rle(rle)))


def rle_bbox(rle: RLE) -> list[float]:
    """Tight box [x, y, w, h] of the mask (pycocotools' convention)."""
    return [float(v) for v in mask_utils.toBbox(_bytes_rle(rle))]
