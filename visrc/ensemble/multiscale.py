"""Multi-scale testing (paper 3.5.5): predictions at several test scales, merged like an ensemble.

Each scale is a "model" of :mod:`visrc.ensemble.gae`: the model runs with the test image resized by
each factor (``VideoPredictor(..., scale=s)``, which returns predictions in original-image pixels),
then GAE merges the scales (max score, score-weighted boxes)::

    per_scale = predict_scales_cached(config, ckpt, root, scales=(0.75, 1.0, 1.25))   # experiments.table2
    merged = merge_scales(per_scale)

The paper's own scales were lost in the text extraction ("alongside the image scale, we also
exploit ... scales"); the factors are a parameter of the caller.
"""
from __future__ import annotations

from typing import Sequence

from visrc.data.predictions import VideoPredictions
from visrc.ensemble.gae import ensemble_videos


def merge_scales(per_scale: Sequence[Sequence[VideoPredictions]], iou_thr: float = 0.55,
                 **gae_kwargs) -> list[VideoPredictions]:
    """Merge a split predicted at several scales (``per_scale[s]``: list of videos, already at the
    original size) with :func:`visrc.ensemble.gae.ensemble_videos` (same keywords)."""
    ref = {(v.video_id, v.height, v.width) for v in per_scale[0]} if per_scale else set()
    for s, split in enumerate(per_scale):
        if {(v.video_id, v.height, v.width) for v in split} != ref:
            raise ValueError(f"merge_scales: scale {s} has video sizes that differ from scale 0: "
                             "predictions must be at the original image size")
    return ensemble_videos(per_scale, iou_thr=iou_thr, **gae_kwargs)
