"""Load, validate and write YouTube-VIS 2019/2021 JSON.

Format (the official one)::

    {"videos": [{"id", "file_names": [str]*length, "length", "height", "width", ...}],
     "annotations": [{"id", "video_id", "category_id", "iscrowd",
                      "segmentations": [RLE | polygons | None]*length,
                      "bboxes": [[x, y, w, h] | None]*length, "areas": [float | None]*length}],
     "categories": [{"id", "name", "supercategory"?}],
     "info"?, "licenses"?}

Validation errors are :class:`YTVISFormatError` and name the file, the video/annotation id and the
field, so a user can find the bad record in a 100 MB file.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from visrc.fileio import atomic_write_json, read_json

VIDEO_KEYS = ("id", "file_names", "length", "height", "width")
ANN_KEYS = ("id", "video_id", "category_id", "segmentations", "bboxes", "areas")
CAT_KEYS = ("id", "name")
BOX_TOLERANCE = 1.0  # pixels; official boxes are float and may touch the border


class YTVISFormatError(ValueError):
    """A YouTube-VIS file breaks the format. The message names file, record and field."""


def _err(source: str, where: str, msg: str) -> YTVISFormatError:
    return YTVISFormatError(f"{source}: {where}: {msg}")


def _check_keys(rec: Any, keys: tuple[str, ...], source: str, where: str) -> None:
    if not isinstance(rec, dict):
        raise _err(source, where, f"expected an object, got {type(rec).__name__}")
    for k in keys:
        if k not in rec:
            raise _err(source, where, f"missing field '{k}'")


def _segm_size(segm: Any) -> list[int] | None:
    if isinstance(segm, dict):
        return [int(v) for v in segm.get("size", [])] or None
    return None  # polygons carry no size


def validate_ytvis(data: Any, source: str | os.PathLike = "<memory>", check_masks: bool = True) -> None:
    """Raise :class:`YTVISFormatError` on the first problem found; return None if the file is valid.

    Checks: required keys; ``file_names``/``segmentations``/``bboxes``/``areas`` lengths equal the
    video's ``length``; boxes inside the image; known ``category_id`` and ``video_id``; unique ids;
    RLE ``size`` equal to the video's [height, width].
    """
    source = str(source)
    if not isinstance(data, dict):
        raise _err(source, "top level", f"expected an object, got {type(data).__name__}")
    for k in ("videos", "categories"):
        if k not in data:
            raise _err(source, "top level", f"missing field '{k}'")
        if not isinstance(data[k], list):
            raise _err(source, "top level", f"'{k}' must be a list")
    cats: set[int] = set()
    for i, cat in enumerate(data["categories"]):
        _check_keys(cat, CAT_KEYS, source, f"categories[{i}]")
        if cat["id"] in cats:
            raise _err(source, f"category id={cat['id']}", "duplicate category 'id'")
        cats.add(cat["id"])
    videos: dict[int, dict] = {}
    for i, vid in enumerate(data["videos"]):
        _check_keys(vid, ("id",), source, f"videos[{i}]")
        where = f"video id={vid['id']}"
        _check_keys(vid, VIDEO_KEYS, source, where)
        if vid["id"] in videos:
            raise _err(source, where, "duplicate video 'id'")
        if not isinstance(vid["file_names"], list) or len(vid["file_names"]) != vid["length"]:
            n = len(vid["file_names"]) if isinstance(vid["file_names"], list) else "not a list"
            raise _err(source, where, f"'file_names' has {n} entries but 'length' is {vid['length']}")
        if int(vid["height"]) <= 0 or int(vid["width"]) <= 0:
            raise _err(source, where, f"'height'/'width' must be positive, got {vid['height']}x{vid['width']}")
        videos[vid["id"]] = vid
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise _err(source, "top level", "'annotations' must be a list")
    ann_ids: set[int] = set()
    for i, ann in enumerate(anns):
        _check_keys(ann, ("id",), source, f"annotations[{i}]")
        where = f"annotation id={ann['id']}"
        _check_keys(ann, ANN_KEYS, source, where)
        if ann["id"] in ann_ids:
            raise _err(source, where, "duplicate annotation 'id'")
        ann_ids.add(ann["id"])
        if ann["video_id"] not in videos:
            raise _err(source, where, f"'video_id' {ann['video_id']} is not in 'videos'")
        if ann["category_id"] not in cats:
            raise _err(source, where, f"'category_id' {ann['category_id']} is not in 'categories'")
        vid = videos[ann["video_id"]]
        h, w, n = int(vid["height"]), int(vid["width"]), int(vid["length"])
        for field in ("segmentations", "bboxes", "areas"):
            if not isinstance(ann[field], list) or len(ann[field]) != n:
                got = len(ann[field]) if isinstance(ann[field], list) else type(ann[field]).__name__
                raise _err(source, where, f"'{field}' has {got} entries but video {vid['id']} has length {n}")
        for t, box in enumerate(ann["bboxes"]):
            if box is None:
                continue
            if (not isinstance(box, (list, tuple)) or len(box) != 4
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box) or box[2] < 0 or box[3] < 0):
                raise _err(source, where, f"'bboxes'[{t}] = {box} is not [x, y, w, h] of finite numbers with w, h >= 0")
            x, y, bw, bh = box
            if x < -BOX_TOLERANCE or y < -BOX_TOLERANCE or x + bw > w + BOX_TOLERANCE or y + bh > h + BOX_TOLERANCE:
                raise _err(source, where, f"'bboxes'[{t}] = {box} lies outside the {w}x{h} image")
        if check_masks:
            for t, segm in enumerate(ann["segmentations"]):
                size = _segm_size(segm)
                if size is not None and size != [h, w]:
                    raise _err(source, where, f"'segmentations'[{t}] has size {size} but video {vid['id']} is [{h}, {w}]")


def load_ytvis(path: str | os.PathLike, validate: bool = True) -> dict:
    """Read (and by default validate) a YouTube-VIS annotation file."""
    data = read_json(path)
    if validate:
        validate_ytvis(data, source=path)
    return data


def write_ytvis(data: dict, path: str | os.PathLike, validate: bool = True) -> Path:
    """Validate, then write atomically (temp file + rename)."""
    if validate:
        validate_ytvis(data, source=path)
    return atomic_write_json(path, data)


def index_annotations(data: dict) -> dict[int, list[dict]]:
    """video_id -> its annotations, in file order (videos without annotations map to [])."""
    out: dict[int, list[dict]] = {v["id"]: [] for v in data["videos"]}
    for ann in data.get("annotations", []):
        out[ann["video_id"]].append(ann)
    return out
