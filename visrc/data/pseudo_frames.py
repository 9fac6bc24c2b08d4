"""Pseudo reference frames (paper 3.1, 3.2): a random shift / rotate / flip / scale of one image and its
objects stands in for the reference frame of a still image or of a single sampled video frame.

* :func:`pseudo_pair` - the warped image, masks and boxes; objects keep their identity (the same
  pseudo track id in both frames); objects that leave the image are dropped (``keep``).
* :class:`PseudoRefFrame` - the mmdet transform that applies it inside the key/reference pipeline.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks, PolygonMasks

Rng = Union[np.random.Generator, int, None]


def as_rng(rng: Rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# ------------------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------------------
def affine_matrix(height: int, width: int, angle_deg: float = 0.0, scale: float = 1.0, tx: float = 0.0,
                  ty: float = 0.0, flip: bool = False) -> np.ndarray:
    """(2, 3) affine in *continuous* image coordinates (pixel i covers [i, i + 1)).

    Order: horizontal flip (x -> W - x), rotation by ``angle_deg`` (counter-clockwise on screen, as
    ``cv2.getRotationMatrix2D``) and isotropic ``scale`` about the image centre, translation by
    (tx, ty) pixels. Boxes and polygon points use this matrix; images use :func:`to_pixel_matrix`.
    """
    cx, cy = width / 2.0, height / 2.0
    F = np.array([[-1.0, 0, width], [0, 1, 0], [0, 0, 1]]) if flip else np.eye(3)
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    # cv2 convention: y axis points down, positive angle = counter-clockwise on screen
    R = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    T1 = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    T2 = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1.0]])
    return (T2 @ R @ T1 @ F)[:2]


def to_pixel_matrix(M: np.ndarray) -> np.ndarray:
    """Continuous-coordinate affine -> the pixel-index affine ``cv2.warpAffine`` expects."""
    H = np.vstack([M, [0, 0, 1]])
    sh = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    return (np.linalg.inv(sh) @ H @ sh)[:2]


def random_affine(rng: Rng, height: int, width: int, max_shift: float = 0.1, max_rotate_deg: float = 10.0,
                  flip_prob: float = 0.5, scale_range: Sequence[float] = (0.9, 1.1)) -> np.ndarray:
    """Draw a (2, 3) continuous-coordinate affine: shift up to ``max_shift`` x (W, H) (a fraction
    of the image size), rotation in [-max_rotate_deg, max_rotate_deg], flip with ``flip_prob``,
    scale uniform in ``scale_range``."""
    g = as_rng(rng)
    flip = bool(g.random() < flip_prob)
    angle = float(g.uniform(-max_rotate_deg, max_rotate_deg)) if max_rotate_deg > 0 else 0.0
    lo, hi = scale_range
    scale = float(g.uniform(lo, hi)) if hi > lo else float(lo)
    tx = float(g.uniform(-max_shift, max_shift)) * width if max_shift > 0 else 0.0
    ty = float(g.uniform(-max_shift, max_shift)) * height if max_shift > 0 else 0.0
    return affine_matrix(height, width, angle, scale, tx, ty, flip)


def warp_image(image: np.ndarray, M: np.ndarray, fill: Union[int, Sequence[int]] = 0) -> np.ndarray:
    """Warp an (H, W[, C]) image with a continuous-coordinate affine, output the same size."""
    h, w = image.shape[:2]
    border = tuple(fill) if isinstance(fill, (list, tuple)) else (fill,) * 4
    return cv2.warpAffine(image, to_pixel_matrix(M), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def warp_masks(masks: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(N, H, W) binary masks -> warped (N, H, W) uint8 (nearest neighbour)."""
    n, h, w = masks.shape
    out = np.zeros((n, h, w), dtype=np.uint8)
    Mp = to_pixel_matrix(M)
    for i in range(n):
        out[i] = cv2.warpAffine(masks[i].astype(np.uint8), Mp, (w, h), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 4) tight xyxy boxes, x2/y2 exclusive (mmdet's BitmapMasks.get_bboxes); 0s if empty."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for i, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(xs):
            boxes[i] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return boxes


def warp_boxes(boxes: np.ndarray, M: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) enclosing boxes of the warped corners (unclipped)."""
    if len(boxes) == 0:
        return np.zeros((0, 4), dtype=np.float32)
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                        np.stack([x1, y2], 1)], 1)  # (N, 4, 2)
    pts = corners @ M[:, :2].T + M[:, 2]
    return np.concatenate([pts.min(1), pts.max(1)], 1).astype(np.float32)


def pseudo_pair(image: np.ndarray, masks: Optional[np.ndarray], boxes: np.ndarray, rng: Rng = None,
                max_shift: float = 0.1, max_rotate_deg: float = 10.0, flip_prob: float = 0.5,
                scale_range: Sequence[float] = (0.9, 1.1), min_visible: float = 0.25, fill=0,
                matrix: Optional[np.ndarray] = None):
    """Make the reference frame of a still image by a random affine warp.

    Args:
        image: (H, W, 3) uint8 (any dtype/channels cv2 can warp).
        masks: (N, H, W) binary masks of the N objects, or ``None`` (box-only annotations).
        boxes: (N, 4) xyxy boxes in continuous pixel coordinates.
        rng: ``np.random.Generator`` or seed.
        max_shift: maximum translation as a fraction of width / height.
        max_rotate_deg, flip_prob, scale_range: see :func:`random_affine`.
        min_visible: an object is kept if the visible part of its warped mask (or of its warped,
            clipped box when there are no masks) is at least this fraction of its full warped size.
        matrix: use this (2, 3) continuous-coordinate affine instead of drawing one.

    Returns:
        ``(ref_image (H, W, 3), ref_masks (K, H, W) uint8 or None, ref_boxes (K, 4) float32,
        keep (N,) bool)`` with K = keep.sum(); row j of the outputs is object ``np.flatnonzero(keep)[j]``
        (same pseudo track id as in the key frame).
        With masks, the boxes are the tight boxes of the warped masks. Without masks they are the
        enclosing boxes of the warped box corners, clipped to the image: under rotation these are
        looser than the object (coarser), exact for shift / flip / scale.
    """
    h, w = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    M = matrix if matrix is not None else random_affine(rng, h, w, max_shift, max_rotate_deg, flip_prob, scale_range)
    ref_image = warp_image(image, M, fill)
    det = abs(np.linalg.det(M[:, :2]))
    if masks is not None:
        masks = np.asarray(masks).astype(np.uint8).reshape(-1, h, w)
        warped = warp_masks(masks, M)
        full = masks.reshape(len(masks), -1).sum(1) * det
        vis = warped.reshape(len(warped), -1).sum(1)
        keep = (vis > 0) & (vis >= min_visible * np.maximum(full, 1e-6))
        ref_masks = warped[keep]
        ref_boxes = masks_to_boxes(ref_masks)
        return ref_image, ref_masks, ref_boxes, keep
    wb = warp_boxes(boxes, M)
    full = (wb[:, 2] - wb[:, 0]) * (wb[:, 3] - wb[:, 1])
    cb = wb.copy()
    cb[:, [0, 2]] = cb[:, [0, 2]].clip(0, w)
    cb[:, [1, 3]] = cb[:, [1, 3]].clip(0, h)
    bw, bh = cb[:, 2] - cb[:, 0], cb[:, 3] - cb[:, 1]
    keep = (bw >= 1) & (bh >= 1) & (bw * bh >= min_visible * np.maximum(full, 1e-6))
    return ref_image, None, cb[keep].astype(np.float32), keep


# ------------------------------------------------------------------------------------------------
# loading COCO-format / OpenImages-format still images
# ------------------------------------------------------------------------------------------------


_PER_INSTANCE_KEYS = ("gt_bboxes", "gt_bboxes_labels", "gt_instances_ids", "gt_ignore_flags", "gt_weak_flags")


@TRANSFORMS.register_module()
class PseudoRefFrame(BaseTransform):
    """Turn the duplicated key frame of a still image into a warped pseudo reference frame.

    Place it after ``TransformBroadcaster([LoadImageFromFile, LoadMSDAnnotations(with_mask=True),
    Resize, RandomFlip, ...])`` and before ``PackMSDInputs``. Input is the list form of the video
    pipeline (``results[key]`` is a list over frames, ``key_frame_flags`` marks the key). Every
    non-key frame whose ``img_path`` equals the key's (``only_same_image=True``, i.e. a still image
    or a 1-frame video sampled twice) is replaced by :func:`pseudo_pair` of it: the image is warped,
    masks are warped and boxes recomputed from them (box corners when there are no masks), and the
    instances that leave the image are removed from every per-instance key (``gt_bboxes``,
    ``gt_bboxes_labels``, ``gt_masks``, ``gt_instances_ids``, ``gt_ignore_flags``, ``gt_weak_flags``).
    Instance ids are untouched, so each object keeps its pseudo track id in both frames.
    ``only_same_image=False`` warps every non-key frame as it is (a real reference frame, augmented).
    ``from_key=True`` first replaces every non-key frame by a copy of the key frame (image, masks,
    per-instance annotations, ``img_path``), then warps it: each key frame gets a pseudo reference
    frame made from itself, as the paper's frame-sampling runs (section 3.1: "for each key-frame, we
    apply affine transforms to generate a pseudo reference frame").
    Random numbers come from numpy's global RNG (seeded by mmengine's worker seeding).
    """

    def __init__(self, max_shift: float = 0.1, max_rotate_deg: float = 10.0, flip_prob: float = 0.5,
                 scale_range: Sequence[float] = (0.9, 1.1), min_visible: float = 0.25, fill=0,
                 only_same_image: bool = True, from_key: bool = False) -> None:
        self.kw = dict(max_shift=max_shift, max_rotate_deg=max_rotate_deg, flip_prob=flip_prob,
                       scale_range=tuple(scale_range), min_visible=min_visible, fill=fill)
        self.only_same_image = only_same_image
        self.from_key = from_key

    def transform(self, results: dict) -> dict:
        flags = results.get("key_frame_flags")
        imgs = results["img"]
        if flags is None or not isinstance(imgs, list):
            return results
        key = int(np.flatnonzero(np.asarray(flags))[0])
        paths = results.get("img_path", [None] * len(imgs))
        for f in range(len(imgs)):
            if flags[f]:
                continue
            if self.from_key:
                self._copy_key(results, key, f)
            elif self.only_same_image and paths[f] != paths[key]:
                continue
            self._warp_frame(results, f)
        return results

    @staticmethod
    def _copy_key(results: dict, key: int, f: int) -> None:
        """Frame ``f`` becomes a copy of frame ``key`` (every per-frame list of ``results``)."""
        import copy

        for k in ("img", "img_path", "gt_masks") + _PER_INSTANCE_KEYS:
            if k in results and isinstance(results[k], list) and len(results[k]) > max(key, f):
                results[k][f] = copy.deepcopy(results[k][key])

    def _warp_frame(self, results: dict, f: int) -> None:
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        img = results["img"][f]
        masks = None
        gm = results.get("gt_masks", [None] * len(results["img"]))[f] if "gt_masks" in results else None
        if gm is not None:
            masks = gm.to_ndarray() if isinstance(gm, (BitmapMasks, PolygonMasks)) else np.asarray(gm)
        boxes_obj = results["gt_bboxes"][f]
        boxes = boxes_obj.tensor.cpu().numpy() if hasattr(boxes_obj, "tensor") else np.asarray(boxes_obj)
        ref_img, ref_masks, ref_boxes, keep = pseudo_pair(img, masks, boxes, rng, **self.kw)
        results["img"][f] = ref_img.astype(img.dtype)
        for k in _PER_INSTANCE_KEYS:
            if k not in results:
                continue
            v = results[k][f]
            if k == "gt_bboxes":
                if hasattr(v, "tensor"):  # mmdet box type (HorizontalBoxes)
                    results[k][f] = type(v)(torch.from_numpy(ref_boxes).to(v.tensor.dtype))
                else:
                    results[k][f] = ref_boxes.astype(np.asarray(v).dtype)
            else:
                results[k][f] = np.asarray(v)[keep]
        if gm is not None:
            h, w = img.shape[:2]
            results["gt_masks"][f] = BitmapMasks(ref_masks, h, w)
