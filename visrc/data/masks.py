"""Mask encodings used in YouTube-VIS JSON, all through pycocotools.

A frame's segmentation in YouTube-VIS is one of: compressed RLE ``{"size": [h, w], "counts": str}``,
uncompressed RLE (``counts`` a list of ints), a list of polygons, or ``None`` (object not present).
Inside visrc a mask is always a compressed RLE dict whose ``counts`` is a ``str`` (JSON-safe).

The second half checks segmentations read from untrusted JSON without decoding them
(:func:`check_segmentation`, :func:`check_rle_strings`, :func:`rle_string_sums`) and the JSON value
helpers the record checks share (:func:`is_int`, :func:`is_number`, :class:`FormatWarnings`); a
violation is a :class:`YTVISFormatError` naming the file, the record and the field.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

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


# ============================================================== checking segmentations in JSON
# The checks below never decode a mask: pycocotools trusts an RLE and writes sum(runs) pixels into
# an h * w buffer, so a string is checked first. :mod:`visrc.data.ytvis` (GT) and
# :mod:`visrc.evaluation.validation` (results) build their record checks on them.

AREA_TOLERANCE = 0.01    # relative; an 'areas' entry further from its mask's pixel count is a warning
_RLE_MAX_CHARS = 7       # a count below 2**32 takes at most 7 characters (35 bits) in pycocotools' RLE strings


class YTVISFormatError(ValueError):
    """A YouTube-VIS file breaks the format. The message names file, record and field."""


def _err(source: str, where: str, msg: str, error: type[ValueError] = YTVISFormatError) -> ValueError:
    """The one-line format error ``source: where: msg`` (``error``: its class) that the ``visrc``
    command line prints; shared by the GT, results and predictions checks."""
    return error(f"{source}: {where}: {msg}")


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
