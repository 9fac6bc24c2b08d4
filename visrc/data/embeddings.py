"""Embedding vectors (the track head's, :mod:`visrc.data.predictions`): L2 normalisation.

The cosine similarity of two embeddings is the dot product of their unit rows.
"""
from __future__ import annotations

import numpy as np

_MIN_NORM = 1e-12


def unit_rows(x: np.ndarray, dtype=np.float64, reduce: str = "einsum") -> np.ndarray:
    """Rows scaled to unit L2 norm: x (..., D) -> (..., D) of ``dtype``; zero rows stay zero.

    A row's norm is floored at 1e-12. ``reduce`` picks how the squared norm is summed: ``"einsum"``
    (``np.einsum``) or ``"sum"`` (``np.sum``, pairwise summation); the two can differ in the last
    bit, so each caller sticks to one for reproducible outputs.
    """
    x = np.asarray(x, dtype)
    if reduce == "einsum":
        sq = np.einsum("...i,...i->...", x, x)[..., None]
    elif reduce == "sum":
        sq = (x * x).sum(-1, keepdims=True)
    else:
        raise ValueError(f"unit_rows: reduce {reduce!r} is not 'einsum' or 'sum'")
    return x / np.maximum(np.sqrt(sq), _MIN_NORM)
