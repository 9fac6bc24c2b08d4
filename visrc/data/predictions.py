"""Per-frame predictions of a video, and their split-level file (one ``.npz``, no pickle).

The model's inference writes these once; tracking, BiTrack, ensembling and the notebooks re-run
from the file without the model.

In memory::

    VideoPredictions(video_id, height, width, frames=[FramePredictions, ...])   # one per frame
    FramePredictions(boxes (N, 4) float32 xyxy pixels, scores (N,) float32,
                     labels (N,) int64 0-based class index, embeddings (N, D) float32,
                     masks: list of N compressed RLE dicts {"size": [h, w], "counts": str} | None)

A video either has masks in every frame or in none (``masks is None``: a boxes-only run).

On disk (:func:`save_predictions` / :func:`load_predictions`), one ``.npz`` per split, every array
numeric or fixed-width text so ``np.load(allow_pickle=False)`` reads it::

    format_version  ()       int64   == FORMAT_VERSION
    video_ids       (V,)     int64   YouTube-VIS video id
    heights, widths (V,)     int64
    num_frames      (V,)     int64   frames per video (a frame may have 0 detections)
    has_masks       (V,)     bool
    det_video       (M,)     int64   index into video_ids of each detection
    det_frame       (M,)     int64   frame index inside its video
    boxes (M, 4) float32, scores (M,) float32, labels (M,) int64, embeddings (M, D) float32
    mask_bytes      (B,)     uint8   every RLE ``counts`` string, ASCII, concatenated
    mask_offsets    (M + 1,) int64   counts of detection i = mask_bytes[off[i]:off[i+1]]

Detections are stored sorted by (det_video, det_frame), in each frame's own order. Mask sizes
are the video's [height, width]. Detections of videos without masks have empty counts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from visrc.data.masks import RLE, _err, encode_masks, to_rle
from visrc.fileio import atomic_write

FORMAT_VERSION = 1


class PredictionsFormatError(ValueError):
    """A predictions file or object breaks the format; the message names the file and field."""


@dataclass
class FramePredictions:
    """Detections of one frame. Shapes: boxes (N, 4) xyxy, scores (N,), labels (N,), embeddings (N, D)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    embeddings: np.ndarray
    masks: list[RLE] | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        emb = np.asarray(self.embeddings, dtype=np.float32)
        n = len(self.boxes)
        self.embeddings = emb.reshape(n, 0) if emb.ndim != 2 and emb.size == 0 else emb
        for name in ("scores", "labels"):
            if len(getattr(self, name)) != n:
                raise PredictionsFormatError(f"<memory>: field '{name}': has {len(getattr(self, name))} entries, boxes has {n}")
        if self.embeddings.ndim != 2 or len(self.embeddings) != n:
            raise PredictionsFormatError(f"<memory>: field 'embeddings': shape {self.embeddings.shape}, expected ({n}, D)")
        if self.masks is not None and len(self.masks) != n:
            raise PredictionsFormatError(f"<memory>: field 'masks': has {len(self.masks)} entries, boxes has {n}")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, dim: int, with_masks: bool = False) -> "FramePredictions":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, dim)), [] if with_masks else None)

    def select(self, idx: np.ndarray | Sequence[int]) -> "FramePredictions":
        """The detections at ``idx`` (an index array or boolean mask), in that order."""
        idx = np.asarray(idx)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).reshape(-1)
        masks = None if self.masks is None else [self.masks[i] for i in idx]
        return FramePredictions(self.boxes[idx], self.scores[idx], self.labels[idx], self.embeddings[idx], masks)


@dataclass
class VideoPredictions:
    """All frames of one video, in temporal order (``frames[t]`` is frame t)."""

    video_id: int
    height: int
    width: int
    frames: list[FramePredictions] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_masks(self) -> bool:
        return bool(self.frames) and self.frames[0].masks is not None

    @property
    def embed_dim(self) -> int:
        return self.frames[0].embeddings.shape[1] if self.frames else 0

    def validate(self, source: str = "<memory>") -> None:
        """Raise :class:`PredictionsFormatError` if frames disagree on D or on having masks, or a mask size is wrong."""
        where = f"{source}: video {self.video_id}"
        if int(self.height) <= 0 or int(self.width) <= 0:
            raise PredictionsFormatError(f"{where}: field 'height'/'width': must be positive, got {self.height}x{self.width}")
        d, m = self.embed_dim, self.has_masks
        for t, fr in enumerate(self.frames):
            if fr.embeddings.shape[1] != d:
                raise PredictionsFormatError(f"{where}: frame {t}: field 'embeddings': dim {fr.embeddings.shape[1]}, frame 0 has {d}")
            if (fr.masks is not None) != m:
                raise PredictionsFormatError(f"{where}: frame {t}: field 'masks': a video has masks in every frame or in none")
            if not np.all(np.isfinite(fr.boxes)) or not np.all(np.isfinite(fr.scores)):
                raise PredictionsFormatError(f"{where}: frame {t}: field 'boxes'/'scores': not finite")
            for i, rle in enumerate(fr.masks or []):
                if not isinstance(rle, dict) or not isinstance(rle.get("counts"), str):
                    raise PredictionsFormatError(f"{where}: frame {t}: field 'masks'[{i}]: expected compressed RLE with str counts")
                if [int(v) for v in rle.get("size", [])] != [int(self.height), int(self.width)]:
                    raise PredictionsFormatError(f"{where}: frame {t}: field 'masks'[{i}]: size {rle.get('size')} != [{self.height}, {self.width}]")


# ----------------------------------------------------------------------------------------- file

_INT_FIELDS = ("video_ids", "heights", "widths", "num_frames", "det_video", "det_frame", "labels", "mask_offsets")


def save_predictions(videos: Sequence[VideoPredictions], path: str | os.PathLike, compress: bool = True) -> Path:
    """Validate and write a split's predictions to one ``.npz`` atomically. All videos must share D."""
    dims = {v.embed_dim for v in videos if any(len(f) for f in v.frames)}
    if len(dims) > 1:
        raise PredictionsFormatError(f"{path}: field 'embeddings': videos have different dims {sorted(dims)}")
    dim = dims.pop() if dims else (max((v.embed_dim for v in videos), default=0))
    for v in videos:
        v.validate(str(path))
    frames = [(vi, t, fr) for vi, v in enumerate(videos) for t, fr in enumerate(v.frames)]
    counts = np.array([len(fr) for _, _, fr in frames], dtype=np.int64)
    counts_all = [fr.masks[i]["counts"] if fr.masks is not None else "" for _, _, fr in frames for i in range(len(fr))]
    encoded = [c.encode("ascii") for c in counts_all]
    arrays = {
        "format_version": np.int64(FORMAT_VERSION),
        "video_ids": np.array([v.video_id for v in videos], dtype=np.int64),
        "heights": np.array([v.height for v in videos], dtype=np.int64),
        "widths": np.array([v.width for v in videos], dtype=np.int64),
        "num_frames": np.array([len(v) for v in videos], dtype=np.int64),
        "has_masks": np.array([v.has_masks for v in videos], dtype=bool),
        "det_video": np.repeat(np.array([vi for vi, _, _ in frames], dtype=np.int64), counts),
        "det_frame": np.repeat(np.array([t for _, t, _ in frames], dtype=np.int64), counts),
        "boxes": _cat([fr.boxes for _, _, fr in frames], (0, 4), np.float32),
        "scores": _cat([fr.scores for _, _, fr in frames], (0,), np.float32),
        "labels": _cat([fr.labels for _, _, fr in frames], (0,), np.int64),
        "embeddings": _cat([fr.embeddings for _, _, fr in frames], (0, dim), np.float32),
        "mask_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "mask_offsets": np.concatenate([[0], np.cumsum([len(c) for c in encoded], dtype=np.int64)]).astype(np.int64),
    }
    saver = np.savez_compressed if compress else np.savez
    return atomic_write(path, lambda f: saver(f, **arrays))


def _cat(parts: list[np.ndarray], empty_shape: tuple, dtype) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(empty_shape, dtype)


def load_predictions(path: str | os.PathLike, video_ids: Sequence[int] | None = None) -> list[VideoPredictions]:
    """Read and validate a file written by :func:`save_predictions` (optionally only ``video_ids``)."""
    source = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: not this format
        raise PredictionsFormatError(f"{source}: not a visrc predictions file ({e})") from None
    except Exception as e:  # zip/npy corruption
        raise PredictionsFormatError(f"{source}: cannot read as .npz ({type(e).__name__}: {e})") from None
    _validate_arrays(a, source)
    V, M = len(a["video_ids"]), len(a["boxes"])
    frame_start = np.concatenate([[0], np.cumsum(a["num_frames"])])
    gframe = frame_start[a["det_video"]] + a["det_frame"]
    det_start = np.concatenate([[0], np.cumsum(np.bincount(gframe, minlength=int(frame_start[-1])))]) if M else np.zeros(int(frame_start[-1]) + 1, np.int64)
    blob, off = a["mask_bytes"].tobytes(), a["mask_offsets"]
    wanted = None if video_ids is None else set(int(v) for v in video_ids)
    out = []
    for vi in range(V):
        vid = int(a["video_ids"][vi])
        if wanted is not None and vid not in wanted:
            continue
        h, w, masks_on = int(a["heights"][vi]), int(a["widths"][vi]), bool(a["has_masks"][vi])
        frames = []
        for t in range(int(a["num_frames"][vi])):
            s, e = int(det_start[frame_start[vi] + t]), int(det_start[frame_start[vi] + t + 1])
            masks = [{"size": [h, w], "counts": blob[off[i]:off[i + 1]].decode("ascii")} for i in range(s, e)] if masks_on else None
            frames.append(FramePredictions(a["boxes"][s:e], a["scores"][s:e], a["labels"][s:e], a["embeddings"][s:e], masks))
        out.append(VideoPredictions(vid, h, w, frames))
    if wanted is not None and len(out) != len(wanted):
        missing = sorted(wanted - {v.video_id for v in out})
        raise KeyError(f"{source}: video ids {missing} are not in the file")
    return out


def _validate_arrays(a: dict, source: str) -> None:
    err = partial(_err, source, error=PredictionsFormatError)
    need = ("format_version", "video_ids", "heights", "widths", "num_frames", "has_masks", "det_video", "det_frame",
            "boxes", "scores", "labels", "embeddings", "mask_bytes", "mask_offsets")
    for k in need:
        if k not in a:
            raise err(f"field '{k}'", "missing")
    if int(a["format_version"]) != FORMAT_VERSION:
        raise err("field 'format_version'", f"is {int(a['format_version'])}, this visrc reads {FORMAT_VERSION}")
    for k in _INT_FIELDS:
        if a[k].dtype.kind not in "iu":
            raise err(f"field '{k}'", f"dtype {a[k].dtype} is not integer")
    for k in ("boxes", "scores", "embeddings"):
        if a[k].dtype.kind != "f":
            raise err(f"field '{k}'", f"dtype {a[k].dtype} is not float")
    V = len(a["video_ids"])
    for k in ("heights", "widths", "num_frames", "has_masks"):
        if a[k].shape != (V,):
            raise err(f"field '{k}'", f"shape {a[k].shape}, expected ({V},) like 'video_ids'")
    if len(set(a["video_ids"].tolist())) != V:
        raise err("field 'video_ids'", "duplicate video id")
    if V and (a["heights"].min() <= 0 or a["widths"].min() <= 0 or a["num_frames"].min() < 0):
        raise err("field 'heights/widths/num_frames'", "must be positive (num_frames >= 0)")
    M = len(a["boxes"])
    if a["boxes"].shape != (M, 4):
        raise err("field 'boxes'", f"shape {a['boxes'].shape}, expected (M, 4)")
    for k in ("scores", "labels", "det_video", "det_frame"):
        if a[k].shape != (M,):
            raise err(f"field '{k}'", f"shape {a[k].shape}, expected ({M},) like 'boxes'")
    if a["embeddings"].ndim != 2 or len(a["embeddings"]) != M:
        raise err("field 'embeddings'", f"shape {a['embeddings'].shape}, expected ({M}, D)")
    if a["mask_offsets"].shape != (M + 1,):
        raise err("field 'mask_offsets'", f"shape {a['mask_offsets'].shape}, expected ({M + 1},)")
    off = a["mask_offsets"]
    if off[0] != 0 or off[-1] != len(a["mask_bytes"]) or np.any(np.diff(off) < 0):
        raise err("field 'mask_offsets'", "must start at 0, never decrease and end at len(mask_bytes)")
    if not (np.all(np.isfinite(a["boxes"])) and np.all(np.isfinite(a["scores"]))):
        raise err("field 'boxes/scores'", "not finite")
    if M:
        dv, df = a["det_video"], a["det_frame"]
        if dv.min() < 0 or dv.max() >= V:
            raise err("field 'det_video'", f"index out of range [0, {V})")
        if df.min() < 0 or np.any(df >= a["num_frames"][dv]):
            raise err("field 'det_frame'", "frame index outside its video's num_frames")
        gframe = np.concatenate([[0], np.cumsum(a["num_frames"])])[dv] + df
        if np.any(np.diff(gframe) < 0):
            raise err("field 'det_frame'", "detections are not sorted by (video, frame)")
        empty_mask = np.diff(off) == 0
        if np.any(empty_mask & a["has_masks"][dv]):
            raise err("field 'mask_bytes'", "a detection of a video with masks has empty RLE counts")


# ------------------------------------------------------------------------------------ synthetic

def synthetic_video(video_id: int = 0, num_frames: int = 30, num_objects: int = 10, dim: int = 128,
                    height: int = 360, width: int = 640, num_classes: int = 40, seed: int = 0,
                    score_range: tuple[float, float] = (0.3, 1.0), emb_noise: float = 0.3,
                    with_masks: bool = False) -> VideoPredictions:
    """A random-walk video for benchmarks and demos: ``num_objects`` boxes moving slowly, each with a
    fixed unit embedding plus per-frame noise, one detection per object per frame (shuffled order)."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.08, 0.3, (num_objects, 2)) * [width, height]
    pos = rng.uniform(0, 1, (num_objects, 2)) * ([width, height] - size)
    vel = rng.normal(0, 0.01, (num_objects, 2)) * [width, height]
    base = rng.normal(size=(num_objects, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    labels = rng.integers(0, num_classes, num_objects)
    base_score = rng.uniform(*score_range, num_objects)
    frames = []
    for _ in range(num_frames):
        pos = np.clip(pos + vel, 0, [width, height] - size)
        boxes = np.concatenate([pos, pos + size], axis=1)
        emb = base + emb_noise * rng.normal(size=base.shape) / np.sqrt(dim)
        scores = np.clip(base_score + rng.normal(0, 0.05, num_objects), 0.0, 1.0)
        order = rng.permutation(num_objects)
        masks = None
        if with_masks:
            m = np.zeros((num_objects, height, width), np.uint8)
            for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[order]).astype(int)):
                m[k, y0:y1, x0:x1] = 1
            masks = encode_masks(m)
        frames.append(FramePredictions(boxes[order], scores[order], labels[order], emb[order], masks))
    return VideoPredictions(video_id, height, width, frames)


def predictions_from_gt(data: dict, video_ids: Sequence[int] | None = None, dim: int = 32, seed: int = 0,
                        emb_noise: float = 0.5, min_score: float = 0.3, max_score: float = 0.95,
                        full_score_area: float = 0.05, label_flip: float = 0.0, box_jitter: float = 0.0,
                        miss_rate: float = 0.0, duplicate_rate: float = 0.0) -> list[VideoPredictions]:
    """Detections made from a YouTube-VIS ground truth (no model): for demos and for studying tracking alone.

    Each visible instance is detected in every frame with its GT box, mask and class (label = the
    category's index in ``data["categories"]``). Score grows with visible area: ``min_score`` for a
    vanishing object up to ``max_score`` at ``full_score_area`` of the image, so an object entering
    small or occluded starts weak (the case BiTrack's backward pass recovers). The embedding is a
    fixed random unit vector per instance plus Gaussian noise of norm about ``emb_noise``; with
    probability ``label_flip`` a detection's label is replaced by a random other class (the case
    label voting repairs).

    Imperfections of a real detector, all off by default:

    * ``box_jitter``: each box edge moves by Gaussian noise of standard deviation ``box_jitter``
      times the box's width (x edges) or height (y edges); the mask stays the ground truth's.
    * ``miss_rate``: each detection is dropped with this probability (a missed detection), which
      breaks tracklets.
    * ``duplicate_rate``: with this probability a detection gets a near-duplicate: the same
      object's box jittered again (at least by ``0.05`` of its size), the same class, a lower
      score (0.6 to 0.9 of the original's) and its own noisy embedding, appended after the
      frame's other detections. Where a pass follows the duplicate in some frames and the
      original in others, its tracklet and the other pass's overlap by less than 1, which is
      what the merge threshold decides on: without duplicates both passes follow the very same
      detections and every pair's mean IoU is 1 or a different object's.

    They draw from their own random stream, so with all three at 0 the output is the same as
    without them, and turning one on leaves the embeddings, scores and labels of the other
    detections unchanged.
    """
    if box_jitter < 0 or not (0.0 <= miss_rate <= 1.0 and 0.0 <= duplicate_rate <= 1.0):
        raise ValueError(f"predictions_from_gt: box_jitter must be >= 0, miss_rate and duplicate_rate in [0, 1]; "
                         f"got {box_jitter}, {miss_rate}, {duplicate_rate}")
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng([seed, 1])  # jitter and misses: leaves ``rng``'s stream as it was
    cat_index = {c["id"]: i for i, c in enumerate(data["categories"])}
    n_cls = len(cat_index)
    wanted = None if video_ids is None else set(int(v) for v in video_ids)
    anns_by_video: dict[int, list[dict]] = {}
    for a in data.get("annotations", []):
        anns_by_video.setdefault(a["video_id"], []).append(a)
    out = []
    for vid in data["videos"]:
        if wanted is not None and vid["id"] not in wanted:
            continue
        h, w, T = int(vid["height"]), int(vid["width"]), int(vid["length"])
        anns = anns_by_video.get(vid["id"], [])
        base = rng.normal(size=(len(anns), dim))
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        frames = []
        for t in range(T):
            rows = [(k, a) for k, a in enumerate(anns) if a["segmentations"][t] is not None and a["bboxes"][t] is not None]
            boxes = np.array([[x, y, x + bw, y + bh] for _, a in rows for x, y, bw, bh in [a["bboxes"][t]]]).reshape(-1, 4)
            area = np.array([a["areas"][t] or bw * bh for _, a in rows for _, _, bw, bh in [a["bboxes"][t]]], dtype=np.float64)
            frac = np.clip(np.sqrt(area / (full_score_area * h * w)), 0.0, 1.0)
            scores = min_score + (max_score - min_score) * frac
            labels = np.array([cat_index[a["category_id"]] for _, a in rows], dtype=np.int64)
            flip = rng.random(len(rows)) < label_flip
            if n_cls > 1 and flip.any():
                labels[flip] = (labels[flip] + rng.integers(1, n_cls, int(flip.sum()))) % n_cls
            emb = base[[k for k, _ in rows]] + emb_noise * rng.normal(size=(len(rows), dim)) / np.sqrt(dim)
            masks = [to_rle(a["segmentations"][t], h, w) for _, a in rows]
            frame = FramePredictions(boxes, scores, labels, emb.reshape(len(rows), dim), masks)
            if len(frame) and (box_jitter > 0 or miss_rate > 0 or duplicate_rate > 0):
                frame = _imperfect(frame, noise_rng, box_jitter, miss_rate, duplicate_rate, base[[k for k, _ in rows]],
                                   emb_noise, (w, h))
            frames.append(frame)
        out.append(VideoPredictions(int(vid["id"]), h, w, frames))
    return out


def _jitter_boxes(boxes: np.ndarray, sigma: float, rng: np.random.Generator, size_wh: tuple[int, int]) -> np.ndarray:
    """xyxy boxes with every edge moved by N(0, sigma * box width / height), kept ordered and inside the image."""
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    moved = boxes + sigma * wh * rng.normal(size=boxes.shape)
    lo, hi = np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])
    w, h = size_wh
    return np.clip(np.concatenate([lo, hi], 1), 0, [w, h, w, h])


def _imperfect(frame: FramePredictions, rng: np.random.Generator, box_jitter: float, miss_rate: float,
               duplicate_rate: float, base: np.ndarray, emb_noise: float, size_wh: tuple[int, int]) -> FramePredictions:
    """One frame of :func:`predictions_from_gt` with jittered boxes, near-duplicates and misses (in that order)."""
    gt_boxes = frame.boxes.astype(np.float64)
    if box_jitter > 0:
        frame.boxes = _jitter_boxes(gt_boxes, box_jitter, rng, size_wh).astype(np.float32)
    if duplicate_rate > 0:
        dup = np.flatnonzero(rng.random(len(frame)) < duplicate_rate)
        if len(dup):
            boxes = _jitter_boxes(gt_boxes[dup], max(box_jitter, 0.05), rng, size_wh)
            scores = frame.scores[dup] * rng.uniform(0.6, 0.9, len(dup))
            dim = frame.embeddings.shape[1]
            emb = base[dup] + emb_noise * rng.normal(size=(len(dup), dim)) / np.sqrt(max(dim, 1))
            masks = None if frame.masks is None else frame.masks + [frame.masks[i] for i in dup]
            frame = FramePredictions(np.concatenate([frame.boxes, boxes]), np.concatenate([frame.scores, scores]),
                                     np.concatenate([frame.labels, frame.labels[dup]]),
                                     np.concatenate([frame.embeddings, emb]), masks)
            base = np.concatenate([base, base[dup]])
    if miss_rate > 0:
        frame = frame.select(rng.random(len(frame)) >= miss_rate)
    return frame
