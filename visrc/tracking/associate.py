"""Frame-by-frame association: a small quasi-dense (QDTrack-style) tracker in numpy.

:class:`Tracker` keeps a buffer of live tracks and assigns every new frame's detections to them::

    tracker = Tracker(TrackerConfig())
    for frame in video.frames:            # or reversed(video.frames): the tracker has no notion of time
        ids = tracker.update(frame)       # (N,) int64, a track id per detection, -1 = not tracked

One ``update`` does, for the N detections of the frame and the K tracks in the buffer:

1. detections with ``score < obj_score_thr`` are ignored (id -1);
2. similarity (N, K): ``"cosine"`` (default) = cosine of the detection embedding and the track's
   embedding memory, in [-1, 1]; ``"bisoftmax"`` = QDTrack's bi-directional softmax of the dot
   products, ``(softmax over tracks + softmax over detections) / 2``, in [0, 1]. Cosine is the
   default because it is absolute: with one track and one detection, bi-softmax is 1 whatever
   the embeddings, so it cannot refuse a new object on its own (small toy videos often have a
   single object). QDTrack's answer is *backdrops* (``backdrop_frames > 0``): the detections that
   ended a frame untracked, less those overlapping a higher-scored detection above
   ``backdrop_nms_iou``, stay in the buffer for
   ``backdrop_frames`` frames as extra softmax columns that are never matched, so a new object
   whose embedding resembles last frame's background takes a backdrop instead of a track
   (mmdet's ``QuasiDenseTracker``: ``memo_backdrop_frames=1``, ``nms_backdrop_iou_thr=0.3``);
3. gates set a pair's similarity to -inf: box IoU with the track's last box below ``iou_thr``
   (0 = no gate), and, if ``class_aware``, a different label. ``class_aware`` is off by default:
   the paper (3.5.4) relaxes label consistency and lets label voting pick the track's class;
4. matching, keeping pairs with similarity ``> match_thr``: ``"greedy"`` (default, QDTrack's
   rule: detections in descending score order each take their most similar free track) or
   ``"hungarian"`` (max total similarity, scipy);
5. a matched track takes the detection's box and label, and its embedding memory becomes
   ``(1 - momentum) * memory + momentum * embedding`` (QDTrack's ``memo_momentum``, 0.8);
6. unmatched detections with ``score >= init_score_thr`` start new tracks (ids 0, 1, 2, ... in
   order of creation); the rest get -1;
7. tracks that have now missed more than ``max_age`` consecutive frames leave the buffer: a
   track can bridge a gap of up to ``max_age`` frames (0 = consecutive frames only).

``init_score_thr > obj_score_thr`` is what makes the two time directions differ: a track is only
born from a confident detection but then follows the object through weak ones, so an object that
is small or occluded (low score) at one end of the video is followed from the other end only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from visrc.data.boxes import box_iou
from visrc.data.embeddings import unit_rows
from visrc.data.predictions import FramePredictions, VideoPredictions


@dataclass(frozen=True)
class TrackerConfig:
    """Association settings (see the module docstring for what each does)."""

    match_thr: float = 0.5
    init_score_thr: float = 0.5
    obj_score_thr: float = 0.3
    max_age: int = 10
    similarity: str = "cosine"  # "cosine" | "bisoftmax"
    iou_thr: float = 0.0
    class_aware: bool = False
    matcher: str = "greedy"  # "greedy" | "hungarian"
    momentum: float = 0.8
    backdrop_frames: int = 0  # QDTrack: 1 (bi-softmax only)
    backdrop_nms_iou: float = 0.3

    def __post_init__(self) -> None:
        if self.similarity not in ("cosine", "bisoftmax"):
            raise ValueError(f"TrackerConfig.similarity: {self.similarity!r} is not 'cosine' or 'bisoftmax'")
        if self.matcher not in ("greedy", "hungarian"):
            raise ValueError(f"TrackerConfig.matcher: {self.matcher!r} is not 'greedy' or 'hungarian'")
        if self.max_age < 0:
            raise ValueError(f"TrackerConfig.max_age: must be >= 0, got {self.max_age}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"TrackerConfig.momentum: must be in [0, 1], got {self.momentum}")
        if self.backdrop_frames < 0:
            raise ValueError(f"TrackerConfig.backdrop_frames: must be >= 0, got {self.backdrop_frames}")
        if self.backdrop_frames and self.similarity != "bisoftmax":
            raise ValueError("TrackerConfig.backdrop_frames: backdrops are softmax negatives; "
                             f"they need similarity='bisoftmax', not {self.similarity!r}")


QDTRACK = TrackerConfig(similarity="bisoftmax", momentum=0.8, backdrop_frames=1, backdrop_nms_iou=0.3)
"""QDTrack's association rules (bi-softmax, one frame of backdrops, memory momentum 0.8) with
this module's score thresholds and relaxed class check (label voting picks the class)."""


class Tracker:
    """Quasi-dense association over a stream of frames; feed frames in either time direction.

    State (K live tracks): ``ids`` (K,), ``embeds`` (K, D) memory, ``boxes`` (K, 4) last box,
    ``labels`` (K,) last label, ``last_seen`` (K,) update step of the last match; ``backdrops``:
    one (B_f, D) embedding array per recent frame (newest last), used only with ``backdrop_frames``.
    """

    def __init__(self, config: TrackerConfig | None = None, **overrides) -> None:
        self.config = replace(config or TrackerConfig(), **overrides)
        self.reset()

    def reset(self) -> None:
        self.step = -1
        self.next_id = 0
        self.ids = np.zeros(0, np.int64)
        self.embeds: np.ndarray | None = None
        self.boxes = np.zeros((0, 4), np.float64)
        self.labels = np.zeros(0, np.int64)
        self.last_seen = np.zeros(0, np.int64)
        self.backdrops: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.ids)

    def update(self, frame: FramePredictions) -> np.ndarray:
        """Assign track ids to the frame's detections: (N,) int64, -1 where a detection is not tracked."""
        self.step += 1
        if self.embeds is None:
            self.embeds = np.zeros((0, frame.embeddings.shape[1]), np.float64)
        out = self._assign(frame)
        if self.config.backdrop_frames:
            self._remember_backdrops(frame, out)
        alive = self.step - self.last_seen <= self.config.max_age  # frames missed so far
        if not alive.all():
            self._keep(alive)
        return out

    def _assign(self, frame: FramePredictions) -> np.ndarray:
        cfg = self.config
        out = np.full(len(frame), -1, np.int64)
        cand = np.flatnonzero(frame.scores >= cfg.obj_score_thr)
        if len(cand) == 0:
            return out
        emb = frame.embeddings[cand].astype(np.float64)
        rows, cols = self._match(emb, frame.boxes[cand], frame.labels[cand], frame.scores[cand])
        det = cand[rows]
        out[det] = self.ids[cols]
        m = cfg.momentum
        self.embeds[cols] = (1.0 - m) * self.embeds[cols] + m * emb[rows]
        self.boxes[cols] = frame.boxes[det]
        self.labels[cols] = frame.labels[det]
        self.last_seen[cols] = self.step
        matched = np.zeros(len(cand), bool)
        matched[rows] = True
        new = cand[~matched & (frame.scores[cand] >= cfg.init_score_thr)]
        if len(new):
            new_ids = np.arange(self.next_id, self.next_id + len(new), dtype=np.int64)
            self.next_id += len(new)
            out[new] = new_ids
            self.ids = np.concatenate([self.ids, new_ids])
            self.embeds = np.concatenate([self.embeds, frame.embeddings[new].astype(np.float64)])
            self.boxes = np.concatenate([self.boxes, frame.boxes[new].astype(np.float64)])
            self.labels = np.concatenate([self.labels, frame.labels[new]])
            self.last_seen = np.concatenate([self.last_seen, np.full(len(new), self.step, np.int64)])
        return out

    def similarity(self, emb: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Gated similarity of detections (N, D) to the buffer's tracks: (N, K), -inf where gated out."""
        cfg = self.config
        if len(self.ids) == 0:
            return np.zeros((len(emb), 0))
        if cfg.similarity == "cosine":
            sim = unit_rows(emb, reduce="sum") @ unit_rows(self.embeds, reduce="sum").T
        else:
            # backdrop columns take part in both softmaxes, then are dropped: they are never matched
            dots = emb @ np.concatenate([self.embeds, *self.backdrops]).T
            both = 0.5 * (_softmax(dots, axis=1) + _softmax(dots, axis=0))
            sim = both[:, :len(self.ids)]
            if both.shape[1] > len(self.ids):
                # QDTrack: a detection most similar to a backdrop is not matched to any track
                sim = np.where(sim >= both[:, len(self.ids):].max(axis=1, keepdims=True), sim, -np.inf)
        if cfg.iou_thr > 0:
            sim = np.where(box_iou(boxes, self.boxes) >= cfg.iou_thr, sim, -np.inf)
        if cfg.class_aware:
            sim = np.where(labels[:, None] == self.labels[None, :], sim, -np.inf)
        return sim

    def _match(self, emb, boxes, labels, scores) -> tuple[np.ndarray, np.ndarray]:
        """Matched (detection row, track column) pairs with similarity > match_thr."""
        sim = self.similarity(emb, boxes, labels)
        if sim.shape[1] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        thr = self.config.match_thr
        if self.config.matcher == "hungarian":
            from scipy.optimize import linear_sum_assignment
            ok = sim > thr
            r, c = linear_sum_assignment(np.where(ok, sim, -1e6), maximize=True)
            keep = ok[r, c]
            return r[keep].astype(np.int64), c[keep].astype(np.int64)
        sim = np.where(sim > thr, sim, -np.inf)
        rows, cols = [], []
        for i in np.argsort(-scores, kind="stable").tolist():
            row = sim[i]
            j = int(row.argmax())
            if row[j] > -np.inf:
                rows.append(i)
                cols.append(j)
                if len(cols) == sim.shape[1]:
                    break
                sim[:, j] = -np.inf
        return np.asarray(rows, np.int64), np.asarray(cols, np.int64)

    def _remember_backdrops(self, frame: FramePredictions, ids: np.ndarray) -> None:
        """Keep this frame's untracked detections (B,) as backdrops, less those overlapping a
        higher-scored detection of the frame, tracked or not, above ``backdrop_nms_iou`` (mmdet's rule:
        a duplicate of a tracked object must not become its negative)."""
        order = np.argsort(-frame.scores, kind="stable")
        iou = box_iou(frame.boxes[order], frame.boxes[order])
        keep = [order[r] for r in range(len(order)) if ids[order[r]] == -1
                and not (iou[r, :r] > self.config.backdrop_nms_iou).any()]
        dim = self.embeds.shape[1]
        self.backdrops.append(frame.embeddings[np.asarray(keep, np.int64)].astype(np.float64).reshape(-1, dim))
        self.backdrops = self.backdrops[-self.config.backdrop_frames:]

    def _keep(self, keep: np.ndarray) -> None:
        self.ids, self.embeds, self.boxes = self.ids[keep], self.embeds[keep], self.boxes[keep]
        self.labels, self.last_seen = self.labels[keep], self.last_seen[keep]


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def associate_video(video: VideoPredictions, config: TrackerConfig | None = None, reverse: bool = False) -> list[np.ndarray]:
    """Run one :class:`Tracker` over a video (backward if ``reverse``).

    Returns per-frame track ids in the video's own frame order: ``ids[t]`` is (N_t,) int64, -1 = untracked.
    """
    tracker = Tracker(config)
    order = range(len(video) - 1, -1, -1) if reverse else range(len(video))
    ids: list[np.ndarray] = [np.zeros(0, np.int64)] * len(video)
    for t in order:
        ids[t] = tracker.update(video.frames[t])
    return ids


def build_tracker(cfg: dict | TrackerConfig | None = None) -> Tracker:
    """A :class:`Tracker` from a config dict (keys of :class:`TrackerConfig`) or a config."""
    if isinstance(cfg, dict):
        cfg = TrackerConfig(**cfg)
    return Tracker(cfg)
