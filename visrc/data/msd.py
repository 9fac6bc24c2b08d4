"""Multi-Source Data (paper section 3.2): still images as video pairs, weak masks, mixed sampling.

Pieces, from plain functions to the mmdet pipeline:

* :func:`pseudo_pair` - a random shift / rotate / flip / scale of one image and its objects gives the
  reference frame of a still image (or of a single sampled video frame, section 3.1). The objects
  keep their identity (the same pseudo track id in both frames); objects that leave the image are
  dropped (``keep``).
* :func:`load_coco_style` - COCO-format and OpenImages-format (COCO-like JSON) annotations to one
  common sample dict, with categories mapped to target indices / the auxiliary placeholder and a
  per-instance weak-mask flag.
* :func:`mixed_source_indices` / :class:`MixedSourceSampler` - an epoch drawn from several sources
  in a fixed ratio.
* mmdet side: :class:`MSDImageDataset` (still images as 1-frame videos), :class:`LoadMSDAnnotations`
  (adds ``gt_weak_flags``), :class:`PseudoRefFrame` (warps the reference copy of a still image in the
  key/reference structure), :class:`PackMSDInputs` (packs ``gt_instances.weak_flags``).

Annotation format accepted for both image sources (what the toy generator should write)::

    {"images": [{"id": int, "file_name": str, "height": int, "width": int,
                 "weak_mask": bool (optional; true = every mask of this image is missing/coarse)}],
     "annotations": [{"id": int, "image_id": int, "category_id": int, "bbox": [x, y, w, h],
                      "segmentation": polygons | RLE | absent/null/[] (absent = no mask -> weak),
                      "weak_mask": bool (optional; true = the mask is coarse/noisy -> weak),
                      "iscrowd": 0/1 (optional; 1 -> ignored instance)}],
     "categories": [{"id": int, "name": str}]}

An annotation is *weak* when its image or itself has ``"weak_mask": true``, when it has no
segmentation, or when the whole source is declared weak (``weak=True``). Weak instances train the
detector and the tracker, never the mask losses (mask head, mask IoU, TCIS, semantic seg).
"""
from __future__ import annotations

import json
import math
import os.path as osp
from typing import Iterator, Mapping, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from torch.utils.data import Sampler

from mmdet.datasets.transforms import LoadTrackAnnotations, PackTrackInputs
from mmdet.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from visrc.data.categories import AUX, COCO_ALIASES, OPENIMAGES_ALIASES, build_category_map, mapped_label
from .masks import decode_rle, to_rle

Rng = Union[np.random.Generator, int, None]


def _rng(rng: Rng) -> np.random.Generator:
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
    g = _rng(rng)
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
def _has_segmentation(segm) -> bool:
    if segm is None:
        return False
    if isinstance(segm, list):
        return len(segm) > 0 and any(len(p) >= 6 for p in segm)
    return isinstance(segm, dict) and "counts" in segm


def load_coco_style(ann_file: str, img_prefix: str, target_classes: Sequence[str], num_aux: int,
                    source: str = "coco", aliases: Optional[Mapping[str, Optional[str]]] = None,
                    unmatched: str = AUX, weak: bool = False, keep_empty: bool = False) -> list[dict]:
    """Read a COCO-format / OpenImages-format (COCO-like) JSON into common sample dicts.

    Args:
        ann_file: the JSON (format in the module docstring).
        img_prefix: directory that ``file_name`` is relative to.
        target_classes: the C target class names (label = index).
        num_aux: K. Non-target objects get the auxiliary placeholder label C if K > 0, else they are
            dropped (as with ``unmatched='ignore'``).
        source: ``'coco'`` or ``'openimages'`` (picks the default aliases; stored in each sample).
        aliases: name aliases (default :data:`COCO_ALIASES` / :data:`OPENIMAGES_ALIASES`).
        weak: declare every mask of this source weak.
        keep_empty: keep images left with no instances (default: drop them).

    Returns:
        A list of ``{'img_path', 'img_id', 'height', 'width', 'source', 'weak' (any instance weak),
        'instances': [{'bbox' [x1, y1, x2, y2], 'bbox_label', 'is_aux', 'category_id',
        'mask' (compressed RLE dict or None), 'weak_mask' (bool), 'instance_id' (index in the image,
        the pseudo track id), 'ignore_flag' (0/1, from iscrowd)}]}``.
    """
    with open(ann_file) as f:
        data = json.load(f)
    if aliases is None:
        aliases = OPENIMAGES_ALIASES if source == "openimages" else COCO_ALIASES
    C = len(target_classes)
    cat_map = build_category_map(data.get("categories", []), target_classes, aliases, unmatched)
    by_img: dict[int, list] = {}
    for ann in data.get("annotations", []):
        by_img.setdefault(ann["image_id"], []).append(ann)
    samples = []
    for img in data.get("images", []):
        H, W = int(img["height"]), int(img["width"])
        img_weak = weak or bool(img.get("weak_mask", False))
        instances = []
        for ann in by_img.get(img["id"], []):
            label = mapped_label(cat_map.get(ann["category_id"]), C, num_aux)
            if label is None:
                continue
            x, y, bw, bh = ann["bbox"]
            x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + bw, W), min(y + bh, H)
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            segm = ann.get("segmentation")
            has = _has_segmentation(segm)
            instances.append(dict(
                bbox=[float(x1), float(y1), float(x2), float(y2)], bbox_label=int(label), is_aux=label >= C,
                category_id=int(ann["category_id"]), mask=to_rle(segm, H, W) if has else None,
                weak_mask=bool(img_weak or ann.get("weak_mask", False) or not has),
                instance_id=len(instances), ignore_flag=int(bool(ann.get("iscrowd", 0)))))
        if not instances and not keep_empty:
            continue
        samples.append(dict(img_path=osp.join(img_prefix, img["file_name"]), img_id=int(img["id"]), height=H,
                            width=W, source=source, weak=any(i["weak_mask"] for i in instances),
                            instances=instances))
    return samples


def openimages_csv_to_coco(boxes_csv: str, classes_csv: str, image_dir: str, out_json: Optional[str] = None,
                           keep_classes: Optional[Sequence[str]] = None, ext: str = ".jpg") -> dict:
    """Convert OpenImages' box CSVs to the COCO-like JSON that :func:`load_coco_style` reads.

    Args:
        boxes_csv: ``*-annotations-bbox.csv`` (ImageID, LabelName, XMin, XMax, YMin, YMax (normalised),
            IsGroupOf, ...).
        classes_csv: ``class-descriptions-boxable.csv`` (``/m/xxxx,Display Name`` rows, no header).
        image_dir: where ``<ImageID><ext>`` live; sizes are read from the image headers (PIL).
        keep_classes: display names to keep (case-insensitive); default all.

    OpenImages instance masks are separate PNGs of varying quality: they are not read, every
    annotation is written without ``segmentation`` and so is weak (detection + tracking only).
    ``IsGroupOf == 1`` becomes ``iscrowd: 1``. Images that are missing on disk are skipped.
    """
    import csv
    from PIL import Image

    with open(classes_csv, newline="") as f:
        mid2name = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
    keep = {k.lower() for k in keep_classes} if keep_classes else None
    names = sorted({n for n in mid2name.values() if keep is None or n.lower() in keep})
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    images, annotations, sizes = [], [], {}
    with open(boxes_csv, newline="") as f:
        for row in csv.DictReader(f):
            name = mid2name.get(row["LabelName"])
            if name not in cat_id:
                continue
            iid = row["ImageID"]
            if iid not in sizes:
                path = osp.join(image_dir, iid + ext)
                if not osp.exists(path):
                    sizes[iid] = None
                    continue
                with Image.open(path) as im:
                    w, h = im.size
                sizes[iid] = (len(images) + 1, h, w)
                images.append(dict(id=len(images) + 1, file_name=iid + ext, height=h, width=w))
            if sizes[iid] is None:
                continue
            img_id, h, w = sizes[iid]
            x1, x2 = float(row["XMin"]) * w, float(row["XMax"]) * w
            y1, y2 = float(row["YMin"]) * h, float(row["YMax"]) * h
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=cat_id[name],
                                    bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                                    iscrowd=int(row.get("IsGroupOf", "0") == "1")))
    data = dict(images=images, annotations=annotations,
                categories=[dict(id=i, name=n) for n, i in cat_id.items()])
    if out_json:
        with open(out_json, "w") as f:
            json.dump(data, f)
    return data


def sample_masks(sample: dict) -> Optional[np.ndarray]:
    """(N, H, W) uint8 masks of a common sample dict; box-filled where an instance has no mask;
    ``None`` if no instance has a mask."""
    inst = sample["instances"]
    if not any(i["mask"] is not None for i in inst):
        return None
    out = np.zeros((len(inst), sample["height"], sample["width"]), dtype=np.uint8)
    for k, i in enumerate(inst):
        if i["mask"] is not None:
            out[k] = decode_rle(i["mask"])
        else:
            x1, y1, x2, y2 = (int(round(v)) for v in i["bbox"])
            out[k, y1:y2, x1:x2] = 1
    return out


# ------------------------------------------------------------------------------------------------
# mixed-source sampling
# ------------------------------------------------------------------------------------------------
def source_counts(n_per_source: Sequence[int], ratios: Sequence[float], length: int) -> np.ndarray:
    """Samples per source for an epoch of ``length``: proportional to ``ratios`` (renormalised over
    non-empty sources), rounded by largest remainder so they sum to ``length`` exactly."""
    n = np.asarray(n_per_source, dtype=np.int64)
    r = np.asarray(ratios, dtype=np.float64)
    if len(n) != len(r):
        raise ValueError("one ratio per source")
    if (r < 0).any():
        raise ValueError("ratios must be >= 0")
    r = np.where(n > 0, r, 0.0)
    if r.sum() <= 0:
        raise ValueError("no source with both samples and a positive ratio")
    exact = r / r.sum() * length
    counts = np.floor(exact).astype(np.int64)
    rest = length - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def mixed_source_indices(n_per_source: Sequence[int], ratios: Sequence[float], length: int, rng: Rng = None) -> np.ndarray:
    """An epoch of ``length`` indices into the concatenation of the sources (source s occupies
    ``[sum(n[:s]), sum(n[:s+1]))``), with source proportions given by ``ratios``.

    Within a source the indices run through random permutations (each item once before any repeats),
    the whole epoch is shuffled. E.g. ``n=[100, 1000, 500], ratios=[1, 1, 1], length=300`` gives 100
    indices from each source.
    """
    g = _rng(rng)
    counts = source_counts(n_per_source, ratios, length)
    offsets = np.concatenate([[0], np.cumsum(n_per_source)[:-1]]).astype(np.int64)
    parts = []
    for s, (n, c) in enumerate(zip(n_per_source, counts)):
        if c == 0:
            continue
        reps = int(math.ceil(c / n))
        perm = np.concatenate([g.permutation(n) for _ in range(reps)])[:c]
        parts.append(perm + offsets[s])
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    g.shuffle(out)
    return out.astype(np.int64)


def _sizes_of(dataset) -> list[int]:
    if hasattr(dataset, "cumulative_sizes"):
        cs = list(dataset.cumulative_sizes)
        return [cs[0]] + [b - a for a, b in zip(cs[:-1], cs[1:])]
    if hasattr(dataset, "datasets"):
        return [len(d) for d in dataset.datasets]
    raise TypeError("MixedSourceSampler needs a ConcatDataset (cumulative_sizes or datasets)")


class MixedSourceSampler(Sampler):
    """Epoch sampler over a ``ConcatDataset`` with a per-source sampling ratio.

    Config (mmengine): ``sampler=dict(type='MixedSourceSampler', ratios=[2, 1, 1])`` with
    ``dataset=dict(type='ConcatDataset', datasets=[ytvis, coco, openimages])``.

    Args:
        dataset: ``torch``/``mmengine`` ``ConcatDataset``.
        ratios: one weight per sub-dataset (normalised).
        length: samples per epoch over all ranks (default ``len(dataset)``).
        seed: base seed (default 0); the epoch is mixed in, see :meth:`set_epoch`.
    Under distributed training each rank takes every ``world_size``-th index of the same epoch.
    """

    def __init__(self, dataset, ratios: Sequence[float], length: Optional[int] = None, seed: Optional[int] = None,
                 shuffle: bool = True) -> None:
        self.sizes = _sizes_of(dataset)
        self.ratios = list(ratios)
        self.length = int(length) if length is not None else int(sum(self.sizes))
        self.seed = 0 if seed is None else int(seed)
        self.epoch = 0
        try:
            from mmengine.dist import get_dist_info
            self.rank, self.world_size = get_dist_info()
        except Exception:  # pragma: no cover
            self.rank, self.world_size = 0, 1
        self.num_samples = int(math.ceil(self.length / self.world_size))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        total = self.num_samples * self.world_size
        idx = mixed_source_indices(self.sizes, self.ratios, total, np.random.default_rng([self.seed, self.epoch]))
        return iter(idx[self.rank::self.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples


# ------------------------------------------------------------------------------------------------
# mmdet / mmengine side
# ------------------------------------------------------------------------------------------------
DATA_SAMPLERS.register_module(module=MixedSourceSampler, force=True)


def _box_polygon(bbox: Sequence[float]) -> list:
    x1, y1, x2, y2 = bbox
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


@DATASETS.register_module()
class MSDImageDataset(BaseDataset):
    """COCO-format / OpenImages-format still images as 1-frame videos, for mixing with
    ``YouTubeVISDataset`` in a ``ConcatDataset`` (training only).

    Each item is ``{'video_id', 'video_length': 1, 'images': [frame]}`` like mmdet's
    ``BaseVideoDataset``; the frame's ``instances`` follow mmdet's format (``bbox`` xyxy,
    ``bbox_label``, ``mask`` = RLE, or the box polygon when the instance has no mask,
    ``instance_id``, ``ignore_flag``) plus ``weak_mask`` (read by :class:`LoadMSDAnnotations`).
    With ``UniformRefFrameSample`` a 1-frame video yields the key frame twice; put
    :class:`PseudoRefFrame` after the loading transforms to warp the reference copy.

    Args (besides ``BaseDataset``'s ``ann_file``, ``data_root``, ``data_prefix=dict(img_path=...)``,
    ``pipeline``, ``metainfo=dict(classes=target classes)``): ``num_aux`` (K), ``source``
    (``'coco'``/``'openimages'``), ``aliases``, ``unmatched``, ``weak`` (all masks weak).
    ``video_id`` values are negative (``-(img_id + 1) - id_offset``) so they never collide with
    YouTube-VIS video ids.
    """

    METAINFO: dict = dict(classes=())

    def __init__(self, *args, num_aux: int = 0, source: str = "coco", aliases: Optional[dict] = None,
                 unmatched: str = AUX, weak: bool = False, id_offset: int = 0, **kwargs) -> None:
        self.num_aux, self.source, self.aliases = num_aux, source, aliases
        self.unmatched, self.weak, self.id_offset = unmatched, weak, id_offset
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = list(self.metainfo.get("classes", ()) or ())
        if not classes:
            raise ValueError("MSDImageDataset needs metainfo=dict(classes=<target classes>)")
        self._metainfo["classes"] = tuple(classes)  # a tuple like YouTubeVISDataset's (ConcatDataset compares)
        samples = load_coco_style(self.ann_file, self.data_prefix.get("img_path", "") or "", classes, self.num_aux,
                                  self.source, self.aliases, self.unmatched, self.weak)
        out = []
        for s in samples:
            vid = -(s["img_id"] + 1) - self.id_offset
            instances = []
            for i in s["instances"]:
                instances.append(dict(bbox=i["bbox"], bbox_label=i["bbox_label"], instance_id=i["instance_id"],
                                      ignore_flag=i["ignore_flag"], weak_mask=i["weak_mask"],
                                      mask=i["mask"] if i["mask"] is not None else _box_polygon(i["bbox"])))
            frame = dict(img_id=s["img_id"], img_path=s["img_path"], height=s["height"], width=s["width"],
                         frame_id=0, video_id=vid, source=s["source"], instances=instances)
            out.append(dict(video_id=vid, video_length=1, images=[frame]))
        return out


@TRANSFORMS.register_module()
class LoadMSDAnnotations(LoadTrackAnnotations):
    """``LoadTrackAnnotations`` + ``gt_weak_flags`` (np.bool_, one per instance, from the instances'
    ``weak_mask``; missing = False, so YouTube-VIS frames are strong)."""

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        results["gt_weak_flags"] = np.array([bool(i.get("weak_mask", False)) for i in results.get("instances", [])],
                                            dtype=bool)
        return results


@TRANSFORMS.register_module()
class PackMSDInputs(PackTrackInputs):
    """``PackTrackInputs`` that also packs ``gt_weak_flags`` as ``gt_instances.weak_flags``."""

    mapping_table = dict(PackTrackInputs.mapping_table, gt_weak_flags="weak_flags")


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
    Set ``only_same_image=False`` for the section 3.1 experiment (always warp the reference).
    Random numbers come from numpy's global RNG (seeded by mmengine's worker seeding).
    """

    def __init__(self, max_shift: float = 0.1, max_rotate_deg: float = 10.0, flip_prob: float = 0.5,
                 scale_range: Sequence[float] = (0.9, 1.1), min_visible: float = 0.25, fill=0,
                 only_same_image: bool = True) -> None:
        self.kw = dict(max_shift=max_shift, max_rotate_deg=max_rotate_deg, flip_prob=flip_prob,
                       scale_range=tuple(scale_range), min_visible=min_visible, fill=fill)
        self.only_same_image = only_same_image

    def transform(self, results: dict) -> dict:
        flags = results.get("key_frame_flags")
        imgs = results["img"]
        if flags is None or not isinstance(imgs, list):
            return results
        key = int(np.flatnonzero(np.asarray(flags))[0])
        paths = results.get("img_path", [None] * len(imgs))
        for f in range(len(imgs)):
            if flags[f] or (self.only_same_image and paths[f] != paths[key]):
                continue
            self._warp_frame(results, f)
        return results

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
