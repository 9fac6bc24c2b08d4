"""The "auto" of Greedy Auto Ensemble (paper 3.5.2): which models to ensemble, chosen by a score.

:func:`greedy_select` is forward selection over any candidates (models, checkpoints, prediction
files) with a caller's scoring function, e.g. the video AP of the GAE of the candidates'
predictions on a tuning split::

    chosen, history = greedy_select(checkpoints, lambda ms: ap_on_tuning_split(ms), max_models=3)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence, TypeVar

C = TypeVar("C")


def greedy_select(candidates: Sequence[C], evaluate: Callable[[list[C]], float], max_models: int | None = None,
                  min_gain: float = 0.0) -> tuple[list[C], list[float]]:
    """Forward selection of ensemble members by ``evaluate`` (higher is better).

    ``evaluate(members)`` scores a non-empty list of candidates, e.g. the AP of their ensemble on a
    tuning split (a split other than the one the ensemble is reported on, which would otherwise
    be selected on). The selection starts from the best single candidate, then adds the candidate
    whose addition scores highest, while that score exceeds the current one by more than
    ``min_gain`` and fewer than ``max_models`` (None: no limit) are chosen. Each step calls
    ``evaluate`` once per remaining candidate, on the chosen ones (in order) plus that candidate.
    Ties go to the earlier candidate.

    Returns ``(chosen, history)``: the chosen candidates in the order they were added, and the
    score after each addition (``history[-1]`` is the score of ``chosen``). Raises ``ValueError``
    for no candidates, ``max_models < 1``, or a NaN score.
    """
    left = list(candidates)
    if not left:
        raise ValueError("greedy_select: no candidates")
    if max_models is not None and max_models < 1:
        raise ValueError(f"greedy_select: max_models must be >= 1, got {max_models}")
    chosen: list[C] = []
    history: list[float] = []
    best = -math.inf
    while left and (max_models is None or len(chosen) < max_models):
        scores = [float(evaluate(chosen + [c])) for c in left]
        nan = [c for c, v in zip(left, scores) if math.isnan(v)]
        if nan:
            raise ValueError(f"greedy_select: evaluate gave NaN for {chosen + nan[:1]!r}")
        k = max(range(len(scores)), key=scores.__getitem__)  # the first of the highest
        if chosen and not scores[k] > best + min_gain:
            break
        best = scores[k]
        chosen.append(left.pop(k))
        history.append(best)
    return chosen, history
