"""The official evaluator's greedy matching of predicted to GT tracks, batched (:mod:`visrc.evaluation.ytvis_eval`)."""
from __future__ import annotations

import numpy as np


def _last_argmax(vals: np.ndarray) -> np.ndarray:
    """Index of the last maximum along the last axis."""
    n = vals.shape[-1]
    return n - 1 - np.argmax(vals[..., ::-1], axis=-1)


def match_groups(groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
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
