"""Greedy Auto Ensemble of several models' detections (paper 3.5.2, Table 2).

Two stages, as in the paper::

    res = ensemble_frame([preds_m0, preds_m1], iou_thr=0.55)      # 1. boxes: GAE, score = max
    boxes, scores, labels, members = res
    masks, emb = refine_with_models(res.boxes, [m0_fn, m1_fn], height=h, width=w)   # 2. proposals

    fused = ensemble_videos([split_m0, split_m1])                   # a whole split, boxes-only path
    fused = ensemble_videos([split_m0, split_m1], proposal_fns=[f0, f1])   # ... with the models

**Box clustering** (``greedy_clusters``, per ``(frame, class)``): our reading of GAE (Liu et al.
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
  embeddings for exactly those boxes (:data:`ProposalFn`); :func:`refine_with_models` averages the
  soft masks (probabilities; binary or RLE masks count as 0/1, so binary masks are *voted*) and
  thresholds the mean at ``>= mask_thr`` (mmdet's ``mask_thr_binary`` rule; with two binary models
  a 0.5 threshold keeps the union, 0.75 the intersection), and averages the L2-normalised
  embeddings (``embed_mode="mean"``, re-normalised) or concatenates them (``"concat"``, scaled by
  1/sqrt(M): the cosine of two fused embeddings is then exactly the mean of the models' cosines, and
  models may differ in D). Different models' embedding spaces are not aligned: the mean follows
  the paper, and its cosine mixes in cross-model terms that "concat" leaves out.
* *boxes only* (no model callables, e.g. from saved predictions): mask = the seed's mask
  (``mask_mode="seed"``, the detection whose score the cluster took) or the vote of the members'
  masks (``"vote"``, mean >= ``mask_thr``); embedding = the mean of the members' L2-normalised
  embeddings, re-normalised (``embed_mode="mean"``) or the seed's (``"seed"``); all models need
  one D here. Output masks exist only where every model has masks for the video.

:func:`greedy_select` is the "auto" part: forward selection of the models to ensemble by a
validation score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from scipy.sparse import csr_matrix

from visrc.data.masks import decode_rle, encode_masks
from visrc.data.predictions import FramePredictions, VideoPredictions

#: A model's answer for given proposals: ``fn(boxes (K, 4) xyxy) -> (masks, embeddings (K, D))``,
#: masks either (K, h, w) probabilities / binary, or a list of K RLE dicts.
BoxFn = Callable[[np.ndarray], tuple]
#: The video-level form: ``fn(video_id, frame_index, boxes (K, 4), labels (K,)) -> (masks, embeddings)``;
#: ``labels`` are the fused detections' classes (a class-specific mask head needs them).
ProposalFn = Callable[[int, int, np.ndarray, np.ndarray], tuple]

MAX_PAIRS = 4_000_000  # candidate pairs per clustering chunk (memory bound, ~100 MB of temporaries)


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

def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row-aligned xyxy boxes a, b (P, 4) -> (P,); degenerate boxes give 0."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


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
    iou = _pair_iou(b[i], b[j])
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


# ---------------------------------------------------------------------------------- one frame

def _stack_frames(preds: Sequence[FramePredictions]):
    """Pool the models' detections: boxes, scores, labels, model index, detection index."""
    if len(preds) == 0:
        raise ValueError("ensemble: no models given")
    n = [len(p) for p in preds]
    cat = lambda xs, shape, dt: np.concatenate(xs).astype(dt) if sum(n) else np.zeros(shape, dt)
    boxes = cat([p.boxes for p in preds], (0, 4), np.float64)
    scores = cat([p.scores for p in preds], (0,), np.float64)
    labels = cat([p.labels for p in preds], (0,), np.int64)
    model = np.repeat(np.arange(len(preds)), n)
    det = np.concatenate([np.arange(k) for k in n]).astype(np.int64)
    return boxes, scores, labels, model, det


def _model_weights(model_weights, n: int) -> np.ndarray:
    w = np.ones(n) if model_weights is None else np.asarray(model_weights, np.float64).reshape(-1)
    if len(w) != n or (w < 0).any():
        raise ValueError(f"model_weights: need {n} non-negative weights, got {list(w)}")
    return w


def ensemble_frame(preds: Sequence[FramePredictions], iou_thr: float = 0.55, score_thr: float = 0.0,
                   min_models: int = 1, under_supported: str = "drop",
                   model_weights: Sequence[float] | None = None) -> GAEResult:
    """GAE of one frame's detections from several models (``preds[m]``: model m's frame)."""
    boxes, scores, labels, model, det = _stack_frames(preds)
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


def _unit(x: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.asarray(x, dtype)
    norm = np.sqrt(np.einsum("...i,...i->...", x, x))[..., None]
    return x / np.maximum(norm, 1e-12)


def refine_with_models(boxes: np.ndarray, per_model_fn: Sequence[BoxFn], height: int | None = None,
                       width: int | None = None, mask_thr: float = 0.5, embed_mode: str = "mean"):
    """Masks and embeddings of the fused ``boxes`` (K, 4) from every model, averaged.

    Each ``per_model_fn[m](boxes)`` returns ``(masks, embeddings)``: masks (K, h, w) soft
    probabilities in [0, 1] or binary, or a list of K RLE dicts; embeddings (K, D_m). Returns
    ``(masks: list of K RLE, embeddings (K, D) float32 unit rows)`` where D = D_m (``"mean"``, all
    equal) or sum of D_m (``"concat"``). Rules in the module docstring. ``height``/``width``, if
    given, are checked against the masks (needed to answer K = 0 without calling the models).
    """
    if embed_mode not in ("mean", "concat"):
        raise ValueError(f"refine_with_models: embed_mode {embed_mode!r} is not 'mean' or 'concat'")
    if len(per_model_fn) == 0:
        raise ValueError("refine_with_models: no models given")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    K = len(boxes)
    prob_sum, embs = None, []
    for m, fn in enumerate(per_model_fn):
        masks, emb = fn(boxes)
        emb = np.asarray(emb, np.float64)
        if emb.ndim != 2 or len(emb) != K:
            raise ValueError(f"refine_with_models: model {m} returned embeddings of shape {emb.shape}, expected ({K}, D)")
        prob = _as_prob(masks, K, m)
        if height is not None and prob.shape[1:] != (height, width):
            raise ValueError(f"refine_with_models: model {m} returned masks of size {prob.shape[1:]}, "
                             f"expected {(height, width)}")
        if prob_sum is not None and prob.shape != prob_sum.shape:
            raise ValueError(f"refine_with_models: model {m} masks {prob.shape} differ from model 0's {prob_sum.shape}")
        prob_sum = prob if prob_sum is None else prob_sum + prob
        embs.append(_unit(emb))
    M = len(per_model_fn)
    if embed_mode == "mean":
        dims = {e.shape[1] for e in embs}
        if len(dims) > 1:
            raise ValueError(f"refine_with_models: models give embedding dims {sorted(dims)}; use embed_mode='concat'")
        emb = _unit(sum(embs) / M)
    else:
        emb = _unit(np.concatenate(embs, 1) / np.sqrt(M))
    binary = (prob_sum / M >= mask_thr).astype(np.uint8)
    return encode_masks(binary), emb.astype(np.float32)


def _as_prob(masks, K: int, m: int) -> np.ndarray:
    """A model's masks -> (K, h, w) float32 in [0, 1]."""
    if isinstance(masks, (list, tuple)):
        if len(masks) != K:
            raise ValueError(f"refine_with_models: model {m} returned {len(masks)} masks for {K} boxes")
        if K == 0:
            raise ValueError(f"refine_with_models: model {m} returned no masks for 0 boxes: give arrays (0, h, w)")
        return np.stack([decode_rle(r) for r in masks]).astype(np.float32)
    prob = np.asarray(masks, np.float32)
    if prob.ndim != 3 or len(prob) != K:
        raise ValueError(f"refine_with_models: model {m} returned masks of shape {prob.shape}, expected ({K}, h, w)")
    if prob.size and (prob.min() < 0 or prob.max() > 1):
        raise ValueError(f"refine_with_models: model {m} masks are not in [0, 1] (probabilities or binary)")
    return prob


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
    meta = np.array([x[:3] for x in frames], np.int64).reshape(-1, 3)
    n = np.array([len(x[3]) for x in frames], np.int64)
    full = [x[3] for x, k in zip(frames, n) if k]
    cat = lambda get, shape, dt: (np.concatenate([get(f) for f in full]).astype(dt, copy=False) if full
                                  else np.zeros(shape, dt))
    boxes = cat(lambda f: f.boxes, (0, 4), np.float64)
    scores = cat(lambda f: f.scores, (0,), np.float64)
    labels = cat(lambda f: f.labels, (0,), np.int64)
    vid, t, model = (np.repeat(meta[:, k], n) for k in range(3))
    det = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)  # index inside its frame
    if len(labels) and labels.min() < 0:
        raise ValueError("ensemble_videos: labels must be >= 0")
    t_max = max((len(row[0]) for row in rows), default=0) or 1
    l_max = int(labels.max()) + 1 if len(labels) else 1
    groups = (vid * t_max + t) * l_max + labels
    fz = _fuse(boxes, scores, groups, model, weights, n_models, iou_thr, score_thr, min_models, under_supported)

    K = len(fz.seeds)
    c_vid, c_t = vid[fz.seeds], t[fz.seeds]
    order = np.lexsort((np.arange(K), -fz.scores, c_t, c_vid))  # by video, frame, score desc
    key = c_vid[order] * t_max + c_t[order]
    inv = np.empty(K, np.int64)
    inv[order] = np.arange(K)
    # members sorted by output cluster position, seed first
    mem = np.flatnonzero(fz.cid >= 0)
    mem = mem[np.lexsort((-scores[mem], inv[fz.cid[mem]]))]
    mem_start = np.searchsorted(inv[fz.cid[mem]], np.arange(K + 1))

    out_emb = None
    if proposal_fns is None:
        dims = {r[m].embed_dim for r in rows for m in range(n_models) if any(len(f) for f in r[m].frames)}
        if len(dims) > 1:  # one output video holds one D
            raise ValueError(f"ensemble_videos: models give embedding dims {sorted(dims)}; the boxes-only path "
                             "needs one D (give proposal_fns with embed_mode='concat')")
        dim = dims.pop() if dims else max((v.embed_dim for r in rows for v in r), default=0)
        emb_all = cat(lambda f: f.embeddings, (0, dim), np.float32)
        if embed_mode == "seed":
            out_emb = emb_all[fz.seeds[order]]
        else:  # (K, M) 0/1 membership matrix @ unit embeddings: the per-cluster sums in one pass
            member_of = csr_matrix((np.ones(len(mem), np.float32), (inv[fz.cid[mem]], mem)), shape=(K, len(emb_all)))
            out_emb = _unit(member_of @ _unit(emb_all, np.float32), np.float32)
    out = []
    frame_bounds = np.searchsorted(key, np.arange(len(rows) * t_max + 1))  # clusters of frame (vi, t)
    for vi, row in enumerate(rows):
        v0 = row[0]
        with_masks = proposal_fns is not None or all(v.has_masks for v in row)
        fr = []
        for tt in range(len(v0)):
            lo, hi = frame_bounds[vi * t_max + tt], frame_bounds[vi * t_max + tt + 1]
            sel = order[lo:hi]
            fb, fs, fl = fz.boxes[sel], fz.scores[sel], labels[fz.seeds[sel]]
            if proposal_fns is not None:
                if hi == lo:
                    fr.append(None)  # filled once D is known
                    continue
                fns = [partial_proposal(fn, v0.video_id, tt, fl) for fn in proposal_fns]
                masks, emb = refine_with_models(fb, fns, v0.height, v0.width, mask_thr, embed_mode)
            else:
                emb = out_emb[lo:hi]
                masks = (_member_masks(row, mem, mem_start, lo, hi, model, det, t, mask_mode, mask_thr)
                         if with_masks else None)
            fr.append(FramePredictions(fb, fs, fl, emb, masks))
        out.append(VideoPredictions(v0.video_id, v0.height, v0.width, fr))
    if proposal_fns is not None:  # empty frames: D from any refined frame (else the inputs')
        dims = [f.embeddings.shape[1] for v in out for f in v.frames if f is not None]
        D = dims[0] if dims else max((v.embed_dim for r in rows for v in r), default=0)
        for v in out:
            v.frames = [f if f is not None else FramePredictions.empty(D, with_masks=True) for f in v.frames]
    return out


def partial_proposal(fn: ProposalFn, video_id: int, t: int, labels: np.ndarray) -> BoxFn:
    """A :data:`ProposalFn` bound to one frame and its fused labels -> a :data:`BoxFn`."""
    return lambda boxes: fn(video_id, t, boxes, labels)


def _member_masks(row, mem, mem_start, lo, hi, model, det, t, mask_mode, mask_thr) -> list[dict]:
    """Masks of output clusters lo..hi (boxes-only path): the seed's, or the members' vote."""
    out = []
    for k in range(lo, hi):
        ms = mem[mem_start[k]:mem_start[k + 1]]
        rles = [row[model[i]].frames[t[i]].masks[det[i]] for i in ms]
        if mask_mode == "seed" or len(rles) == 1:
            out.append(rles[0])
            continue
        stack = mask_utils.decode([{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles])
        out.append(encode_masks((stack.mean(axis=2) >= mask_thr).astype(np.uint8)[None])[0])
    return out


# ------------------------------------------------------------------------------- model choice

def greedy_select(candidates: Sequence, evaluate: Callable[[list], float], max_models: int | None = None,
                  min_gain: float = 0.0) -> tuple[list, list[float]]:
    """Forward selection of the models to ensemble ("auto" ensemble).

    Start from the best single candidate by ``evaluate([c])`` (e.g. the valid AP of the GAE of
    those models); add the candidate that raises ``evaluate`` most, while the gain is
    ``> min_gain`` and fewer than ``max_models`` are chosen. Returns (chosen in order, score
    after each step). Ties go to the earlier candidate.
    """
    left = list(candidates)
    if not left:
        raise ValueError("greedy_select: no candidates")
    chosen: list = []
    history: list[float] = []
    best = -np.inf
    while left and (max_models is None or len(chosen) < max_models):
        scores = [float(evaluate(chosen + [c])) for c in left]
        k = int(np.argmax(scores))
        if chosen and not scores[k] > best + min_gain:
            break
        best = scores[k]
        chosen.append(left.pop(k))
        history.append(best)
    return chosen, history
