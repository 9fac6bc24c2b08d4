"""Ensemble, multi-scale testing and pseudo labels (paper 3.5.2, 3.5.5, 3.5.3), on saved predictions.

* :mod:`~visrc.ensemble.gae` — Greedy Auto Ensemble: ``ensemble_frame`` (boxes of one frame, score =
  max), ``refine_with_models`` (fused boxes as proposals; masks and embeddings averaged over the
  models), ``ensemble_videos`` (a whole split, boxes-only or with the models), ``greedy_select``;
* :mod:`~visrc.ensemble.tta` — ``rescale_video`` / ``rescale_frame`` between image sizes,
  ``merge_scales`` (GAE over test scales);
* :mod:`~visrc.ensemble.pseudo_label` — ``make_pseudo_labels`` (tracked ensemble detections ->
  a detection-only YouTube-VIS file), ``write_pseudo_labels``, ``merge_ytvis`` (train + pseudo);
* :mod:`~visrc.ensemble.experiment` — Table 2 as cached runs: ``predict_scales_cached``,
  ``ensemble_models``, ``pseudo_label_dataset``, ``retrain_with_pseudo``, ``retrain_jobs`` (with
  ``merged_json=None``: the no-pseudo-label control fine-tune); mmdet is imported inside them, on use.
"""
from visrc.ensemble.experiment import (EnsembleResult, ensemble_models, finetune_options, predict_scales_cached,
                                       pseudo_box_precision, pseudo_label_dataset, pseudo_label_options, retrain_jobs,
                                       retrain_with_pseudo, split_paths, track_and_evaluate)
from visrc.ensemble.gae import (GAEResult, ProposalFn, ensemble_frame, ensemble_videos, greedy_clusters, greedy_select,
                                refine_with_models)
from visrc.ensemble.pseudo_label import (PseudoLabelConfig, filter_tracks, make_pseudo_labels, merge_ytvis,
                                         pseudo_annotations, select_tracks, write_pseudo_labels)
from visrc.ensemble.tta import (merge_scales, merge_scales_frame, rescale_boxes, rescale_frame, rescale_video,
                                resize_masks, scaled_sizes)

__all__ = [
    "EnsembleResult", "ensemble_models", "finetune_options", "predict_scales_cached", "pseudo_box_precision",
    "pseudo_label_dataset", "pseudo_label_options", "retrain_jobs", "retrain_with_pseudo", "split_paths",
    "track_and_evaluate",
    "GAEResult", "ProposalFn", "ensemble_frame", "ensemble_videos", "greedy_clusters", "greedy_select",
    "refine_with_models",
    "PseudoLabelConfig", "filter_tracks", "make_pseudo_labels", "merge_ytvis", "pseudo_annotations", "select_tracks",
    "write_pseudo_labels",
    "merge_scales", "merge_scales_frame", "rescale_boxes", "rescale_frame", "rescale_video", "resize_masks",
    "scaled_sizes",
]
