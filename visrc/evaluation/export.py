"""Results files: validate against GT, write ``results.json`` and the CodaLab ``submission.zip``.

A YouTube-VIS results file is a JSON list of predicted tracks::

    [{"video_id": int, "category_id": int, "score": float,
      "segmentations": [{"size": [h, w], "counts": str} | null] * video_length}, ...]

The official server (and evaluator) only reads compressed RLE, so that is what validation accepts.
Both writers go through :mod:`visrc.fileio`, so a killed process leaves the old file or the new one,
never a truncated one.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from visrc.evaluation.validation import RESULT_KEYS, SUBMISSION_MEMBER, read_results
from visrc.evaluation.validation import validate_results as _check
from visrc.fileio import atomic_write, atomic_write_json, read_json


def validate_results(results: Any, gt: Mapping | str | os.PathLike, source: str | os.PathLike = "<memory>") -> list[str]:
    """:func:`visrc.evaluation.validation.validate_results` with ``gt`` a dict or a GT file: raises
    :class:`visrc.data.ytvis.YTVISFormatError` naming the file, the result index and the field; returns warning lines."""
    return _check(results, read_json(gt) if isinstance(gt, (str, os.PathLike)) else gt, source=source)


def load_results(path: str | os.PathLike, gt: Mapping | str | os.PathLike, validate: bool = True) -> list[dict]:
    """Read a results JSON (or a ``submission.zip`` holding ``results.json``) and validate it against ``gt``."""
    results, _ = read_results(path)
    if validate:
        validate_results(results, gt, source=path)
    return results


def _plain(results: Sequence[Mapping]) -> list[dict]:
    """JSON-ready copies: numpy scalars to Python numbers, bytes ``counts`` to str."""
    out = []
    for r in results:
        segs = []
        for s in r["segmentations"]:
            if s is None:
                segs.append(None)
                continue
            c = s["counts"]
            segs.append({"size": [int(v) for v in s["size"]], "counts": c.decode("ascii") if isinstance(c, bytes) else c})
        d = {k: v for k, v in r.items() if k not in RESULT_KEYS}
        d.update(video_id=int(r["video_id"]), category_id=int(r["category_id"]), score=float(r["score"]),
                 segmentations=segs)
        out.append(d)
    return out


def write_results(results: Sequence[Mapping], path: str | os.PathLike,
                  gt: Mapping | str | os.PathLike | None = None) -> Path:
    """Write ``results.json`` atomically (validated against ``gt`` first when given)."""
    plain = _plain(results)
    if gt is not None:
        validate_results(plain, gt, source=path)
    return atomic_write_json(path, plain)


def write_submission_zip(results: Sequence[Mapping], path: str | os.PathLike,
                         gt: Mapping | str | os.PathLike | None = None) -> Path:
    """Write the CodaLab-ready ``submission.zip`` (one member, ``results.json``) atomically."""
    plain = _plain(results)
    if gt is not None:
        validate_results(plain, gt, source=path)
    data = json.dumps(plain, separators=(",", ":")).encode("utf-8")

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr(SUBMISSION_MEMBER, data)

    return atomic_write(path, write, "wb")


def tracks_to_results(video_id: int, tracks: Sequence, label_to_category: Mapping[int, int] | Sequence[int],
                      skip_unmapped: bool = False) -> list[dict]:
    """YouTube-VIS results entries of one video's tracks (:class:`visrc.tracking.Track`).

    ``label_to_category`` maps the model's 0-based label to the GT JSON's ``category_id`` (1-based
    in YouTube-VIS), as a dict or a sequence indexed by label. A track whose voted label is not in
    it raises ``KeyError``, or is left out with ``skip_unmapped=True`` (e.g. auxiliary classes).
    Each entry: ``{"video_id", "category_id", "score", "segmentations": [RLE | None] * T}``.
    """
    out = []
    for k, tr in enumerate(tracks):
        if tr.masks is None:
            raise ValueError(f"video {video_id}: track {k} has no masks (a boxes-only run cannot give YouTube-VIS results)")
        try:
            cat = label_to_category[tr.label]
        except (KeyError, IndexError):
            if skip_unmapped:
                continue
            raise KeyError(f"video {video_id}: track {k} has label {tr.label}, which label_to_category does not map") from None
        out.append({"video_id": int(video_id), "category_id": int(cat), "score": float(tr.score),
                    "segmentations": list(tr.masks)})
    return out


def results_for_split(tracks_by_video: Mapping[int, Sequence], label_to_category, skip_unmapped: bool = False) -> list[dict]:
    """:func:`tracks_to_results` over a split (the output of :func:`visrc.tracking.track_split`)."""
    return [r for vid, tr in tracks_by_video.items() for r in tracks_to_results(vid, tr, label_to_category, skip_unmapped)]
