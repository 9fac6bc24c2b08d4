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

import math
import numbers
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from visrc.fileio import atomic_write_json, read_json

VIDEO_KEYS = ("id", "file_names", "length", "height", "width")
ANN_KEYS = ("id", "video_id", "category_id", "segmentations", "bboxes", "areas")
CAT_KEYS = ("id", "name")
BOX_TOLERANCE = 1.0      # pixels; official boxes are float and may touch the border
AREA_TOLERANCE = 0.01    # relative; an 'areas' entry further from its mask's pixel count is a warning
_RLE_MAX_CHARS = 7       # a count below 2**32 takes at most 7 characters (35 bits) in pycocotools' RLE strings


class YTVISFormatError(ValueError):
    """A YouTube-VIS file breaks the format. The message names file, record and field."""


def _err(source: str, where: str, msg: str) -> YTVISFormatError:
    return YTVISFormatError(f"{source}: {where}: {msg}")


_INT64 = 1 << 63
_EXACT = 1 << 53


def is_int(v: Any) -> bool:
    """An integer JSON value that fits in 64 bits (``true``/``false`` are not integers)."""
    if type(v) is int:   # the JSON case first: the ABC checks below cost more than the rest of a check
        return -_INT64 <= v < _INT64
    return (isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
            and -_INT64 <= int(v) < _INT64)


def is_number(v: Any) -> bool:
    """A finite real JSON value (not a bool, NaN, infinity or an integer beyond float64's exact range)."""
    t = type(v)
    if t is float:
        return math.isfinite(v)
    if t is int:
        return -_EXACT <= v <= _EXACT
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return False
    if isinstance(v, numbers.Integral):
        return abs(int(v)) <= _EXACT
    return math.isfinite(float(v))


def show(v: Any, limit: int = 40) -> str:
    """A short ``repr`` of a value for an error message."""
    r = repr(v)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def _type(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def what(v: Any) -> str:
    """A value's JSON type and short ``repr`` for an error message (``null`` alone for None)."""
    return "null" if v is None else f"{type(v).__name__} {show(v, 30)}"


class FormatWarnings:
    """Problems that do not change the metric, grouped by kind: each kind's count and first case."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._kinds: dict[str, list] = {}

    def add(self, kind: str, where: str, msg: str) -> None:
        entry = self._kinds.setdefault(kind, [0, f"{where}: {msg}"])
        entry[0] += 1

    def lines(self) -> list[str]:
        """One line per kind: ``<file>: <record>: <problem>``, with the count when there are several."""
        return [f"{self.source}: {first}" if n == 1 else f"{self.source}: {kind} in {n} places, e.g. {first}"
                for kind, (n, first) in self._kinds.items()]


# ----------------------------------------------------------------------------- compressed RLE

def rle_string_sums(counts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode pycocotools' compressed RLE strings without decoding a mask.

    Returns ``(total, foreground)``: (N,) int64 pixel counts of each string, the sum of all runs and
    of the foreground (odd) runs; ``total`` is -1 where the string is not one pycocotools'
    ``rleToString`` can write (a character outside ``'0'..'o'``, a number cut off at the end or
    longer than 7 characters, a run that decodes negative or to 2**32 and more). pycocotools does
    not check a string and writes ``sum(runs)`` pixels into an ``h * w`` buffer, so a string is safe
    to decode only when ``total`` equals ``h * w``.

    Up to :data:`RLE_NUMPY_CHARS` characters in all are decoded with numpy (no compilation to
    load); more go through a compiled loop (numba, cached on disk), which is faster per character.
    """
    n = len(counts)
    total, fg = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    if n == 0:
        return total, fg
    text = "".join(counts)
    if text.isascii():
        buf = text.encode("ascii")
        lens = np.fromiter(map(len, counts), np.int64, n)
    else:   # byte lengths; any non-ASCII byte is out of range and fails its string
        parts = [c.encode("utf-8", "replace") for c in counts]
        buf, lens = b"".join(parts), np.fromiter(map(len, parts), np.int64, n)
    off = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    if len(buf) <= RLE_NUMPY_CHARS:
        _sums_numpy(np.frombuffer(buf, np.uint8), lens, total, fg)
    else:
        _rle_kernel()(np.frombuffer(buf, np.uint8), off, total, fg)
    return total, fg


RLE_NUMPY_CHARS = 1 << 20


def _sums_numpy(buf: np.ndarray, lens: np.ndarray, total: np.ndarray, fg: np.ndarray) -> None:
    """:func:`rle_string_sums` vectorized over the characters ``buf`` of strings of lengths ``lens``."""
    m = len(lens)
    total[:] = 0
    if len(buf) == 0:
        return
    c = buf.astype(np.int64) - 48
    sid = np.repeat(np.arange(m), lens)                     # string of each character
    bad = np.zeros(m, bool)
    bad[sid[(c < 0) | (c > 63)]] = True
    last_char = np.zeros(len(c), bool)
    last_char[np.cumsum(lens)[lens > 0] - 1] = True
    more = (c & 0x20) != 0
    bad[sid[more & last_char]] = True                       # the string ends inside a number
    end = ~more | last_char                                 # last character of each number
    starts = np.flatnonzero(np.r_[True, end[:-1]])
    k = np.arange(len(c)) - np.repeat(starts, np.diff(np.r_[starts, len(c)]))   # position inside its number
    bad[sid[k >= _RLE_MAX_CHARS]] = True
    k = np.minimum(k, _RLE_MAX_CHARS)
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    endpos = np.flatnonzero(end)
    neg = (c[endpos] & 0x10) != 0                           # sign bit of the last character
    x[neg] -= np.left_shift(np.int64(1), 5 * (k[endpos][neg] + 1))
    nsid = sid[endpos]                                      # string of each number
    first = np.flatnonzero(np.r_[True, nsid[1:] != nsid[:-1]])
    idx = np.arange(len(x)) - np.repeat(first, np.diff(np.r_[first, len(x)]))
    cnt = x.copy()
    # from the 4th number on a count is stored as the difference to the count two before it
    for sel in (np.flatnonzero(idx % 2 == 1), np.flatnonzero((idx % 2 == 0) & (idx >= 2))):
        if len(sel):
            xs, g = x[sel], nsid[sel]
            cs = np.cumsum(xs)
            gs = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            cnt[sel] = cs - np.repeat(cs[gs] - xs[gs], np.diff(np.r_[gs, len(sel)]))
    out_of_range = (cnt < 0) | (cnt >= 1 << 32)
    bad[nsid[out_of_range]] = True
    cnt[out_of_range] = 0
    total[nsid[first]] = np.add.reduceat(cnt, first)
    fg[nsid[first]] = np.add.reduceat(cnt * (idx % 2), first)
    total[bad] = -1


_KERNEL = None


def _rle_kernel():
    """The compiled loop of :func:`rle_string_sums` (numba, cached on disk; imported on first use)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True, nogil=True)
        def sums(buf, off, total, fg):   # pragma: no cover - compiled
            for m in range(len(off) - 1):
                p, end = off[m], off[m + 1]
                k = tot = a = prev1 = prev2 = 0
                ok = True
                while ok and p < end:
                    x = 0
                    sh = 0
                    more = True
                    while more:
                        if p >= end or sh >= 5 * _RLE_MAX_CHARS:
                            ok = False
                            break
                        c = np.int64(buf[p]) - 48
                        p += 1
                        if c < 0 or c > 63:
                            ok = False
                            break
                        x |= (c & 0x1F) << sh
                        sh += 5
                        more = (c & 0x20) != 0
                        if not more and (c & 0x10) != 0:   # negative: sign bit of the last character
                            x -= np.int64(1) << sh
                    if not ok:
                        break
                    if k > 2:                              # stored as the difference to the count two before
                        x += prev2
                    if x < 0 or x >= np.int64(1) << 32:
                        ok = False
                        break
                    tot += x
                    if k & 1:
                        a += x
                    prev2 = prev1
                    prev1 = x
                    k += 1
                total[m] = tot if ok else -1
                fg[m] = a

        _KERNEL = sums
    return _KERNEL


def check_rle_strings(pending: list[tuple], source: str, warn: FormatWarnings | None = None) -> None:
    """Check the RLE ``counts`` collected by :func:`check_segmentation` as ``(counts, where, field, h,
    w, area, at)`` tuples: a compressed string must decode, and an uncompressed list hold non-negative
    integers, to exactly ``h * w`` pixels (else :class:`YTVISFormatError`); an ``area`` (not None)
    that disagrees with its mask's foreground is a warning. All masks at once."""
    if not pending:
        return
    strings = [i for i, p in enumerate(pending) if isinstance(p[0], str)]
    lists = [i for i, p in enumerate(pending) if not isinstance(p[0], str)]
    total, fg = np.zeros(len(pending), np.int64), np.zeros(len(pending), np.int64)
    if strings:
        total[strings], fg[strings] = rle_string_sums([pending[i][0] for i in strings])
    if lists:
        total[lists], fg[lists] = _run_list_sums([pending[i][0] for i in lists])
    wrong = np.flatnonzero(total != np.array([p[3] * p[4] for p in pending], np.int64))
    if len(wrong):
        counts, where, field, h, w, _, at = pending[int(wrong[0])]
        if isinstance(counts, str):
            got = "it does not decode" if total[wrong[0]] < 0 else \
                f"its runs add up to {int(total[wrong[0]])} pixels, not {h * w}"
            raise _err(source, where, f"{field}['counts'] = {show(counts, 30)} is not a compressed RLE of a "
                                      f"{h}x{w} mask ({got}){at}")
        bad = [v for v in counts if not is_int(v) or v < 0][:1]
        if bad:
            raise _err(source, where, f"{field}['counts'] must hold non-negative integers, got {what(bad[0])}{at}")
        raise _err(source, where, f"{field}['counts'] adds up to {sum(counts)} pixels, not {h}x{w} = {h * w}{at}")
    if warn is not None:
        for (_, where, field, _, _, area, at), a in zip(pending, fg.tolist()):
            if area is not None and abs(area - a) > max(1.0, AREA_TOLERANCE * a):
                warn.add("areas that disagree with their masks", where,
                         f"the area of {field} is {area} but its mask has {a} pixels{at}")


def _run_list_sums(lists: list[list]) -> tuple[np.ndarray, np.ndarray]:
    """Uncompressed RLE ``counts`` lists -> (total, foreground) pixels, int64; ``total`` -1 where a
    list holds anything but non-negative 64-bit integers. Per list, C-level ``sum``/``min`` (faster
    here than building numpy arrays of all runs)."""
    n = len(lists)
    total, fg = np.full(n, -1, np.int64), np.zeros(n, np.int64)
    for i, c in enumerate(lists):
        try:
            t = sum(c)
        except TypeError:
            continue
        if type(t) is int and t < 1 << 63 and not (c and min(c) < 0):   # a float or a negative run: bad
            total[i], fg[i] = t, sum(c[1::2])
    return total, fg


def check_segmentation(s: Any, where: str, field: str, h: int, w: int, source: str, pending: list,
                       area: Any = None, compressed_only: bool = False, check_masks: bool = True,
                       at: str = "") -> None:
    """One frame's segmentation ``s``, named ``field`` of record ``where`` (``at`` ends each message):
    None, an RLE ``{"size": [h, w], "counts"}`` or (unless ``compressed_only``) a list of polygons.
    RLE ``counts`` (strings and lists) are appended to ``pending`` for :func:`check_rle_strings`, with
    the frame's ``area`` to compare; the rest is checked here. ``check_masks=False``: the type only."""
    def fail(msg: str) -> YTVISFormatError:
        return _err(source, where, msg + at)

    if s is None or (not check_masks and isinstance(s, (dict, list))):
        return
    if isinstance(s, dict):
        for key in ("size", "counts"):
            if key not in s:
                raise fail(f"{field} is an RLE without '{key}'")
        size = s["size"]
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(map(is_int, size))):
            raise fail(f"{field}['size'] must be [height, width] integers, got {show(size)}")
        if size[0] != h or size[1] != w:
            raise fail(f"{field} has size {[int(v) for v in size]} but the video is [{h}, {w}]")
        counts = s["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii", "replace")
        if isinstance(counts, str):
            pending.append((counts, where, field, h, w, area, at))
            return
        if compressed_only:
            raise fail(f"{field} must be compressed RLE ('counts' a string), got 'counts' of type {_type(counts)}")
        if not isinstance(counts, list):
            raise fail(f"{field}['counts'] must be a string or a list of run lengths, got {_type(counts)}")
        pending.append((counts, where, field, h, w, area, at))
        return
    if isinstance(s, list) and not compressed_only:
        if not s:
            raise fail(f"{field} is an empty list of polygons (null marks a frame without the object)")
        for j, poly in enumerate(s):
            if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                    and all(map(is_number, poly))):
                raise fail(f"{field}[{j}] must be a polygon [x1, y1, x2, y2, ...] of >= 3 points "
                           f"(finite numbers), got {show(poly)}")
            # pycocotools rasterizes every edge pixel by pixel: a far-away point costs memory and time
            far = [(x, y) for x, y in zip(poly[::2], poly[1::2]) if not (-w <= x <= 2 * w and -h <= y <= 2 * h)]
            if far:
                raise fail(f"{field}[{j}] has the point {far[0]} far outside the {w}x{h} image")
        return
    expected = "null or an RLE {'size', 'counts'}" + ("" if compressed_only else " or a list of polygons")
    raise fail(f"{field} must be {expected}, got {what(s)}")


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
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        hint = " (a file without annotations leaves the key out)" if anns is None else ""
        raise _err(source, "top level", f"'annotations' must be a list, got {_type(anns)}{hint}")
    cats = _categories(data, source)
    videos = _videos(data, source)
    warn = FormatWarnings(source)
    pending: list[tuple] = []
    ann_ids: dict[int, int] = {}
    for i, ann in enumerate(anns):
        _annotation(i, ann, videos, cats, ann_ids, source, warn, pending, check_masks)
    check_rle_strings(pending, source, warn)
    return warn.lines()


def load_ytvis(path: str | os.PathLike, validate: bool = True) -> dict:
    """Read (and by default validate) a YouTube-VIS annotation file; its warnings are not shown
    here (``visrc validate`` lists them)."""
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
