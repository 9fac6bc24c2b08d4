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
import math
import numbers
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from visrc.data.ytvis import YTVISFormatError
from visrc.fileio import atomic_write, atomic_write_json, read_json

RESULT_KEYS = ("video_id", "category_id", "score", "segmentations")
SUBMISSION_MEMBER = "results.json"


def _err(source: str, where: str, msg: str) -> YTVISFormatError:
    return YTVISFormatError(f"{source}: {where}: {msg}")


def _gt_index(gt: Mapping | str | os.PathLike) -> tuple[dict, set]:
    if isinstance(gt, (str, os.PathLike)):
        gt = read_json(gt)
    videos = {v["id"]: (int(v["length"]), int(v["height"]), int(v["width"])) for v in gt["videos"]}
    return videos, {c["id"] for c in gt["categories"]}


def validate_results(results: Any, gt: Mapping | str | os.PathLike, source: str | os.PathLike = "<memory>") -> None:
    """Raise :class:`YTVISFormatError` at the first problem; the message names the file, the result
    index and the field. Checks: a list of objects with the four fields; ``video_id`` and
    ``category_id`` known to ``gt``; ``score`` a finite number; one ``segmentations`` entry per frame
    of the video, each ``null`` or a compressed RLE whose ``size`` is the video's ``[height, width]``.
    """
    source = str(source)
    videos, cats = _gt_index(gt)
    if not isinstance(results, list):
        raise _err(source, "top level", f"expected a list of predictions, got {type(results).__name__}")
    for i, r in enumerate(results):
        where = f"result[{i}]"
        if not isinstance(r, dict):
            raise _err(source, where, f"expected an object, got {type(r).__name__}")
        for k in RESULT_KEYS:
            if k not in r:
                raise _err(source, where, f"missing field '{k}'")
        vid = r["video_id"]
        if vid not in videos:
            raise _err(source, where, f"'video_id' {vid!r} is not a video of the GT")
        if r["category_id"] not in cats:
            raise _err(source, where, f"'category_id' {r['category_id']!r} is not a category of the GT")
        score = r["score"]
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(float(score)):
            raise _err(source, where, f"'score' must be a finite number, got {score!r}")
        length, h, w = videos[vid]
        segs = r["segmentations"]
        if not isinstance(segs, list):
            raise _err(source, where, f"'segmentations' must be a list, got {type(segs).__name__}")
        if len(segs) != length:
            raise _err(source, where, f"'segmentations' has {len(segs)} entries but video {vid} has {length} frames")
        for t, s in enumerate(segs):
            if s is None:
                continue
            if not isinstance(s, dict) or "size" not in s or "counts" not in s:
                raise _err(source, where, f"'segmentations'[{t}] must be null or an RLE {{'size', 'counts'}}, "
                                          f"got {type(s).__name__}")
            if not isinstance(s["counts"], (str, bytes)):
                raise _err(source, where, f"'segmentations'[{t}] must be compressed RLE ('counts' a string), "
                                          f"got 'counts' of type {type(s['counts']).__name__}")
            size = s["size"]
            try:
                ok = len(size) == 2 and [int(v) for v in size] == [h, w]
            except (TypeError, ValueError):
                ok = False
            if not ok:
                shown = list(size) if isinstance(size, (list, tuple)) else repr(size)
                raise _err(source, where, f"'segmentations'[{t}] has size {shown} but video {vid} is [{h}, {w}]")


def load_results(path: str | os.PathLike, gt: Mapping | str | os.PathLike, validate: bool = True) -> list[dict]:
    """Read a results JSON (or a ``submission.zip`` holding ``results.json``) and validate it against ``gt``."""
    path = Path(path)
    if path.suffix == ".zip":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if Path(n).name == SUBMISSION_MEMBER]
            if not names:
                raise YTVISFormatError(f"{path}: no '{SUBMISSION_MEMBER}' inside the zip")
            try:
                results = json.loads(z.read(names[0]))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}!{names[0]}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    else:
        results = read_json(path)
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


def results_json_bytes(results: Sequence[Mapping]) -> bytes:
    return json.dumps(_plain(results), separators=(",", ":")).encode("utf-8")


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
