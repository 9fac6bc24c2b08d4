"""Pseudo labels (paper 3.5.3): ensemble detections on the valid split, kept where the tracker links them.

::

    fused = ensemble_videos([valid_m0, valid_m1])                   # visrc.ensemble.gae
    pseudo = make_pseudo_labels(valid_json, fused, label_to_category, PseudoLabelConfig())
    write_pseudo_labels(pseudo, "runs/pseudo/valid_pseudo.json")
    merged = merge_ytvis(train_json, pseudo)                        # train + pseudo-labelled valid
    write_ytvis(merged, "runs/pseudo/train_plus_pseudo.json")

Rules (each a documented choice; the paper says only "boxes the tracker can match over frames"):

* **Tracking**: the split's tracker (:func:`visrc.tracking.track_split`, BiTrack by default) runs on
  *all* ensembled detections, as at test time, so weak detections may still bridge a link.
* **Kept detections**: of each track, the detections with ``score >= score_thr`` whose box, clipped
  to the image, has positive area. A track gives pseudo labels only if at least ``min_track_len``
  such detections remain (default 3: the object was matched across at least two frame
  transitions; a one- or two-frame blip is dropped).
* **No duplicates**: tracks are taken longest first (then higher score). BiTrack may hold one
  detection in two tracks: it goes to the first only. GAE clusters per class, so one object seen as
  two classes gives two boxes in a frame: a box overlapping an already kept box of that frame with
  IoU ``> dedup_iou`` (default 0.7; ``None`` = off) is dropped too.
* **Label**: label voting over the kept detections; labels that ``label_to_category`` does not map
  (auxiliary classes) are left out (``skip_unmapped``).

Written file (YouTube-VIS, passes :func:`visrc.data.ytvis.validate_ytvis`): ``videos`` copied from
the split's JSON (those that have predictions), ``categories`` copied, one annotation per kept
track with per-frame ``bboxes`` (clipped xywh), ``segmentations`` and ``areas`` (``None`` where
the track has no kept detection), plus ``"weak_mask": true`` and the track ``"score"``; top level
``"pseudo_label": {"detection_only": true, ...}`` records the settings. Pseudo labels train
*detection only*, so each frame's segmentation is the ensemble's mask when the predictions have
masks (``with_masks``) or else the filled box, never ``None``: mmdet's video loader
(:func:`visrc.data.video_dataset.to_cocovid`) drops a frame whose segmentation is ``None``, which
would drop every pseudo box. ``weak_mask`` is what tells training to skip the mask losses.

:func:`merge_ytvis` puts train and the pseudo-labelled split in one file. Images stay under their
two roots; each video's ``file_names`` get its root (relative to the dataset root) as prefix,
``train/JPEGImages/<video>/<frame>.jpg`` and ``valid/JPEGImages/...``, so mmdet reads the merged
file with ``data_root=<dataset root>, data_prefix=dict(img_path='')`` (mmengine joins the two,
``BaseVideoDataset`` joins that with each file name). Video and annotation ids are renumbered from 1.
"""
from __future__ import annotations

import copy
import os
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from visrc.data.boxes import box_iou
from visrc.data.masks import box_rle, rle_area
from visrc.data.ytvis import validate_ytvis, write_ytvis
from visrc.tracking import BiTrackConfig, Track, VideoPredictions, track_split, vote_label


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Which ensembled detections become pseudo labels (rules in the module docstring)."""

    score_thr: float = 0.5
    min_track_len: int = 3
    mode: str = "bitrack"  # "bitrack" | "forward" (visrc.tracking.track_split)
    tracking: BiTrackConfig = field(default_factory=BiTrackConfig)
    dedup_iou: float | None = 0.7
    with_masks: bool = True
    skip_unmapped: bool = True

    def __post_init__(self) -> None:
        if self.min_track_len < 1:
            raise ValueError(f"PseudoLabelConfig.min_track_len: must be >= 1, got {self.min_track_len}")
        if self.mode not in ("bitrack", "forward"):
            raise ValueError(f"PseudoLabelConfig.mode: {self.mode!r} is not 'bitrack' or 'forward'")


# ------------------------------------------------------------------------------------- tracks

def filter_tracks(video: VideoPredictions, tracks: Sequence[Track], score_thr: float = 0.5,
                  min_track_len: int = 3, dedup_iou: float | None = 0.7) -> list[Track]:
    """The tracks' confident, in-image, not-yet-used detections; tracks with < ``min_track_len`` dropped.

    Tracks are taken longest first (then higher score); a detection already given to a track, or
    whose box overlaps a box already given in that frame with IoU ``> dedup_iou`` (the same object
    detected as two classes: GAE clusters per class), is left out. Returned tracks have clipped
    boxes, ``det_index``/``boxes``/``scores``/``labels``/``masks`` cleared (-1 / NaN / None) where a
    detection was dropped, the label re-voted and the score the mean of the kept scores.
    """
    h, w = int(video.height), int(video.width)
    limit = np.array([w, h, w, h], np.float64)
    cand = []
    for tr in tracks:
        with np.errstate(invalid="ignore"):
            b = np.clip(tr.boxes.astype(np.float64), 0, limit)
            ok = (tr.det_index >= 0) & (tr.scores >= score_thr) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        cand.append((ok, b))
    order = sorted(range(len(tracks)), key=lambda k: (-int(cand[k][0].sum()), -float(tracks[k].score), k))
    used: list[set[int]] = [set() for _ in range(len(video))]
    taken: list[list[np.ndarray]] = [[] for _ in range(len(video))]
    out = []
    for k in order:
        tr, (ok, b) = tracks[k], cand[k]
        ok = ok.copy()
        for t in np.flatnonzero(ok):
            if int(tr.det_index[t]) in used[t] or (dedup_iou is not None and taken[t]
                                                   and box_iou(b[t], np.stack(taken[t])).max() > dedup_iou):
                ok[t] = False
        if ok.sum() < min_track_len:
            continue
        for t in np.flatnonzero(ok):
            used[t].add(int(tr.det_index[t]))
            taken[t].append(b[t])
        masks = None if tr.masks is None else [m if keep else None for m, keep in zip(tr.masks, ok)]
        out.append(replace(tr, det_index=np.where(ok, tr.det_index, -1), boxes=np.where(ok[:, None], b, np.nan),
                           scores=np.where(ok, tr.scores, np.nan), labels=np.where(ok, tr.labels, -1), masks=masks,
                           label=vote_label(tr.labels[ok], tr.scores[ok]), score=float(tr.scores[ok].mean())))
    return out


def select_tracks(videos: Sequence[VideoPredictions], config: PseudoLabelConfig | None = None) -> dict[int, list[Track]]:
    """Track every video and keep the pseudo-label tracks: video_id -> tracks (see :func:`filter_tracks`)."""
    cfg = config or PseudoLabelConfig()
    tracked = track_split(videos, cfg.tracking, cfg.mode)
    return {v.video_id: filter_tracks(v, tracked[v.video_id], cfg.score_thr, cfg.min_track_len, cfg.dedup_iou)
            for v in videos}


# ------------------------------------------------------------------------------------ the file

def pseudo_annotations(split: dict, videos: Sequence[VideoPredictions], tracks_by_video: Mapping[int, Sequence[Track]],
                       label_to_category: Mapping[int, int] | Sequence[int], config: PseudoLabelConfig | None = None,
                       source: str = "<memory>") -> dict:
    """The pseudo-labelled split as a YouTube-VIS dict (format in the module docstring).

    ``split``: the split's YouTube-VIS dict (videos, categories; its annotations are ignored);
    ``videos``: the ensembled predictions the tracks came from (sizes checked against ``split``).
    """
    cfg = config or PseudoLabelConfig()
    validate_ytvis(split, source, check_masks=False)
    by_id = {v["id"]: v for v in split["videos"]}
    out_videos, anns = [], []
    for pv in videos:
        vid = by_id.get(pv.video_id)
        if vid is None:
            raise ValueError(f"{source}: predictions of video {pv.video_id}: field 'videos': no video with this id")
        h, w, n = int(vid["height"]), int(vid["width"]), int(vid["length"])
        if (len(pv), int(pv.height), int(pv.width)) != (n, h, w):
            raise ValueError(f"{source}: video id={pv.video_id}: field 'length'/'height'/'width': {n} frames {h}x{w}, "
                             f"predictions have {len(pv)} frames {pv.height}x{pv.width}")
        out_videos.append(copy.deepcopy(vid))
        for tr in tracks_by_video.get(pv.video_id, []):
            try:
                cat = int(label_to_category[tr.label])
            except (KeyError, IndexError):
                if cfg.skip_unmapped:
                    continue
                raise KeyError(f"{source}: video {pv.video_id}: track label {tr.label} "
                               "is not in label_to_category") from None
            bboxes, segms, areas = [None] * n, [None] * n, [None] * n
            for t in np.flatnonzero(tr.det_index >= 0).tolist():
                x1, y1, x2, y2 = (float(v) for v in tr.boxes[t])
                bboxes[t] = [x1, y1, x2 - x1, y2 - y1]
                mask = tr.masks[t] if (cfg.with_masks and tr.masks is not None) else None
                segms[t] = {"size": [h, w], "counts": mask["counts"]} if mask is not None else box_rle(bboxes[t], h, w)
                areas[t] = rle_area(segms[t])
            anns.append({"id": len(anns) + 1, "video_id": vid["id"], "category_id": cat, "iscrowd": 0,
                         "bboxes": bboxes, "segmentations": segms, "areas": areas,
                         "weak_mask": True, "score": float(tr.score)})
    info = dict(split.get("info") or {})
    info["description"] = f"pseudo labels of {source} (detection only)"
    return {"info": info, "licenses": copy.deepcopy(split.get("licenses", [])), "videos": out_videos,
            "categories": copy.deepcopy(split["categories"]), "annotations": anns,
            "pseudo_label": {"detection_only": True, "score_thr": cfg.score_thr, "min_track_len": cfg.min_track_len,
                             "mode": cfg.mode, "masks": "ensemble" if cfg.with_masks else "box",
                             "num_tracks": len(anns)}}


def make_pseudo_labels(split: dict, videos: Sequence[VideoPredictions],
                       label_to_category: Mapping[int, int] | Sequence[int], config: PseudoLabelConfig | None = None,
                       source: str = "<memory>") -> dict:
    """:func:`select_tracks` + :func:`pseudo_annotations`; the result is validated."""
    cfg = config or PseudoLabelConfig()
    data = pseudo_annotations(split, videos, select_tracks(videos, cfg), label_to_category, cfg, source)
    validate_ytvis(data, f"pseudo labels of {source}")
    return data


def write_pseudo_labels(data: dict, path: str | os.PathLike) -> Path:
    """Validate and write atomically (a pseudo-label dict must say ``pseudo_label.detection_only``)."""
    if not (data.get("pseudo_label") or {}).get("detection_only"):
        raise ValueError(f"{path}: field 'pseudo_label': missing or not detection_only; not a pseudo-label dict")
    return write_ytvis(data, path)


# -------------------------------------------------------------------------------------- merge

def merge_ytvis(train: dict, pseudo: dict, prefixes: tuple[str, str] = ("train/JPEGImages", "valid/JPEGImages"),
                names: tuple[str, str] = ("train", "pseudo")) -> dict:
    """Two YouTube-VIS dicts -> one: fresh video/annotation ids, file names prefixed by their root.

    ``prefixes``: each input's image folder relative to the dataset root ('' = already relative to
    it). Categories must be equal (same ids and names). Each video gets ``"source"`` (from
    ``names``); annotations keep their extra fields (``weak_mask``, ``score``) and train
    annotations without ``weak_mask`` stay full-mask samples. The result validates.
    """
    for data, name in zip((train, pseudo), names):
        validate_ytvis(data, name, check_masks=False)
    cats = [{c["id"]: c["name"] for c in d["categories"]} for d in (train, pseudo)]
    if cats[0] != cats[1]:
        raise ValueError(f"merge_ytvis: field 'categories' differs between {names[0]} and {names[1]}: "
                         f"{sorted(cats[0].items())} vs {sorted(cats[1].items())}")
    videos, anns = [], []
    for data, prefix, name in zip((train, pseudo), prefixes, names):
        new_vid = {}
        for v in data["videos"]:
            nv = copy.deepcopy(v)
            nv["id"] = new_vid[v["id"]] = len(videos) + 1
            nv["file_names"] = [posixpath.join(prefix, f) if prefix else f for f in v["file_names"]]
            nv["source"] = name
            videos.append(nv)
        for a in data.get("annotations", []):
            na = dict(a)
            na["id"], na["video_id"] = len(anns) + 1, new_vid[a["video_id"]]
            anns.append(na)
    out = {"info": {"description": f"{names[0]} + {names[1]} (visrc.ensemble.merge_ytvis)",
                    "sources": [{"name": n, "img_prefix": p, "pseudo_label": d.get("pseudo_label")}
                                for d, p, n in zip((train, pseudo), prefixes, names)]},
           "licenses": copy.deepcopy(train.get("licenses", [])), "videos": videos,
           "categories": copy.deepcopy(train["categories"]), "annotations": anns}
    validate_ytvis(out, "merge_ytvis output", check_masks=False)
    return out
