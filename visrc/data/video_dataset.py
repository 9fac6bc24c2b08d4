"""mmdet's YouTube-VIS dataset, reading the *raw* YouTube-VIS JSON.

mmdet 3.3's ``YouTubeVISDataset`` expects the CocoVID file that its ``youtubevis2coco.py`` converter
writes. :class:`YTVISRawDataset` does that conversion in memory (:func:`to_cocovid`, the same
mapping as the converter) and hands the rest to mmdet, so a user points visrc at
``train/instances.json`` of the real YouTube-VIS 2019/2021 (or the toy benchmark) directly.
"""
from __future__ import annotations

import json
import os
import posixpath
import tempfile

from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS

from visrc.data.ytvis import index_annotations, load_ytvis


def to_cocovid(data: dict) -> dict:
    """Raw YouTube-VIS dict -> CocoVID dict (videos, images with frame_id, per-frame annotations).

    Per-frame annotations keep the track's annotation id as ``instance_id`` (ids start at 1, which
    mmdet needs: it treats a falsy ``instance_id`` as missing). Null frames get no annotation.
    ``weak_mask`` (a visrc extension: the mask is missing or unreliable) is passed through.
    """
    out = {"categories": data["categories"], "videos": [], "images": [], "annotations": []}
    by_video = index_annotations(data)
    img_id = 0
    for video in data["videos"]:
        name = posixpath.dirname(video["file_names"][0]) if video["file_names"] else str(video["id"])
        out["videos"].append({"id": video["id"], "name": name, "width": video["width"], "height": video["height"]})
        for t, file_name in enumerate(video["file_names"]):
            img_id += 1
            out["images"].append({"id": img_id, "file_name": file_name, "height": video["height"],
                                  "width": video["width"], "frame_id": t, "video_id": video["id"]})
            for ann in by_video[video["id"]]:
                if ann["bboxes"][t] is None or ann["segmentations"][t] is None:
                    continue
                out["annotations"].append({
                    "id": len(out["annotations"]) + 1, "video_id": video["id"], "image_id": img_id,
                    "category_id": ann["category_id"], "instance_id": ann["id"], "bbox": ann["bboxes"][t],
                    "segmentation": ann["segmentations"][t], "area": ann["areas"][t],
                    "iscrowd": ann.get("iscrowd", 0),
                    # no or unreliable mask (OpenImages-style, pseudo labels): detection/track losses only
                    "weak_mask": bool(ann.get("weak_mask", False))})
    return out


@DATASETS.register_module()
class YTVISRawDataset(YouTubeVISDataset):
    """``YouTubeVISDataset`` on a raw YouTube-VIS JSON (validated on load).

    Args:
        dataset_version: '2019' or '2021' (mmdet's class lists); ``metainfo=dict(classes=...)``
            overrides them, as the toy configs do.
        Other args as mmdet's ``BaseVideoDataset`` (``ann_file``, ``data_prefix``, ``pipeline``, ...).
    """

    def __init__(self, *args, dataset_version: str = "2021", **kwargs):
        super().__init__(dataset_version, *args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """mmdet's parsing plus a per-instance ``weak_mask`` flag (False unless the JSON says so)."""
        info = super().parse_data_info(raw_data_info)
        weak = {a.get("instance_id"): bool(a.get("weak_mask", False)) for a in raw_data_info["raw_ann_info"]}
        for inst in info["instances"]:
            inst["weak_mask"] = weak.get(inst["instance_id"], False)
        return info

    def load_data_list(self):
        raw_path = self.ann_file
        cocovid = to_cocovid(load_ytvis(raw_path))
        # mmdet's parser reads a file; a private temp file keeps its code path unchanged.
        fd, tmp = tempfile.mkstemp(suffix=".cocovid.json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(cocovid, f)
            self.ann_file = tmp
            return super().load_data_list()
        finally:
            self.ann_file = raw_path
            os.unlink(tmp)
