"""Load, validate and write YouTube-VIS 2019/2021 JSON.

Format (the official one)::

    {"videos": [{"id", "file_names": [str]*length, "length", "height", "width", ...}],
     "annotations": [{"id", "video_id", "category_id", "iscrowd"?,
                      "segmentations": [RLE | polygons | None]*length,
                      "bboxes": [[x, y, w, h] | None]*length, "areas": [float | None]*length}],
     "categories": [{"id", "name", "supercategory"?}],
     "info"?, "licenses"?}

:func:`validate_ytvis` checks every field's type and range (ids, ``length``, ``height``, ``width``
and ``category_id`` are integers, ``iscrowd`` is 0 or 1, an RLE's ``size`` is its video's
``[height, width]`` and its ``counts`` decode to exactly ``height * width`` pixels, polygons are
flat lists of >= 3 points, boxes and areas are finite and non-negative, ids are unique and
references resolve). A violation is a :class:`YTVISFormatError` naming the file, the record
(``annotation id=7 ... (annotations[3])``) and the field, so a user finds it in a 100 MB file.
What does not change the metric (a box further outside its image than rounding explains, an
area that disagrees with its mask, a box without a mask) is returned as warning lines instead.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The value and segmentation checks belong to the mask component; the record checks below use them
# and callers of the YouTube-VIS checks import them from here too (RLE_NUMPY_CHARS is tuned on masks).
from visrc.data.masks import (AREA_TOLERANCE, RLE_NUMPY_CHARS, FormatWarnings, YTVISFormatError,  # noqa: F401
                              _err, _type, check_rle_strings, check_segmentation, is_int, is_number,
                              rle_string_sums, show, what)
from visrc.fileio import atomic_write_json, read_json

VIDEO_KEYS = ("id", "file_names", "length", "height", "width")
ANN_KEYS = ("id", "video_id", "category_id", "segmentations", "bboxes", "areas")
CAT_KEYS = ("id", "name")
BOX_TOLERANCE = 1.0      # pixels; official boxes are float and may touch the border


# ---------------------------------------------------------------------------------- records

def _record(rec: Any, keys: tuple[str, ...], source: str, where: str, at: str) -> None:
    if not isinstance(rec, dict):
        raise _err(source, where, f"expected an object, got {what(rec)}{at}")
    for k in keys:
        if k not in rec:
            raise _err(source, where, f"missing field '{k}'{at}")


def _int_field(rec: dict, key: str, source: str, where: str, at: str, minimum: int | None = None) -> int:
    v = rec[key]
    if not is_int(v):
        size = " of 64 bits" if isinstance(v, int) and not isinstance(v, bool) else ""
        raise _err(source, where, f"'{key}' must be an integer{size}, got {what(v)}{at}")
    if minimum is not None and v < minimum:
        raise _err(source, where, f"'{key}' must be >= {minimum}, got {v}{at}")
    return int(v)


def _categories(data: dict, source: str) -> set[int]:
    ids: dict[int, int] = {}
    names: dict[str, int] = {}
    for i, cat in enumerate(data["categories"]):
        at = f" (categories[{i}])"
        _record(cat, ("id",), source, f"categories[{i}]", "")
        cid = _int_field(cat, "id", source, f"categories[{i}]", "")
        where = f"category id={cid}"
        _record(cat, CAT_KEYS, source, where, at)
        if cid in ids:
            raise _err(source, where, f"duplicate category 'id', also used by categories[{ids[cid]}]{at}")
        name = cat["name"]
        if not isinstance(name, str) or not name.strip():
            raise _err(source, where, f"'name' must be a non-empty string, got {what(name)}{at}")
        if name in names:
            raise _err(source, where, f"duplicate category 'name' {name!r}, also used by category id={names[name]}{at}")
        ids[cid], names[name] = i, cid
    return set(ids)


def _videos(data: dict, source: str) -> dict[int, tuple[int, int, int]]:
    videos: dict[int, tuple[int, int, int]] = {}
    for i, vid in enumerate(data["videos"]):
        at = f" (videos[{i}])"
        _record(vid, ("id",), source, f"videos[{i}]", "")
        where = f"video id={_int_field(vid, 'id', source, f'videos[{i}]', '')}"
        _record(vid, VIDEO_KEYS, source, where, at)
        if vid["id"] in videos:
            raise _err(source, where, f"duplicate video 'id'{at}")
        for key in ("height", "width"):
            _int_field(vid, key, source, where, at)
        if vid["height"] <= 0 or vid["width"] <= 0:
            raise _err(source, where, f"'height'/'width' must be positive, got {vid['height']}x{vid['width']}{at}")
        n = _int_field(vid, "length", source, where, at, minimum=1)
        names = vid["file_names"]
        if not isinstance(names, list) or len(names) != n:
            got = f"has {len(names)} entries" if isinstance(names, list) else f"is {what(names)}"
            raise _err(source, where, f"'file_names' {got} but 'length' is {n}{at}")
        for t, f in enumerate(names):
            if not isinstance(f, str) or not f:
                raise _err(source, where, f"'file_names'[{t}] must be a non-empty string, got {what(f)}{at}")
        videos[vid["id"]] = (n, int(vid["height"]), int(vid["width"]))
    return videos


def _box(box: Any, where: str, t: int, h: int, w: int, source: str, warn: FormatWarnings, at: str) -> None:
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(map(is_number, box))
            and box[2] >= 0 and box[3] >= 0):
        raise _err(source, where, f"'bboxes'[{t}] = {show(box)} is not [x, y, w, h] of finite numbers "
                                  f"with w, h >= 0{at}")
    x, y, bw, bh = box
    if x < -BOX_TOLERANCE or y < -BOX_TOLERANCE or x + bw > w + BOX_TOLERANCE or y + bh > h + BOX_TOLERANCE:
        warn.add("boxes outside their image", where, f"'bboxes'[{t}] = {box} lies outside the {w}x{h} image "
                                                     f"(masks are scored, boxes are not){at}")


def _annotation(i: int, ann: Any, videos: dict, cats: set, ann_ids: dict, source: str, warn: FormatWarnings,
                pending: list, check_masks: bool) -> None:
    _record(ann, ("id",), source, f"annotations[{i}]", "")
    aid = _int_field(ann, "id", source, f"annotations[{i}]", "")
    where, at = f"annotation id={aid}", f" (annotations[{i}])"
    _record(ann, ANN_KEYS, source, where, at)
    if aid in ann_ids:
        raise _err(source, where, f"duplicate annotation 'id', also used by annotations[{ann_ids[aid]}]{at}")
    ann_ids[aid] = i
    vid = ann["video_id"]
    if not is_int(vid) or vid not in videos:
        raise _err(source, where, f"'video_id' {show(vid, 30)} is not in 'videos'{at}")
    cat = ann["category_id"]
    if not is_int(cat) or cat not in cats:
        raise _err(source, where, f"'category_id' {show(cat, 30)} is not in 'categories'{at}")
    crowd = ann.get("iscrowd", 0)
    if not is_int(crowd) or crowd not in (0, 1):
        raise _err(source, where, f"'iscrowd' must be 0 or 1, got {what(crowd)}{at}")
    if not isinstance(ann.get("weak_mask", False), bool):
        raise _err(source, where, f"'weak_mask' must be true or false, got {what(ann['weak_mask'])}{at}")
    n, h, w = videos[vid]
    for field in ("segmentations", "bboxes", "areas"):
        if not isinstance(ann[field], list):
            raise _err(source, where, f"'{field}' must be a list (one entry per frame), got {what(ann[field])}{at}")
        if len(ann[field]) != n:
            raise _err(source, where, f"'{field}' has {len(ann[field])} entries but video {vid} has length {n}{at}")
    for t, (segm, box, area) in enumerate(zip(ann["segmentations"], ann["bboxes"], ann["areas"])):
        if area is not None and not (is_number(area) and area >= 0):
            raise _err(source, where, f"'areas'[{t}] must be null or a finite number >= 0, got {what(area)}{at}")
        if box is not None:
            _box(box, where, t, h, w, source, warn, at)
        check_segmentation(segm, where, f"'segmentations'[{t}]", h, w, source, pending,
                           area=area if isinstance(segm, dict) else None, check_masks=check_masks, at=at)
        if segm is not None and box is not None and area is None:
            # training filters instances on their area: a masked, boxed frame needs one
            raise _err(source, where, f"'areas'[{t}] is null but the frame has a mask and a box{at}")
        if (segm is None) != (box is None):
            has, lacks = ("a box", "mask") if segm is None else ("a mask", "box")
            warn.add("frames with only a box or only a mask", where,
                     f"frame {t} has {has} but no {lacks} (training skips it){at}")
        elif segm is None and area is not None:
            warn.add("areas of frames without a mask", where,
                     f"'areas'[{t}] = {area} but the frame has no mask (it enters the track's mean area){at}")


def validate_ytvis(data: Any, source: str | os.PathLike = "<memory>", check_masks: bool = True) -> list[str]:
    """Raise :class:`YTVISFormatError` on the first problem found; return the warnings (one line per
    kind of problem that does not change the metric) if the file is valid.

    ``check_masks=False`` checks only that each segmentation is null, an object or a list (not
    its size, RLE ``counts``, polygon coordinates or agreement with ``areas``).
    ``"annotations": null`` means no annotations and becomes ``[]`` in ``data`` (see
    :func:`no_null_annotations`), so code reading a validated dict needs no case of its own.
    """
    source = str(source)
    if not isinstance(data, dict):
        hint = " (a list is a results file: check it against its GT)" if isinstance(data, list) else ""
        raise _err(source, "top level", f"expected an object, got {_type(data)}{hint}")
    for k in ("videos", "categories"):
        if k not in data:
            raise _err(source, "top level", f"missing field '{k}'")
        if not isinstance(data[k], list):
            raise _err(source, "top level", f"'{k}' must be a list, got {_type(data[k])}")
    anns = no_null_annotations(data).get("annotations", [])
    if not isinstance(anns, list):
        raise _err(source, "top level", f"'annotations' must be a list or null, got {_type(anns)}")
    cats = _categories(data, source)
    videos = _videos(data, source)
    warn = FormatWarnings(source)
    pending: list[tuple] = []
    ann_ids: dict[int, int] = {}
    for i, ann in enumerate(anns):
        _annotation(i, ann, videos, cats, ann_ids, source, warn, pending, check_masks)
    check_rle_strings(pending, source, warn)
    return warn.lines()


def no_null_annotations(data: Any) -> Any:
    """``data`` with ``"annotations": null`` replaced by ``[]``, in place.

    YouTube-VIS valid/test files without GT leave the key out or, in some releases, set it to
    null; both mean no annotations. Anything else (not a dict, other values) is left to the checks.
    """
    if isinstance(data, dict) and "annotations" in data and data["annotations"] is None:
        data["annotations"] = []
    return data


def load_ytvis(path: str | os.PathLike, validate: bool = True) -> dict:
    """Read (and by default validate) a YouTube-VIS annotation file; its warnings are not shown
    here (``visrc validate`` lists them). ``"annotations": null`` is read as ``[]``."""
    data = no_null_annotations(read_json(path))
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
    for ann in data.get("annotations") or []:
        out[ann["video_id"]].append(ann)
    return out
