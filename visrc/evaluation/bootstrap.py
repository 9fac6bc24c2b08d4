"""Bootstrap intervals of video AP over videos: how far a score could move with other videos.

A resample draws the split's ``N`` GT videos ``N`` times with replacement; a video drawn ``k``
times counts ``k`` times (its GT tracks and its predictions duplicated, as if they were ``k``
distinct videos). A resample's metric is exactly :func:`~visrc.evaluation.ytvis_eval.evaluate_ytvis`
on the dataset :func:`resampled_dataset` builds from the draws: the copies ordered by their
original video id and renumbered ``1..N``, so predictions of equal score keep the order the
evaluator gives them (video, then rank, then copy).

Matching is per (video, category) (:mod:`visrc.evaluation.track_match`), so the evaluator's
per-prediction true/false-positive flags hold for every copy. They are computed once
(``ytvis_eval._prepare``); a resample only re-orders the drawn predictions by score, with
multiplicity, and re-accumulates precision and recall through the evaluator's own
``_curves`` and ``_summarize``, many resamples per numpy call.

    boot = bootstrap_ap(gt, results)                 # 1000 resamples, 95% percentile interval
    boot.point["AP"], boot.low["AP"], boot.high["AP"], boot.std["AP"]
    diff = paired_bootstrap(gt, results_a, results_b)   # AP(a) - AP(b) on the same resamples
    diff.excludes(0.0)                               # a beats b (or b beats a) beyond resampling noise

A metric a resample leaves undefined (-1 in COCO terms, e.g. no GT track among the drawn videos)
is NaN in ``values`` and left out of the interval; ``n_undefined`` counts those resamples.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from visrc.evaluation.ytvis_eval import (
    AREA_RNG, IOU_THRS, MAX_DETS, REC_THRS, SUMMARY_KEYS, _accumulate, _as_data, _curves, _Matched,
    _prepare, _recall_steps, _score_order, _summarize, _summary_index, _summary_value,
)

# Resamples per numpy call: bounds the padded [chunk, N, A', T] arrays of one category.
_CHUNK = 128


@dataclass
class BootstrapResult:
    """Point estimates (the full evaluation), percentile intervals and spread, per metric."""

    point: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    std: dict[str, float]                 # standard deviation over resamples (ddof=1)
    values: dict[str, np.ndarray]         # [n_boot] per metric, NaN where undefined
    n_videos: int
    n_boot: int
    level: float
    seed: int
    n_undefined: dict[str, int]

    def excludes(self, value: float = 0.0, metric: str = "AP") -> bool:
        """Whether ``value`` lies outside the interval of ``metric`` (for a paired difference,
        ``excludes(0.0)``: one row beats the other beyond resampling noise)."""
        return bool(self.low[metric] > value or self.high[metric] < value)

    def as_dict(self) -> dict:
        """JSON-ready summary (without the per-resample values)."""
        return {"point": dict(self.point), "low": dict(self.low), "high": dict(self.high),
                "std": dict(self.std), "n_videos": self.n_videos, "n_boot": self.n_boot,
                "level": self.level, "seed": self.seed, "n_undefined": dict(self.n_undefined)}


def resample_counts(n_videos: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """How often each video (in sorted GT id order) is drawn in each resample: [n_boot, n_videos] int."""
    draws = np.random.default_rng(seed).integers(0, n_videos, size=(n_boot, n_videos))
    return np.bincount((draws + np.arange(n_boot)[:, None] * n_videos).ravel(),
                       minlength=n_boot * n_videos).reshape(n_boot, n_videos)


def resampled_dataset(gt: Mapping | str | os.PathLike, results: Sequence[Mapping],
                      video_ids: Sequence) -> tuple[dict, list[dict]]:
    """The GT and results of one resample, materialized: a copy of every drawn video (``video_ids``,
    GT video ids with repeats) with its GT tracks and predictions, the copies ordered by original
    id and renumbered ``1..len(video_ids)``. Its :func:`evaluate_ytvis` is the resample's value."""
    gt = _as_data(gt)
    info = {v["id"]: v for v in gt["videos"]}
    missing = sorted({v for v in video_ids if v not in info}, key=str)
    if missing:
        raise ValueError(f"resampled_dataset: video id(s) {missing[:5]} not in the GT 'videos'")
    anns: dict = {}
    for a in gt.get("annotations", []):
        anns.setdefault(a["video_id"], []).append(a)
    preds: dict = {}
    for r in results:
        preds.setdefault(r["video_id"], []).append(r)
    videos, new_anns, new_results = [], [], []
    for new_id, vid in enumerate(sorted(video_ids), start=1):
        videos.append(dict(info[vid], id=new_id))
        for a in anns.get(vid, []):
            new_anns.append(dict(a, id=len(new_anns) + 1, video_id=new_id))
        new_results.extend(dict(r, video_id=new_id) for r in preds.get(vid, []))
    out = {k: v for k, v in gt.items() if k not in ("videos", "annotations")}
    out.update(videos=videos, annotations=new_anns)
    return out, new_results


class _Resampler:
    """Per-resample summary values of one matched (GT, results) pair, from video multiplicities."""

    def __init__(self, m: _Matched, metrics: Sequence[str]):
        self.m, self.metrics = m, tuple(metrics)
        index = {name: _summary_index(name, m.max_dets) for name in self.metrics}
        self.a_sel = sorted({a for _, _, aind, _ in index.values() for a in aind})
        self.m_sel = sorted({mi for _, _, _, mind in index.values() for mi in mind})
        # each metric's slice, in positions of the needed area ranges and maxDets
        self.index = {name: (ap, thr, [self.a_sel.index(a) for a in aind], [self.m_sel.index(mi) for mi in mind])
                      for name, (ap, thr, aind, mind) in index.items()}
        K, V, A = len(m.cat_ids), len(m.vid_ids), len(AREA_RNG)
        # non-ignored GT tracks per video, category and area range: [V, K, A]
        self.npig_v = np.zeros((V, K, A), np.int64)
        if len(m.g.tracks.cat):
            np.add.at(self.npig_v, (np.array(m.g.tracks.vid), np.array(m.g.tracks.cat)),
                      (~m.g.ignore).T.astype(np.int64))
        # flags of the needed area ranges, plus an all-False padding row at index D
        pad = np.zeros((1, len(self.a_sel), len(IOU_THRS)), bool)
        self.tps = np.concatenate([m.tps[:, self.a_sel], pad])
        self.fps = np.concatenate([m.fps[:, self.a_sel], pad])
        self.pad_row = len(m.tps)
        # per (category, maxDets): the rows in the evaluator's score order, their videos, and the
        # (score, video) blocks whose copies must be interleaved by copy, then rank
        d_cat = np.array(m.d.tracks.cat, np.int64)
        d_vid = np.array(m.d.tracks.vid, np.int64)
        bounds = np.searchsorted(d_cat, np.arange(K + 1))
        self.lists = {}
        for k in range(K):
            for mi in self.m_sel:
                rows = _score_order(m.d.score, m.d.rank, bounds[k], bounds[k + 1], m.max_dets[mi])
                vid, sc = d_vid[rows], m.d.score[rows]
                new_block = np.r_[True, (sc[1:] != sc[:-1]) | (vid[1:] != vid[:-1])]
                block = np.cumsum(new_block) - 1
                ties = bool(len(rows)) and not new_block.all()
                self.lists[k, mi] = (rows, vid, block if ties else None)

    def point(self) -> dict[str, float]:
        """The full evaluation's values (the evaluator's own path)."""
        m = self.m
        precision, recall = _accumulate(m.g, m.d, m.tps, m.fps, len(m.cat_ids), m.max_dets)
        return _summarize(precision, recall, m.max_dets, self.metrics)

    def values(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Summary values of each resample ``counts`` [B, V] (video multiplicities): [B] per metric,
        -1 where undefined."""
        out = {name: np.empty(len(counts)) for name in self.metrics}
        for c0 in range(0, len(counts), _CHUNK):
            precision, recall = self._accumulate(counts[c0:c0 + _CHUNK])
            for b in range(len(precision)):
                for name, spec in self.index.items():
                    out[name][c0 + b] = _summary_value(precision[b], recall[b], *spec)
        return out

    def _accumulate(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Precision [B, T, R, K, A', M'] and recall [B, T, K, A', M'] of B resamples over the needed
        area ranges A' and maxDets M' (-1 where undefined), as ``ytvis_eval._accumulate`` gives them
        for each resampled dataset."""
        B, K = len(counts), len(self.m.cat_ids)
        T, R, A_, M_ = len(IOU_THRS), len(REC_THRS), len(self.a_sel), len(self.m_sel)
        precision = -np.ones((B, T, R, K, A_, M_))
        recall = -np.ones((B, T, K, A_, M_))
        npig = np.einsum("bv,vka->bka", counts, self.npig_v)[:, :, self.a_sel]   # [B, K, A']
        for k in range(K):
            npk = npig[:, k]                                                     # [B, A']
            defined = npk > 0
            if not defined.any():
                continue
            p, inverse = np.unique(npk, return_inverse=True)
            vthr = np.stack([_recall_steps(int(q)) for q in p])[inverse.reshape(npk.shape)]   # [B, A', R]
            for mj, mi in enumerate(self.m_sel):
                rows = self._expand(counts, *self.lists[k, mi])
                if rows.shape[1] == 0:   # nothing predicted in any resample: precision and recall 0
                    pr, rc = np.zeros((B, A_, T, R)), np.zeros((B, A_, T))
                else:
                    pr, rc = _curves(self.tps[rows], self.fps[rows], np.maximum(npk, 1), vthr)
                precision[:, :, :, k, :, mj] = np.where(defined[:, None, None, :], pr.transpose(0, 2, 3, 1), -1.0)
                recall[:, :, k, :, mj] = np.where(defined[:, None, :], rc.transpose(0, 2, 1), -1.0)
        return precision, recall

    def _expand(self, counts: np.ndarray, rows: np.ndarray, vid: np.ndarray,
                block: np.ndarray | None) -> np.ndarray:
        """Each resample's score-ordered rows with every row repeated by its video's multiplicity,
        padded with the all-False row: [B, N]."""
        B, n = len(counts), len(rows)
        reps = counts[:, vid].ravel()                                   # [B * n]
        nd = reps.reshape(B, n).sum(axis=1)
        flat = np.repeat(np.tile(np.arange(n), B), reps)                # position in ``rows``
        b_of = np.repeat(np.arange(B), nd)
        if block is not None:
            # equal score within one video: copy 1's rows (in rank order), then copy 2's, ...
            copy = np.arange(len(flat)) - np.repeat(np.cumsum(reps) - reps, reps)
            flat = flat[np.lexsort((flat, copy, block[flat], b_of))]
        out = np.full((B, int(nd.max(initial=0))), self.pad_row)
        out[b_of, np.arange(len(flat)) - np.repeat(np.cumsum(nd) - nd, nd)] = rows[flat]
        return out


def _check(gt, source: str, n_boot: int, level: float, metrics: Sequence[str]) -> None:
    if not gt.get("videos"):
        raise ValueError(f"{source}: 'videos' is empty: no video to resample")
    if not gt.get("annotations"):
        raise ValueError(f"{source}: 'annotations' is empty: no GT track to resample")
    unknown = [k for k in metrics if k not in SUMMARY_KEYS]
    if unknown:
        raise ValueError(f"bootstrap: unknown metric(s) {unknown}; choose from {list(SUMMARY_KEYS)}")
    if n_boot < 1:
        raise ValueError(f"bootstrap: n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap: level must be in (0, 1), got {level}")


def _summary(point: dict, values: dict, n_videos: int, n_boot: int, level: float, seed: int) -> BootstrapResult:
    q = ((1 - level) / 2, 1 - (1 - level) / 2)
    low, high, std, undefined = {}, {}, {}, {}
    for name, v in values.items():
        ok = v[~np.isnan(v)]
        undefined[name] = int(len(v) - len(ok))
        lo, hi = np.quantile(ok, q) if len(ok) else (np.nan, np.nan)
        low[name], high[name] = float(lo), float(hi)
        std[name] = float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0 if len(ok) else float("nan")
    return BootstrapResult(point, low, high, std, values, n_videos, n_boot, level, seed, undefined)


def _undefined_to_nan(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.where(v == -1, np.nan, v) for k, v in values.items()}


def bootstrap_ap(gt: Mapping | str | os.PathLike, results: Sequence[Mapping] | str | os.PathLike,
                 n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 metrics: Sequence[str] = ("AP",), max_dets: Sequence[int] = MAX_DETS) -> BootstrapResult:
    """Percentile bootstrap over videos of the summary ``metrics`` (names of
    :data:`~visrc.evaluation.ytvis_eval.SUMMARY_KEYS`); ``point`` is :func:`evaluate_ytvis`'s value.

    ``gt``/``results`` as for :func:`evaluate_ytvis`. Raises ``ValueError`` on a GT without videos
    or without annotations."""
    source = str(gt) if isinstance(gt, (str, os.PathLike)) else "gt"
    gt = _as_data(gt)
    _check(gt, source, n_boot, level, metrics)
    res = _Resampler(_prepare(gt, results, max_dets), metrics)
    counts = resample_counts(len(res.m.vid_ids), n_boot, seed)
    return _summary(res.point(), _undefined_to_nan(res.values(counts)), len(res.m.vid_ids), n_boot, level, seed)


def paired_bootstrap(gt: Mapping | str | os.PathLike, results_a: Sequence[Mapping] | str | os.PathLike,
                     results_b: Sequence[Mapping] | str | os.PathLike, n_boot: int = 1000, seed: int = 0,
                     level: float = 0.95, metrics: Sequence[str] = ("AP",),
                     max_dets: Sequence[int] = MAX_DETS) -> BootstrapResult:
    """The bootstrap of ``metric(a) - metric(b)``: both result sets scored on the same resamples, so
    the interval reflects the difference, not each row's own spread. ``point`` is the difference of
    the full evaluations (NaN where either is undefined)."""
    source = str(gt) if isinstance(gt, (str, os.PathLike)) else "gt"
    gt = _as_data(gt)
    _check(gt, source, n_boot, level, metrics)
    ra = _Resampler(_prepare(gt, results_a, max_dets), metrics)
    rb = _Resampler(_prepare(gt, results_b, max_dets), metrics)
    counts = resample_counts(len(ra.m.vid_ids), n_boot, seed)
    va, vb = _undefined_to_nan(ra.values(counts)), _undefined_to_nan(rb.values(counts))
    pa, pb = ra.point(), rb.point()
    point = {k: float(pa[k] - pb[k]) if pa[k] != -1 and pb[k] != -1 else float("nan") for k in metrics}
    return _summary(point, {k: va[k] - vb[k] for k in metrics}, len(ra.m.vid_ids), n_boot, level, seed)
