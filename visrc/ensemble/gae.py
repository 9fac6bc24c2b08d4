"""Greedy Auto Ensemble of several models' detections (paper 3.5.2, Table 2).

Two stages, as in the paper::

    res = ensemble_frame([preds_m0, preds_m1], iou_thr=0.55)      # 1. boxes: GAE, score = max
    boxes, scores, labels, members = res
    masks, emb = refine_with_models(res.boxes, [m0_fn, m1_fn], height=h, width=w)   # 2. proposals
                                                                  #    (visrc.ensemble.proposals)

    fused = ensemble_videos([split_m0, split_m1])                   # a whole split, boxes-only path
    fused = ensemble_videos([split_m0, split_m1], proposal_fns=[f0, f1])   # ... with the models

**Box clustering** (``greedy_clusters``, per ``(frame, class)``): visrc's reading of GAE (Liu et al.
2019, OpenImages 2019 1st place: box voting over the pooled models; the VIS paper adds only "max,
not mean, score"), written as greedy NMS-style clustering, vectorized in numpy:

* boxes of all models are pooled and sorted by score (ties: model order, then detection order);
* a box is a *seed* if no higher-ranked seed of its class overlaps it with IoU ``> iou_thr``
  (strictly greater, as mmcv's NMS and mmdet's ``weighted_boxes_fusion``); this is exactly the keep
  set of greedy NMS;
* every other box joins, of the higher-ranked seeds that overlap it with IoU ``> iou_thr`` (there
  is at least one: it suppressed the box), the one it overlaps most (ties: the higher-ranked
  seed). Seeds are fixed boxes, unlike WBF whose running fused box drifts as boxes
  join: this is what lets the whole split be clustered at once instead of box by box; on
  well-separated objects both give the same clusters (``tests/test_ensemble.py`` checks against
  mmdet's ``weighted_boxes_fusion(conf_type='max')``).

**Fused detection** of a cluster: box = score-weighted mean of the member boxes (times the
optional per-model ``model_weights``: WBF's rule; the weights touch boxes only, never the score);
score = **max** of the member scores (the seed's: the paper's calibration choice, a merged box
inherits the dominant box's score instead of a mean that shrinks when models disagree);
label = the class. A model may put several boxes in one
cluster (all count in the mean). ``score_thr`` drops boxes before clustering (WBF's
``skip_box_thr``). A cluster supported by fewer than ``min_models`` distinct models is dropped
(``under_supported="drop"``, default with ``min_models=1``: keep all) or has its score scaled by
``n_models / min_models`` (``"scale"``). Degenerate (zero-area) boxes overlap nothing: each is its
own cluster.

**Masks and embeddings**, two paths:

* *with the models* (the paper): the fused boxes are proposals; each model returns masks and
  embeddings for exactly those boxes, averaged (:mod:`visrc.ensemble.proposals`:
  :data:`~visrc.ensemble.proposals.ProposalFn`, :func:`~visrc.ensemble.proposals.refine_with_models`);
* *boxes only* (no model callables, e.g. from saved predictions): mask = the seed's mask
  (``mask_mode="seed"``, the detection whose score the cluster took) or the vote of the members'
  masks (``"vote"``, mean >= ``mask_thr``); embedding = the mean of the members' L2-normalised
  embeddings, re-normalised (``embed_mode="mean"``) or the seed's (``"seed"``); all models need
  one D here. Output masks exist only where every model has masks for the video.

:func:`visrc.ensemble.selection.greedy_select` is the "auto" part: forward selection of the models
to ensemble by a score on a tuning split.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy.sparse import csr_matrix

from visrc.data.boxes import paired_box_iou
from visrc.data.embeddings import unit_rows
from visrc.data.masks import RLE, decode_rles, encode_masks
from visrc.data.predictions import FramePredictions, VideoPredictions
from visrc.ensemble.proposals import ProposalFn, partial_proposal, refine_with_models

MAX_PAIRS = 4_000_000  # candidate pairs per clustering chunk: bounds the memory of the pair temporaries


class GAEResult(NamedTuple):
    """Fused detections of one frame, sorted by score (descending).

    boxes (K, 4) float32 xyxy, scores (K,) float32, labels (K,) int64, members (M, 3) int64 rows
    ``[cluster, model, detection index in that model's frame]``, grouped by cluster, seed first.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    members: np.ndarray


@dataclass(frozen=True)
class _Fused:
    """Clusters of a flat detection set. cid (M,) cluster of each input box (-1 = filtered out)."""

    boxes: np.ndarray   # (K, 4) float64
    scores: np.ndarray  # (K,)
    seeds: np.ndarray   # (K,) input index of each cluster's seed
    n_models: np.ndarray  # (K,) distinct models supporting it
    cid: np.ndarray     # (M,)


# ------------------------------------------------------------------------------------ clustering

def greedy_clusters(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, iou_thr: float = 0.55) -> np.ndarray:
    """Greedy clustering inside each group (rules in the module docstring).

    boxes (M, 4) xyxy, scores (M,), groups (M,) int (e.g. class, or a (frame, class) key).
    Returns seed (M,) int64: the input index of the seed of each box's cluster (``seed[s] == s``
    for a seed). Work is O(sum over groups of n_g^2) pairs, in chunks of :data:`MAX_PAIRS`.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    groups = np.asarray(groups, np.int64).reshape(-1)
    M = len(boxes)
    if len(scores) != M or len(groups) != M:
        raise ValueError(f"greedy_clusters: {M} boxes, {len(scores)} scores, {len(groups)} groups")
    if M == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((-scores, groups))  # by group, then score descending; stable on ties
    g = groups[order]
    start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[start, M])
    seed_sorted = np.empty(M, np.int64)
    # chunks of whole groups, each with at most MAX_PAIRS pairs (a bigger single group goes alone)
    pairs = sizes * (sizes - 1) // 2
    chunk = np.cumsum(pairs) // MAX_PAIRS
    cut = np.flatnonzero(np.r_[True, chunk[1:] != chunk[:-1], True])
    for a, b in zip(cut[:-1], cut[1:]):
        lo, hi = start[a], (start[b] if b < len(start) else M)
        seed_sorted[lo:hi] = lo + _cluster_sorted(boxes[order[lo:hi]], start[a:b] - lo, sizes[a:b], iou_thr)
    seed = np.empty(M, np.int64)
    seed[order] = order[seed_sorted]
    return seed


def _cluster_sorted(b: np.ndarray, start: np.ndarray, sizes: np.ndarray, iou_thr: float) -> np.ndarray:
    """Clustering of boxes already sorted by (group, score desc): -> local seed index (n,)."""
    n = len(b)
    idx = np.arange(n)
    rank = idx - np.repeat(start, sizes)  # position inside its group
    after = np.repeat(start + sizes, sizes) - idx - 1  # later boxes of the same group
    P = int(after.sum())
    i = np.repeat(idx, after)
    j = i + 1 + (np.arange(P) - np.repeat(np.cumsum(after) - after, after))
    iou = paired_box_iou(b[i], b[j])
    hit = iou > iou_thr
    i, j, iou = i[hit], j[hit], iou[hit]
    # greedy NMS over all groups at once: round r settles the boxes of rank r (their suppressors
    # all have lower ranks, settled in earlier rounds)
    eo = np.argsort(rank[i], kind="stable")
    i, j, iou = i[eo], j[eo], iou[eo]
    r = rank[i]
    bounds = np.flatnonzero(np.r_[True, r[1:] != r[:-1], True]) if len(r) else np.zeros(1, np.int64)
    suppressed = np.zeros(n, bool)
    for s, e in zip(bounds[:-1], bounds[1:]):
        live = ~suppressed[i[s:e]]
        suppressed[j[s:e][live]] = True
    seed = idx.copy()
    live = ~suppressed[i]  # edges from seeds; every non-seed has at least one
    i, j, iou = i[live], j[live], iou[live]
    pick = np.lexsort((i, -iou, j))  # per member: the highest IoU, then the higher-ranked seed
    i, j = i[pick], j[pick]
    first = np.r_[True, j[1:] != j[:-1]] if len(j) else np.zeros(0, bool)
    seed[j[first]] = i[first]
    return seed


def _fuse(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, model: np.ndarray, weights: np.ndarray,
          n_model_total: int, iou_thr: float, score_thr: float, min_models: int, under_supported: str) -> _Fused:
    """GAE on flat arrays: cluster, fuse (weighted box, max score), apply the model-support rule."""
    if under_supported not in ("drop", "scale"):
        raise ValueError(f"under_supported: {under_supported!r} is not 'drop' or 'scale'")
    if min_models < 1:
        raise ValueError(f"min_models: must be >= 1, got {min_models}")
    if not np.all(np.isfinite(boxes)) or not np.all(np.isfinite(scores)):
        raise ValueError("ensemble: boxes/scores must be finite")
    M = len(boxes)
    cid = np.full(M, -1, np.int64)
    ok = np.flatnonzero(scores >= score_thr)
    seed = greedy_clusters(boxes[ok], scores[ok], groups[ok], iou_thr)
    seeds, local = np.unique(seed, return_inverse=True)
    K = len(seeds)
    w = scores[ok].astype(np.float64) * weights[model[ok]]
    wsum = np.bincount(local, w, K)
    cnt = np.bincount(local, minlength=K).astype(np.float64)
    flat = boxes[ok].astype(np.float64)
    zero = wsum <= 0  # all members scored 0: plain mean
    fused = np.stack([np.where(zero, np.bincount(local, flat[:, k], K) / np.maximum(cnt, 1),
                               np.bincount(local, w * flat[:, k], K) / np.where(zero, 1, wsum)) for k in range(4)], 1) \
        if K else np.zeros((0, 4))
    score = scores[ok][seeds].astype(np.float64)  # the seed holds the max score of its cluster
    n_models = np.bincount(np.unique(local * n_model_total + model[ok]) // n_model_total, minlength=K)
    keep = np.ones(K, bool)
    if min_models > 1:
        if under_supported == "drop":
            keep = n_models >= min_models
        else:
            score = score * np.minimum(n_models / min_models, 1.0)
    new_id = np.cumsum(keep) - 1
    cid[ok] = np.where(keep[local], new_id[local], -1)
    return _Fused(fused[keep], score[keep], ok[seeds][keep], n_models[keep], cid)


# ------------------------------------------------------------------------------------- pooling

@dataclass(frozen=True)
class _Pool:
    """Detections of several frames, flat (M of them), each with its frame's integer key."""

    boxes: np.ndarray   # (M, 4) float64 xyxy
    scores: np.ndarray  # (M,) float64
    labels: np.ndarray  # (M,) int64
    key: np.ndarray     # (M, k) int64: the key of the detection's frame
    det: np.ndarray     # (M,) int64: index of the detection inside its frame
    frames: list        # the frames with detections, in order


def _cat(frames: list, get: Callable[[FramePredictions], np.ndarray], shape: tuple, dtype) -> np.ndarray:
    """A per-detection field of ``frames``, concatenated (``shape`` zeros if there are none)."""
    return np.concatenate([get(f) for f in frames]).astype(dtype, copy=False) if frames else np.zeros(shape, dtype)


def _pool(frames: Sequence[FramePredictions], keys: Sequence[Sequence[int]], k: int) -> _Pool:
    """Pool ``frames`` (``keys[i]``: k ints naming frame i, e.g. its model) into one flat detection set."""
    n = np.array([len(f) for f in frames], np.int64)
    full = [f for f, c in zip(frames, n) if c]
    return _Pool(_cat(full, lambda f: f.boxes, (0, 4), np.float64), _cat(full, lambda f: f.scores, (0,), np.float64),
                 _cat(full, lambda f: f.labels, (0,), np.int64),
                 np.repeat(np.array(keys, np.int64).reshape(-1, k), n, axis=0),
                 np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n), full)


def _model_weights(model_weights, n: int) -> np.ndarray:
    """Per-model box weights (n,): ones, or the given non-negative weights."""
    w = np.ones(n) if model_weights is None else np.asarray(model_weights, np.float64).reshape(-1)
    if len(w) != n or (w < 0).any():
        raise ValueError(f"model_weights: need {n} non-negative weights, got {list(w)}")
    return w


# ---------------------------------------------------------------------------------- one frame

def ensemble_frame(preds: Sequence[FramePredictions], iou_thr: float = 0.55, score_thr: float = 0.0,
                   min_models: int = 1, under_supported: str = "drop",
                   model_weights: Sequence[float] | None = None) -> GAEResult:
    """GAE of one frame's detections from several models (``preds[m]``: model m's frame)."""
    if len(preds) == 0:
        raise ValueError("ensemble: no models given")
    pool = _pool(preds, [[m] for m in range(len(preds))], 1)
    boxes, scores, labels, model, det = pool.boxes, pool.scores, pool.labels, pool.key[:, 0], pool.det
    if len(labels) and labels.min() < 0:
        raise ValueError("ensemble_frame: labels must be >= 0")
    f = _fuse(boxes, scores, labels, model, _model_weights(model_weights, len(preds)), len(preds), iou_thr,
              score_thr, min_models, under_supported)
    order = np.argsort(-f.scores, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    m = np.flatnonzero(f.cid >= 0)
    mo = m[np.lexsort((-scores[m], rank[f.cid[m]]))]  # by cluster rank, seed (max score) first
    members = np.stack([rank[f.cid[mo]], model[mo], det[mo]], 1).astype(np.int64).reshape(-1, 3)
    return GAEResult(f.boxes[order].astype(np.float32), f.scores[order].astype(np.float32),
                     labels[f.seeds[order]].astype(np.int64), members)


# ------------------------------------------------------------------------------------ a split

def _align(models: Sequence[Sequence[VideoPredictions]]) -> list[list[VideoPredictions]]:
    """Per video (in model 0's order), the models' predictions; errors name the model and video."""
    if len(models) == 0:
        raise ValueError("ensemble_videos: no models given")
    by_id = [{v.video_id: v for v in split} for split in models]
    out = []
    for v0 in models[0]:
        row = []
        for m, ids in enumerate(by_id):
            v = ids.get(v0.video_id)
            if v is None:
                raise ValueError(f"ensemble_videos: model {m} has no predictions for video {v0.video_id}")
            if (len(v), v.height, v.width) != (len(v0), v0.height, v0.width):
                raise ValueError(f"ensemble_videos: model {m}, video {v0.video_id}: field 'frames'/'height'/'width': "
                                 f"{len(v)} frames {v.height}x{v.width}, "
                                 f"model 0 has {len(v0)} frames {v0.height}x{v0.width}")
            row.append(v)
        out.append(row)
    for m, split in enumerate(models[1:], 1):
        extra = set(by_id[m]) - set(by_id[0])
        if extra:
            raise ValueError(f"ensemble_videos: model {m} has videos {sorted(extra)} that model 0 lacks")
    return out


def ensemble_videos(models: Sequence[Sequence[VideoPredictions]], iou_thr: float = 0.55, score_thr: float = 0.0,
                    min_models: int = 1, under_supported: str = "drop", model_weights: Sequence[float] | None = None,
                    proposal_fns: Sequence[ProposalFn] | None = None, mask_mode: str = "seed",
                    embed_mode: str | None = None, mask_thr: float = 0.5) -> list[VideoPredictions]:
    """GAE of a split predicted by several models: ``models[m]`` is model m's list of videos.

    Videos are matched by id (every model must have the same videos, frame counts and sizes);
    the output follows model 0's order. The whole split is clustered in one vectorized pass
    (groups = (video, frame, class)). Masks/embeddings: from ``proposal_fns`` (one per model,
    ``fn(video_id, t, boxes, labels) -> (masks, emb)``, see :func:`refine_with_models`; ``embed_mode``
    "mean" | "concat") or, without them, from the members (``mask_mode`` "seed" | "vote",
    ``embed_mode`` "mean" | "seed"). Default ``embed_mode``: "mean".
    """
    embed_mode = embed_mode or "mean"
    allowed = ("mean", "concat") if proposal_fns is not None else ("mean", "seed")
    if embed_mode not in allowed:
        raise ValueError(f"ensemble_videos: embed_mode {embed_mode!r} is not one of {allowed} on this path")
    if mask_mode not in ("seed", "vote"):
        raise ValueError(f"ensemble_videos: mask_mode {mask_mode!r} is not 'seed' or 'vote'")
    if proposal_fns is not None and len(proposal_fns) != len(models):
        raise ValueError(f"ensemble_videos: {len(proposal_fns)} proposal_fns for {len(models)} models")
    rows = _align(models)
    n_models = len(models)
    weights = _model_weights(model_weights, n_models)
    frames = [(vi, t, m, f) for vi, row in enumerate(rows) for m, v in enumerate(row) for t, f in enumerate(v.frames)]
    pool = _pool([x[3] for x in frames], [x[:3] for x in frames], 3)
    vid, t, model = (pool.key[:, k] for k in range(3))
    labels = pool.labels
    if len(labels) and labels.min() < 0:
        raise ValueError("ensemble_videos: labels must be >= 0")
    t_max = max((len(row[0]) for row in rows), default=0) or 1
    l_max = int(labels.max()) + 1 if len(labels) else 1
    groups = (vid * t_max + t) * l_max + labels
    fz = _fuse(pool.boxes, pool.scores, groups, model, weights, n_models, iou_thr, score_thr, min_models,
               under_supported)
    lay = _layout(fz, pool, len(rows), t_max)
    emb = None if proposal_fns is not None else _member_embeddings(rows, pool, fz, lay, embed_mode)
    out = [_video_out(vi, row, pool, fz, lay, emb, proposal_fns, mask_mode, embed_mode, mask_thr)
           for vi, row in enumerate(rows)]
    if proposal_fns is not None:  # empty frames: D from any refined frame (else the inputs')
        dims = [f.embeddings.shape[1] for v in out for f in v.frames if f is not None]
        D = dims[0] if dims else max((v.embed_dim for r in rows for v in r), default=0)
        for v in out:
            v.frames = [f if f is not None else FramePredictions.empty(D, with_masks=True) for f in v.frames]
    return out


class _Layout(NamedTuple):
    """The split's clusters in output order (by video, frame, score descending) and their members."""

    order: np.ndarray         # (K,) cluster at each output position
    frame_bounds: np.ndarray  # (V * t_max + 1,) frame (vi, t) holds output positions [b[i], b[i + 1]), i = vi * t_max + t
    t_max: int
    mem: np.ndarray           # member detections, by output position of their cluster, seed first
    mem_pos: np.ndarray       # output position of each member's cluster (nondecreasing)
    mem_start: np.ndarray     # (K + 1,) output position k has members mem[mem_start[k]:mem_start[k + 1]]


def _layout(fz: _Fused, pool: _Pool, n_videos: int, t_max: int) -> _Layout:
    """Output order and members of the clusters ``fz`` of ``pool`` (key columns: video row, frame, model)."""
    K = len(fz.seeds)
    c_vid, c_t = pool.key[fz.seeds, 0], pool.key[fz.seeds, 1]
    order = np.lexsort((np.arange(K), -fz.scores, c_t, c_vid))
    key = c_vid[order] * t_max + c_t[order]
    inv = np.empty(K, np.int64)
    inv[order] = np.arange(K)
    mem = np.flatnonzero(fz.cid >= 0)
    mem = mem[np.lexsort((-pool.scores[mem], inv[fz.cid[mem]]))]
    mem_pos = inv[fz.cid[mem]]
    return _Layout(order, np.searchsorted(key, np.arange(n_videos * t_max + 1)), t_max, mem, mem_pos,
                   np.searchsorted(mem_pos, np.arange(K + 1)))


def _member_embeddings(rows: list[list[VideoPredictions]], pool: _Pool, fz: _Fused, lay: _Layout,
                       embed_mode: str) -> np.ndarray:
    """Boxes-only path: (K, D) float32 embedding of each output position, the seed's or the members' mean."""
    dims = {v.embed_dim for r in rows for v in r if any(len(f) for f in v.frames)}
    if len(dims) > 1:  # one output video holds one D
        raise ValueError(f"ensemble_videos: models give embedding dims {sorted(dims)}; the boxes-only path "
                         "needs one D (give proposal_fns with embed_mode='concat')")
    dim = dims.pop() if dims else max((v.embed_dim for r in rows for v in r), default=0)
    emb_all = _cat(pool.frames, lambda f: f.embeddings, (0, dim), np.float32)
    if embed_mode == "seed":
        return emb_all[fz.seeds[lay.order]]
    # (K, M) 0/1 membership matrix @ unit embeddings: the per-cluster sums in one pass
    member_of = csr_matrix((np.ones(len(lay.mem), np.float32), (lay.mem_pos, lay.mem)),
                           shape=(len(lay.order), len(emb_all)))
    return unit_rows(member_of @ unit_rows(emb_all, np.float32), np.float32)


def _video_out(vi: int, row: list[VideoPredictions], pool: _Pool, fz: _Fused, lay: _Layout, emb: np.ndarray | None,
               proposal_fns: Sequence[ProposalFn] | None, mask_mode: str, embed_mode: str,
               mask_thr: float) -> VideoPredictions:
    """The fused predictions of video row ``vi``; with ``proposal_fns``, an empty frame is left None."""
    v0 = row[0]
    with_masks = proposal_fns is not None or all(v.has_masks for v in row)
    fr = []
    for tt in range(len(v0)):
        lo, hi = lay.frame_bounds[vi * lay.t_max + tt], lay.frame_bounds[vi * lay.t_max + tt + 1]
        sel = lay.order[lo:hi]
        fb, fs, fl = fz.boxes[sel], fz.scores[sel], pool.labels[fz.seeds[sel]]
        if proposal_fns is not None:
            if hi == lo:
                fr.append(None)  # filled once D is known
                continue
            fns = [partial_proposal(fn, v0.video_id, tt, fl) for fn in proposal_fns]
            masks, f_emb = refine_with_models(fb, fns, v0.height, v0.width, mask_thr, embed_mode)
        else:
            f_emb = emb[lo:hi]
            masks = _member_masks(row, pool, lay, lo, hi, mask_mode, mask_thr) if with_masks else None
        fr.append(FramePredictions(fb, fs, fl, f_emb, masks))
    return VideoPredictions(v0.video_id, v0.height, v0.width, fr)


def _member_masks(row: list[VideoPredictions], pool: _Pool, lay: _Layout, lo: int, hi: int, mask_mode: str,
                  mask_thr: float) -> list[RLE]:
    """Masks of output positions lo..hi (boxes-only path): the seed's, or the members' vote."""
    t, model = pool.key[:, 1], pool.key[:, 2]
    out = []
    for k in range(lo, hi):
        ms = lay.mem[lay.mem_start[k]:lay.mem_start[k + 1]]
        rles = [row[model[i]].frames[t[i]].masks[pool.det[i]] for i in ms]
        if mask_mode == "seed" or len(rles) == 1:
            out.append(rles[0])
            continue
        out.append(encode_masks((decode_rles(rles).mean(axis=0) >= mask_thr).astype(np.uint8)[None])[0])
    return out
