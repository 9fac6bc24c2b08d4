"""Ensemble, multi-scale testing and pseudo labels (paper 3.5.2, 3.5.5, 3.5.3), on saved predictions.

* :mod:`~visrc.ensemble.gae` — Greedy Auto Ensemble: ``ensemble_frame`` (boxes of one frame, score =
  max), ``ensemble_videos`` (a whole split, boxes-only or with the models), ``greedy_clusters``;
* :mod:`~visrc.ensemble.proposals` — ``refine_with_models`` (fused boxes as proposals; masks and
  embeddings averaged over the models), ``ProposalFn``;
* :mod:`~visrc.ensemble.selection` — ``greedy_select`` (the models to ensemble, by a score on a
  tuning split);
* :mod:`~visrc.ensemble.multiscale` — ``merge_scales`` (GAE over test scales);
* :mod:`~visrc.ensemble.pseudo_label` — ``make_pseudo_labels`` (tracked ensemble detections ->
  a detection-only YouTube-VIS file), ``write_pseudo_labels``, ``merge_ytvis`` (train + pseudo).
"""
from visrc.ensemble.gae import GAEResult, ensemble_frame, ensemble_videos, greedy_clusters
from visrc.ensemble.multiscale import merge_scales
from visrc.ensemble.proposals import ProposalFn, refine_with_models
from visrc.ensemble.pseudo_label import (PseudoLabelConfig, filter_tracks, make_pseudo_labels, merge_ytvis,
                                         pseudo_annotations, select_tracks, write_pseudo_labels)
from visrc.ensemble.selection import greedy_select

__all__ = [
    "GAEResult", "ensemble_frame", "ensemble_videos", "greedy_clusters",
    "merge_scales",
    "ProposalFn", "refine_with_models",
    "PseudoLabelConfig", "filter_tracks", "make_pseudo_labels", "merge_ytvis", "pseudo_annotations", "select_tracks",
    "write_pseudo_labels",
    "greedy_select",
]
