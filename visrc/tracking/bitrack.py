"""BiTrack (paper 3.4): track a video forward and backward, merge the two sets of tracklets.

Detections are computed once (a :class:`~visrc.data.predictions.VideoPredictions`); the
association of :mod:`visrc.tracking.associate` runs over them twice::

    result = bitrack(video, BiTrackConfig(merge_iou_thr=0.5))
    result.tracks            # list[Track]: merged + kept unmatched tracklets
    result.pair_iou          # (Kf, Kb) mean box IoU over valid frames of every forward/backward pair

Tracklets of one pass are a (K, T) int64 matrix ``det_index``: ``det_index[k, t]`` is the index of
tracklet k's detection among frame t's detections, or -1 where it has none.

Rules (each a documented choice; the paper gives only the first two):

* **Valid frames** of a (forward, backward) pair: frames where both tracklets have a detection.
* **Pair score**: mean box IoU over the valid frames. A pair with no valid frame has NaN and is
  never merged (``min_valid_frames`` can ask for more than one frame).
* **Merging**: one-to-one, greedy: pairs with mean IoU ``> merge_iou_thr`` (strictly, as in the
  paper) are taken in descending mean IoU (ties: more valid frames, then lower forward index, then
  lower backward index); a pair is skipped if either tracklet is already merged. Default
  threshold 0.5 (the paper gives no value; see ``docs/bitrack.md``).
* **Merged track**: the union of both tracklets' frames, without mixing their detections where
  both have one. The *base* is the tracklet with more detections (ties: the forward one); the
  merged track is the base's detections plus the other tracklet's in the frames the base lacks.
  A track thus keeps one pass's association chain wherever that pass followed the object, and
  the other pass only extends it (Fig. 4: the backward pass adds the frames forward missed).
  A per-frame "higher-scoring detection" rule would switch chains between near-duplicate
  detections (``docs/bitrack.md``). Two output tracks may hold the same detection; they are not
  de-duplicated, since near-duplicate tracks carry other classes.
* **Unmatched tracklets** of either pass are kept if they have ``>= min_unmatched_len``
  detections (default 1: keep all, so BiTrack never loses an object that one pass found; AP
  ranks by score, so an extra low-ranked track costs less than a missed one) and, with
  ``absorb_unmatched`` (default), only if no *merged* tracklet of the other pass overlaps them
  with mean IoU ``> merge_iou_thr``: such a tracklet is the same object as an output track, which
  the one-to-one matching gave another partner, so it is absorbed (dropped) rather than output
  as a duplicate.
* **Track label**: label voting over the track's detections (:func:`visrc.tracking.voting.vote_label`).
  With ``TrackerConfig.class_aware=True`` a track holds one class and the vote is that class.
* **Track score**: mean of its detections' scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from visrc.data.boxes import paired_box_iou
from visrc.data.masks import RLE
from visrc.data.predictions import VideoPredictions
from visrc.tracking.associate import TrackerConfig, associate_video
from visrc.tracking.voting import vote_label


@dataclass(frozen=True)
class BiTrackConfig:
    """BiTrack settings; ``tracker`` is used for both passes."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    # the paper gives no value; docs/bitrack.md says how 0.5 was chosen and how to re-check it
    merge_iou_thr: float = 0.5
    min_valid_frames: int = 1
    min_unmatched_len: int = 1
    absorb_unmatched: bool = True

    def __post_init__(self) -> None:
        if self.min_valid_frames < 1:
            raise ValueError(f"BiTrackConfig.min_valid_frames: must be >= 1, got {self.min_valid_frames}")
        if self.min_unmatched_len < 1:
            raise ValueError(f"BiTrackConfig.min_unmatched_len: must be >= 1, got {self.min_unmatched_len}")


@dataclass
class Track:
    """One output track over a video of T frames.

    det_index (T,) int64 (-1 = absent), boxes (T, 4) xyxy (NaN absent), scores (T,) (NaN absent),
    labels (T,) (-1 absent), masks: T entries of RLE | None, or None for a boxes-only run.
    ``source`` is "merged", "forward" or "backward"; ``forward``/``backward`` are the tracklet
    indices it came from (-1 = none).
    """

    det_index: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: list[RLE | None] | None
    label: int
    score: float
    source: str
    forward: int = -1
    backward: int = -1

    @property
    def frames(self) -> np.ndarray:
        """Frame indices where the track has a detection."""
        return np.flatnonzero(self.det_index >= 0)

    def __len__(self) -> int:
        return int((self.det_index >= 0).sum())


@dataclass
class BiTrackResult:
    """Everything BiTrack computed for one video (the explorer draws it)."""

    video_id: int
    forward: np.ndarray  # (Kf, T) det_index of forward tracklets
    backward: np.ndarray  # (Kb, T) det_index of backward tracklets
    pair_iou: np.ndarray  # (Kf, Kb) mean IoU over valid frames, NaN if none
    valid_frames: np.ndarray  # (Kf, Kb) number of valid frames
    pairs: np.ndarray  # (P, 2) merged (forward, backward) indices, in merge order
    tracks: list[Track]


# ------------------------------------------------------------------------------------ tracklets

class _Flat:
    """A video's detections concatenated: boxes (M, 4), scores (M,), labels (M,), frame offsets (T + 1,)."""

    def __init__(self, video: VideoPredictions) -> None:
        self.video = video
        counts = np.array([len(f) for f in video.frames], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        fr = [f for f in video.frames if len(f)]
        self.boxes = np.concatenate([f.boxes for f in fr]).astype(np.float64) if fr else np.zeros((0, 4))
        self.scores = np.concatenate([f.scores for f in fr]).astype(np.float64) if fr else np.zeros(0)
        self.labels = np.concatenate([f.labels for f in fr]) if fr else np.zeros(0, np.int64)

    def flat(self, det_index: np.ndarray) -> np.ndarray:
        """(K, T) per-frame index -> (K, T) index into the flat arrays, -1 kept."""
        return np.where(det_index >= 0, det_index + self.offsets[:-1][None, :], -1)

    def gather_boxes(self, det_index: np.ndarray) -> np.ndarray:
        """(K, T) -> (K, T, 4) boxes, NaN where absent."""
        g = self.flat(det_index)
        out = np.full(g.shape + (4,), np.nan)
        out[g >= 0] = self.boxes[g[g >= 0]]
        return out


def tracklets_from_ids(ids_per_frame: Sequence[np.ndarray]) -> np.ndarray:
    """Per-frame track ids (list of T arrays (N_t,), -1 untracked) -> det_index (K, T).

    Tracklets are numbered by their ids in increasing order (ids need not be contiguous).
    """
    T = len(ids_per_frame)
    all_ids = np.concatenate([np.asarray(i, np.int64) for i in ids_per_frame]) if T else np.zeros(0, np.int64)
    uniq = np.unique(all_ids[all_ids >= 0])
    out = np.full((len(uniq), T), -1, np.int64)
    for t, ids in enumerate(ids_per_frame):
        ids = np.asarray(ids, np.int64)
        pos = np.flatnonzero(ids >= 0)
        out[np.searchsorted(uniq, ids[pos]), t] = pos
    return out


def pair_mean_iou(boxes_f: np.ndarray, boxes_b: np.ndarray, same: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean box IoU over valid frames of every (forward, backward) tracklet pair.

    boxes_f (Kf, T, 4), boxes_b (Kb, T, 4), NaN where a tracklet has no detection. ``same``
    (Kf, Kb, T) bool, optional: the two hold the very same detection (IoU 1 even for a
    zero-area box). Returns (mean (Kf, Kb) float, NaN where no valid frame; valid (Kf, Kb) int).
    """
    bf, bb = boxes_f[:, None], boxes_b[None, :]
    valid = ~np.isnan(bf[..., 0]) & ~np.isnan(bb[..., 0])  # (Kf, Kb, T)
    iou = paired_box_iou(bf, bb)
    if same is not None:
        iou = np.where(same, 1.0, iou)
    n = valid.sum(-1)
    total = np.where(valid, iou, 0.0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return mean, n


def greedy_pairs(pair_iou: np.ndarray, valid: np.ndarray, thr: float, min_valid: int = 1) -> np.ndarray:
    """One-to-one greedy matching of pairs with mean IoU > thr and >= min_valid valid frames -> (P, 2)."""
    ok = (np.nan_to_num(pair_iou, nan=-1.0) > thr) & (valid >= min_valid)
    f, b = np.nonzero(ok)  # row-major: ascending forward, then backward index
    order = np.lexsort((b, f, -valid[f, b], -pair_iou[f, b]))
    used_f, used_b, out = set(), set(), []
    for i in order:
        if f[i] not in used_f and b[i] not in used_b:
            used_f.add(f[i])
            used_b.add(b[i])
            out.append((f[i], b[i]))
    return np.asarray(out, np.int64).reshape(-1, 2)


def merge_base(fwd_row: np.ndarray, bwd_row: np.ndarray) -> str:
    """Which tracklet of a merged pair is the base: "forward" if it has at least as many detections, else "backward"."""
    return "forward" if (np.asarray(fwd_row) >= 0).sum() >= (np.asarray(bwd_row) >= 0).sum() else "backward"


# -------------------------------------------------------------------------------------- tracks

def _make_track(flat: _Flat, det_index: np.ndarray, source: str, fwd: int = -1, bwd: int = -1) -> Track:
    g = flat.flat(det_index[None])[0]
    present = g >= 0
    T = len(det_index)
    boxes = np.full((T, 4), np.nan)
    scores = np.full(T, np.nan)
    labels = np.full(T, -1, np.int64)
    boxes[present], scores[present], labels[present] = flat.boxes[g[present]], flat.scores[g[present]], flat.labels[g[present]]
    masks = None
    if flat.video.has_masks:
        masks = [flat.video.frames[t].masks[i] if i >= 0 else None for t, i in enumerate(det_index.tolist())]
    return Track(det_index.copy(), boxes, scores, labels, masks, label=vote_label(labels[present], scores[present]),
                 score=float(scores[present].mean()), source=source, forward=fwd, backward=bwd)


def tracks_from_tracklets(video: VideoPredictions, det_index: np.ndarray, source: str = "forward") -> list[Track]:
    """Turn one pass's tracklets (K, T) into :class:`Track` s (label voting, mean score); empty rows are skipped."""
    flat = _Flat(video)
    return [_one_pass_track(flat, d, source, k) for k, d in enumerate(_as_tracklets(det_index, flat)) if (d >= 0).any()]


def _one_pass_track(flat: _Flat, det_index: np.ndarray, source: str, k: int) -> Track:
    return _make_track(flat, det_index, source, k if source == "forward" else -1, k if source == "backward" else -1)


def track_forward(video: VideoPredictions, config: BiTrackConfig | TrackerConfig | None = None) -> list[Track]:
    """The forward-only baseline: one pass, each tracklet a track (same voting and score as BiTrack)."""
    tcfg = config.tracker if isinstance(config, BiTrackConfig) else config
    return tracks_from_tracklets(video, tracklets_from_ids(associate_video(video, tcfg)), "forward")


def bitrack(video: VideoPredictions, config: BiTrackConfig | None = None) -> BiTrackResult:
    """Run both passes over ``video`` and merge them (rules in the module docstring)."""
    cfg = config or BiTrackConfig()
    fwd = tracklets_from_ids(associate_video(video, cfg.tracker))
    bwd = tracklets_from_ids(associate_video(video, cfg.tracker, reverse=True))
    return merge_tracklets(video, fwd, bwd, cfg)


def merge_tracklets(video: VideoPredictions, fwd: np.ndarray, bwd: np.ndarray, config: BiTrackConfig | None = None) -> BiTrackResult:
    """The merge step of BiTrack on given forward (Kf, T) and backward (Kb, T) tracklets."""
    cfg = config or BiTrackConfig()
    flat = _Flat(video)
    fwd, bwd = _as_tracklets(fwd, flat, "fwd"), _as_tracklets(bwd, flat, "bwd")
    gf, gb = flat.flat(fwd), flat.flat(bwd)
    same = (gf[:, None] == gb[None, :]) & (gf[:, None] >= 0)
    pair_iou, valid = pair_mean_iou(flat.gather_boxes(fwd), flat.gather_boxes(bwd), same)
    pairs = greedy_pairs(pair_iou, valid, cfg.merge_iou_thr, cfg.min_valid_frames)
    tracks = []
    for f, b in pairs:
        base, other = (fwd[f], bwd[b]) if merge_base(fwd[f], bwd[b]) == "forward" else (bwd[b], fwd[f])
        tracks.append(_make_track(flat, np.where(base >= 0, base, other), "merged", int(f), int(b)))
    matched = {"forward": pairs[:, 0], "backward": pairs[:, 1]}
    # absorbed[source][k]: the unmatched tracklet overlaps a merged tracklet of the other pass above the threshold
    over = np.nan_to_num(pair_iou, nan=-1.0) > cfg.merge_iou_thr
    absorbed = {"forward": over[:, matched["backward"]].any(1), "backward": over[matched["forward"], :].any(0)}
    for source, dets in (("forward", fwd), ("backward", bwd)):
        for k, d in enumerate(dets):
            if k in matched[source] or (d >= 0).sum() < cfg.min_unmatched_len:
                continue
            if not (cfg.absorb_unmatched and absorbed[source][k]):
                tracks.append(_one_pass_track(flat, d, source, k))
    return BiTrackResult(video.video_id, fwd, bwd, pair_iou, valid, pairs, tracks)


def _as_tracklets(det_index, flat: _Flat, name: str = "det_index") -> np.ndarray:
    """Check a (K, T) tracklet matrix against the video: shape, and indices < each frame's detection count."""
    T = len(flat.video)
    a = np.asarray(det_index, np.int64)
    if a.size == 0:
        a = a.reshape(0, T)
    if a.ndim != 2 or a.shape[1] != T:
        raise ValueError(f"{name} has shape {a.shape}, expected (K, {T}) for a {T}-frame video")
    if (a < -1).any() or (a >= np.diff(flat.offsets)[None, :]).any():
        raise ValueError(f"{name} holds an index outside its frame's detections (or below -1)")
    return a


def track_split(videos: Sequence[VideoPredictions], config: BiTrackConfig | None = None,
                 mode: str = "bitrack") -> dict[int, list[Track]]:
    """Tracks of every video: ``mode`` "bitrack" or "forward" (the baseline). video_id -> tracks."""
    if mode not in ("bitrack", "forward"):
        raise ValueError(f"track_split: mode {mode!r} is not 'bitrack' or 'forward'")
    if mode == "forward":
        return {v.video_id: track_forward(v, config) for v in videos}
    return {v.video_id: bitrack(v, config).tracks for v in videos}


def build_bitrack_config(cfg: dict | BiTrackConfig | None = None) -> BiTrackConfig:
    """A :class:`BiTrackConfig` from a dict, whose ``tracker`` key may itself be a dict."""
    if cfg is None or isinstance(cfg, BiTrackConfig):
        return cfg or BiTrackConfig()
    cfg = dict(cfg)
    tracker = cfg.pop("tracker", None)
    base = BiTrackConfig(**cfg)
    if tracker is not None:
        base = replace(base, tracker=tracker if isinstance(tracker, TrackerConfig) else TrackerConfig(**tracker))
    return base
