"""Multi-scale testing (paper 3.5.5): predictions at several test scales, merged like an ensemble.

Each scale is a "model" of :mod:`visrc.ensemble.gae`: run the model with the test image resized
to each size, bring every scale's predictions back to the original image size
(:func:`rescale_frame` / :func:`rescale_video`), then merge with GAE (max score, score-weighted
boxes)::

    sizes = scaled_sizes(360, 640, (0.75, 1.0, 1.25))        # test sizes (h, w)
    per_scale = [rescale_video(run_model_at(s), (video.height, video.width)) for s in sizes]
    merged = merge_scales([[v] for v in per_scale])[0]        # or merge_scales(list of splits)

The paper's own scales were lost in the text extraction ("alongside the image scale, we also
exploit ... scales"); the factors are a parameter. Masks are resized with nearest-neighbour
sampling of pixel centres, so a round trip through a larger size returns the same mask.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from visrc.data.masks import decode_rle, encode_masks
from visrc.ensemble.gae import ensemble_videos
from visrc.data.predictions import FramePredictions, VideoPredictions

Size = tuple[int, int]  # (height, width)


def scaled_sizes(height: int, width: int, factors: Sequence[float] = (0.75, 1.0, 1.25)) -> list[Size]:
    """Test sizes (h, w) = round(factor * base), at least 1 pixel each."""
    if any(f <= 0 for f in factors):
        raise ValueError(f"scaled_sizes: factors must be > 0, got {list(factors)}")
    return [(max(1, int(round(height * f))), max(1, int(round(width * f)))) for f in factors]


def rescale_boxes(boxes: np.ndarray, from_size: Size, to_size: Size) -> np.ndarray:
    """xyxy boxes (N, 4) in an image of ``from_size`` (h, w) -> the same boxes in ``to_size``."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return (np.asarray(boxes, np.float64).reshape(-1, 4) * [sx, sy, sx, sy]).astype(np.float32)


def resize_masks(masks: list[dict], to_size: Size) -> list[dict]:
    """RLE masks -> RLE masks of ``to_size`` (h, w), nearest neighbour on pixel centres."""
    if not masks:
        return []
    h0, w0 = (int(v) for v in masks[0]["size"])
    h1, w1 = to_size
    rows = np.minimum(((np.arange(h1) + 0.5) * h0 / h1).astype(np.int64), h0 - 1)
    cols = np.minimum(((np.arange(w1) + 0.5) * w0 / w1).astype(np.int64), w0 - 1)
    stack = np.stack([decode_rle(r) for r in masks])
    return encode_masks(stack[:, rows][:, :, cols])


def rescale_frame(frame: FramePredictions, from_size: Size, to_size: Size) -> FramePredictions:
    """A frame's predictions from an image of ``from_size`` to ``to_size``: boxes scaled, masks resized."""
    masks = None if frame.masks is None else resize_masks(frame.masks, to_size)
    return FramePredictions(rescale_boxes(frame.boxes, from_size, to_size), frame.scores.copy(), frame.labels.copy(),
                            frame.embeddings.copy(), masks)


def rescale_video(video: VideoPredictions, to_size: Size) -> VideoPredictions:
    """A video's predictions made at its (height, width) -> the same predictions at ``to_size``."""
    frm = (int(video.height), int(video.width))
    return VideoPredictions(video.video_id, int(to_size[0]), int(to_size[1]),
                            [rescale_frame(f, frm, to_size) for f in video.frames])


def merge_scales(per_scale: Sequence[Sequence[VideoPredictions]], iou_thr: float = 0.55,
                 **gae_kwargs) -> list[VideoPredictions]:
    """Merge a split predicted at several scales (``per_scale[s]``: list of videos, already at the
    original size) with :func:`visrc.ensemble.gae.ensemble_videos` (same keywords)."""
    for s, split in enumerate(per_scale):
        sizes = {(v.video_id, v.height, v.width) for v in split}
        ref = {(v.video_id, v.height, v.width) for v in per_scale[0]}
        if sizes != ref:
            raise ValueError(f"merge_scales: scale {s} has video sizes that differ from scale 0: rescale_video first")
    return ensemble_videos(per_scale, iou_thr=iou_thr, **gae_kwargs)


def merge_scales_frame(per_scale: Sequence[FramePredictions], height: int, width: int, iou_thr: float = 0.55,
                       **gae_kwargs) -> FramePredictions:
    """One frame's predictions at several scales (already at the original ``height`` x ``width``) -> merged."""
    splits = [[VideoPredictions(0, height, width, [f])] for f in per_scale]
    return ensemble_videos(splits, iou_thr=iou_thr, **gae_kwargs)[0].frames[0]
