"""Two functions for scripts and notebooks: a model, and the tracks of one video.

::

    import visrc
    model = visrc.init_model("toy_baseline", "work/epoch_3.pth", device="cpu")
    tracks = visrc.track_video(model, "clip.mp4", mode="bitrack")   # or a frame folder, or a list of frames
    for t in tracks:
        t.id, t.category, t.score, t.masks[0], t.boxes[0]
    visrc.write_results({1: tracks}, "results.json")               # YouTube-VIS results, video id 1

The path is ``visrc infer``'s (:mod:`visrc.pipeline`): the same per-frame prediction
(:func:`visrc.pipeline.predict_split`), the same association and label voting
(:func:`visrc.tracking.track_split`, the config's ``tracking`` unless ``tracker`` is given), the same
categories (the config's classes, ids 1..C, as ``visrc infer --videos`` and ``visrc demo`` give
them), so ``write_results`` writes what ``visrc infer --videos`` writes for the same video.
"""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Model:
    """What :func:`init_model` returns and :func:`track_video` takes.

    ``predictor``: the :class:`visrc.models.predictor.VideoPredictor` (its ``cfg`` is the loaded
    mmengine config); ``classes``: the model's class names (label i is ``classes[i]``, category id
    i + 1); ``tracking`` / ``mode``: the association the config asks for
    (:func:`visrc.pipeline.config_tracking`); ``config`` / ``checkpoint``: what it was loaded from.
    """

    predictor: Any
    classes: tuple[str, ...]
    tracking: Any
    mode: str
    config: str
    checkpoint: str | None

    @property
    def cfg(self):
        return self.predictor.cfg

    @property
    def device(self) -> str:
        return self.predictor.device


@dataclass(eq=False)
class VideoTrack:
    """One tracked instance of a video of T frames.

    ``id``: its index in the list :func:`track_video` returns (0-based; ``visrc demo`` draws it as
    ``#id``); ``category_id``: 1-based id of its voted class (``category``, the config's class
    name); ``score``: the track's score (what results.json holds); ``masks``: T entries, each a
    compressed RLE ``{"size": [H, W], "counts": str}`` or None where the track is absent; None (not
    a list) for a model without a mask head; ``boxes``: T entries, each ``(x1, y1, x2, y2)`` floats
    in pixels or None where absent; ``frame_scores``: T entries, the detection's score or None.
    ``track``: the :class:`visrc.tracking.Track` it was made from (``det_index``, ``labels``,
    ``source``: forward / backward / merged).
    """

    id: int
    category_id: int
    category: str
    score: float
    masks: list[dict | None] | None
    boxes: list[tuple[float, float, float, float] | None]
    frame_scores: list[float | None]
    track: Any = field(repr=False, default=None)

    @property
    def frames(self) -> list[int]:
        """The frame indices where the track is present."""
        return [t for t, b in enumerate(self.boxes) if b is not None]


class TrackList(list):
    """The list of :class:`VideoTrack` :func:`track_video` returns, with the video it came from:
    ``video``, its YouTube-VIS ``videos`` entry (``height``, ``width``, ``length`` = decoded frames,
    ``file_names`` or ``video_file``, ``fps`` for a video file) and ``categories`` (the config's
    classes, ids 1..C), which :func:`write_results` validates against."""

    def __init__(self, tracks=(), video: dict | None = None, categories: Sequence[dict] = ()):
        super().__init__(tracks)
        self.video = dict(video or {})
        self.categories = list(categories)


def init_model(config, checkpoint: str | os.PathLike | None = None, device: str = "cpu",
               scale: float = 1.0) -> Model:
    """The model of ``config`` (a name in ``visrc/configs`` such as ``"toy_baseline"``, a config
    file, or an mmengine Config) with the weights of ``checkpoint`` (a ``visrc train`` checkpoint;
    None: untrained weights) on ``device``. ``scale``: test-time scale
    (:class:`visrc.models.predictor.VideoPredictor`). A missing config or checkpoint raises
    ``FileNotFoundError`` naming it, before the model is built."""
    from visrc.models.config import config_classes, load_config
    from visrc.models.predictor import VideoPredictor
    from visrc.pipeline import config_tracking

    cfg = load_config(config)
    if checkpoint is not None and not os.path.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint}: no such checkpoint file")
    tracking, mode = config_tracking(cfg)
    predictor = VideoPredictor.from_files(cfg, checkpoint, device, scale)
    name = config if isinstance(config, (str, os.PathLike)) else (cfg.filename or "<config>")
    return Model(predictor, tuple(config_classes(cfg)), tracking, mode, str(name),
                 None if checkpoint is None else str(checkpoint))


def video_entry(source, video_id: int = 1, max_frames: int | None = None) -> dict:
    """The YouTube-VIS ``videos`` entry of a video file, a frame folder (natural order) or a list
    of frame paths (in the order given), shortened to ``max_frames``; a missing path raises
    ``FileNotFoundError`` naming it."""
    from visrc.data.frames import frame_size
    from visrc.data.video_files import frame_folder_entry, is_video_file, video_file_entry

    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such video file or folder of frames")
        if p.is_file() and not is_video_file(p):
            raise ValueError(f"{p}: not a video file (.mp4, .avi, .mov, .mkv, .webm) nor a folder of frames")
        entry = video_file_entry(p, video_id) if p.is_file() else frame_folder_entry(p, video_id)
    else:
        frames = [Path(f) for f in source]
        if not frames:
            raise ValueError("track_video: an empty list of frames")
        for f in frames:
            if not f.is_file():
                raise FileNotFoundError(f"{f}: no such frame")
        sizes = {}
        for f in frames:
            try:
                sizes.setdefault(frame_size(f), f)
            except ValueError:
                continue            # left to the predictor: it fails the video, or skips the frame
        if not sizes:
            raise ValueError(f"{frames[0]}: no frame of the list is a decodable image")
        if len(sizes) > 1:
            (a, fa), (b, fb) = list(sizes.items())[:2]
            raise ValueError(f"{fb}: frame is {b[1]}x{b[0]}, {fa.name} of the same video is {a[1]}x{a[0]}")
        (h, w), = sizes
        entry = dict(id=int(video_id), height=h, width=w, length=len(frames),
                     file_names=[str(f.resolve()) for f in frames])
    return _shorten(entry, max_frames)


def _shorten(entry: dict, max_frames: int | None) -> dict:
    """``entry`` cut to its first ``max_frames`` frames (None: all)."""
    if max_frames is not None:
        entry["length"] = min(entry["length"], max_frames)
        entry["file_names"] = entry["file_names"][:max_frames]
    return entry


def track_video(model: Model, frames_or_video_path, mode: str | None = "bitrack", tracker=None,
                max_frames: int | None = None, skip_bad_frames: bool = False,
                log: Callable[[str], None] | None = None) -> TrackList:
    """The tracks of one video: a video file (mp4, avi, mov, mkv, webm; decoded with PyAV), a
    folder of frames (natural order: ``2.jpg`` before ``10.jpg``), a list of frame paths, or the
    entry :func:`video_entry` made of one of these (checked already: not read again).

    ``model``: :func:`init_model`. ``mode``: "bitrack" (paper 3.4) or "forward" (the online
    baseline); None: the config's ``tracking_mode``. ``tracker``: a
    :func:`visrc.tracking.build_bitrack_config` dict or :class:`visrc.tracking.BiTrackConfig`
    replacing the config's ``tracking`` (as ``run_inference(tracking=...)``). ``max_frames``: only
    the first N frames; ``skip_bad_frames``: a frame that does not decode gets no detections (else
    it is an error naming it); ``log``: progress (a bar on stderr when it is a terminal, else a
    line per video; none when None). Returns a :class:`TrackList` of
    :class:`VideoTrack`, in the order ``visrc infer`` writes them.
    """
    from visrc.pipeline import predict_split
    from visrc.tracking import build_bitrack_config, track_split

    if not isinstance(model, Model):
        raise TypeError(f"track_video: model must come from visrc.init_model, got {type(model).__name__}")
    mode = mode or model.mode
    if mode not in ("bitrack", "forward"):
        raise ValueError(f"track_video: mode {mode!r} is not 'bitrack' or 'forward'")
    tracking = build_bitrack_config(model.tracking if tracker is None else tracker)
    entry = (_shorten(dict(frames_or_video_path), max_frames) if isinstance(frames_or_video_path, Mapping)
             else video_entry(frames_or_video_path, 1, max_frames))
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(model.classes)]
    data = dict(videos=[entry], categories=categories, annotations=[])
    predictions = predict_split(model.predictor, data, "/", log, skip_bad_frames=skip_bad_frames)[0]
    entry["length"] = len(predictions)       # a video file's decoded frame count
    tracks = track_split([predictions], tracking, mode=mode)[predictions.video_id]
    out = []
    for tr in tracks:
        if not 0 <= tr.label < len(model.classes):     # as visrc infer: a label without a category is dropped
            continue
        present = tr.det_index >= 0
        out.append(VideoTrack(
            id=len(out), category_id=int(tr.label) + 1, category=model.classes[tr.label], score=float(tr.score),
            masks=None if tr.masks is None else list(tr.masks),
            boxes=[tuple(float(x) for x in tr.boxes[t]) if present[t] else None for t in range(len(present))],
            frame_scores=[float(tr.scores[t]) if present[t] else None for t in range(len(present))],
            track=tr))
    return TrackList(out, entry, categories)


def _results_and_gt(tracks_by_video: Mapping) -> tuple[list[dict], dict]:
    """YouTube-VIS results of ``{video id: tracks}`` and the GT dict they are validated against
    (each video's length and size from its :class:`TrackList`, else from its tracks)."""
    if not isinstance(tracks_by_video, Mapping):
        raise TypeError("write_results: give {video id: tracks} (e.g. {1: visrc.track_video(...)}), "
                        f"not a {type(tracks_by_video).__name__}")
    keys = list(tracks_by_video)
    ints = all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in keys)
    ids = [int(k) for k in keys] if ints else list(range(1, len(keys) + 1))   # names: 1..N, as infer --videos
    results, videos, categories = [], [], {}
    for vid, key in zip(ids, keys):
        tracks = tracks_by_video[key]
        info = getattr(tracks, "video", {}) or {}
        for c in getattr(tracks, "categories", []):
            categories.setdefault(c["id"], c["name"])
        lengths = {len(t.boxes) for t in tracks}
        length = info.get("length", next(iter(lengths), 0))
        if lengths - {length}:
            raise ValueError(f"write_results: video {key!r}: tracks of {sorted(lengths)} frames; one video's tracks "
                             "all have its number of frames")
        size = next((tuple(m["size"]) for t in tracks for m in (t.masks or []) if m is not None), (0, 0))
        h, w = (info["height"], info["width"]) if "height" in info else size
        videos.append(dict(id=int(vid), length=int(length), height=int(h), width=int(w), file_names=[]))
        for k, t in enumerate(tracks):
            if t.masks is None:
                raise ValueError(f"write_results: video {key!r}: track {k} has no masks (a boxes-only model "
                                 "cannot give YouTube-VIS results)")
            categories.setdefault(t.category_id, t.category)
            results.append(dict(video_id=int(vid), category_id=int(t.category_id), score=float(t.score),
                                segmentations=list(t.masks)))
    gt = dict(videos=videos, categories=[dict(id=i, name=n) for i, n in sorted(categories.items())],
              annotations=[])
    return results, gt


def write_results(tracks_by_video: Mapping, path: str | os.PathLike,
                  gt: Mapping | str | os.PathLike | None = None) -> Path:
    """Write the YouTube-VIS ``results.json`` of ``{video id: tracks}`` (:func:`track_video`'s
    lists) to ``path``, atomically (:func:`visrc.evaluation.export.write_results`), validated
    first (:func:`visrc.evaluation.export.validate_results`): against ``gt`` (a GT dict or
    annotation file) when given, else against the videos the tracks came from. Keys that are not
    all ints (names, paths) give ids 1..N in the mapping's order. Returns ``path``."""
    from visrc.evaluation.export import write_results as write

    results, own = _results_and_gt(tracks_by_video)
    return write(results, path, gt=own if gt is None else gt)
