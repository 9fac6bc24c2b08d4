"""Spatio-temporal mask IoU and mask areas of YouTube-VIS tracks, for :mod:`visrc.evaluation.ytvis_eval`.

The numbers are the official evaluator's (its ``computeIoU`` and area rules); how they are obtained
from the RLE runs, without dense masks, is in :func:`pair_ious`. :class:`Tracks` is the flat store both sides
(GT and predictions) are kept in.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def _areas(rles: list) -> np.ndarray:
    """Areas of a list of compressed RLE dicts as int64 (pycocotools' ``mask.area``, on the runs)."""
    from visrc.evaluation import rle_runs   # numba: imported on first use, not with the package

    return rle_runs.areas([r["counts"] for r in rles])


def _to_rle(segm: Any, h: int, w: int) -> dict:
    """The oracle's ``annToRLE``: polygons are merged, uncompressed RLE is compressed.

    Not :func:`visrc.data.masks.to_rle`, which drops polygons of < 3 points and returns str counts.
    """
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm.get("counts"), list):
        return mask_utils.frPyObjects(segm, h, w)
    return segm


class Tracks:
    """Flat store of tracks: per track its segmentations (falsy = no mask in that frame)."""

    def __init__(self) -> None:
        self.segs: list[list] = []
        self.vid: list[int] = []     # index into sorted video ids
        self.cat: list[int] = []     # index into sorted category ids

    def subset(self, rows) -> "Tracks":
        """The tracks ``rows``: their segmentations and videos (categories left empty)."""
        sub = Tracks()
        sub.segs, sub.vid = [self.segs[i] for i in rows], [self.vid[i] for i in rows]
        return sub


class Areas:
    """Per track, the sum of its mask areas and its number of non-empty masks."""

    def __init__(self, total: np.ndarray, nonzero: np.ndarray) -> None:
        self.total, self.nonzero = total, nonzero

    @classmethod
    def from_flat(cls, flat: np.ndarray, off: np.ndarray) -> "Areas":
        """From all masks' areas, track ``i`` owning ``flat[off[i]:off[i + 1]]``."""
        cs = np.concatenate([[0], np.cumsum(flat)])
        cn = np.concatenate([[0], np.cumsum(flat > 0)])
        return cls(cs[off[1:]] - cs[off[:-1]], cn[off[1:]] - cn[off[:-1]])

    def mean_nonzero(self) -> np.ndarray:
        """Per track, the mean of its non-zero mask areas (0 if none), as ``np.array(l).mean()`` gives it
        (integer areas: the sum is exact in any order)."""
        return np.where(self.nonzero > 0, self.total.astype(np.float64) / np.maximum(self.nonzero, 1), 0.0)


def gt_mean_areas(fields: list) -> np.ndarray:
    """Per GT track, ``np.array([a for a in areas if a]).mean()`` (0 if empty; NaN if no field).

    Vectorized when every area is integer-valued (then any summation order is exact), else per track
    with the oracle's own expression.
    """
    out = np.full(len(fields), np.nan)
    have = [i for i, f in enumerate(fields) if f is not None]
    nz = [[a for a in fields[i] if a] for i in have]
    lens = np.fromiter(map(len, nz), np.int64, len(nz))
    try:
        flat = np.array(list(itertools.chain.from_iterable(nz)), np.float64)
        exact = bool(np.all(flat == np.floor(flat))) and (flat.sum() < 2.0 ** 52 if len(flat) else True)
    except (TypeError, ValueError):
        exact = False
    if exact:
        sums = np.concatenate([[0.0], np.cumsum(flat)])
        ends = np.cumsum(lens)
        tot = sums[ends] - sums[ends - lens]
        out[have] = np.where(lens > 0, tot / np.maximum(lens, 1), 0.0)
    else:
        out[have] = [float(np.array(l).mean()) if l else 0.0 for l in nz]
    return out


def normalize(tr: Tracks, sizes: list[tuple[int, int]]) -> None:
    """Convert polygons / uncompressed RLE to compressed RLE (copies of the lists, inputs untouched)."""
    for i, segs in enumerate(tr.segs):
        if any(s and (type(s) is not dict or isinstance(s.get("counts"), list)) for s in segs):
            h, w = sizes[tr.vid[i]]
            tr.segs[i] = [_to_rle(s, h, w) if s else None for s in segs]


def mask_areas(tr: Tracks, sizes: list[tuple[int, int]]) -> Areas:
    """Per track, the total and the number of non-empty mask areas.

    Polygons and uncompressed RLE are converted to compressed RLE first. A track whose masks equal
    an earlier track's (models that output top-k (mask, class) pairs repeat a mask track under
    several classes) is decoded once. Sizes are not checked here: an area does not depend on them
    (the oracle too takes the area of a prediction that overlaps no GT whatever its size).
    """
    for attempt in (0, 1):
        try:
            pres = [[s for s in segs if s] for segs in tr.segs]
            # duplicates: same video, same first/last mask and count, then the whole list compared
            first: dict = {}
            src = np.arange(len(pres))
            for i, p in enumerate(pres):
                if p:
                    j = first.setdefault((tr.vid[i], len(p), p[0]["counts"], p[-1]["counts"]), i)
                    if j != i and p == pres[j]:   # dict equality: same size and counts
                        src[i] = j
            uniq = np.flatnonzero(src == np.arange(len(pres)))
            upres = [pres[i] for i in uniq.tolist()]
            lens = np.fromiter(map(len, upres), np.int64, len(upres))
            offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            ua = Areas.from_flat(_areas(list(itertools.chain.from_iterable(upres))), offsets)
            row = np.searchsorted(uniq, src)          # each track's row among the unique ones
            return Areas(ua.total[row], ua.nonzero[row])
        except (TypeError, KeyError):   # polygons or uncompressed RLE somewhere
            if attempt:
                raise
            normalize(tr, sizes)
    raise AssertionError("unreachable")


class Masks:
    """All present masks of some tracks, in track order then frame order: per mask its RLE
    ``counts``, track and frame, per track its length. Checks each mask's size against its video's.
    The areas (per mask, and per track their total and number of non-zero ones) are set by
    :meth:`set_areas`."""

    def __init__(self, rows: list[int], tracks: Tracks, sizes: list[tuple[int, int]], what: str, index_of) -> None:
        segs_l = [tracks.segs[i] for i in rows]
        ts_l = [[t for t, s in enumerate(segs) if s] for segs in segs_l]
        lens = [len(ts) for ts in ts_l]
        hw_of_video = {v: list(sizes[v]) for v in set(tracks.vid[i] for i in rows)}
        track_hw = [hw_of_video[tracks.vid[i]] for i in rows]
        got = [segs[t]["size"] for segs, ts in zip(segs_l, ts_l) for t in ts]
        if got != [hw for hw, n in zip(track_hw, lens) for _ in range(n)]:
            for n, (segs, ts, hw) in enumerate(zip(segs_l, ts_l, track_hw)):
                for t in ts:
                    if [int(v) for v in segs[t]["size"]] != hw:
                        raise ValueError(f"{what} {index_of(rows[n])}: 'segmentations'[{t}] has size "
                                         f"{list(segs[t]['size'])} but its video is {hw}")
        self.counts = [segs[t]["counts"] for segs, ts in zip(segs_l, ts_l) for t in ts]
        self.track = np.repeat(np.arange(len(rows)), lens).astype(np.int64)
        self.frame = np.array(list(itertools.chain.from_iterable(ts_l)), np.int64)
        self.length = np.fromiter(map(len, segs_l), np.int64, len(segs_l))
        self.start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)   # track -> first mask
        self.set_areas(np.zeros(len(self.counts), np.int64))

    def set_areas(self, area: np.ndarray) -> None:
        """Set the masks' areas (int64) and the per-track sums derived from them."""
        n = len(self.length)
        self.area = area
        self.total = np.bincount(self.track, weights=area, minlength=n).astype(np.int64)
        self.nonzero = np.bincount(self.track, weights=area > 0, minlength=n).astype(np.int64)


def pair_ious(groups: list[tuple[int, int]], g_of: dict, d_of: dict, gt: Tracks, dt: Tracks,
              sizes: list[tuple[int, int]], d_index_of, chunk_chars: int) -> tuple[list[np.ndarray], list[int], "Masks"]:
    """Spatio-temporal IoU of every (prediction, GT) track pair of each (category, video) group.

    ``groups`` holds ``(category, video)`` keys that have both GT (``g_of[key]``: GT track rows) and
    predictions (``d_of[key]``: prediction rows in score order). Returns the IoU matrix
    ``[len(d_of[key]), len(g_of[key])]`` of each group, the prediction rows, and their masks (with
    their areas).

    Every mask is decoded once into its run boundaries (:func:`visrc.evaluation.rle_runs.decode`,
    which also gives its area), in chunks: the masks are sorted by
    (group, frame) and cut into chunks of about ``chunk_chars`` RLE characters, keeping a (group,
    frame) slot whole. Each same-group, same-frame (prediction mask, GT mask) pair gets its exact
    integer intersection from the runs; a track pair's intersection is the sum over its frames, its
    union the sum of both tracks' mask areas minus that intersection (frames past the shorter track
    left out, as the oracle's ``zip`` does), and its IoU ``I / U`` in float64 from these exact integers,
    as the oracle's sums of integer areas give it.
    """
    g_rows, d_rows = [], []
    for key in groups:
        g_rows += g_of[key]
        d_rows += d_of[key]
    G = Masks(g_rows, gt, sizes, "GT annotation", lambda i: f"#{i}")
    D = Masks(d_rows, dt, sizes, "result", d_index_of)

    # tracks of each group, in the order above: group q owns a contiguous block on each side
    Gq = np.array([len(g_of[key]) for key in groups], np.int64)
    Dq = np.array([len(d_of[key]) for key in groups], np.int64)
    g_first = np.concatenate([[0], np.cumsum(Gq)])
    d_first = np.concatenate([[0], np.cumsum(Dq)])
    pair_off = np.concatenate([[0], np.cumsum(Dq * Gq)])
    grp_of_d = np.repeat(np.arange(len(groups)), Dq)
    grp_of_g = np.repeat(np.arange(len(groups)), Gq)
    d_loc = np.arange(len(d_rows)) - d_first[grp_of_d]
    g_loc = np.arange(len(g_rows)) - g_first[grp_of_g]
    n_pairs = int(pair_off[-1])
    # pair (d, g) of group q is entry pair_off[q] + d_loc * Gq[q] + g_loc of the flat intersections
    d_out = (pair_off[grp_of_d] + d_loc * Gq[grp_of_d])[D.track]
    g_out = g_loc[G.track]
    inter_i = np.zeros(n_pairs, np.int64)
    _intersections(D, G, grp_of_d[D.track], grp_of_g[G.track], d_out, g_out, inter_i, chunk_chars)
    inter = inter_i.astype(np.float64)
    # every pair of every group
    grp_of_pair = np.repeat(np.arange(len(groups)), Dq * Gq)
    local = np.arange(n_pairs) - pair_off[grp_of_pair]
    pd = d_first[grp_of_pair] + local // np.maximum(Gq[grp_of_pair], 1)
    pg = g_first[grp_of_pair] + local % np.maximum(Gq[grp_of_pair], 1)
    union = _track_unions(D, G, pd, pg, inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    out = [iou[pair_off[q]:pair_off[q + 1]].reshape(int(Dq[q]), int(Gq[q])) for q in range(len(groups))]
    return out, d_rows, D


def _intersections(D: Masks, G: Masks, d_grp: np.ndarray, g_grp: np.ndarray, d_out: np.ndarray,
                   g_out: np.ndarray, inter: np.ndarray, chunk_chars: int) -> None:
    """Decode all masks (setting their areas) and add the intersection of every same-group,
    same-frame (prediction mask ``m``, GT mask ``n``) pair to ``inter[d_out[m] + g_out[n]]``."""
    from visrc.evaluation import rle_runs   # numba: imported on first use, not with the package

    if not len(D.counts) and not len(G.counts):
        return
    n_frames = int(max(D.frame.max(initial=0), G.frame.max(initial=0))) + 1
    d_code, g_code = d_grp * n_frames + D.frame, g_grp * n_frames + G.frame   # (group, frame) slots
    d_ord, g_ord = np.argsort(d_code, kind="stable"), np.argsort(g_code, kind="stable")
    d_sc, g_sc = d_code[d_ord], g_code[g_ord]
    # chunks: whole slots, cut where the running count of RLE characters passes a multiple of chunk_chars
    code = np.concatenate([d_code, g_code])
    chars = np.fromiter(map(len, itertools.chain(D.counts, G.counts)), np.int64, len(code))
    slots, inv = np.unique(code, return_inverse=True)
    slot_chars = np.bincount(inv, weights=chars, minlength=len(slots))
    chunk = ((np.cumsum(slot_chars) - slot_chars) // max(chunk_chars, 1)).astype(np.int64)
    bounds = np.concatenate([slots[:1], slots[1:][np.diff(chunk) > 0], slots[-1:] + 1])
    d_area, g_area = np.zeros(len(D.counts), np.int64), np.zeros(len(G.counts), np.int64)
    for c0, c1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        da, db = np.searchsorted(d_sc, [c0, c1])
        ga, gb = np.searchsorted(g_sc, [c0, c1])
        di, gi = d_ord[da:db], g_ord[ga:gb]
        dd = rle_runs.decode([D.counts[i] for i in di.tolist()])
        gg = rle_runs.decode([G.counts[i] for i in gi.tolist()])
        d_area[di], g_area[gi] = dd[3], gg[3]
        g_lo = np.searchsorted(g_sc[ga:gb], d_sc[da:db], side="left")
        g_hi = np.searchsorted(g_sc[ga:gb], d_sc[da:db], side="right")
        rle_runs.pair_intersections(dd, gg, g_lo, g_hi, d_out[di], g_out[gi], inter)
    D.set_areas(d_area)
    G.set_areas(g_area)


def _track_unions(D: Masks, G: Masks, pd: np.ndarray, pg: np.ndarray, inter: np.ndarray) -> np.ndarray:
    """Union of prediction track ``pd[p]`` and GT track ``pg[p]``: their mask areas minus ``inter[p]``."""
    union = (D.total[pd] + G.total[pg]).astype(np.float64) - inter
    odd = np.flatnonzero(D.length[pd] != G.length[pg])
    for p in odd.tolist():   # the oracle zips the two sequences: only frames t < min(len_d, len_g)
        lmin = min(D.length[pd[p]], G.length[pg[p]])
        a, b = D.start[pd[p]], D.start[pd[p] + 1]
        e, f = G.start[pg[p]], G.start[pg[p] + 1]
        union[p] = (D.area[a:b][D.frame[a:b] < lmin].sum() + G.area[e:f][G.frame[e:f] < lmin].sum()) - inter[p]
    return union
