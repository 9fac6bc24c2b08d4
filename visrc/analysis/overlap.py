"""Frame-overlap statistics of a YouTube-VIS annotation file (the paper's section 3.1, Fig. 2a).

For every object (one entry of ``annotations``, i.e. one track) the IoU of its box in each pair of
*consecutive annotated frames* is averaged over the video. The histogram of
these per-object means over the dataset, and the share of objects above 0.8, show how redundant
the frames are (slow motion, static cameras).

Conventions (all documented choices, tested in ``tests/test_overlap.py``):

* Boxes are ``[x, y, w, h]`` (YouTube-VIS / COCO); the IoU is :func:`visrc.data.boxes.paired_box_iou`
  (``"xywh"``, pycocotools' box IoU): a pair whose union is 0 (two zero-area boxes) or whose boxes
  do not overlap has IoU 0.
* Only ``bboxes`` is read; ``segmentations`` and ``areas`` are ignored. A ``None`` box means the
  object is absent from that frame.
* Gaps: by default (``bridge_gaps=True``) a pair is two *successive non-null boxes* of a track, so
  an object that disappears at frame 5 and reappears at frame 9 contributes the pair (4, 9). This
  is the "consecutive annotated frames" reading of the paper. With ``bridge_gaps=False`` only
  pairs of adjacent frames ``(t, t+1)`` with both boxes present count, and pairs across a gap
  are dropped.
* An object with no pair (fewer than 2 annotated frames; or, with ``bridge_gaps=False``, no two
  adjacent annotated frames) has ``n_pairs == 0`` and ``mean_iou = NaN``. It is excluded from the
  histogram and the share, and counted separately as ``n_unmeasured`` by :func:`overlap_summary`.
* "Above the threshold" means ``mean_iou >= threshold``, so the share matches the histogram bars
  right of the threshold line when the threshold is a bin edge.

Everything is vectorized with numpy over all pairs of all tracks at once, so a YouTube-VIS
2021-sized file needs no per-track Python loop (timing: ``benchmarks/bench_overlap.py``).
"""
from __future__ import annotations

from itertools import chain, compress, repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import pandas as pd

from visrc.data.boxes import paired_box_iou

COLUMNS = ("video_id", "annotation_id", "category_id", "n_frames", "n_pairs", "mean_iou")


def _flatten_boxes(anns: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All non-null boxes of all tracks, in track then frame order.

    Returns ``(track, frame, boxes)``: (M,) track index into ``anns``, (M,) frame index,
    (M, 4) float64 boxes. The Python-level work is a few C-speed passes (chain, map, compress,
    fromiter) over the flat list of boxes; pulling the floats out of the JSON lists dominates.
    """
    n = len(anns)
    per_track = list(map(itemgetter("bboxes"), anns))
    lengths = np.fromiter(map(len, per_track), dtype=np.int64, count=n)
    total = int(lengths.sum())
    flat = list(chain.from_iterable(per_track))
    present = np.fromiter(map(is_not, flat, repeat(None)), dtype=bool, count=total)
    kept = list(compress(flat, present))
    try:
        if not (np.fromiter(map(len, kept), dtype=np.int64, count=len(kept)) == 4).all():
            raise ValueError
        boxes = np.fromiter(chain.from_iterable(kept), dtype=np.float64, count=4 * len(kept)).reshape(-1, 4)
    except (ValueError, TypeError):
        for a in anns:  # slow path, only to name the bad record
            for t, b in enumerate(a["bboxes"]):
                try:
                    ok = b is None or (len(b) == 4 and all(isinstance(v, (int, float)) for v in b))
                except TypeError:
                    ok = False
                if not ok:
                    raise ValueError(
                        f"annotation id={a.get('id')}: 'bboxes'[{t}] = {b!r} is not [x, y, w, h]") from None
        raise
    track = np.repeat(np.arange(n, dtype=np.int64), lengths)
    frame = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return track[present], frame[present], boxes


def _pairs(track: np.ndarray, frame: np.ndarray, boxes: np.ndarray,
           bridge_gaps: bool) -> tuple[np.ndarray, np.ndarray]:
    same = track[1:] == track[:-1]
    if not bridge_gaps:
        same &= (frame[1:] - frame[:-1]) == 1
    idx = np.flatnonzero(same)
    return track[idx], paired_box_iou(boxes[idx], boxes[idx + 1], "xywh")


def pair_ious(data: dict, bridge_gaps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """IoU of every consecutive pair of annotated boxes of every track.

    Returns ``(track, iou)``: (P,) index into ``data["annotations"]`` and (P,) IoU of the pair,
    ordered by track then frame. See the module docstring for ``bridge_gaps``.
    """
    return _pairs(*_flatten_boxes(data.get("annotations") or []), bridge_gaps)


def object_overlap(data: dict, bridge_gaps: bool = True) -> pd.DataFrame:
    """Per-object mean IoU of the box between consecutive annotated frames.

    ``data`` is a loaded YouTube-VIS dict (see :func:`visrc.data.ytvis.load_ytvis`); only
    ``annotations[*].id / video_id / category_id / bboxes`` are read.

    Returns one row per annotation, in file order, with columns ``video_id``, ``annotation_id``,
    ``category_id``, ``n_frames`` (annotated frames), ``n_pairs`` (IoUs averaged) and
    ``mean_iou`` (NaN when ``n_pairs == 0``).
    """
    anns = data.get("annotations") or []
    n = len(anns)
    track, frame, boxes = _flatten_boxes(anns)
    pair_track, iou = _pairs(track, frame, boxes, bridge_gaps)
    n_pairs = np.bincount(pair_track, minlength=n).astype(np.int64)
    sums = np.bincount(pair_track, weights=iou, minlength=n)
    mean = np.full(n, np.nan)
    np.divide(sums, n_pairs, out=mean, where=n_pairs > 0)
    return pd.DataFrame({
        "video_id": pd.Series([a["video_id"] for a in anns], dtype="int64" if n == 0 else None),
        "annotation_id": pd.Series([a["id"] for a in anns], dtype="int64" if n == 0 else None),
        "category_id": pd.Series([a["category_id"] for a in anns], dtype="int64" if n == 0 else None),
        "n_frames": np.bincount(track, minlength=n).astype(np.int64),
        "n_pairs": n_pairs,
        "mean_iou": mean,
    }, columns=list(COLUMNS))


def overlap_summary(df: pd.DataFrame, threshold: float = 0.8) -> dict[str, Any]:
    """Dataset-level numbers from :func:`object_overlap`'s table.

    Keys: ``n_objects`` (all rows), ``n_measured`` (rows with a mean IoU), ``n_unmeasured``
    (rows without: fewer than 2 annotated frames), ``n_videos`` (videos with a measured object),
    ``threshold``, ``n_above`` and ``share_above`` (measured objects with ``mean_iou >= threshold``
    and their fraction of ``n_measured``; NaN share when nothing is measured), ``mean_iou`` and
    ``median_iou`` over measured objects.
    """
    vals = df["mean_iou"].to_numpy(dtype=np.float64)
    ok = ~np.isnan(vals)
    measured = vals[ok]
    n_above = int((measured >= threshold).sum())
    return {
        "n_objects": int(len(df)),
        "n_measured": int(ok.sum()),
        "n_unmeasured": int((~ok).sum()),
        "n_videos": int(df.loc[ok, "video_id"].nunique()),
        "threshold": float(threshold),
        "n_above": n_above,
        "share_above": n_above / len(measured) if len(measured) else float("nan"),
        "mean_iou": float(measured.mean()) if len(measured) else float("nan"),
        "median_iou": float(np.median(measured)) if len(measured) else float("nan"),
    }


def overlap_by_category(df: pd.DataFrame, categories: list[dict] | None = None,
                        threshold: float = 0.8) -> pd.DataFrame:
    """Per category: measured objects, mean of the per-object mean IoU, share >= ``threshold``.

    ``categories`` (the file's ``categories`` list) adds a ``name`` column. Sorted by category id.
    """
    m = df.dropna(subset=["mean_iou"])
    g = m.groupby("category_id")["mean_iou"]
    out = pd.DataFrame({
        "n_objects": g.size(),
        "mean_iou": g.mean(),
        "share_above": g.apply(lambda s: float((s >= threshold).mean())),
    }).sort_index()
    if categories is not None:
        names = {c["id"]: c["name"] for c in categories}
        out.insert(0, "name", [names.get(i, str(i)) for i in out.index])
    return out


def plot_overlap_histogram(df: pd.DataFrame, ax=None, bins: int = 20, threshold: float | None = 0.8,
                           title: str | None = "Mean box IoU between consecutive frames, per object"):
    """Fig. 2a: histogram of the per-object mean IoU over [0, 1]; returns the matplotlib Figure.

    Objects without a mean IoU (fewer than 2 annotated frames) are left out and their number is
    written in the legend. A dashed line marks ``threshold`` (None: no line) with the share of
    measured objects at or above it. Nothing is saved: use :func:`visrc.viz.plots.savefig`.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    s = overlap_summary(df, threshold=threshold if threshold is not None else 0.8)
    vals = df["mean_iou"].to_numpy(dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    ax.hist(vals, bins=np.linspace(0.0, 1.0, bins + 1), color="#4C72B0", edgecolor="white",
            label=f"{s['n_measured']} objects ({s['n_unmeasured']} with < 2 annotated frames left out)")
    if threshold is not None:
        share = s["share_above"]
        pct = "n/a" if np.isnan(share) else f"{100 * share:.1f}%"
        ax.axvline(threshold, color="#C44E52", linestyle="--",
                   label=f"IoU >= {threshold:g}: {pct} of objects")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("mean IoU of consecutive-frame boxes")
    ax.set_ylabel("objects")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig
