"""Ensemble, multi-scale testing and pseudo labels (paper 3.5.2, 3.5.5, 3.5.3), on saved predictions.

* :mod:`~visrc.ensemble.gae` — Greedy Auto Ensemble: ``ensemble_frame`` (boxes of one frame, score =
  max), ``refine_with_models`` (fused boxes as proposals; masks and embeddings averaged over the
  models), ``ensemble_videos`` (a whole split, boxes-only or with the models), ``greedy_select``;
* :mod:`~visrc.ensemble.multiscale` — ``rescale_video`` / ``rescale_frame`` between image sizes,
  ``merge_scales`` (GAE over test scales);
* :mod:`~visrc.ensemble.pseudo_label` — ``make_pseudo_labels`` (tracked ensemble detections ->
  a detection-only YouTube-VIS file), ``write_pseudo_labels``, ``merge_ytvis`` (train + pseudo);
"""
from visrc.ensemble.gae import (GAEResult, ProposalFn, ensemble_frame, ensemble_videos, greedy_clusters, greedy_select,
                                refine_with_models)
from visrc.ensemble.pseudo_label import (PseudoLabelConfig, filter_tracks, make_pseudo_labels, merge_ytvis,
                                         pseudo_annotations, select_tracks, write_pseudo_labels)
from visrc.ensemble.multiscale import (merge_scales, merge_scales_frame, rescale_boxes, rescale_frame, rescale_video,
                                resize_masks, scaled_sizes)

__all__ = [
    "GAEResult", "ProposalFn", "ensemble_frame", "ensemble_videos", "greedy_clusters", "greedy_select",
    "refine_with_models",
    "PseudoLabelConfig", "filter_tracks", "make_pseudo_labels", "merge_ytvis", "pseudo_annotations", "select_tracks",
    "write_pseudo_labels",
    "merge_scales", "merge_scales_frame", "rescale_boxes", "rescale_frame", "rescale_video", "resize_masks",
    "scaled_sizes",
]
