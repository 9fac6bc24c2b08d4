"""Video instance segmentation AP on YouTube-VIS JSON (the official youtubevos/cocoapi metric).

The numbers are those of the official evaluator (``ytvoseval.py`` of youtubevos/cocoapi, ported
verbatim to ``mmdet.evaluation.functional.YTVISeval``): the tests compare every summary value with
that oracle on randomized cases. The implementation is our own and much faster:

* **IoU.** The spatio-temporal IoU of a predicted track ``d`` and a GT track ``g`` is
  ``sum_t |d_t & g_t| / sum_t |d_t | g_t|``, a frame where one side is ``null`` adding the other
  side's area to the union. Per video, ONE ``pycocotools.mask.iou`` call over all masks of the
  (prediction, GT) tracks of the categories present on both sides gives every same-frame,
  same-category pair's exact ``i / u`` without decoding anything to dense arrays: each mask is
  passed with a size ``[h, w + slot]`` unique to its (frame, category), so pairs from different
  slots fail pycocotools' box/size check for free (see :func:`_pair_ious`). The per-frame
  intersection is recovered exactly as ``round(iou * (a_d + a_g) / (1 + iou))`` from the mask
  areas (chunked ``mask.area`` calls); the union is the sum of the two tracks' areas minus the
  intersection, so the IoU is ``I / U`` over exact integers, as in the oracle.
* **Matching.** The oracle's greedy matching (per video, category, area range and IoU threshold, a
  crowd GT may be matched many times, a match to an in-range GT beats one to an ignored GT, ties
  go to the later GT) runs batched over all (video, category) groups, area ranges and thresholds at
  once, one numpy step per detection rank.
* **Accumulation and summary.** COCO's precision/recall arrays ``[T, R, K, A, M]`` built with
  vectorized cumulative sums; the summary is the oracle's own formula on identical arrays.

Semantics taken from the oracle (and tested against it):

* A GT track's area is the mean of the non-zero entries of its ``areas`` field (the JSON's, not the
  masks'); a prediction's is the mean of its non-zero mask areas. Area ranges are the COCO ones
  (small < 128^2 <= medium < 256^2 <= large, inclusive bounds) applied to that mean.
* ``iscrowd`` GT tracks are ignored (they may absorb any number of predictions without a penalty).
* Predictions are sorted by score (stable: ties keep file order) and only the top 100 of each
  (video, category) are used; maxDets 1/10/100 then apply per (video, category).
* Predictions whose ``category_id`` is not in the GT ``categories`` are dropped; predictions for a
  ``video_id`` not in the GT ``videos`` are an error (the oracle asserts). A category in
  ``categories`` with no GT track has AP -1 and does not enter the means.
* No predictions at all is allowed (the oracle crashes on it): every AP/AR with GT is then 0.

Inputs the oracle would silently mis-score are rejected instead (``ValueError``): a mask whose RLE
``size`` is not its video's ``[height, width]`` in a (video, category) that has GT tracks, where
pycocotools would compare it with GT masks. (:func:`visrc.evaluation.export.validate_results`
checks every mask; ``visrc evaluate`` runs it first.)
"""
from __future__ import annotations

import gc
import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from pycocotools import mask as mask_utils

# Parameters of the official evaluator (Params.setDetParams), computed the same way.
IOU_THRS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
REC_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREA_RNG = ((0 ** 2, 1e5 ** 2), (0 ** 2, 128 ** 2), (128 ** 2, 256 ** 2), (256 ** 2, 1e5 ** 2))
AREA_LBL = ("all", "small", "medium", "large")

# (name, ap?, iouThr, area label, maxDets) in the order of the oracle's ``stats`` vector.
SUMMARY_SPEC = (
    ("AP", 1, None, "all", 100),
    ("AP50", 1, .5, "all", 100),
    ("AP75", 1, .75, "all", 100),
    ("APs", 1, None, "small", 100),
    ("APm", 1, None, "medium", 100),
    ("APl", 1, None, "large", 100),
    ("AR1", 0, None, "all", 1),
    ("AR10", 0, None, "all", 10),
    ("AR100", 0, None, "all", 100),
    ("ARs", 0, None, "small", 100),
    ("ARm", 0, None, "medium", 100),
    ("ARl", 0, None, "large", 100),
)
SUMMARY_KEYS = tuple(s[0] for s in SUMMARY_SPEC)

# pycocotools' mask.area builds its output with np.array((n,), dtype=np.uint8): n > 255 overflows
# under numpy 2, so area calls go in chunks.
_AREA_CHUNK = 255
_EPS = np.spacing(1)


@dataclass
class YTVISEvalResult:
    """Summary of one evaluation. Undefined values (no GT in that bucket) are -1, as in COCO."""

    stats: dict[str, float]
    per_category: dict[int, float]          # category id -> AP@[.5:.95], area all, maxDets 100
    category_names: dict[int, str]
    precision: np.ndarray = field(repr=False)   # [T, R, K, A, M]
    recall: np.ndarray = field(repr=False)      # [T, K, A, M]
    cat_ids: list[int] = field(repr=False)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def stats_vector(self) -> np.ndarray:
        """The 12 values in the order of the official evaluator's ``stats``."""
        return np.array([self.stats[k] for k in SUMMARY_KEYS], dtype=np.float64)

    def as_dict(self) -> dict:
        """JSON-ready: summary values, per-category AP (with ids and names) and counts."""
        return {"metrics": {k: float(v) for k, v in self.stats.items()},
                "per_category": [{"id": c, "name": self.category_names.get(c, str(c)), "AP": float(v)}
                                 for c, v in self.per_category.items()],
                "counts": dict(self.counts)}


def _as_data(obj: Any):
    if isinstance(obj, (str, os.PathLike)):
        from visrc.fileio import read_json
        return read_json(obj)
    return obj


def _areas(rles: list) -> np.ndarray:
    """Areas of a list of compressed RLE dicts as int64."""
    out = np.empty(len(rles), np.int64)
    for s in range(0, len(rles), _AREA_CHUNK):
        out[s:s + _AREA_CHUNK] = mask_utils.area(rles[s:s + _AREA_CHUNK])
    return out


def _to_rle(segm: Any, h: int, w: int) -> dict:
    """The oracle's ``annToRLE``: polygons are merged, uncompressed RLE is compressed."""
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm.get("counts"), list):
        return mask_utils.frPyObjects(segm, h, w)
    return segm


class _Tracks:
    """Flat store of tracks: per track its segmentations (falsy = no mask in that frame)."""

    def __init__(self) -> None:
        self.segs: list[list] = []
        self.vid: list[int] = []     # index into sorted video ids
        self.cat: list[int] = []     # index into sorted category ids


class _Areas:
    """Per track, the sum of its mask areas and its number of non-empty masks."""

    def __init__(self, total: np.ndarray, nonzero: np.ndarray) -> None:
        self.total, self.nonzero = total, nonzero

    @classmethod
    def from_flat(cls, flat: np.ndarray, off: np.ndarray) -> "_Areas":
        """From all masks' areas, track ``i`` owning ``flat[off[i]:off[i + 1]]``."""
        cs = np.concatenate([[0], np.cumsum(flat)])
        cn = np.concatenate([[0], np.cumsum(flat > 0)])
        return cls(cs[off[1:]] - cs[off[:-1]], cn[off[1:]] - cn[off[:-1]])

    def mean_nonzero(self) -> np.ndarray:
        """Per track, the mean of its non-zero mask areas (0 if none), as ``np.array(l).mean()`` gives it
        (integer areas: the sum is exact in any order)."""
        return np.where(self.nonzero > 0, self.total.astype(np.float64) / np.maximum(self.nonzero, 1), 0.0)


def _gt_mean_areas(fields: list) -> np.ndarray:
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


def _normalize(tr: _Tracks, sizes: list[tuple[int, int]]) -> None:
    """Convert polygons / uncompressed RLE to compressed RLE (copies of the lists, inputs untouched)."""
    for i, segs in enumerate(tr.segs):
        if any(s and (type(s) is not dict or isinstance(s.get("counts"), list)) for s in segs):
            h, w = sizes[tr.vid[i]]
            tr.segs[i] = [_to_rle(s, h, w) if s else None for s in segs]


def _mask_areas(tr: _Tracks, sizes: list[tuple[int, int]]) -> _Areas:
    """Per track, the total and the number of non-empty mask areas (chunked ``mask.area`` calls).

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
            ua = _Areas.from_flat(_areas(list(itertools.chain.from_iterable(upres))), offsets)
            row = np.searchsorted(uniq, src)          # each track's row among the unique ones
            return _Areas(ua.total[row], ua.nonzero[row])
        except (TypeError, KeyError):   # polygons or uncompressed RLE somewhere
            if attempt:
                raise
            _normalize(tr, sizes)
    raise AssertionError("unreachable")


# Above this many (prediction mask x GT mask) entries, a video's IoU call is split by frames.
_MAX_PAIRS = 4_000_000


class _Masks:
    """All present masks of some tracks (video-major), each relabelled with the size
    ``[h, w + slot]``, ``slot = frame * n_keys + key`` (see :func:`_pair_ious`); per mask its track,
    frame and area, per track its length and total / non-empty mask areas. Checks each mask's own
    size against its video's."""

    def __init__(self, rows: list[int], keys: list[int], nkeys: list[int], tracks: _Tracks,
                 sizes: list[tuple[int, int]], what: str, index_of) -> None:
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
        # one list of [h, w + slot] per video, shared by the masks of that slot
        slot_sizes: dict = {}
        track_ss = []
        for i, nk, segs in zip(rows, nkeys, segs_l):
            v = tracks.vid[i]
            ss = slot_sizes.get(v)
            if ss is None or len(ss) < len(segs) * nk:
                h, w = sizes[v]
                ss = slot_sizes[v] = [[h, w + sl] for sl in range(max(len(segs) * nk, len(ss or ())))]
            track_ss.append(ss)
        self.rles = [{"size": ss[k + t * nk], "counts": segs[t]["counts"]}
                     for segs, ts, ss, k, nk in zip(segs_l, ts_l, track_ss, keys, nkeys) for t in ts]
        self.track = np.repeat(np.arange(len(rows)), lens).astype(np.int64)
        self.frame = np.array(list(itertools.chain.from_iterable(ts_l)), np.int64)
        self.area = _areas(self.rles)
        self.length = np.fromiter(map(len, segs_l), np.int64, len(segs_l))
        self.start = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)   # track -> first mask
        self.total = np.bincount(self.track, weights=self.area, minlength=len(rows)).astype(np.int64)
        self.nonzero = np.bincount(self.track, weights=self.area > 0, minlength=len(rows)).astype(np.int64)


def _pair_ious(groups: list[tuple[int, int]], g_of: dict, d_of: dict, gt: _Tracks, dt: _Tracks,
               sizes: list[tuple[int, int]], d_index_of) -> tuple[list[np.ndarray], list[int], "_Masks"]:
    """Spatio-temporal IoU of every (prediction, GT) track pair of each (category, video) group.

    ``groups`` holds ``(category, video)`` keys that have both GT (``g_of[key]``: GT track rows) and
    predictions (``d_of[key]``: prediction rows in score order). Returns the IoU matrix
    ``[len(d_of[key]), len(g_of[key])]`` of each group, the prediction rows, and their masks.

    Per video, ONE ``mask.iou`` call (split by frames if huge) covers all masks of these tracks, each
    passed with the size ``[h, w + slot]``, ``slot = frame * n_keys + key`` (key: the group within
    the video). pycocotools decodes an RLE string without its size, computes a mask's box from the
    height alone (the width only seeds the minimum, so any width >= w gives the true box), and
    compares sizes only for pairs whose boxes overlap, answering -1 on a mismatch. So pairs from
    different frames or categories cost a box test, and each same-frame, same-category pair gets its
    exact ``intersection / union``. The intersection is recovered exactly as
    ``round(iou * (a_d + a_g) / (1 + iou))``; a track pair's union is the sum of both tracks' mask
    areas minus the summed intersections.
    """
    by_video = sorted(range(len(groups)), key=lambda q: (groups[q][1], groups[q][0]))
    g_rows, d_rows, g_keys, d_keys, g_nk, d_nk = [], [], [], [], [], []
    vids: list[int] = []
    local_key: dict = {}
    for q in by_video:
        c, v = groups[q]
        if not vids or vids[-1] != v:
            vids.append(v)
        local_key.setdefault(v, []).append(q)
    for v in vids:
        qs = local_key[v]
        for k, q in enumerate(qs):
            g_rows += g_of[groups[q]]
            d_rows += d_of[groups[q]]
            g_keys += [k] * len(g_of[groups[q]])
            d_keys += [k] * len(d_of[groups[q]])
        g_nk += [len(qs)] * (len(g_rows) - len(g_nk))
        d_nk += [len(qs)] * (len(d_rows) - len(d_nk))
    G = _Masks(g_rows, g_keys, g_nk, gt, sizes, "GT annotation", lambda i: f"#{i}")
    D = _Masks(d_rows, d_keys, d_nk, dt, sizes, "result", d_index_of)

    # tracks of each group, in the order above: group q owns a contiguous block on each side
    Gq = np.array([len(g_of[groups[q]]) for q in by_video], np.int64)
    Dq = np.array([len(d_of[groups[q]]) for q in by_video], np.int64)
    g_first = np.concatenate([[0], np.cumsum(Gq)])
    d_first = np.concatenate([[0], np.cumsum(Dq)])
    pair_off = np.concatenate([[0], np.cumsum(Dq * Gq)])
    grp_of_d = np.repeat(np.arange(len(by_video)), Dq)
    d_loc = np.arange(len(d_rows)) - d_first[grp_of_d]
    g_loc = np.arange(len(g_rows)) - np.repeat(g_first[:-1], Gq)

    # masks of each video: contiguous too
    vid_of_g = np.array([gt.vid[i] for i in g_rows], np.int64)
    vid_of_d = np.array([dt.vid[i] for i in d_rows], np.int64)
    rr, cc, vv = [], [], []
    for v in vids:
        t0, t1 = np.searchsorted(vid_of_g, v), np.searchsorted(vid_of_g, v, side="right")
        s0, s1 = np.searchsorted(vid_of_d, v), np.searchsorted(vid_of_d, v, side="right")
        gs, ge, ds, de = int(G.start[t0]), int(G.start[t1]), int(D.start[s0]), int(D.start[s1])
        if gs == ge or ds == de:
            continue
        if (ge - gs) * (de - ds) <= _MAX_PAIRS:
            chunks = [(np.arange(ds, de), np.arange(gs, ge))]
        else:   # split by frame ranges
            gf, df = G.frame[gs:ge], D.frame[ds:de]
            n_frames = int(max(gf.max(), df.max())) + 1
            per = max(1, int(n_frames * math.sqrt(_MAX_PAIRS / ((ge - gs) * (de - ds)))))
            chunks = [(ds + np.flatnonzero((df >= f) & (df < f + per)), gs + np.flatnonzero((gf >= f) & (gf < f + per)))
                      for f in range(0, n_frames, per)]
        for di, gi in chunks:
            if not len(di) or not len(gi):
                continue
            if len(chunks) == 1:
                o = mask_utils.iou(D.rles[ds:de], G.rles[gs:ge], np.zeros(ge - gs, np.uint8))
            else:
                o = mask_utils.iou([D.rles[j] for j in di.tolist()], [G.rles[j] for j in gi.tolist()],
                                   np.zeros(len(gi), np.uint8))
            r, c = np.nonzero(o > 0)
            if len(r):
                vv.append(o[r, c])
                rr.append(di[r])
                cc.append(gi[c])
    n_pairs = int(pair_off[-1])
    inter = np.zeros(n_pairs)
    if rr:
        r, c, o = np.concatenate(rr), np.concatenate(cc), np.concatenate(vv)
        # exact integer intersection from iou = i / (a + b - i)
        i_frame = np.rint(o * (D.area[r] + G.area[c]) / (1.0 + o))
        td, tg = D.track[r], G.track[c]
        q = grp_of_d[td]
        inter = np.bincount(pair_off[q] + d_loc[td] * Gq[q] + g_loc[tg], weights=i_frame, minlength=n_pairs)
    # every pair of every group
    grp_of_pair = np.repeat(np.arange(len(by_video)), Dq * Gq)
    local = np.arange(n_pairs) - pair_off[grp_of_pair]
    pd = d_first[grp_of_pair] + local // np.maximum(Gq[grp_of_pair], 1)
    pg = g_first[grp_of_pair] + local % np.maximum(Gq[grp_of_pair], 1)
    union = (D.total[pd] + G.total[pg]).astype(np.float64) - inter
    odd = np.flatnonzero(D.length[pd] != G.length[pg])
    for p in odd.tolist():   # the oracle zips the two sequences: only frames t < min(len_d, len_g)
        lmin = min(D.length[pd[p]], G.length[pg[p]])
        a, b = D.start[pd[p]], D.start[pd[p] + 1]
        e, f = G.start[pg[p]], G.start[pg[p] + 1]
        union[p] = (D.area[a:b][D.frame[a:b] < lmin].sum() + G.area[e:f][G.frame[e:f] < lmin].sum()) - inter[p]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    out: list = [None] * len(groups)
    for n, q in enumerate(by_video):
        out[q] = iou[pair_off[n]:pair_off[n + 1]].reshape(int(Dq[n]), int(Gq[n]))
    return out, d_rows, D


def _last_argmax(vals: np.ndarray) -> np.ndarray:
    n = vals.shape[-1]
    return n - 1 - np.argmax(vals[..., ::-1], axis=-1)


def _match_groups(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  thr: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The oracle's greedy matching (``evaluateVid``), batched over groups, area ranges and thresholds.

    ``groups``: per (video, category) with both GT and predictions, ``(ious [D, G], gt_ignore [A, G],
    gt_crowd [G])``, predictions in score order. Returns per group ``(matched [A, T, D],
    matched_to_ignored [A, T, D])``.

    The oracle walks the GT sorted by ignore flag (stable) and, for each prediction in score order,
    keeps the last GT whose IoU is >= the running best (starting at the threshold), skipping GT
    already matched unless crowd, and stops at the first ignored GT once it holds a non-ignored one.
    That is: among the eligible non-ignored GT with IoU >= threshold, the last (in file order) of
    those with the highest IoU; if there is none, the same among the eligible ignored GT.
    """
    out: list = [None] * len(groups)
    if not groups:
        return out
    A, T = groups[0][1].shape[0], len(thr)
    # bucket by number of GT tracks (padding cost), process groups sorted by D descending
    gsize = np.array([g[0].shape[1] for g in groups])
    bucket_of = np.where(gsize <= 4, gsize, 2 ** np.ceil(np.log2(np.maximum(gsize, 1))).astype(int))
    for gp in np.unique(bucket_of):
        members = np.flatnonzero(bucket_of == gp)
        dsize = np.array([groups[i][0].shape[0] for i in members])
        members = members[np.argsort(-dsize, kind="stable")]
        dsize = np.array([groups[i][0].shape[0] for i in members])
        N, Dmax, Gp = len(members), int(dsize.max()), int(gp)
        iou = np.full((N, Dmax, Gp), -np.inf)
        ig = np.zeros((N, A, Gp), bool)
        for n, i in enumerate(members):
            d, g = groups[i][0].shape
            iou[n, :d, :g] = groups[i][0]
            ig[n, :, :g] = groups[i][1]
        # a padded GT never qualifies (iou -inf); crowd GTs are always ignored and never "used up"
        matched = np.zeros((N, A, T, Gp), bool)
        dtm = np.zeros((N, A, T, Dmax), bool)
        dtig = np.zeros((N, A, T, Dmax), bool)
        crowd_like = np.zeros((N, 1, 1, Gp), bool)
        for n, i in enumerate(members):
            crowd_like[n, 0, 0, :groups[i][0].shape[1]] = groups[i][2]
        igb = ig[:, :, None, :]
        n_active = np.searchsorted(-dsize, -np.arange(Dmax), side="left")   # groups with D > d
        for d in range(Dmax):
            n = int(n_active[d])
            v = iou[:n, d][:, None, None, :]                         # [n,1,1,G]
            elig = (v >= thr[None, None, :, None]) & (~matched[:n] | crowd_like[:n])
            non = elig & ~igb[:n]
            has_non = non.any(axis=-1)
            cand = np.where(has_non[..., None], non, elig)
            has = cand.any(axis=-1)
            pick = _last_argmax(np.where(cand, v, -1.0))            # [n,A,T]
            dtm[:n, :, :, d] = has
            dtig[:n, :, :, d] = has & np.take_along_axis(np.broadcast_to(igb[:n], cand.shape), pick[..., None], -1)[..., 0]
            matched[:n] |= has[..., None] & (np.arange(Gp) == pick[..., None])
        for n, i in enumerate(members):
            d = groups[i][0].shape[0]
            out[i] = (dtm[n, :, :, :d], dtig[n, :, :, :d])
    return out


def evaluate_ytvis(gt: Mapping | str | os.PathLike, results: Sequence[Mapping] | str | os.PathLike,
                   max_dets: Sequence[int] = MAX_DETS) -> YTVISEvalResult:
    """Video AP/AR of ``results`` against YouTube-VIS ground truth ``gt`` (dicts or JSON paths).

    ``results``: a list of ``{"video_id", "category_id", "score", "segmentations": [RLE | None]*length}``.
    Raises ``ValueError`` for a prediction whose video is not in ``gt`` or whose mask size is wrong.
    """
    # The inputs hold millions of Python objects; the cyclic GC would rescan them on every burst
    # of temporary dicts. Nothing here creates reference cycles, so it is paused meanwhile.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(gt, results, max_dets)
    finally:
        if was_enabled:
            gc.enable()


def _evaluate(gt, results, max_dets) -> YTVISEvalResult:
    gt = _as_data(gt)
    if isinstance(results, (str, os.PathLike)):   # a results JSON or a submission.zip
        from visrc.evaluation.export import load_results
        results = load_results(results, gt, validate=False)
    max_dets = sorted(int(m) for m in max_dets)
    max_det = max_dets[-1]

    vid_ids = sorted(set(v["id"] for v in gt["videos"]))
    vid_pos = {v: i for i, v in enumerate(vid_ids)}
    vinfo = {v["id"]: v for v in gt["videos"]}
    sizes = [(int(vinfo[v]["height"]), int(vinfo[v]["width"])) for v in vid_ids]
    cats = {c["id"]: c for c in gt["categories"]}
    cat_ids = sorted(cats)
    cat_pos = {c: i for i, c in enumerate(cat_ids)}
    K, A, T, R, M = len(cat_ids), len(AREA_RNG), len(IOU_THRS), len(REC_THRS), len(max_dets)
    lo = np.array([a[0] for a in AREA_RNG], np.float64)
    hi = np.array([a[1] for a in AREA_RNG], np.float64)

    # ---- ground truth
    gtr = _Tracks()
    g_crowd: list[bool] = []
    g_areas_field: list = []
    for ann in gt.get("annotations", []):
        v, c = vid_pos.get(ann["video_id"]), cat_pos.get(ann["category_id"])
        if v is None or c is None:
            continue
        gtr.segs.append(ann["segmentations"])
        gtr.vid.append(v)
        gtr.cat.append(c)
        g_crowd.append(bool(ann.get("iscrowd", 0)))
        g_areas_field.append(ann.get("areas"))
    g_area_arr = _gt_mean_areas(g_areas_field)
    missing = np.flatnonzero(np.isnan(g_area_arr))
    if len(missing):   # no 'areas' field: the mean of the non-zero mask areas
        sub = _Tracks()
        sub.segs, sub.vid = [gtr.segs[i] for i in missing], [gtr.vid[i] for i in missing]
        g_area_arr[missing] = _mask_areas(sub, sizes).mean_nonzero()
    g_crowd_arr = np.array(g_crowd, bool)
    g_ig = g_crowd_arr[None, :] | (g_area_arr[None, :] < lo[:, None]) | (g_area_arr[None, :] > hi[:, None])  # [A, G]

    # ---- predictions: group by (video, category), stable score sort, top max_det
    unknown = sorted({r["video_id"] for r in results} - set(vid_pos), key=str)
    if unknown:
        raise ValueError(f"results: {len(unknown)} video id(s) not in the GT videos, e.g. {unknown[:5]}")
    n_vid = max(len(vid_ids), 1)
    cpos = np.array([cat_pos.get(r["category_id"], -1) for r in results], np.int64)
    vpos = np.array([vid_pos[r["video_id"]] for r in results], np.int64)
    score = np.array([r["score"] for r in results], np.float64)
    keep = np.flatnonzero(cpos >= 0)   # the oracle only loads predictions of GT categories
    # category-major, then video (the accumulation order), then score; stable like the oracle's mergesort
    order = keep[np.lexsort((-score[keep], vpos[keep], cpos[keep]))]
    gkey = cpos[order] * n_vid + vpos[order]
    starts = np.flatnonzero(np.r_[True, gkey[1:] != gkey[:-1]]) if len(order) else np.zeros(0, np.int64)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    sel = rank < max_det
    order, rank, gkey = order[sel], rank[sel], gkey[sel]
    dtr = _Tracks()
    dtr.segs = [results[j]["segmentations"] for j in order.tolist()]
    dtr.vid = vpos[order].tolist()
    dtr.cat = cpos[order].tolist()
    d_src = order
    group_rows: dict[tuple[int, int], range] = {}
    if len(order):
        bounds = np.flatnonzero(np.r_[True, gkey[1:] != gkey[:-1], True])
        for a0, a1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            group_rows[(dtr.cat[a0], dtr.vid[a0])] = range(a0, a1)
    nd_all = len(dtr.segs)
    d_index_of = lambda i: f"#{d_src[i]}"   # noqa: E731  (index in the results list)

    # ---- IoU per video for the categories with both GT and predictions (and those tracks' areas)
    g_by_vc: dict[tuple[int, int], list[int]] = {}
    for i in range(len(gtr.segs)):
        g_by_vc.setdefault((gtr.cat[i], gtr.vid[i]), []).append(i)
    both = sorted(k for k in group_rows if k in g_by_vc)
    d_total = np.zeros(nd_all, np.int64)
    d_nonzero = np.zeros(nd_all, np.int64)
    done = np.zeros(nd_all, bool)
    d_of = {k: list(group_rows[k]) for k in both}
    if both:
        try:
            ious, rel_rows, D = _pair_ious(both, g_by_vc, d_of, gtr, dtr, sizes, d_index_of)
        except (TypeError, KeyError):   # polygons or uncompressed RLE among these tracks
            for tracks, rows in ((gtr, sorted({i for k in both for i in g_by_vc[k]})),
                                 (dtr, sorted({i for k in both for i in d_of[k]}))):
                sub = _Tracks()
                sub.segs, sub.vid = [tracks.segs[i] for i in rows], [tracks.vid[i] for i in rows]
                _normalize(sub, sizes)
                for i, segs in zip(rows, sub.segs):
                    tracks.segs[i] = segs
            ious, rel_rows, D = _pair_ious(both, g_by_vc, d_of, gtr, dtr, sizes, d_index_of)
        group_iou = dict(zip(both, ious))
        d_total[rel_rows], d_nonzero[rel_rows] = D.total, D.nonzero
        done[rel_rows] = True
    else:
        group_iou = {}
    # areas of the other predictions (no GT of their category in their video)
    rest = np.flatnonzero(~done)
    if len(rest):
        sub = _Tracks()
        sub.segs, sub.vid = [dtr.segs[i] for i in rest], [dtr.vid[i] for i in rest]
        ra = _mask_areas(sub, sizes)
        d_total[rest], d_nonzero[rest] = ra.total, ra.nonzero
    # a prediction's area: the mean of its non-zero mask areas, as np.array(l).mean() gives it
    d_area_arr = np.where(d_nonzero > 0, d_total.astype(np.float64) / np.maximum(d_nonzero, 1), 0.0)
    d_out = (d_area_arr[None, :] < lo[:, None]) | (d_area_arr[None, :] > hi[:, None])   # [A, D]

    # ---- matching
    thr = np.minimum(IOU_THRS, 1 - 1e-10)
    matches = _match_groups([(group_iou[k], g_ig[:, g_by_vc[k]], g_crowd_arr[g_by_vc[k]]) for k in both], thr)
    DTM = np.zeros((nd_all, A, T), bool)
    DTIG = np.zeros((nd_all, A, T), bool)
    for k, (m, mig) in zip(both, matches):
        rows = group_rows[k]
        DTM[rows.start:rows.stop] = m.transpose(2, 0, 1)
        DTIG[rows.start:rows.stop] = mig.transpose(2, 0, 1)
    DTIG |= ~DTM & d_out.T[:, :, None]
    tps_all = DTM & ~DTIG
    fps_all = ~DTM & ~DTIG

    # ---- accumulate
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    npig = np.zeros((K, A), np.int64)
    has_gt = np.zeros(K, bool)
    if len(gtr.cat):
        gc = np.array(gtr.cat)
        np.add.at(npig, gc, (~g_ig).T.astype(np.int64))
        has_gt[gc] = True
    d_score_arr = score[order]
    d_rank_arr = rank
    d_cat_arr = np.array(dtr.cat, np.int64)
    cat_bounds = np.searchsorted(d_cat_arr, np.arange(K + 1))
    for k in range(K):
        a0, a1 = cat_bounds[k], cat_bounds[k + 1]
        if not has_gt[k] and a1 == a0:
            continue                      # no evaluated (video, category): E is empty
        if not (npig[k] > 0).any():
            continue
        # v(thr) = #{v : v / npig < thr} for every recall threshold, per area range (see below)
        vthr_k = np.stack([np.searchsorted(np.arange(p + 1) / p, REC_THRS, side="left") if p else
                           np.zeros(R, np.int64) for p in npig[k]])
        for mi, md in enumerate(max_dets):
            sel = np.flatnonzero(d_rank_arr[a0:a1] < md) + a0
            sc = d_score_arr[sel]
            inds = np.argsort(-sc, kind="mergesort")
            rows = sel[inds]
            nd = len(rows)
            tp_sum = np.cumsum(tps_all[rows], axis=0, dtype=np.float64)   # [n, A, T]
            fp_sum = np.cumsum(fps_all[rows], axis=0, dtype=np.float64)
            ok_a = np.flatnonzero(npig[k] > 0)
            if nd == 0:   # the oracle: recall 0, precision 0 at every recall threshold
                recall[:, k, ok_a, mi] = 0
                precision[:, :, k, ok_a, mi] = 0
                continue
            npk = npig[k, ok_a]
            tp, fp = tp_sum[:, ok_a, :], fp_sum[:, ok_a, :]               # [n, A', T]
            recall[:, k, ok_a, mi] = (tp[-1] / npk[:, None]).T              # rc[-1], rc = tp / npig
            pr = tp / (fp + tp + _EPS)
            pr = np.maximum.accumulate(pr[::-1], axis=0)[::-1]             # the oracle's envelope loop
            # searchsorted(rc, recThrs, 'left') per (area, IoU) column, all columns in one call:
            # rc = tp / npig with integer tp, so rc < thr <=> tp < v(thr), v(thr) = #{v : v / npig < thr}
            vthr = np.minimum(vthr_k[ok_a], nd + 1)                          # [A', R]
            cols = tp.reshape(nd, -1).T                                      # [A'*T, n], rows nondecreasing
            C = cols.shape[0]
            off = np.arange(C, dtype=np.float64)[:, None] * (nd + 1)         # keeps the concatenation sorted
            pos = np.searchsorted((cols + off).ravel(), (np.repeat(vthr, T, axis=0) + off).ravel(), side="left")
            idx = pos.reshape(C, R) - np.arange(C)[:, None] * nd
            prc = pr.reshape(nd, -1).T
            vals = np.where(idx < nd, np.take_along_axis(prc, np.minimum(idx, nd - 1), axis=1), 0.0)
            precision[:, :, k, ok_a, mi] = vals.reshape(len(ok_a), T, R).transpose(1, 2, 0)

    stats = _summarize(precision, recall, max_dets)
    per_cat = {}
    for k, c in enumerate(cat_ids):
        s = precision[:, :, k, 0, -1]
        per_cat[c] = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
    return YTVISEvalResult(
        stats=stats, per_category=per_cat,
        category_names={c: str(cats[c].get("name", c)) for c in cat_ids},
        precision=precision, recall=recall, cat_ids=cat_ids,
        counts={"videos": len(vid_ids), "gt_tracks": len(gtr.segs), "predictions": len(results),
                "predictions_used": nd_all, "categories": K})


def _summarize(precision: np.ndarray, recall: np.ndarray, max_dets: Sequence[int]) -> dict[str, float]:
    """The oracle's ``summarize`` (same slicing and mean, so the same floating-point result)."""
    out = {}
    md = list(max_dets)
    for name, ap, iou_thr, area, mdet in SUMMARY_SPEC:
        if len(md) == 3:   # the oracle uses maxDets[0..2] for 1/10/100
            mdet = {1: md[0], 10: md[1], 100: md[2]}[mdet]
        aind = [i for i, lbl in enumerate(AREA_LBL) if lbl == area]
        mind = [i for i, m in enumerate(md) if m == mdet]
        if ap == 1:
            s = precision
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRS)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = recall
            if iou_thr is not None:
                s = s[np.where(iou_thr == IOU_THRS)[0]]
            s = s[:, :, aind, mind]
        out[name] = -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))
    return out
