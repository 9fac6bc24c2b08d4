"""Multi-Source Data (paper section 3.2): still images as video pairs, weak masks, mixed sampling.

Pieces, from plain functions to the mmdet pipeline:

* :mod:`visrc.data.pseudo_frames` - the pseudo reference frame of a still image (``pseudo_pair``,
  the ``PseudoRefFrame`` transform).
* :func:`load_coco_style` - COCO-format and OpenImages-format (COCO-like JSON) annotations to one
  common sample dict, with categories mapped to target indices / the auxiliary placeholder and a
  per-instance weak-mask flag; by name + aliases (the toy), or through the reviewed category tables
  (``category_table='2021'``: the real COCO 2017 / OpenImages classes, :mod:`visrc.data.category_tables`).
* :func:`visrc.data.openimages.openimages_csv_to_coco` - OpenImages' released CSVs + mask PNGs to
  that JSON (re-exported here).
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

Images without a target object (paper 3.2): a COCO image whose objects are all non-target classes
is **kept** when K > 0 (its objects are auxiliary objects: ignoring them "discards a majority of
the dataset", the reason for the auxiliary classes); with ``require_target=True`` (the paper
configs' OpenImages source: "a subset from OpenImage that has common object categories") such an
image is **dropped**. An image left with no instance at all is dropped either way (unless
``keep_empty``).
"""
from __future__ import annotations

import math
import os.path as osp
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from torch.utils.data import Sampler

from mmdet.datasets.transforms import LoadTrackAnnotations, PackTrackInputs
from mmdet.registry import DATA_SAMPLERS, DATASETS, TRANSFORMS

from visrc.data.categories import AUX, COCO_ALIASES, OPENIMAGES_ALIASES, build_category_map, mapped_label
from visrc.data.category_tables import category_map_for
from visrc.data.masks import decode_rle, to_rle
from visrc.data.openimages import openimages_csv_to_coco  # noqa: F401  (re-exported)
from visrc.data.pseudo_frames import Rng, as_rng



def _has_segmentation(segm) -> bool:
    if segm is None:
        return False
    if isinstance(segm, list):
        return len(segm) > 0 and any(len(p) >= 6 for p in segm)
    return isinstance(segm, dict) and "counts" in segm


def load_coco_style(ann_file: str, img_prefix: str, target_classes: Sequence[str], num_aux: int,
                    source: str = "coco", aliases: Optional[Mapping[str, Optional[str]]] = None,
                    unmatched: str = AUX, weak: bool = False, keep_empty: bool = False,
                    category_table: Optional[str] = None, require_target: bool = False) -> list[dict]:
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
        category_table: a YouTube-VIS version ('2021' / '2019'): map the categories through the
            reviewed table of ``source`` (by name, or an OpenImages ``mid`` field) instead of
            names + ``aliases``; every table target must be one of ``target_classes``.
        require_target: drop images without a target-class instance (auxiliary ones do not count).

    Returns:
        A list of ``{'img_path', 'img_id', 'height', 'width', 'source', 'weak' (any instance weak),
        'instances': [{'bbox' [x1, y1, x2, y2], 'bbox_label', 'is_aux', 'category_id',
        'mask' (compressed RLE dict or None), 'weak_mask' (bool), 'instance_id' (index in the image,
        the pseudo track id), 'ignore_flag' (0/1, from iscrowd)}]}``.
    """
    from visrc.fileio import read_json

    data = read_json(ann_file)
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{ann_file}: field '{key}' must be a list (a COCO-style instances JSON)")
    C = len(target_classes)
    if category_table is not None:
        cat_map = category_map_for(data["categories"], source, category_table, unmatched, target_classes)
    else:
        if aliases is None:
            aliases = OPENIMAGES_ALIASES if source == "openimages" else COCO_ALIASES
        cat_map = build_category_map(data["categories"], target_classes, aliases, unmatched)
    by_img: dict[int, list] = {}
    for k, ann in enumerate(data.get("annotations") or []):
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise ValueError(f"{ann_file}: annotations[{k}] (id={ann.get('id')}): missing field '{key}'")
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
        if not keep_empty and (not instances or (require_target and all(i["is_aux"] for i in instances))):
            continue
        samples.append(dict(img_path=osp.join(img_prefix, img["file_name"]), img_id=int(img["id"]), height=H,
                            width=W, source=source, weak=any(i["weak_mask"] for i in instances),
                            instances=instances))
    return samples


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


def frames_of(dataset) -> int:
    """Key frames one pass over a source offers: the sum of its videos' ``video_length`` (a video
    dataset, what mmdet's ``TrackImgSampler`` visits per epoch), else its length (still images)."""
    if not hasattr(dataset, "get_data_info"):
        return len(dataset)
    return int(sum(int(dataset.get_data_info(i).get("video_length", 1)) for i in range(len(dataset))))


class MixedSourceSampler(Sampler):
    """Epoch sampler over a ``ConcatDataset`` with a per-source sampling ratio.

    Config (mmengine): ``sampler=dict(type='MixedSourceSampler', ratios=[2, 1, 1])`` with
    ``dataset=dict(type='ConcatDataset', datasets=[ytvis, coco, openimages])``.

    Args:
        dataset: ``torch``/``mmengine`` ``ConcatDataset``.
        ratios: one weight per sub-dataset (normalised).
        length: samples per epoch over all ranks (default ``len(dataset)``).
        anchor_source: instead of ``length``: the epoch gives source ``anchor_source`` one sample
            per frame (:func:`frames_of`; a video dataset gets as many samples as a
            ``TrackImgSampler`` epoch of it) and the other sources ``ratios`` times as many on top,
            so the length follows the data (``length = frames * sum(ratios) / ratios[anchor]``).
        seed: base seed (default 0); the epoch is mixed in, see :meth:`set_epoch`.
    Under distributed training each rank takes every ``world_size``-th index of the same epoch.
    A video source's item is a whole video (its key frame is drawn by ``UniformRefFrameSample``).
    ``self.dataset`` is the ``ConcatDataset``, so mmdet's ``TrackAspectRatioBatchSampler`` can group
    portrait and landscape images.
    """

    def __init__(self, dataset, ratios: Sequence[float], length: Optional[int] = None, seed: Optional[int] = None,
                 shuffle: bool = True, anchor_source: Optional[int] = None) -> None:
        self.dataset = dataset
        self.sizes = _sizes_of(dataset)
        self.ratios = list(ratios)
        if len(self.ratios) != len(self.sizes):
            raise ValueError(f"MixedSourceSampler: {len(self.ratios)} ratios for {len(self.sizes)} sources")
        if anchor_source is not None:
            if length is not None:
                raise ValueError("MixedSourceSampler: give length or anchor_source, not both")
            if not 0 <= anchor_source < len(self.sizes) or self.ratios[anchor_source] <= 0:
                raise ValueError(f"MixedSourceSampler: anchor_source {anchor_source} is not a source with a "
                                 f"positive ratio (ratios {self.ratios})")
            subsets = getattr(dataset, "datasets", None)
            if subsets is None:
                raise TypeError("MixedSourceSampler: anchor_source needs a ConcatDataset with .datasets")
            frames = frames_of(subsets[anchor_source])
            length = int(math.ceil(frames * sum(self.ratios) / self.ratios[anchor_source]))
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
    (``'coco'``/``'openimages'``), ``aliases``, ``unmatched``, ``weak`` (all masks weak),
    ``category_table`` (a YouTube-VIS version: the reviewed category tables instead of names +
    aliases), ``require_target`` (drop images without a target object); see :func:`load_coco_style`.
    ``video_id`` values are negative (``-(img_id + 1) - id_offset``) so they never collide with
    YouTube-VIS video ids.
    """

    METAINFO: dict = dict(classes=())

    def __init__(self, *args, num_aux: int = 0, source: str = "coco", aliases: Optional[dict] = None,
                 unmatched: str = AUX, weak: bool = False, id_offset: int = 0, category_table: Optional[str] = None,
                 require_target: bool = False, **kwargs) -> None:
        self.num_aux, self.source, self.aliases = num_aux, source, aliases
        self.unmatched, self.weak, self.id_offset = unmatched, weak, id_offset
        self.category_table, self.require_target = category_table, require_target
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        classes = list(self.metainfo.get("classes", ()) or ())
        if not classes:
            raise ValueError("MSDImageDataset needs metainfo=dict(classes=<target classes>)")
        self._metainfo["classes"] = tuple(classes)  # a tuple like YouTubeVISDataset's (ConcatDataset compares)
        samples = load_coco_style(self.ann_file, self.data_prefix.get("img_path", "") or "", classes, self.num_aux,
                                  self.source, self.aliases, self.unmatched, self.weak,
                                  category_table=self.category_table, require_target=self.require_target)
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
