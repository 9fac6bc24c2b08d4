"""Multi-Source Data (paper section 3.2): still images as video pairs, weak masks, mixed sampling.

Pieces, from plain functions to the mmdet pipeline:

* :mod:`visrc.data.pseudo_frames` - the pseudo reference frame of a still image (``pseudo_pair``,
  the ``PseudoRefFrame`` transform).
* :func:`load_coco_style` - COCO-format and OpenImages-format (COCO-like JSON) annotations to one
  common sample dict, with categories mapped to target indices / the auxiliary placeholder and a
  per-instance weak-mask flag.
* :func:`mixed_source_indices` / :class:`MixedSourceSampler` - an epoch drawn from several sources
  in a fixed ratio.
* mmdet side: :class:`MSDImageDataset` (still images as 1-frame videos), :class:`LoadMSDAnnotations`
  (adds ``gt_weak_flags``), :class:`PackMSDInputs` (packs ``gt_instances.weak_flags``).

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
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from torch.utils.data import Sampler

from mmdet.datasets.transforms import LoadTrackAnnotations, PackTrackInputs
from mmdet.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS

from visrc.data.categories import AUX, COCO_ALIASES, OPENIMAGES_ALIASES, build_category_map, mapped_label
from visrc.data.masks import decode_rle, to_rle
from visrc.data.pseudo_frames import Rng, as_rng



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
    g = as_rng(rng)
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
    :class:`visrc.data.pseudo_frames.PseudoRefFrame` after the loading transforms to warp the reference copy.

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
