"""Mask areas and intersections computed on the runs of compressed COCO RLE, without dense masks.

A compressed RLE ``counts`` string (pycocotools' ``rleToString`` format) holds alternating
background / foreground run lengths in column-major pixel order, each a little-endian base-32
number of 5-bit characters (``chr(48 + bits)``, bit 0x20 = more characters, bit 0x10 of the last
= negative), and from the third on the difference to the count two before it. :func:`decode`
turns a list of such strings into the end positions of their runs, from which foreground
run ``j`` of a mask is ``[pos[2j], pos[2j + 1])``; :func:`pair_intersections` intersects these
interval lists of (prediction mask, GT mask) pairs, walking only the pixel range where both
masks have foreground. All arithmetic is on integers: an area is the sum of the foreground run
lengths (pycocotools' ``rleArea``), an intersection the total length of the overlap of the two
foreground interval lists (the area of pycocotools' ``merge([a, b], intersect=True)`` for masks
whose runs add up to ``h * w``).

The loops are compiled with numba (cached on disk after the first compilation).
"""
from __future__ import annotations

import numba
import numpy as np


def join_counts(counts: list) -> tuple[np.ndarray, np.ndarray]:
    """The ``counts`` strings (``str`` or ``bytes``) as one uint8 buffer and the offsets of each.

    Raises ``TypeError`` for anything else (uncompressed RLE's list ``counts``), as pycocotools does.
    """
    lens = None
    try:
        text = "".join(counts)
    except TypeError:
        text = None
    if text is not None:
        buf = text.encode("utf-8")
        lens = np.fromiter(map(len, counts), np.int64, len(counts))
        if len(buf) != int(lens.sum()):   # non-ASCII characters: lengths in bytes
            lens = None
    if lens is None:
        parts = []
        for c in counts:
            if isinstance(c, str):
                c = c.encode("utf-8")
            elif not isinstance(c, (bytes, bytearray)):
                raise TypeError(f"RLE counts must be a string, not {type(c).__name__}")
            parts.append(bytes(c))
        buf = b"".join(parts)
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
    off = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    return np.frombuffer(buf, np.uint8), off


@numba.njit(cache=True, nogil=True)
def _decode(buf, off, store, pos, n_runs, area):   # pragma: no cover - compiled
    """Decode every string ``buf[off[m]:off[m + 1]]``: its number of runs and foreground pixels and,
    if ``store``, the end positions of its runs from ``pos[off[m]]`` on."""
    for m in range(len(off) - 1):
        p, end = off[m], off[m + 1]
        k = 0
        acc = 0          # end position of the current run
        a = 0            # foreground pixels
        prev2 = 0        # counts k-2 and k-1 (uint32 values), for the delta coding
        prev1 = 0
        while p < end:
            c = np.int64(buf[p]) - 48
            p += 1
            x = c & 0x1F
            sh = 5
            while (c & 0x20) != 0 and p < end:    # more characters
                c = np.int64(buf[p]) - 48
                p += 1
                x |= (c & 0x1F) << sh
                sh += 5
            if sh < 64:
                x |= -((c >> 4) & 1) << sh        # negative: bit 0x10 of the last character
            if k > 2:
                x += prev2
            cnt = x & 0xFFFFFFFF    # pycocotools stores counts as uint32
            acc += cnt
            if store:
                pos[off[m] + k] = acc
            if k & 1:
                a += cnt
            prev2 = prev1
            prev1 = cnt
            k += 1
        n_runs[m] = k
        area[m] = a


def decode(counts: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode compressed RLE ``counts`` strings. Returns ``(pos, start, n_runs, area)``: run ``k`` of
    mask ``m`` ends at ``pos[start[m] + k]`` (``k < n_runs[m]``), ``area[m]`` its foreground pixels."""
    buf, off = join_counts(counts)
    pos = np.empty(max(len(buf), 1), np.int64)   # a run takes at least one character
    n_runs = np.zeros(len(counts), np.int64)
    area = np.zeros(len(counts), np.int64)
    if len(counts):
        _decode(buf, off, True, pos, n_runs, area)
    return pos, off[:-1], n_runs, area


def areas(counts: list, chunk: int = 1 << 16) -> np.ndarray:
    """Foreground pixels of each compressed RLE ``counts`` string (int64), ``chunk`` strings at a time."""
    out = np.zeros(len(counts), np.int64)
    n_runs = np.zeros(min(len(counts), chunk), np.int64)
    no_pos = np.zeros(1, np.int64)
    for s in range(0, len(counts), chunk):
        buf, off = join_counts(counts[s:s + chunk])
        _decode(buf, off, False, no_pos, n_runs, out[s:s + chunk])
    return out


@numba.njit(cache=True, nogil=True)
def _first_ending_after(pos, base, n_fg, x):   # pragma: no cover - compiled
    """Index of the first foreground run (of ``n_fg``) of a mask whose end is > ``x``."""
    lo, hi = 0, n_fg
    while lo < hi:
        mid = (lo + hi) >> 1
        if pos[base + 2 * mid + 1] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _intersection(pa, ba, na, pb, bb, nb):   # pragma: no cover - compiled
    """Pixels in both masks: ``na`` / ``nb`` foreground runs ``[p[b + 2j], p[b + 2j + 1])``."""
    if na == 0 or nb == 0:
        return 0
    lo = max(pa[ba], pb[bb])
    hi = min(pa[ba + 2 * na - 1], pb[bb + 2 * nb - 1])
    if hi <= lo:
        return 0
    i = _first_ending_after(pa, ba, na, lo)
    j = _first_ending_after(pb, bb, nb, lo)
    s = 0
    while i < na and j < nb:
        sa, ea = pa[ba + 2 * i], pa[ba + 2 * i + 1]
        sb, eb = pb[bb + 2 * j], pb[bb + 2 * j + 1]
        if sa >= hi or sb >= hi:
            break
        ov = min(ea, eb) - max(sa, sb)
        if ov > 0:
            s += ov
        if ea <= eb:
            i += 1
        else:
            j += 1
    return s


@numba.njit(cache=True, nogil=True)
def _pairs(dpos, dstart, dn, gpos, gstart, gn, g_lo, g_hi, d_out, g_out, inter):   # pragma: no cover
    for m in range(len(dstart)):
        for k in range(g_lo[m], g_hi[m]):
            v = _intersection(dpos, dstart[m], dn[m] >> 1, gpos, gstart[k], gn[k] >> 1)
            if v:
                inter[d_out[m] + g_out[k]] += v


def pair_intersections(d: tuple, g: tuple, g_lo: np.ndarray, g_hi: np.ndarray,
                       d_out: np.ndarray, g_out: np.ndarray, inter: np.ndarray) -> None:
    """Add to ``inter[d_out[m] + g_out[n]]`` the intersection of mask ``m`` of ``d`` with mask ``n``
    of ``g`` for every ``g_lo[m] <= n < g_hi[m]``. ``d`` and ``g`` are :func:`decode` outputs;
    ``inter`` is int64."""
    if len(d[1]) and len(g[1]):
        _pairs(d[0], d[1], d[2], g[0], g[1], g[2], g_lo, g_hi, d_out, g_out, inter)
