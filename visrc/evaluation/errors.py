"""Error analysis of video instance segmentation results: TIVE's error types and what fixing each is worth.

:func:`error_analysis` gives every prediction an error type, every GT track a status, and the
ΔAP of each type: the official video AP (:mod:`visrc.evaluation.ytvis_eval`) after an oracle fixes
that type alone, minus the AP, overall and by GT track length, with bootstrap intervals over videos
(:mod:`visrc.evaluation.bootstrap`). The definitions are TIVE's (Li et al., "TIVE: A Toolbox for
Identifying Video Instance Segmentation Errors"), implemented here from their description, at the
foreground IoU ``t_f`` (0.5) and background IoU ``t_b`` (0.1):

* Track IoU is the evaluator's spatio-temporal one; predictions are matched to same-class GT tracks
  by the evaluator's own greedy matching at ``t_f`` (area ``all``, top 100 per video and category).
* An unmatched prediction gets the first type that applies: **Spatial** / **Temporal** (best
  same-class IoU in ``[t_b, t_f)``; Spatial when the fraction of frames whose mask IoU with that GT
  is above :data:`FRAME_IOU`, among the frames where either has a mask, is at least
  :data:`TEMPORAL_OVERLAP`), **Classification** (IoU >= ``t_f`` with a GT of another class),
  **Duplicate** (IoU >= ``t_f`` with a same-class GT, necessarily matched already), **Background**
  (IoU <= ``t_b`` with every GT), **Both** (anything else). A GT track no fix recovers is **Missed**.
* Fixes, each alone: Classification relabels to the GT's class; Spatial / Temporal replace the
  prediction's masks by its GT's; Duplicate, Background and Both delete the prediction; Missed
  removes the GT track. **FalsePos** deletes every unmatched prediction, **FalseNeg** removes every
  unmatched GT track.

Choices not pinned by those definitions (or differing from TIVE), documented here once:

1. *Which GT a prediction relates to*: the one of highest IoU among the candidates of its type
   (same class for Spatial / Temporal / Duplicate, other classes for Classification, any class for
   Both); ties go to the later GT in file order, as the evaluator's matching breaks them.
2. *A fix that would duplicate a match* (as in TIDE, on which TIVE builds): a Classification or
   Spatial / Temporal prediction whose GT is already matched, or already taken by a higher-scoring
   prediction of the same fix, is deleted instead of relabelled / replaced (relabelling or replacing
   it would make a duplicate). "Higher-scoring" is the evaluator's order: score, ties in file order.
   A GT track is then *recoverable* (not Missed) when some prediction's fix relabels or replaces onto it.
3. *Crowd GT tracks* (``iscrowd``) are ignored as the evaluator ignores them: a prediction matched to
   one is ``ignored`` (no type, no fix), and they take no part in the types (an unmatched prediction
   overlapping only crowd tracks is Background) nor in Missed / FalseNeg.
4. *Predictions the evaluator does not score* (a category that is not a GT category, or below the top
   100 of its video and category) are ``unused``: no type. FalsePos deletes them too (every prediction
   that is not matched), since a deletion can lift one of them into the top 100. Each fix is scored
   with the evaluator's rules on the fixed results, top-100 cut included.
5. *Temporal overlap*: frames are compared up to the shorter of the two tracks (the evaluator's
   ``zip``); "has a mask" means a non-empty mask; with no such frame the overlap is 0 (Temporal).
6. *Length bins* (``length_bins=(16, 32)``: short <= 16 < medium <= 32 < long frames): a GT track's
   length is its number of annotated (non-null) frames, a prediction's its number of non-empty masks.
   A bin's AP is the evaluator's AP with the bins in place of its area ranges: GT tracks outside the
   bin are ignored, and so are unmatched predictions outside it (as COCO does with areas).
7. ``t_f`` must be one of the evaluator's IoU thresholds (0.50, 0.55, ..., 0.95), so that AP at
   ``t_f`` is one of its values; ``0 <= t_b < t_f``.
8. A ΔAP whose fixed AP is undefined (no GT track left, e.g. FalseNeg when nothing is matched) is
   ``None``; so is a bin's ΔAP when the bin has no GT track.

Efficiency: the IoU of every (prediction, GT) track pair of a video, all classes together, is
computed once (:func:`~visrc.evaluation.track_iou.pair_ious`), and the GT-vs-GT IoUs of the videos
where a prediction is replaced by its GT. A fix only deletes, relabels or replaces rows of these
matrices, so each fixed result set is re-matched (:func:`~visrc.evaluation.track_match.match_groups`)
and re-accumulated (``ytvis_eval._accumulate``) without any mask work; its numbers equal a plain
:func:`~visrc.evaluation.ytvis_eval.evaluate_ytvis` of the fixed files (:func:`fixed_inputs` builds
them; ``tests/test_errors.py`` and ``benchmarks/bench_evaluation.py`` compare).

    report = error_analysis(gt, results)            # JSON-able dict, see error_analysis
    report["delta_ap"]["Spatial"]["AP"]["value"]    # ΔAP@[.5:.95] of fixing the Spatial errors
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from visrc.evaluation.bootstrap import _Resampler, _summary, resample_counts
from visrc.evaluation.track_iou import Tracks, mask_areas, normalize, pair_ious
from visrc.evaluation.track_match import _last_argmax
from visrc.evaluation.ytvis_eval import (_CHUNK_CHARS, _DT, _GT, AREA_RNG, IOU_THRS, MAX_DETS, _accumulate,
                                         _as_data, _Matched, _predictions, _summary_index, _summary_value,
                                         match_flags)

ERROR_TYPES = ("Classification", "Spatial", "Temporal", "Duplicate", "Background", "Both", "Missed")
SUMMARY_ERRORS = ("FalsePos", "FalseNeg")
FIXES = ERROR_TYPES + SUMMARY_ERRORS
PRED_TYPES = ERROR_TYPES[:-1]              # the types of an unmatched prediction, in assignment order
FRAME_IOU = 0.1                            # a frame overlaps when its mask IoU is above this
TEMPORAL_OVERLAP = 0.7                     # Spatial when at least this fraction of frames overlaps
_ROWS = len(AREA_RNG)                      # the evaluator's area rows: row 0 'all', then up to 3 bins


def _jsonable(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


class _Scene:
    """GT tracks, all predictions of GT categories, and their IoUs: what every fix is scored from."""

    def __init__(self, gt: Mapping, results: Sequence[Mapping], edges: np.ndarray):
        self.n_results = len(results)
        self.vid_ids = sorted(set(v["id"] for v in gt["videos"]))
        vid_pos = {v: i for i, v in enumerate(self.vid_ids)}
        vinfo = {v["id"]: v for v in gt["videos"]}
        self.sizes = [(int(vinfo[v]["height"]), int(vinfo[v]["width"])) for v in self.vid_ids]
        self.cats = {c["id"]: c for c in gt["categories"]}
        self.cat_ids = sorted(self.cats)
        cat_pos = {c: i for i, c in enumerate(self.cat_ids)}
        self.max_dets = list(MAX_DETS)
        self.edges = edges
        # GT tracks of GT videos and categories, in file order (as ytvis_eval._ground_truth keeps them)
        self.gtr, self.ann_index, crowd = Tracks(), [], []
        for i, ann in enumerate(gt.get("annotations") or []):
            v, c = vid_pos.get(ann["video_id"]), cat_pos.get(ann["category_id"])
            if v is None or c is None:
                continue
            self.gtr.segs.append(ann["segmentations"])
            self.gtr.vid.append(v)
            self.gtr.cat.append(c)
            self.ann_index.append(i)
            crowd.append(bool(ann.get("iscrowd", 0)))
        self.crowd = np.array(crowd, bool)
        self.gvid = np.array(self.gtr.vid, np.int64)
        self.gcat = np.array(self.gtr.cat, np.int64)
        self.glen = np.fromiter((sum(1 for s in segs if s) for segs in self.gtr.segs), np.int64, len(self.gtr.segs))
        self.gbin = np.searchsorted(edges, self.glen, side="left")
        # every prediction of a GT category (no top-100 cut: a fix can lift one into it)
        d = _predictions(results, vid_pos, cat_pos, max(len(results), 1))
        self.dtr, self.src, self.score = d.tracks, d.src, d.score
        self.vid = np.array(self.dtr.vid, np.int64)
        self.cat = np.array(self.dtr.cat, np.int64)
        P, G = len(self.src), len(self.gvid)
        # per video: its GT rows (file order) and the position of every GT / prediction in its matrix
        self.gcols: dict[int, np.ndarray] = {}
        self.gloc = np.zeros(G, np.int64)
        for v in np.unique(self.gvid).tolist():
            rows = np.flatnonzero(self.gvid == v)
            self.gcols[v] = rows
            self.gloc[rows] = np.arange(len(rows))
        self.loc = np.full(P, -1, np.int64)
        both = sorted(set(self.gcols) & set(self.vid.tolist()))
        p_of = {}
        for v in both:
            rows = np.flatnonzero(self.vid == v)
            p_of[v] = rows.tolist()
            self.loc[rows] = np.arange(len(rows))
        g_of = {v: self.gcols[v].tolist() for v in both}
        self.plen = np.zeros(P, np.int64)          # non-empty masks of each prediction
        self.M: dict[int, np.ndarray] = {}         # video -> IoU [its predictions, its GT tracks]
        if both:
            ious, rows, D = self._pair_ious(both, g_of, p_of, self.gtr, self.dtr, lambda i: f"#{self.src[i]}")
            self.M = dict(zip(both, ious))
            self.plen[rows] = D.nonzero
        rest = np.flatnonzero(self.loc < 0)
        if len(rest):
            self.plen[rest] = mask_areas(self.dtr.subset(rest), self.sizes).nonzero
        self.Q: dict[int, np.ndarray] = {}         # video -> GT-vs-GT IoU, where a GT replaces a prediction
        self.gnz = np.zeros(G, np.int64)           # non-empty masks of each GT track (those videos)

    def _pair_ious(self, keys, g_of, d_of, gtr, dtr, index_of):
        try:
            return pair_ious(keys, g_of, d_of, gtr, dtr, self.sizes, index_of, _CHUNK_CHARS)
        except (TypeError, KeyError):   # polygons or uncompressed RLE: convert (copies) and retry
            normalize(self.gtr, self.sizes)
            normalize(self.dtr, self.sizes)
            return pair_ious(keys, g_of, d_of, gtr, dtr, self.sizes, index_of, _CHUNK_CHARS)

    def need_gt_self(self, gt_rows: np.ndarray) -> None:
        """GT-vs-GT IoUs of the videos of ``gt_rows`` (GT tracks that replace predictions)."""
        videos = sorted(set(self.gvid[gt_rows].tolist()) - set(self.Q))
        if videos:
            g_of = {v: self.gcols[v].tolist() for v in videos}
            ious, rows, D = self._pair_ious(videos, g_of, g_of, self.gtr, self.gtr, lambda i: f"GT #{i}")
            self.Q.update(zip(videos, ious))
            self.gnz[rows] = D.nonzero

    def temporal_overlap(self, pairs: list[tuple[int, int]]) -> np.ndarray:
        """Per (prediction row, GT row) pair: the fraction of frames whose mask IoU is above
        :data:`FRAME_IOU` among the frames where either has a non-empty mask (0 if none). The masks
        are the ones the IoUs were computed from (sizes checked, compressed); each same-frame pair's
        exact intersection comes from the runs (:mod:`visrc.evaluation.rle_runs`)."""
        from visrc.evaluation import rle_runs   # numba: imported on first use, as track_iou does

        dc, gc, both_of, single, single_of = [], [], [], [], []
        for n, (p, g) in enumerate(pairs):
            ds, gs = self.dtr.segs[p], self.gtr.segs[g]
            for t in range(min(len(ds), len(gs))):
                a, b = ds[t], gs[t]
                if a and b:
                    dc.append(a["counts"])
                    gc.append(b["counts"])
                    both_of.append(n)
                elif a or b:
                    single.append((a or b)["counts"])
                    single_of.append(n)
        hit = np.zeros(len(pairs))
        tot = np.bincount(np.array(single_of, np.int64), weights=rle_runs.areas(single) > 0,
                          minlength=len(pairs)).astype(np.float64)
        both_of = np.array(both_of, np.int64)
        step = 1 << 15
        for s0 in range(0, len(dc), step):
            dd, gg = rle_runs.decode(dc[s0:s0 + step]), rle_runs.decode(gc[s0:s0 + step])
            k = len(dd[1])
            inter = np.zeros(k, np.int64)
            idx = np.arange(k, dtype=np.int64)
            rle_runs.pair_intersections(dd, gg, idx, idx + 1, idx, np.zeros(k, np.int64), inter)
            union = dd[3] + gg[3] - inter
            iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
            own = both_of[s0:s0 + step]
            hit += np.bincount(own, weights=iou > FRAME_IOU, minlength=len(pairs))
            tot += np.bincount(own, weights=union > 0, minlength=len(pairs))
        return np.where(tot > 0, hit / np.maximum(tot, 1), 0.0)

    # ---- scoring one (fixed) result set

    def layout(self, chunk: Sequence[int], gt_rows: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The evaluator's area rows re-used for length bins: row 0 is 'all', row 1 + j is bin
        ``chunk[j]`` (unused rows ignore everything). Returns GT ignore [A, G'] and prediction
        out-of-range [A, D'] flags."""
        crowd = self.crowd[gt_rows]
        ig = np.ones((_ROWS, len(gt_rows)), bool)
        out = np.ones((_ROWS, len(plen)), bool)
        ig[0], out[0] = crowd, False
        pbin = np.searchsorted(self.edges, plen, side="left")
        for j, b in enumerate(chunk):
            ig[1 + j] = crowd | (self.gbin[gt_rows] != b)
            out[1 + j] = pbin != b
        return ig, out

    def evaluate(self, keep: np.ndarray, cat: np.ndarray, repl: np.ndarray, gt_keep: np.ndarray,
              chunk: Sequence[int]) -> dict:
        """The evaluator's precision/recall of the predictions ``keep`` (with categories ``cat`` and,
        where ``repl >= 0``, the masks of GT row ``repl``) against the GT rows ``gt_keep``."""
        rows = np.flatnonzero(keep)
        # the evaluator's order (ytvis_eval._predictions): category, video, score, file order
        order = rows[np.lexsort((self.src[rows], -self.score[rows], self.vid[rows], cat[rows]))]
        gkey = cat[order] * max(len(self.vid_ids), 1) + self.vid[order]
        starts = np.flatnonzero(np.r_[True, gkey[1:] != gkey[:-1]]) if len(order) else np.zeros(0, np.int64)
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        sel = rank < self.max_dets[-1]
        order, rank, gkey = order[sel], rank[sel], gkey[sel]
        dtr = Tracks()
        dtr.segs, dtr.vid, dtr.cat = [None] * len(order), self.vid[order].tolist(), cat[order].tolist()
        d_rows: dict = {}
        if len(order):
            bounds = np.flatnonzero(np.r_[True, gkey[1:] != gkey[:-1], True]).tolist()
            for a0, a1 in zip(bounds[:-1], bounds[1:]):
                d_rows[(dtr.cat[a0], dtr.vid[a0])] = range(a0, a1)
        d = _DT(dtr, self.src[order], self.score[order], rank, d_rows)
        gk = np.flatnonzero(gt_keep)
        gtr = Tracks()
        gtr.segs, gtr.vid, gtr.cat = [None] * len(gk), self.gvid[gk].tolist(), self.gcat[gk].tolist()
        r = repl[order]
        plen = np.where(r >= 0, self.gnz[np.maximum(r, 0)], self.plen[order])
        g_ignore, d_out = self.layout(chunk, gk, plen)
        g = _GT(gtr, self.crowd[gk], g_ignore)
        g_by_vc: dict = {}
        for new, (c, v) in enumerate(zip(gtr.cat, gtr.vid)):
            g_by_vc.setdefault((c, v), []).append(new)
        group_iou = {}
        for key, rr in d_rows.items():
            if key in g_by_vc:
                prs, v = order[rr.start:rr.stop], key[1]
                R = np.empty((len(prs), len(self.gcols[v])))
                own = repl[prs] < 0
                if own.any():
                    R[own] = self.M[v][self.loc[prs[own]]]
                if not own.all():
                    R[~own] = self.Q[v][self.gloc[repl[prs[~own]]]]
                group_iou[key] = R[:, self.gloc[gk[g_by_vc[key]]]]
        tps, fps = match_flags(g, d, group_iou, g_by_vc, d_out)
        precision, recall = _accumulate(g, d, tps, fps, len(self.cat_ids), self.max_dets)
        m = _Matched(g, d, tps, fps, self.vid_ids, self.cat_ids, self.cats, self.max_dets, self.n_results)
        return {"precision": precision, "recall": recall, "m": m, "order": order, "gk": gk,
                "group_iou": group_iou, "g_by_vc": g_by_vc}


def _bins(edges: np.ndarray) -> list[dict]:
    lo = np.r_[0, edges] + 1
    hi = [int(e) for e in edges] + [None]
    names = ["short", "medium", "long"] if len(edges) == 2 else \
        [f"{a}-{b}" if b is not None else f">{a - 1}" for a, b in zip(lo.tolist(), hi)]
    return [{"name": n, "min": int(a), "max": b} for n, a, b in zip(names, lo.tolist(), hi)]


def _matched_gt(sc: dict, ti: int) -> dict[int, int]:
    """Prediction row -> GT row of every true positive at row 0 (area/length 'all') and IoU ``t_f``,
    replaying the evaluator's greedy choice (:func:`~visrc.evaluation.track_match.match_groups`:
    the last of the highest-IoU unmatched non-crowd GT tracks)."""
    m, order, gk = sc["m"], sc["order"], sc["gk"]
    thr = min(IOU_THRS[ti], 1 - 1e-10)
    out = {}
    for key, iou in sc["group_iou"].items():
        rr = m.d.rows[key]
        cols = np.array(sc["g_by_vc"][key])
        free = ~m.g.crowd[cols]
        for j, row in enumerate(range(rr.start, rr.stop)):
            if m.tps[row, 0, ti]:
                cand = free & (iou[j] >= thr)
                pick = int(_last_argmax(np.where(cand, iou[j], -1.0)))
                assert cand[pick], "replayed matching disagrees with match_groups"
                free[pick] = False
                out[int(order[row])] = int(gk[cols[pick]])
    return out


def error_analysis(gt: Mapping | str | os.PathLike, results: Sequence[Mapping] | str | os.PathLike,
                   t_f: float = 0.5, t_b: float = 0.1, length_bins: Sequence[int] = (16, 32),
                   n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """TIVE's error types of ``results`` against ``gt`` and the ΔAP of fixing each (module docstring).

    ``gt``: a YouTube-VIS annotation dict (or its JSON path); ``results``: a list of
    ``{"video_id", "category_id", "score", "segmentations": [RLE | None] * length}`` (or a results
    JSON / submission.zip path), as :func:`~visrc.evaluation.ytvis_eval.evaluate_ytvis` takes them.
    ``length_bins``: increasing frame counts ``e_1 < e_2 < ...``: bins ``<= e_1``, ``(e_1, e_2]``, ...,
    ``> e_last``. ``n_boot`` resamples of the videos (0: no intervals), ``level`` their coverage.

    Returns a JSON-able dict (AP values in [0, 1], as the evaluator's; ``AP`` is AP@[.5:.95], ``AP50``
    the AP at ``t_f``, named ``AP{100 t_f}``)::

        params:      t_f, t_b, frame_iou, temporal_overlap, length_bins, n_boot, seed, level, metrics
        base:        {AP, AP50}                         the evaluator's values
        delta_ap:    {fix: {AP: {value, low, high, std}, AP50: {...}}}   for every name in FIXES
        by_length:   {bins: [{name, min, max}], base: {bin: {AP, AP50}},
                      delta_ap: {bin: {fix: {AP: {...}, AP50: {...}}}}}
        counts:      {predictions, matched, ignored, unused, <each prediction type>, gt_tracks,
                      gt_matched, Missed, recoverable, crowd}
        predictions: [{index, video_id, category_id, score, type, fix, gt, temporal_overlap}]
                     type: matched | ignored | unused | one of PRED_TYPES; fix: relabel | replace |
                     delete | None; gt: {index, id, category_id, iou} (the GT it relates to) or None;
                     temporal_overlap: Spatial / Temporal only
        gt_tracks:   [{index, id, video_id, category_id, length, bin, status, prediction}]
                     status: matched | missed | recoverable | crowd; prediction: the matched one's
                     index (matched) or the one whose fix recovers it (recoverable)

    ``index`` is the position in the results list / the GT ``annotations`` list. Intervals are
    percentile intervals of ΔAP over the same resamples of the videos for the fix and the baseline
    (``low``/``high``/``std`` are None without resamples). Raises ``ValueError`` as the evaluator
    does (unknown video, wrong mask size) and for parameters out of range.
    """
    ti_all = np.flatnonzero(np.isclose(IOU_THRS, t_f))
    if len(ti_all) != 1:
        raise ValueError(f"error_analysis: t_f must be one of the evaluator's IoU thresholds "
                         f"{[round(float(x), 2) for x in IOU_THRS]}, got {t_f}")
    ti = int(ti_all[0])
    t_f = float(IOU_THRS[ti])
    if not 0 <= t_b < t_f:
        raise ValueError(f"error_analysis: t_b must be in [0, t_f), got {t_b}")
    edges = np.array([int(e) for e in length_bins], np.int64)
    if (np.diff(edges) <= 0).any() or (len(edges) and edges[0] < 1):
        raise ValueError(f"error_analysis: length_bins must be increasing positive frame counts, "
                         f"got {list(length_bins)}")
    gt = _as_data(gt)
    if isinstance(results, (str, os.PathLike)):
        from visrc.evaluation.export import load_results
        results = load_results(results, gt, validate=False)
    thr = min(t_f, 1 - 1e-10)
    s = _Scene(gt, results, edges)
    P, G = len(s.src), len(s.gvid)
    bins = _bins(edges)
    chunks = [list(range(i, min(i + _ROWS - 1, len(bins)))) for i in range(0, len(bins), _ROWS - 1)]
    everyone, no_repl, all_gt = np.ones(P, bool), np.full(P, -1, np.int64), np.ones(G, bool)

    # ---- the baseline: matches, then a type for every unmatched prediction
    base = s.evaluate(everyone, s.cat, no_repl, all_gt, chunks[0])
    order, bm = base["order"], base["m"]
    status = np.full(P, "unused", object)
    status[order[bm.tps[:, 0, ti]]] = "matched"
    status[order[~bm.tps[:, 0, ti] & ~bm.fps[:, 0, ti]]] = "ignored"
    fp = order[bm.fps[:, 0, ti]]
    matched_gt = _matched_gt(base, ti)
    target = np.full(P, -1, np.int64)
    t_iou = np.zeros(P)
    for p, g in matched_gt.items():
        target[p], t_iou[p] = g, s.M[s.vid[p]][s.loc[p], s.gloc[g]]
    for v in np.unique(s.vid[fp]).tolist():
        rows = fp[s.vid[fp] == v]
        if v not in s.M:
            status[rows] = "Background"
            continue
        iou = s.M[v][s.loc[rows]]                                       # [n, Gv]
        cols = s.gcols[v]
        real = ~s.crowd[cols][None, :]
        same = (s.gcat[cols][None, :] == s.cat[rows][:, None]) & real
        pick = {}
        best = {}
        for name, mask in (("same", same), ("other", ~same & real), ("any", np.broadcast_to(real, same.shape))):
            vals = np.where(mask, iou, -1.0)
            pick[name] = cols[_last_argmax(vals)]
            best[name] = vals.max(axis=1)
        st = (best["same"] >= t_b) & (best["same"] < thr)
        cls = ~st & (best["other"] >= thr)
        dup = ~st & ~cls & (best["same"] >= thr)
        bkg = ~st & ~cls & ~dup & (best["any"] <= t_b)
        both = ~st & ~cls & ~dup & ~bkg
        for name, sel, rel in (("Spatial", st, "same"), ("Classification", cls, "other"),
                               ("Duplicate", dup, "same"), ("Background", bkg, None), ("Both", both, "any")):
            status[rows[sel]] = name
            if rel:
                target[rows[sel]] = pick[rel][sel]
                t_iou[rows[sel]] = best[rel][sel]
    overlap = np.full(P, np.nan)
    st_rows = np.flatnonzero(status == "Spatial")
    if len(st_rows):
        overlap[st_rows] = s.temporal_overlap(list(zip(st_rows.tolist(), target[st_rows].tolist())))
        status[st_rows[overlap[st_rows] < TEMPORAL_OVERLAP]] = "Temporal"

    # ---- the fixes' actions (choice 2): first by the evaluator's order claims an unmatched GT
    action = np.full(P, None, object)
    by_score = np.lexsort((s.src, -s.score))
    taken = set(matched_gt.values())
    recovered: dict[int, int] = {}
    for name, how in (("Classification", "relabel"), ("Spatial", "replace"), ("Temporal", "replace")):
        claimed = set(taken)
        for p in by_score[status[by_score] == name].tolist():
            if target[p] in claimed:
                action[p] = "delete"
            else:
                claimed.add(target[p])
                action[p] = how
                recovered.setdefault(int(target[p]), p)
    for name in ("Duplicate", "Background", "Both"):
        action[status == name] = "delete"
    gstat = np.full(G, "missed", object)
    gstat[s.crowd] = "crowd"
    gstat[list(recovered)] = "recoverable"
    gstat[list(taken)] = "matched"

    # ---- every fix as (kept predictions, categories, replacements, kept GT tracks)
    fixes = {}
    for name in PRED_TYPES:
        mine = status == name
        keep = ~(mine & (action == "delete"))
        cat, repl = s.cat, no_repl
        if name == "Classification":
            rel = np.flatnonzero(mine & (action == "relabel"))
            cat = s.cat.copy()
            cat[rel] = s.gcat[target[rel]]
        elif name in ("Spatial", "Temporal"):
            rel = np.flatnonzero(mine & (action == "replace"))
            repl = no_repl.copy()
            repl[rel] = target[rel]
            s.need_gt_self(target[rel])
        fixes[name] = (mine.any(), keep, cat, repl, all_gt)
    fixes["Missed"] = ((gstat == "missed").any(), everyone, s.cat, no_repl, gstat != "missed")
    unmatched = np.array([t in PRED_TYPES or t == "unused" for t in status], bool)
    fixes["FalsePos"] = (unmatched.any(), ~unmatched, s.cat, no_repl, all_gt)
    lost = (gstat == "missed") | (gstat == "recoverable")
    fixes["FalseNeg"] = (lost.any(), everyone, s.cat, no_repl, ~lost)

    # ---- scores (AP, AP at t_f; overall and per bin) and bootstrap of the differences
    ap_tf = f"AP{int(round(100 * t_f))}"
    _, _, a_all, mind = _summary_index("AP", s.max_dets)
    specs_of = []        # per chunk: name -> (iou threshold, area row)
    for k, chunk in enumerate(chunks):
        spec = {("all", "AP"): (None, a_all[0]), ("all", ap_tf): (IOU_THRS[ti], a_all[0])} if k == 0 else {}
        for j, b in enumerate(chunk):
            spec[(bins[b]["name"], "AP")] = (None, 1 + j)
            spec[(bins[b]["name"], ap_tf)] = (IOU_THRS[ti], 1 + j)
        specs_of.append(spec)
    V = len(s.vid_ids)
    counts = resample_counts(V, n_boot, seed) if n_boot > 0 and V else None

    def values(sc: dict, spec: dict) -> tuple[dict, dict]:
        point = {n: _summary_value(sc["precision"], sc["recall"], True, th, [a], mind) for n, (th, a) in spec.items()}
        boot = {}
        if counts is not None:
            res = _Resampler(sc["m"], ("AP", "APs", "APm", "APl"))   # all four rows, maxDets 100
            res.metrics = tuple(spec)
            res.index = {n: (True, th, [a], [0]) for n, (th, a) in spec.items()}
            boot = {n: np.where(v == -1, np.nan, v) for n, v in res.values(counts).items()}
        point = {n: (np.nan if v == -1 else v) for n, v in point.items()}
        return point, boot

    base_vals = []
    for k, chunk in enumerate(chunks):
        sc = base if k == 0 else s.evaluate(everyone, s.cat, no_repl, all_gt, chunk)
        base_vals.append(values(sc, specs_of[k]))
    delta: dict[str, dict] = {}
    for name in FIXES:
        changed, keep, cat, repl, gt_keep = fixes[name]
        out = {}
        for k, chunk in enumerate(chunks):
            (bp, bb), spec = base_vals[k], specs_of[k]
            if changed:
                fp_, fb = values(s.evaluate(keep, cat, repl, gt_keep, chunk), spec)
            else:
                fp_, fb = bp, bb
            dpoint = {n: fp_[n] - bp[n] for n in spec}
            if counts is not None:
                r = _summary(dpoint, {n: fb[n] - bb[n] for n in spec}, V, n_boot, level, seed)
                for n in spec:
                    out[n] = {"value": _jsonable(dpoint[n]), "low": _jsonable(r.low[n]),
                              "high": _jsonable(r.high[n]), "std": _jsonable(r.std[n])}
            else:
                for n in spec:
                    out[n] = {"value": _jsonable(dpoint[n]), "low": None, "high": None, "std": None}
        delta[name] = out
    base_point = {}
    for bp, _ in base_vals:
        base_point.update(bp)

    # ---- the report
    def gt_ref(g: int) -> dict | None:
        if g < 0:
            return None
        i = s.ann_index[g]
        return {"index": i, "id": gt["annotations"][i].get("id"), "category_id": s.cat_ids[s.gcat[g]]}

    preds = [{"index": i, "video_id": r["video_id"], "category_id": r["category_id"], "score": float(r["score"]),
              "type": "unused", "fix": None, "gt": None} for i, r in enumerate(results)]
    for p in range(P):
        e = preds[int(s.src[p])]
        e["type"], e["fix"] = str(status[p]), action[p]
        if target[p] >= 0:
            e["gt"] = dict(gt_ref(int(target[p])), iou=float(t_iou[p]))
        if status[p] in ("Spatial", "Temporal"):
            e["temporal_overlap"] = float(overlap[p])
    match_of = {g: p for p, g in matched_gt.items()}
    gts = []
    for g in range(G):
        i = s.ann_index[g]
        a = gt["annotations"][i]
        p = match_of.get(g, recovered.get(g))
        gts.append({"index": i, "id": a.get("id"), "video_id": a["video_id"], "category_id": a["category_id"],
                    "length": int(s.glen[g]), "bin": bins[int(s.gbin[g])]["name"], "status": str(gstat[g]),
                    "prediction": None if p is None or gstat[g] == "missed" else int(s.src[p])})
    types = [e["type"] for e in preds]
    count = {"predictions": len(preds), **{t: types.count(t) for t in ("matched", "ignored", "unused") + PRED_TYPES},
             "gt_tracks": G, "gt_matched": int((gstat == "matched").sum()), "Missed": int((gstat == "missed").sum()),
             "recoverable": int((gstat == "recoverable").sum()), "crowd": int((gstat == "crowd").sum())}
    names = [b["name"] for b in bins]
    return {
        "params": {"t_f": t_f, "t_b": float(t_b), "frame_iou": FRAME_IOU, "temporal_overlap": TEMPORAL_OVERLAP,
                   "length_bins": [int(e) for e in edges], "n_boot": int(n_boot), "seed": int(seed),
                   "level": float(level), "metrics": ["AP", ap_tf]},
        "base": {m: _jsonable(base_point[("all", m)]) for m in ("AP", ap_tf)},
        "delta_ap": {f: {m: delta[f][("all", m)] for m in ("AP", ap_tf)} for f in FIXES},
        "by_length": {"bins": bins,
                      "base": {b: {m: _jsonable(base_point[(b, m)]) for m in ("AP", ap_tf)} for b in names},
                      "delta_ap": {b: {f: {m: delta[f][(b, m)] for m in ("AP", ap_tf)} for f in FIXES} for b in names}},
        "counts": count,
        "predictions": preds,
        "gt_tracks": gts,
    }


def fixed_inputs(gt: Mapping, results: Sequence[Mapping], report: Mapping, fix: str) -> tuple[dict, list]:
    """The GT and results after the oracle fix ``fix`` (a name of :data:`FIXES`) that ``report``
    (:func:`error_analysis` of these inputs) describes: what a plain
    :func:`~visrc.evaluation.ytvis_eval.evaluate_ytvis` scores to the report's fixed AP."""
    if fix not in FIXES:
        raise ValueError(f"fixed_inputs: unknown fix {fix!r}; choose from {list(FIXES)}")
    gt = _as_data(gt)
    if fix in ("Missed", "FalseNeg"):
        drop = {e["index"] for e in report["gt_tracks"]
                if e["status"] == "missed" or (fix == "FalseNeg" and e["status"] == "recoverable")}
        return dict(gt, annotations=[a for i, a in enumerate(gt["annotations"]) if i not in drop]), list(results)
    out = []
    for r, e in zip(results, report["predictions"]):
        if fix == "FalsePos":
            if e["type"] in PRED_TYPES + ("unused",):
                continue
        elif e["type"] == fix:
            if e["fix"] == "delete":
                continue
            if e["fix"] == "relabel":
                r = dict(r, category_id=e["gt"]["category_id"])
            elif e["fix"] == "replace":
                r = dict(r, segmentations=gt["annotations"][e["gt"]["index"]]["segmentations"])
        out.append(r)
    return dict(gt), out

