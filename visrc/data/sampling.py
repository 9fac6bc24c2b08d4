"""Frame sampling for the data-redundancy study (paper section 3.1, Fig. 2b).

:func:`subsample_frames` keeps ``n`` uniformly spaced frames of every video of a YouTube-VIS dict
(all frames when ``n`` is None or >= the video's length), slicing ``file_names`` and every
annotation's per-frame lists consistently. A video left with one frame has no real reference
frame: training then warps the key frame into a pseudo reference (``visrc.data.msd``), as the
paper does.
"""
from __future__ import annotations

import copy

import numpy as np


def uniform_frame_indices(length: int, n: int | None) -> np.ndarray:
    """``n`` frame indices spread evenly over ``[0, length)``, centred in their segments.

    (n,) int64, strictly increasing. n=1 gives the middle frame; n >= length gives every frame.
    """
    if length <= 0:
        raise ValueError(f"video length must be positive, got {length}")
    if n is None or n >= length:
        return np.arange(length)
    if n < 1:
        raise ValueError(f"frames per video must be >= 1 (or None for all), got {n}")
    return np.floor((np.arange(n) + 0.5) * length / n).astype(np.int64)


def subsample_frames(data: dict, n: int | None) -> dict:
    """A copy of a YouTube-VIS dict with ``n`` uniformly sampled frames per video.

    Tracks with no annotated frame left are dropped (a track must appear somewhere in its video).
    """
    out = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("videos", "annotations")}
    keep = {}
    out["videos"] = []
    for video in data["videos"]:
        idx = uniform_frame_indices(int(video["length"]), n)
        keep[video["id"]] = idx
        v = dict(video, file_names=[video["file_names"][i] for i in idx], length=len(idx))
        out["videos"].append(v)
    out["annotations"] = []
    for ann in data.get("annotations", []):
        idx = keep[ann["video_id"]]
        a = dict(ann, **{f: [ann[f][i] for i in idx] for f in ("segmentations", "bboxes", "areas")})
        if any(b is not None for b in a["bboxes"]):
            out["annotations"].append(a)
    return out
