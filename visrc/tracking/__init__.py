"""Tracking: per-frame predictions, association, BiTrack and label voting.

* re-exported from the data layer: :mod:`~visrc.data.predictions` (``VideoPredictions`` /
  ``FramePredictions``, the split-level ``.npz``, ``predictions_from_gt``, ``synthetic_video``) and
  :func:`~visrc.data.boxes.box_iou`;
* :mod:`~visrc.tracking.associate` — ``Tracker`` (``update(frame) -> track ids``), either direction;
* :mod:`~visrc.tracking.bitrack` — ``bitrack`` (forward + backward + merge), ``track_forward``
  (the baseline), ``track_split`` (a whole split, either mode);
* :mod:`~visrc.tracking.merge_events` — ``merge_events`` (BiTrack's merge decisions of a video, in
  the order it made them, each with a one-line explanation);
* :mod:`~visrc.tracking.voting` — ``vote_label``.
"""
from visrc.data.boxes import box_iou
from visrc.tracking.associate import QDTRACK, Tracker, TrackerConfig, associate_video, build_tracker
from visrc.tracking.bitrack import (BiTrackConfig, BiTrackResult, Track, bitrack, build_bitrack_config, greedy_pairs,
                                    merge_base, merge_tracklets, pair_mean_iou, track_split, track_forward,
                                    tracklets_from_ids, tracks_from_tracklets)
from visrc.tracking.merge_events import MergeEvent, merge_events
from visrc.data.predictions import (FramePredictions, PredictionsFormatError, VideoPredictions, load_predictions,
                                    predictions_from_gt, save_predictions, synthetic_video)
from visrc.tracking.voting import vote_label, vote_labels

__all__ = [
    "QDTRACK", "Tracker", "TrackerConfig", "box_iou", "build_tracker", "associate_video",
    "BiTrackConfig", "BiTrackResult", "Track", "bitrack", "build_bitrack_config", "greedy_pairs", "merge_base", "merge_tracklets",
    "MergeEvent", "merge_events",
    "pair_mean_iou", "track_split", "track_forward", "tracklets_from_ids", "tracks_from_tracklets",
    "FramePredictions", "PredictionsFormatError", "VideoPredictions", "load_predictions", "save_predictions",
    "predictions_from_gt", "synthetic_video",
    "vote_label", "vote_labels",
]
