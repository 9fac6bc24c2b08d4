"""Complete checks of what ``visrc validate`` and ``visrc evaluate`` read: results files (a JSON list,
or the CodaLab ``submission.zip`` holding ``results.json``) against their GT, and a GT's frames on disk.

A results file is a list of predicted tracks::

    [{"video_id": int, "category_id": int, "score": float,
      "segmentations": [{"size": [h, w], "counts": str} | null] * video_length}, ...]

The official server reads compressed RLE only, so that is what is accepted. Every field's type and
range is checked (the GT side is :func:`visrc.data.ytvis.validate_ytvis`); a violation is a
:class:`visrc.data.ytvis.YTVISFormatError` naming the file, the record (``result[3]``) and the field,
which the ``visrc`` command line prints as one line. What does not change the metric comes back as
warning lines.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from visrc.data.masks import _err
from visrc.data.ytvis import (FormatWarnings, YTVISFormatError, check_rle_strings, check_segmentation, is_int,
                              is_number, no_null_annotations, show, validate_ytvis, what)
from visrc.fileio import read_json

RESULT_KEYS = ("video_id", "category_id", "score", "segmentations")
SUBMISSION_MEMBER = "results.json"


def read_results(path: str | os.PathLike) -> tuple[Any, list[str]]:
    """The parsed JSON of a results file or of the ``results.json`` inside a ``.zip``, unchecked, and
    warnings about the zip's layout. A missing, unreadable or corrupt file is a one-line error."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        return read_json(path), []
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/") and PurePosixPath(n).name == SUBMISSION_MEMBER]
            if not names:
                found = ", ".join(show(n, 30) for n in z.namelist()[:3]) or "nothing"
                raise YTVISFormatError(f"{path}: no '{SUBMISSION_MEMBER}' inside the zip (it holds {found})")
            if len(names) > 1:
                raise YTVISFormatError(f"{path}: several '{SUBMISSION_MEMBER}' inside the zip: {names[:3]}")
            raw = z.read(names[0])
    except zipfile.BadZipFile as e:
        raise YTVISFormatError(f"{path}: not a readable zip archive ({e})") from None
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as e:   # truncated, unsupported, encrypted
        raise YTVISFormatError(f"{path}: cannot extract '{SUBMISSION_MEMBER}' ({e})") from None
    member = f"{path}!{names[0]}"
    try:
        results = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise YTVISFormatError(f"{member}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise YTVISFormatError(f"{member}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    warnings = []
    if names[0] != SUBMISSION_MEMBER:
        warnings.append(f"{path}: '{names[0]}' is in a folder; CodaLab expects '{SUBMISSION_MEMBER}' at the "
                        "top of the zip")
    return results, warnings


def _gt_index(gt: Mapping) -> tuple[dict, set]:
    videos = {v["id"]: (int(v["length"]), int(v["height"]), int(v["width"])) for v in gt["videos"]}
    return videos, {c["id"] for c in gt["categories"]}


def validate_results(results: Any, gt: Mapping, source: str | os.PathLike = "<memory>") -> list[str]:
    """Check a results list against a GT dict (valid itself: see :func:`visrc.data.ytvis.validate_ytvis`).

    Raises :class:`YTVISFormatError` at the first problem: not a list of objects with the four
    fields; ``video_id`` / ``category_id`` not integers of the GT; ``score`` not a finite number;
    ``segmentations`` not one entry per frame of its video; an entry neither null nor a compressed
    RLE whose ``size`` is the video's ``[height, width]`` and whose ``counts`` decode to exactly
    that many pixels. Returns warning lines (predictions with no mask in any frame).
    """
    source = str(source)
    videos, cats = _gt_index(gt)
    if not isinstance(results, list):
        raise _err(source, "top level", f"expected a list of predictions, got {type(results).__name__}")
    warn = FormatWarnings(source)
    pending: list[tuple] = []
    for i, r in enumerate(results):
        where = f"result[{i}]"
        if not isinstance(r, dict):
            raise _err(source, where, f"expected an object, got {what(r)}")
        for k in RESULT_KEYS:
            if k not in r:
                raise _err(source, where, f"missing field '{k}'")
        vid, cat, score = r["video_id"], r["category_id"], r["score"]
        if not is_int(vid) or vid not in videos:
            raise _err(source, where, f"'video_id' {show(vid, 30)} is not an id of a GT video")
        if not is_int(cat) or cat not in cats:
            raise _err(source, where, f"'category_id' {show(cat, 30)} is not an id of a GT category")
        if not is_number(score):
            raise _err(source, where, f"'score' must be a finite number, got {what(score)}")
        length, h, w = videos[vid]
        segs = r["segmentations"]
        if not isinstance(segs, list):
            raise _err(source, where, f"'segmentations' must be a list (one entry per frame), got {what(segs)}")
        if len(segs) != length:
            raise _err(source, where, f"'segmentations' has {len(segs)} entries but video {vid} has {length} frames")
        for t, s in enumerate(segs):
            check_segmentation(s, where, f"'segmentations'[{t}]", h, w, source, pending, compressed_only=True)
        if all(s is None for s in segs):
            warn.add("predictions without a mask", where, "no frame has a mask (it can only be a false positive)")
    check_rle_strings(pending, source)
    return warn.lines()


def load_results_checked(path: str | os.PathLike, gt: Mapping, validate: bool = True) -> tuple[list, list[str]]:
    """Read a results JSON or ``submission.zip`` and (by default) validate it against the GT dict
    ``gt``. Returns ``(results, warning lines)``."""
    results, warnings = read_results(path)
    if validate:
        warnings += validate_results(results, gt, source=path)
    return results, warnings


def check_frames(data: Mapping, root: str | os.PathLike, source: str | os.PathLike) -> int:
    """Every frame of a valid GT dict exists under ``root`` and has its video's size (one size per
    video). Reads image headers only. Returns the number of frames; raises :class:`YTVISFormatError`."""
    from PIL import Image, UnidentifiedImageError

    root, source, n = Path(root), str(source), 0
    for i, vid in enumerate(data["videos"]):
        where, at = f"video id={vid['id']}", f" (videos[{i}])"
        for t, name in enumerate(vid["file_names"]):
            path = root / name
            try:
                with Image.open(path) as im:
                    size = im.size
            except FileNotFoundError:
                raise _err(source, where, f"'file_names'[{t}]: {path}: no such file{at}") from None
            except (UnidentifiedImageError, OSError) as e:
                raise _err(source, where, f"'file_names'[{t}]: {path}: not a decodable image ({e}){at}") from None
            if size != (vid["width"], vid["height"]):
                raise _err(source, where, f"'file_names'[{t}]: {path} is {size[0]}x{size[1]} but the video's "
                                          f"'width'x'height' is {vid['width']}x{vid['height']}{at}")
            n += 1
    return n


def load_gt_checked(path: str | os.PathLike, validate: bool = True) -> tuple[dict, list[str]]:
    """Read a GT annotation file and (by default) validate it. Returns ``(data, warning lines)``."""
    data = no_null_annotations(read_json(path))
    if isinstance(data, list):
        raise YTVISFormatError(f"{path}: top level: a list of predictions, not an annotation file "
                               "(a results file is checked against its GT: visrc validate RESULTS --gt GT.json)")
    return data, (validate_ytvis(data, source=path) if validate else [])
