"""BiTrack's merge decisions of one video, one event at a time (what the explorer steps through).

:func:`merge_events` turns a :class:`~visrc.tracking.bitrack.BiTrackResult` into a list of
:class:`MergeEvent`: first the merges, in the order the greedy matching took them (descending mean
IoU, the order of ``result.pairs``), then the tracklets only one direction found (forward ones by
index, then backward ones), each with a one-line explanation::

    F3 + B7 merged: mean IoU 0.82 over 5 shared frames; base F3 (9 detections) filled frames 0-2 from B7

Helpers for drawing a result: :func:`detection_passes` (which pass each detection of a track came
from), :func:`shared_detections` (detections held by two output tracks) and
:func:`backward_recovered_frames` (frames only the backward pass followed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from visrc.tracking.bitrack import BiTrackConfig, BiTrackResult, merge_base

KINDS = ("merge", "forward only", "backward only")


@dataclass(frozen=True)
class MergeEvent:
    """One decision of BiTrack's merge step.

    ``kind``: "merge" (a forward/backward pair merged), "forward only" or "backward only" (a
    tracklet with no partner). ``forward``/``backward``: tracklet indices (-1 = none).
    ``mean_iou``/``shared_frames``: the pair's mean box IoU over its valid frames and their number
    (NaN / 0 for a one-direction tracklet). ``base``: the pass whose tracklet is the merged track's
    base ("forward"/"backward"; for a one-direction tracklet, its own pass). ``filled_frames``:
    frames the other tracklet added to the base. ``frames``: all frames of the merged track (of the
    tracklet, for a one-direction event). ``track``: index in ``result.tracks``, -1 if the
    tracklet was not output. ``explanation``: the one-line summary.
    """

    kind: str
    forward: int
    backward: int
    mean_iou: float
    shared_frames: int
    base: str
    filled_frames: tuple[int, ...]
    frames: tuple[int, ...]
    track: int
    explanation: str

    @property
    def pair(self) -> tuple[int, int]:
        return self.forward, self.backward

    @property
    def single_frame(self) -> bool:
        """A merge decided on one shared frame only (its mean IoU is a single box IoU)."""
        return self.kind == "merge" and self.shared_frames == 1

    @property
    def name(self) -> str:
        """``F3 + B7``, ``F3`` or ``B7``."""
        return " + ".join(n for n in (f"F{self.forward}" if self.forward >= 0 else "",
                                      f"B{self.backward}" if self.backward >= 0 else "") if n)


def format_frames(frames: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``; ``"none"`` for no frame."""
    frames = sorted(int(f) for f in frames)
    if not frames:
        return "none"
    runs, start = [], frames[0]
    for prev, cur in zip(frames, frames[1:] + [None]):
        if cur is None or cur != prev + 1:
            runs.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(runs)


def _frames_phrase(frames: Sequence[int]) -> str:
    """``frame 3`` or ``frames 0-2, 5``."""
    return f"frame{'' if len(frames) == 1 else 's'} {format_frames(frames)}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def merge_events(result: BiTrackResult, config: BiTrackConfig | None = None) -> list[MergeEvent]:
    """Every merge of ``result`` in the order BiTrack made it, then every one-direction tracklet.

    ``config`` (the one ``result`` was computed with) only words why an unmatched tracklet was not
    output (shorter than ``min_unmatched_len``, or absorbed by a merged tracklet).
    """
    cfg = config or BiTrackConfig()
    track_of = {}
    for i, tr in enumerate(result.tracks):
        track_of[(tr.source, tr.forward if tr.source != "backward" else tr.backward)] = i
    events = []
    for f, b in result.pairs.tolist():
        fr, br = result.forward[f], result.backward[b]
        base = merge_base(fr, br)
        base_row, other_row = (fr, br) if base == "forward" else (br, fr)
        filled = tuple(np.flatnonzero((base_row < 0) & (other_row >= 0)).tolist())
        frames = tuple(np.flatnonzero((base_row >= 0) | (other_row >= 0)).tolist())
        iou, n = float(result.pair_iou[f, b]), int(result.valid_frames[f, b])
        base_name, other_name = (f"F{f}", f"B{b}") if base == "forward" else (f"B{b}", f"F{f}")
        fill = (f"filled {_frames_phrase(filled)} from {other_name}" if filled
                else f"{other_name} added no frame")
        own = np.flatnonzero((base_row >= 0) & (other_row < 0))
        own = f", {_frames_phrase(own)} not in {other_name}" if len(own) else ""
        text = (f"F{f} + B{b} merged: mean IoU {iou:.2f} over {_count(n, 'shared frame')}; "
                f"base {base_name} ({_count(int((base_row >= 0).sum()), 'detection')}{own}) {fill}")
        if n == 1:
            text += " (decided on a single frame)"
        events.append(MergeEvent("merge", f, b, iou, n, base, filled, frames, track_of.get(("merged", f), -1), text))
    merged = {"forward": set(result.pairs[:, 0].tolist()), "backward": set(result.pairs[:, 1].tolist())}
    for source, mat, tag, other_tag in (("forward", result.forward, "F", "B"), ("backward", result.backward, "B", "F")):
        for k, row in enumerate(mat):
            if k in merged[source] or not (row >= 0).any():
                continue
            frames = tuple(np.flatnonzero(row >= 0).tolist())
            track = track_of.get((source, k), -1)
            ious = result.pair_iou[k] if source == "forward" else result.pair_iou[:, k]
            partners = sorted(merged["backward" if source == "forward" else "forward"])
            if track >= 0:
                fate = f"kept as track {track}"
            elif len(frames) < cfg.min_unmatched_len:
                fate = f"dropped (fewer than {cfg.min_unmatched_len} detections)"
            else:
                best = max(partners, key=lambda j: np.nan_to_num(ious[j], nan=-1.0), default=None)
                fate = (f"absorbed by merged {other_tag}{best} (mean IoU {ious[best]:.2f})" if best is not None
                        else "not output")
            text = f"{tag}{k} found only {source}: {_count(len(frames), 'detection')} in {_frames_phrase(frames)}; {fate}"
            f_idx, b_idx = (k, -1) if source == "forward" else (-1, k)
            events.append(MergeEvent(f"{source} only", f_idx, b_idx, float("nan"), 0, source, (), frames, track, text))
    return events


def detection_passes(result: BiTrackResult, track: int) -> np.ndarray:
    """(T,) str: the pass each detection of ``result.tracks[track]`` came from, "F" or "B" ("" where absent).

    A merged track's detection comes from its base tracklet where the base has one, else from the
    other tracklet; a one-direction track's detections all come from its own pass.
    """
    tr = result.tracks[track]
    out = np.full(len(tr.det_index), "", dtype="<U1")
    present = tr.det_index >= 0
    if tr.source != "merged":
        out[present] = "F" if tr.source == "forward" else "B"
        return out
    base = merge_base(result.forward[tr.forward], result.backward[tr.backward])
    base_row = result.forward[tr.forward] if base == "forward" else result.backward[tr.backward]
    base_tag, other_tag = ("F", "B") if base == "forward" else ("B", "F")
    out[present] = np.where(base_row[present] >= 0, base_tag, other_tag)
    return out


def shared_detections(result: BiTrackResult) -> dict[tuple[int, int], list[int]]:
    """(frame, detection index) -> the output tracks holding it, for detections held by two or more tracks."""
    holders: dict[tuple[int, int], list[int]] = {}
    for k, tr in enumerate(result.tracks):
        for t in np.flatnonzero(tr.det_index >= 0).tolist():
            holders.setdefault((t, int(tr.det_index[t])), []).append(k)
    return {key: ks for key, ks in holders.items() if len(ks) > 1}


def backward_recovered_frames(result: BiTrackResult) -> int:
    """Frames of the output tracks that only the backward pass followed.

    A merged track counts the frames where its forward tracklet has no detection (the backward
    tracklet, as base or as filler, covers them); a backward-only output track counts the frames
    where no forward tracklet holds the same detection.
    """
    n = 0
    fwd = result.forward
    for tr in result.tracks:
        if tr.source == "merged":
            n += int(((tr.det_index >= 0) & (fwd[tr.forward] < 0)).sum())
        elif tr.source == "backward":
            present = np.flatnonzero(tr.det_index >= 0)
            held = (fwd[:, present] == tr.det_index[present][None, :]).any(0) if len(fwd) else np.zeros(len(present), bool)
            n += int((~held).sum())
    return n
