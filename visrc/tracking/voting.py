"""Label voting (paper 3.5.4): a track's class is the most frequent class among its detections.

Association may link detections of different classes (label consistency is relaxed), so a track
can carry several labels. :func:`vote_label` picks the most frequent one; a tie in frequency goes
to the class with the larger summed detection score, and a tie in both to the smaller class index
(so the result never depends on detection order).
"""
from __future__ import annotations

import numpy as np


def vote_label(labels: np.ndarray, scores: np.ndarray | None = None) -> int:
    """Voted class of one track. labels (L,) int >= 0, scores (L,) float; L >= 1."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) == 0:
        raise ValueError("vote_label: a track needs at least one detection")
    if labels.min() < 0:
        raise ValueError(f"vote_label: labels must be >= 0, got {labels.min()}")
    scores = np.ones(len(labels)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(labels):
        raise ValueError(f"vote_label: {len(labels)} labels but {len(scores)} scores")
    counts = np.bincount(labels)
    sums = np.bincount(labels, weights=scores)
    cand = np.flatnonzero(counts == counts.max())
    return int(cand[np.argmax(sums[cand])])  # argmax keeps the first (smallest class) of equal sums


def vote_labels(track_labels: list[np.ndarray], track_scores: list[np.ndarray]) -> np.ndarray:
    """:func:`vote_label` for many tracks: (T,) int64."""
    return np.array([vote_label(l, s) for l, s in zip(track_labels, track_scores)], dtype=np.int64)
