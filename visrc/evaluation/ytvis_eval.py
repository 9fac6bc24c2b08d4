"""Video instance segmentation AP on YouTube-VIS JSON (the official youtubevos/cocoapi metric).

The numbers are those of the official evaluator (``ytvoseval.py`` of youtubevos/cocoapi, ported
verbatim to ``mmdet.evaluation.functional.YTVISeval``): the tests compare every summary value with
that oracle on randomized cases. The implementation is visrc's own and faster
(``benchmarks/bench_evaluation.py``):

* **IoU.** The spatio-temporal IoU of a predicted track ``d`` and a GT track ``g`` is
  ``sum_t |d_t & g_t| / sum_t |d_t | g_t|``, a frame where one side is ``null`` adding the other
  side's area to the union. Every mask's compressed RLE string is decoded once into its run
  boundaries (never into a dense array), giving its area; each same-frame (prediction mask, GT mask)
  pair of a (video, category) with both sides gets its exact integer intersection by walking the two
  foreground run lists over the pixel range where both have foreground (compiled with numba:
  :mod:`visrc.evaluation.rle_runs`). The union is the sum of the two tracks' areas minus the
  intersection, so the IoU is ``I / U`` over exact integers, as in the oracle
  (:mod:`visrc.evaluation.track_iou`).
* **Matching.** The oracle's greedy matching (per video, category, area range and IoU threshold, a
  crowd GT may be matched many times, a match to an in-range GT beats one to an ignored GT, ties
  go to the later GT) runs batched over all (video, category) groups, area ranges and thresholds at
  once, one numpy step per detection rank (:mod:`visrc.evaluation.track_match`).
* **Accumulation and summary.** COCO's precision/recall arrays ``[T, R, K, A, M]`` built with
  vectorized cumulative sums; the summary is the oracle's own formula on identical arrays. The
  per-category curve (``_curves``) takes a batch of detection lists, so the bootstrap over videos
  (:mod:`visrc.evaluation.bootstrap`) re-accumulates many resamples with the same code.

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
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from visrc.evaluation.track_iou import Tracks, gt_mean_areas, mask_areas, normalize, pair_ious
from visrc.evaluation.track_match import match_groups

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

_AREA_LO = np.array([a[0] for a in AREA_RNG], np.float64)
_AREA_HI = np.array([a[1] for a in AREA_RNG], np.float64)
_EPS = np.spacing(1)
# Masks are decoded in chunks of about this many RLE characters (8 bytes of run boundaries each).
_CHUNK_CHARS = 1 << 22


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
    m = _prepare(gt, results, max_dets)
    precision, recall = _accumulate(m.g, m.d, m.tps, m.fps, len(m.cat_ids), m.max_dets)
    stats = _summarize(precision, recall, m.max_dets)
    per_cat = {}
    for k, c in enumerate(m.cat_ids):
        s = precision[:, :, k, 0, -1]
        per_cat[c] = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
    return YTVISEvalResult(
        stats=stats, per_category=per_cat,
        category_names={c: str(m.cats[c].get("name", c)) for c in m.cat_ids},
        precision=precision, recall=recall, cat_ids=m.cat_ids,
        counts={"videos": len(m.vid_ids), "gt_tracks": len(m.g.tracks.segs), "predictions": m.n_results,
                "predictions_used": len(m.d.tracks.segs), "categories": len(m.cat_ids)})


@dataclass
class _Matched:
    """Everything before accumulation. Matching is per (video, category), so these per-prediction
    flags also serve any dataset made of copies of these videos (:mod:`visrc.evaluation.bootstrap`)."""

    g: "_GT"
    d: "_DT"
    tps: np.ndarray          # [D, A, T] bool: true positive
    fps: np.ndarray          # [D, A, T] bool: false positive (ignored ones are neither)
    vid_ids: list            # GT video ids, sorted: the video positions used by g and d
    cat_ids: list            # GT category ids, sorted: the category positions
    cats: dict               # category id -> its GT record
    max_dets: list[int]      # sorted
    n_results: int


def _prepare(gt, results, max_dets) -> _Matched:
    """Read the inputs, compute the track IoUs and match predictions to GT tracks."""
    gt = _as_data(gt)
    if isinstance(results, (str, os.PathLike)):   # a results JSON or a submission.zip
        from visrc.evaluation.export import load_results
        results = load_results(results, gt, validate=False)
    max_dets = sorted(int(m) for m in max_dets)
    vid_ids = sorted(set(v["id"] for v in gt["videos"]))
    vid_pos = {v: i for i, v in enumerate(vid_ids)}
    vinfo = {v["id"]: v for v in gt["videos"]}
    sizes = [(int(vinfo[v]["height"]), int(vinfo[v]["width"])) for v in vid_ids]
    cats = {c["id"]: c for c in gt["categories"]}
    cat_ids = sorted(cats)
    cat_pos = {c: i for i, c in enumerate(cat_ids)}

    g = _ground_truth(gt, vid_pos, cat_pos, sizes)
    d = _predictions(results, vid_pos, cat_pos, max_dets[-1])
    group_iou, g_by_vc, d_area = _ious_and_areas(g, d, sizes)
    tps, fps = _match(g, d, group_iou, g_by_vc, d_area)
    return _Matched(g, d, tps, fps, vid_ids, cat_ids, cats, max_dets, len(results))


@dataclass
class _GT:
    """The GT tracks of the GT categories, in file order."""

    tracks: Tracks
    crowd: np.ndarray    # [G] bool
    ignore: np.ndarray   # [A, G] bool: crowd, or area outside the area range


def _ground_truth(gt: Mapping, vid_pos: dict, cat_pos: dict, sizes: list[tuple[int, int]]) -> _GT:
    gtr = Tracks()
    g_crowd: list[bool] = []
    g_areas_field: list = []
    for ann in gt.get("annotations") or []:
        v, c = vid_pos.get(ann["video_id"]), cat_pos.get(ann["category_id"])
        if v is None or c is None:
            continue
        gtr.segs.append(ann["segmentations"])
        gtr.vid.append(v)
        gtr.cat.append(c)
        g_crowd.append(bool(ann.get("iscrowd", 0)))
        g_areas_field.append(ann.get("areas"))
    g_area_arr = gt_mean_areas(g_areas_field)
    missing = np.flatnonzero(np.isnan(g_area_arr))
    if len(missing):   # no 'areas' field: the mean of the non-zero mask areas
        g_area_arr[missing] = mask_areas(gtr.subset(missing), sizes).mean_nonzero()
    g_crowd_arr = np.array(g_crowd, bool)
    g_ig = g_crowd_arr[None, :] | (g_area_arr[None, :] < _AREA_LO[:, None]) | (g_area_arr[None, :] > _AREA_HI[:, None])
    return _GT(gtr, g_crowd_arr, g_ig)


@dataclass
class _DT:
    """The predictions used: per (category, video), the top ``max_det`` by score (stable)."""

    tracks: Tracks
    src: np.ndarray      # [D] index in the results list
    score: np.ndarray    # [D]
    rank: np.ndarray     # [D] rank inside its (category, video)
    rows: dict           # (category, video) -> range of its rows (category-major, then video, then rank)


def _predictions(results: Sequence[Mapping], vid_pos: dict, cat_pos: dict, max_det: int) -> _DT:
    unknown = sorted({r["video_id"] for r in results} - set(vid_pos), key=str)
    if unknown:
        raise ValueError(f"results: {len(unknown)} video id(s) not in the GT videos, e.g. {unknown[:5]}")
    n_vid = max(len(vid_pos), 1)
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
    dtr = Tracks()
    dtr.segs = [results[j]["segmentations"] for j in order.tolist()]
    dtr.vid = vpos[order].tolist()
    dtr.cat = cpos[order].tolist()
    group_rows: dict[tuple[int, int], range] = {}
    if len(order):
        bounds = np.flatnonzero(np.r_[True, gkey[1:] != gkey[:-1], True])
        for a0, a1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            group_rows[(dtr.cat[a0], dtr.vid[a0])] = range(a0, a1)
    return _DT(dtr, order, score[order], rank, group_rows)


def _ious_and_areas(g: _GT, d: _DT, sizes: list[tuple[int, int]]) -> tuple[dict, dict, np.ndarray]:
    """IoU matrices of the (category, video) groups with both GT and predictions (per video, see
    :func:`~visrc.evaluation.track_iou.pair_ious`), the GT rows of every group, and each prediction's
    area (the mean of its non-zero mask areas)."""
    gtr, dtr = g.tracks, d.tracks
    g_by_vc: dict[tuple[int, int], list[int]] = {}
    for i in range(len(gtr.segs)):
        g_by_vc.setdefault((gtr.cat[i], gtr.vid[i]), []).append(i)
    both = sorted(k for k in d.rows if k in g_by_vc)
    nd_all = len(dtr.segs)
    d_total = np.zeros(nd_all, np.int64)
    d_nonzero = np.zeros(nd_all, np.int64)
    done = np.zeros(nd_all, bool)
    d_of = {k: list(d.rows[k]) for k in both}
    d_index_of = lambda i: f"#{d.src[i]}"   # noqa: E731  (index in the results list)
    group_iou = {}
    if both:
        try:
            ious, rel_rows, D = pair_ious(both, g_by_vc, d_of, gtr, dtr, sizes, d_index_of, _CHUNK_CHARS)
        except (TypeError, KeyError):   # polygons or uncompressed RLE among these tracks
            for tracks, rows in ((gtr, sorted({i for k in both for i in g_by_vc[k]})),
                                 (dtr, sorted({i for k in both for i in d_of[k]}))):
                sub = tracks.subset(rows)
                normalize(sub, sizes)
                for i, segs in zip(rows, sub.segs):
                    tracks.segs[i] = segs
            ious, rel_rows, D = pair_ious(both, g_by_vc, d_of, gtr, dtr, sizes, d_index_of, _CHUNK_CHARS)
        group_iou = dict(zip(both, ious))
        d_total[rel_rows], d_nonzero[rel_rows] = D.total, D.nonzero
        done[rel_rows] = True
    # areas of the other predictions (no GT of their category in their video)
    rest = np.flatnonzero(~done)
    if len(rest):
        ra = mask_areas(dtr.subset(rest), sizes)
        d_total[rest], d_nonzero[rest] = ra.total, ra.nonzero
    # a prediction's area: the mean of its non-zero mask areas, as np.array(l).mean() gives it
    d_area = np.where(d_nonzero > 0, d_total.astype(np.float64) / np.maximum(d_nonzero, 1), 0.0)
    return group_iou, g_by_vc, d_area


def _match(g: _GT, d: _DT, group_iou: dict, g_by_vc: dict, d_area: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives of every prediction: [D, A, T] bool each (ignored ones are neither)."""
    d_out = (d_area[None, :] < _AREA_LO[:, None]) | (d_area[None, :] > _AREA_HI[:, None])   # [A, D]
    return match_flags(g, d, group_iou, g_by_vc, d_out)


def match_flags(g: _GT, d: _DT, group_iou: dict, g_by_vc: dict, d_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_match` with the predictions' out-of-range flags ``d_out`` [A, D] given (the area
    ranges, or :mod:`visrc.evaluation.errors`' track-length bins): true and false positives [D, A, T]."""
    A, T = len(AREA_RNG), len(IOU_THRS)
    thr = np.minimum(IOU_THRS, 1 - 1e-10)
    both = list(group_iou)
    matches = match_groups([(group_iou[k], g.ignore[:, g_by_vc[k]], g.crowd[g_by_vc[k]]) for k in both], thr)
    nd_all = len(d.tracks.segs)
    DTM = np.zeros((nd_all, A, T), bool)
    DTIG = np.zeros((nd_all, A, T), bool)
    for k, (m, mig) in zip(both, matches):
        rows = d.rows[k]
        DTM[rows.start:rows.stop] = m.transpose(2, 0, 1)
        DTIG[rows.start:rows.stop] = mig.transpose(2, 0, 1)
    DTIG |= ~DTM & d_out.T[:, :, None]
    return DTM & ~DTIG, ~DTM & ~DTIG


def _gt_counts(g: _GT, K: int) -> np.ndarray:
    """Non-ignored GT tracks per category and area range: [K, A] int."""
    npig = np.zeros((K, len(AREA_RNG)), np.int64)
    if len(g.tracks.cat):
        np.add.at(npig, np.array(g.tracks.cat), (~g.ignore).T.astype(np.int64))
    return npig


def _recall_steps(p: int) -> np.ndarray:
    """v(thr) = #{v : v / p < thr} for every recall threshold: [R] (zeros when p is 0)."""
    return np.searchsorted(np.arange(p + 1) / p, REC_THRS, side="left") if p else np.zeros(len(REC_THRS), np.int64)


def _curves(tp_inc: np.ndarray, fp_inc: np.ndarray, npk: np.ndarray,
            vthr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO's precision at the recall thresholds and final recall of B detection lists of one
    category and one maxDets, each in score order (the oracle's per-category loop body).

    ``tp_inc``, ``fp_inc``: [B, N, A', T] bool, row i of list b; a list shorter than N is padded
    with all-False rows. ``npk``: [B, A'] non-ignored GT counts (> 0). ``vthr``: [B, A', R],
    :func:`_recall_steps` of ``npk``. Returns precision [B, A', T, R] and recall [B, A', T].
    Padding repeats the last row's tp/fp sums, so it changes no value: the results equal those of
    each list alone, bit for bit (an empty list gives precision and recall 0, as in the oracle).
    """
    B, N, A_, T = tp_inc.shape
    R = vthr.shape[-1]
    # integer sums (a bool -> int32 cumsum is several times faster than one straight to float64)
    tp = np.cumsum(tp_inc, axis=1, dtype=np.int32).astype(np.float64)   # [B, N, A', T]
    fp = np.cumsum(fp_inc, axis=1, dtype=np.int32).astype(np.float64)
    recall = tp[:, -1] / npk[:, :, None]                               # rc[-1], rc = tp / npig
    pr = tp / (fp + tp + _EPS)
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]          # the oracle's envelope loop
    # searchsorted(rc, recThrs, 'left') per (list, area, IoU) column: rc = tp / npig with integer
    # tp, so rc >= thr <=> tp >= v(thr), v(thr) = #{v : v / npig < thr}. That is first true at
    # row 0 when v is 0, else at the v-th true positive; never (precision 0) past the last one.
    hits = tp_inc.reshape(B, N, A_ * T).transpose(0, 2, 1).reshape(-1, N)   # [C, N]
    C = hits.shape[0]
    n_hit = hits.sum(axis=1)
    first = np.cumsum(n_hit) - n_hit                                   # each column's first hit in hit_row
    hit_row = np.r_[np.flatnonzero(hits) % N, 0]                       # row of every hit, column-major
    v = np.repeat(vthr, T, axis=1).reshape(C, R)
    reached = v <= n_hit[:, None]
    nth = np.minimum(first[:, None] + v - 1, len(hit_row) - 1)
    idx = np.where(v == 0, 0, hit_row[np.maximum(nth, 0)])
    prc = pr.reshape(B, N, A_ * T).transpose(0, 2, 1).reshape(C, N)
    vals = np.where(reached, np.take_along_axis(prc, idx, axis=1), 0.0)
    return vals.reshape(B, A_, T, R), recall


def _accumulate(g: _GT, d: _DT, tps_all: np.ndarray, fps_all: np.ndarray, K: int,
                max_dets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """COCO's precision [T, R, K, A, M] and recall [T, K, A, M] (-1 where undefined)."""
    A, T, R, M = len(AREA_RNG), len(IOU_THRS), len(REC_THRS), len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    npig = _gt_counts(g, K)
    d_score_arr = d.score
    d_rank_arr = d.rank
    d_cat_arr = np.array(d.tracks.cat, np.int64)
    cat_bounds = np.searchsorted(d_cat_arr, np.arange(K + 1))
    for k in range(K):
        a0, a1 = cat_bounds[k], cat_bounds[k + 1]
        if not (npig[k] > 0).any():
            continue                      # no GT to recall: undefined
        ok_a = np.flatnonzero(npig[k] > 0)
        npk = npig[k, ok_a]
        vthr_k = np.stack([_recall_steps(p) for p in npk])
        for mi, md in enumerate(max_dets):
            rows = _score_order(d_score_arr, d_rank_arr, a0, a1, md)
            nd = len(rows)
            if nd == 0:   # the oracle: recall 0, precision 0 at every recall threshold
                recall[:, k, ok_a, mi] = 0
                precision[:, :, k, ok_a, mi] = 0
                continue
            pr, rc = _curves(tps_all[rows][None][:, :, ok_a], fps_all[rows][None][:, :, ok_a],
                             npk[None], vthr_k[None])
            recall[:, k, ok_a, mi] = rc[0].T
            precision[:, :, k, ok_a, mi] = pr[0].transpose(1, 2, 0)
    return precision, recall


def _score_order(score: np.ndarray, rank: np.ndarray, a0: int, a1: int, max_det: int) -> np.ndarray:
    """Rows ``a0:a1`` (one category; video, then rank order) of rank < ``max_det``, sorted by
    score, ties in row order (the oracle's mergesort)."""
    sel = np.flatnonzero(rank[a0:a1] < max_det) + a0
    return sel[np.argsort(-score[sel], kind="mergesort")]


def _summary_index(name: str, max_dets: Sequence[int]) -> tuple[bool, Any, list[int], list[int]]:
    """(is AP, IoU threshold or None, area indices, maxDets indices) of one summary value, as the
    oracle's ``summarize`` slices them."""
    _, ap, iou_thr, area, mdet = SUMMARY_SPEC[SUMMARY_KEYS.index(name)]
    md = list(max_dets)
    if len(md) == 3:   # the oracle uses maxDets[0..2] for 1/10/100
        mdet = {1: md[0], 10: md[1], 100: md[2]}[mdet]
    aind = [i for i, lbl in enumerate(AREA_LBL) if lbl == area]
    mind = [i for i, m in enumerate(md) if m == mdet]
    return bool(ap), iou_thr, aind, mind


def _summarize(precision: np.ndarray, recall: np.ndarray, max_dets: Sequence[int],
               names: Sequence[str] = SUMMARY_KEYS) -> dict[str, float]:
    """The oracle's ``summarize`` (same slicing and mean, so the same floating-point result)."""
    return {name: _summary_value(precision, recall, *_summary_index(name, max_dets)) for name in names}


def _summary_value(precision: np.ndarray, recall: np.ndarray, ap: bool, iou_thr, aind: list[int],
                   mind: list[int]) -> float:
    """One summary value: the mean of the defined entries of its slice (-1 if none)."""
    if ap:
        s = precision
        if iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRS)[0]]
        s = s[:, :, :, aind, mind]
    else:
        s = recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRS)[0]]
        s = s[:, :, aind, mind]
    return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))
