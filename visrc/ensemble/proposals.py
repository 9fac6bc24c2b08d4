"""GAE with the models (paper 3.5.2): fused boxes as proposals, the models' masks and embeddings averaged.

After the box stage of :mod:`visrc.ensemble.gae`, the fused boxes are proposals; each model returns
masks and embeddings for exactly those boxes (:data:`BoxFn` for one frame, :data:`ProposalFn` for a
split), and :func:`refine_with_models` merges them::

    masks, emb = refine_with_models(fused_boxes, [m0_fn, m1_fn], height=h, width=w)

* masks: the mean of the soft masks (probabilities; binary or RLE masks count as 0/1, so binary
  masks are *voted*), thresholded at ``>= mask_thr`` (mmdet's ``mask_thr_binary`` rule; with two
  binary models a 0.5 threshold keeps the union, 0.75 the intersection);
* embeddings: the mean of the L2-normalised embeddings, re-normalised (``embed_mode="mean"``), or
  their concatenation scaled by 1/sqrt(M) (``"concat"``: the cosine of two fused embeddings is then
  exactly the mean of the models' cosines, and models may differ in D). Different models'
  embedding spaces are not aligned: the mean follows the paper, and its cosine mixes in
  cross-model terms that "concat" leaves out.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from visrc.data.embeddings import unit_rows
from visrc.data.masks import RLE, decode_rle, encode_masks

#: A model's answer for given proposals: ``fn(boxes (K, 4) xyxy) -> (masks, embeddings (K, D))``,
#: masks either (K, h, w) probabilities / binary, or a list of K RLE dicts.
BoxFn = Callable[[np.ndarray], tuple]
#: The video-level form: ``fn(video_id, frame_index, boxes (K, 4), labels (K,)) -> (masks, embeddings)``;
#: ``labels`` are the fused detections' classes (a class-specific mask head needs them).
ProposalFn = Callable[[int, int, np.ndarray, np.ndarray], tuple]


def refine_with_models(boxes: np.ndarray, per_model_fn: Sequence[BoxFn], height: int | None = None,
                       width: int | None = None, mask_thr: float = 0.5,
                       embed_mode: str = "mean") -> tuple[list[RLE], np.ndarray]:
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
        embs.append(unit_rows(emb))
    M = len(per_model_fn)
    if embed_mode == "mean":
        dims = {e.shape[1] for e in embs}
        if len(dims) > 1:
            raise ValueError(f"refine_with_models: models give embedding dims {sorted(dims)}; use embed_mode='concat'")
        emb = unit_rows(sum(embs) / M)
    else:
        emb = unit_rows(np.concatenate(embs, 1) / np.sqrt(M))
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


def partial_proposal(fn: ProposalFn, video_id: int, t: int, labels: np.ndarray) -> BoxFn:
    """A :data:`ProposalFn` bound to one frame and its fused labels -> a :data:`BoxFn`."""
    return lambda boxes: fn(video_id, t, boxes, labels)
