"""The paper's Fig. 4 for one video: forward tracklets, backward tracklets and the merged tracks.

:func:`plot_bitrack_fig4` draws three rows (forward, backward, merged; optionally every raw
detection) by a few frames and saves through :func:`visrc.viz.plots.savefig` when given a ``name``;
:func:`bitrack_figure` / :func:`draw_bitrack_frames` are the pieces the explorer
(:mod:`visrc.viz.bitrack_explorer`) redraws.

Colours follow objects, not ids: a merged pair and its track share one colour in all three rows;
an unmatched tracklet gets its own. A box carries a short tag only (``F3``, ``B1``; ``M0 F`` in the
merged row: merged track 0, this detection from the forward pass; ``*`` marks a detection that
another output track holds too); the legend under the panels gives each tag's class and score
(``M0 fish 0.81 (F3+B1)``: voted class, track score and where it came from). The optional row of
all detections tags each box with its score and colours it by the tracking thresholds.

Sizes are natural: every panel has a fixed size in inches and the figure grows with the number of
panels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from visrc.data.predictions import VideoPredictions
from visrc.tracking.associate import TrackerConfig
from visrc.tracking.bitrack import BiTrackConfig, BiTrackResult, bitrack, tracks_from_tracklets
from visrc.tracking.merge_events import MergeEvent, detection_passes, shared_detections

FrameLoader = Callable[[VideoPredictions, int], "np.ndarray | None"]
ROWS = ("forward", "backward", "merged")
DETECTIONS_ROW = "detections"
FONT_PT = 8  # every text of the figures
_PALETTE = [(0.89, 0.10, 0.11), (0.22, 0.49, 0.72), (0.30, 0.69, 0.29), (0.60, 0.31, 0.64), (1.00, 0.50, 0.00),
            (0.65, 0.34, 0.16), (0.97, 0.51, 0.75), (0.10, 0.75, 0.81), (0.74, 0.74, 0.13), (0.45, 0.45, 0.45)]


def ytvis_frame_loader(image_root: str | Path, data: dict) -> FrameLoader:
    """Frames from a YouTube-VIS layout: ``image_root / video["file_names"][t]`` of the video with that id."""
    from PIL import Image

    files = {v["id"]: v["file_names"] for v in data["videos"]}
    root = Path(image_root)

    def load(video: VideoPredictions, t: int) -> np.ndarray | None:
        names = files.get(video.video_id)
        if names is None or t >= len(names) or not (root / names[t]).is_file():
            return None
        with Image.open(root / names[t]) as im:
            return np.asarray(im.convert("RGB"))

    return load


def object_colours(result: BiTrackResult) -> dict[tuple[str, int], tuple]:
    """(row, index) -> colour, the same for a merged pair's forward, backward and merged entries."""
    colours: dict[tuple[str, int], tuple] = {}
    nxt = 0
    for k, tr in enumerate(result.tracks):
        c = _PALETTE[nxt % len(_PALETTE)]
        nxt += 1
        colours[("merged", k)] = c
        if tr.forward >= 0:
            colours[("forward", tr.forward)] = c
        if tr.backward >= 0:
            colours[("backward", tr.backward)] = c
    for row, mat in (("forward", result.forward), ("backward", result.backward)):
        for k in range(len(mat)):
            if (row, k) not in colours:  # dropped: absorbed by a merged track, or shorter than min_unmatched_len
                colours[(row, k)] = _PALETTE[nxt % len(_PALETTE)]
                nxt += 1
    return colours


_ROW_TITLES = {"forward": "forward", "backward": "backward", "merged": "merged", DETECTIONS_ROW: "all detections"}
# the detections row: (colour, line style, legend) by the tracking thresholds
_BELOW_OBJ, _BELOW_INIT, _STARTS = ((0.5, 0.5, 0.5), "--"), ((1.0, 0.5, 0.0), "-"), ((0.1, 0.6, 0.2), "-")


def _name(class_names, c: int) -> str:
    return class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)


def _row_entries(video: VideoPredictions, result: BiTrackResult, row: str, t: int,
                 shared: dict | None = None) -> list[tuple[int, int, str]]:
    """(index in row, detection index in frame t, box tag) of every entry of ``row`` present at t.

    Tags: ``F3``/``B1`` (tracklet), ``M0 F`` (merged track 0, detection from the forward pass;
    ``*`` appended when another output track holds the same detection), and in the detections
    row the detection's score (``0.35``)."""
    out = []
    if row in ("forward", "backward"):
        mat, tag = (result.forward, "F") if row == "forward" else (result.backward, "B")
        for k in np.flatnonzero(mat[:, t] >= 0) if mat.size else []:
            out.append((int(k), int(mat[k, t]), f"{tag}{k}"))
    elif row == "merged":
        shared = shared_detections(result) if shared is None else shared
        for k, tr in enumerate(result.tracks):
            d = int(tr.det_index[t])
            if d >= 0:
                star = "*" if (t, d) in shared else ""
                out.append((k, d, f"M{k} {detection_passes(result, k)[t]}{star}"))
    else:
        fr = video.frames[t]
        out = [(d, d, f"{fr.scores[d]:.2f}") for d in range(len(fr))]
    return out


def _legend_lines(video: VideoPredictions, result: BiTrackResult, rows: Sequence[str], class_names,
                  tracker: TrackerConfig, width_chars: int) -> list[str]:
    """The legend under the panels: one entry per tracklet / track (class, score, origin), wrapped."""
    entries: list[str] = []
    for row in rows:
        if row in ("forward", "backward"):
            tag = "F" if row == "forward" else "B"
            mat = result.forward if row == "forward" else result.backward
            for tr in tracks_from_tracklets(video, mat, row):
                k = tr.forward if row == "forward" else tr.backward
                entries.append(f"{tag}{k} {_name(class_names, tr.label)} {tr.score:.2f}")
        elif row == "merged":
            for k, tr in enumerate(result.tracks):
                origin = "+".join(s for s in (f"F{tr.forward}" if tr.forward >= 0 else "",
                                              f"B{tr.backward}" if tr.backward >= 0 else "") if s)
                entries.append(f"M{k} {_name(class_names, tr.label)} {tr.score:.2f} ({origin})")
    lines, cur = [], ""
    for e in entries:
        if cur and len(cur) + 3 + len(e) > width_chars:
            lines.append(cur)
            cur = ""
        cur = f"{cur}   {e}" if cur else e
    if cur:
        lines.append(cur)
    notes = []
    if "merged" in rows:
        notes.append("merged row: F/B = pass the detection came from, * = detection also in another output track")
    if DETECTIONS_ROW in rows:
        notes.append(f"all detections: score; grey dashed < {tracker.obj_score_thr:.2f} (ignored by tracking), "
                     f"orange < {tracker.init_score_thr:.2f} (continues a track, starts none), green starts tracks")
    return lines + notes


class _TagPlacer:
    """Puts box tags just above a box's top-left corner (below it at the image top), moving a tag
    down until it overlaps no tag placed before in the same panel."""

    def __init__(self, w: float, h: float, panel_w_in: float, panel_h_in: float) -> None:
        self.w, self.h = w, h
        self.line = FONT_PT / 72 * 1.45 * h / panel_h_in      # a tag's height in image pixels
        self.char = FONT_PT / 72 * 0.62 * w / panel_w_in      # a character's width in image pixels
        self.placed: list[tuple[float, float, float, float]] = []

    def place(self, x0: float, y0: float, y1: float, text: str) -> tuple[float, float]:
        tw = self.char * len(text) + 2 * self.char
        x = min(max(x0, 0.0), max(self.w - tw, 0.0))
        y = y0 - self.line if y0 - self.line >= 0 else min(y1, self.h - self.line)
        for _ in range(12):
            if not any(x < px1 and px0 < x + tw and y < py1 and py0 < y + self.line for px0, py0, px1, py1 in self.placed):
                break
            y = y + self.line if y + 2 * self.line <= self.h else max(y - 3 * self.line, 0.0)
        self.placed.append((x, y, x + tw, y + self.line))
        return x, y


def draw_bitrack_frames(axes: np.ndarray, video: VideoPredictions, result: BiTrackResult, frame_indices: Sequence[int],
                        frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                        show_masks: bool = True, rows: Sequence[str] = ROWS, highlight: MergeEvent | None = None,
                        tracker: TrackerConfig | None = None, panel_size: tuple[float, float] = (2.4, 1.8)) -> None:
    """Draw the ``len(rows)`` x C grid (rows among forward / backward / merged / detections, columns
    ``frame_indices``) into ``axes``. With ``highlight`` (a merge event), its tracklets and track are
    drawn thick and everything else faint. ``panel_size`` (inches) sizes the tags."""
    from visrc.data.masks import decode_rle

    tracker = tracker or TrackerConfig()
    axes = np.asarray(axes).reshape(len(rows), len(frame_indices))
    colours = object_colours(result)
    shared = shared_detections(result)
    focus = None
    if highlight is not None:
        focus = {("forward", highlight.forward), ("backward", highlight.backward), ("merged", highlight.track)}
    h, w = int(video.height), int(video.width)
    for c, t in enumerate(frame_indices):
        img = frame_loader(video, t) if frame_loader is not None else None
        if img is None:
            img = np.full((h, w, 3), 0.85)
        for r, row in enumerate(rows):
            ax = axes[r, c]
            ax.imshow(img, extent=(0, w, h, 0))
            entries = _row_entries(video, result, row, t, shared)
            fr = video.frames[t]
            masks = fr.masks if show_masks and row != DETECTIONS_ROW else None
            if masks is not None and entries:
                over = np.zeros((h, w, 4))
                for k, d, _ in entries:
                    if focus is None or (row, k) in focus:
                        over[decode_rle(masks[d]).astype(bool)] = (*colours[(row, k)], 0.45)
                ax.imshow(over, extent=(0, w, h, 0))
            placer = _TagPlacer(w, h, *panel_size)
            for k, d, tag in entries:
                x0, y0, x1, y1 = (float(v) for v in fr.boxes[d])
                if row == DETECTIONS_ROW:
                    s = float(fr.scores[d])
                    col, ls = _BELOW_OBJ if s < tracker.obj_score_thr else _BELOW_INIT if s < tracker.init_score_thr else _STARTS
                else:
                    col, ls = colours[(row, k)], "--" if tag.endswith("*") else "-"
                on = focus is None or (row, k) in focus or row == DETECTIONS_ROW
                lw, alpha = (3.0 if focus is not None and on else 1.5), (1.0 if on else 0.3)
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=col, linewidth=lw,
                                       linestyle=ls, alpha=alpha))
                tx, ty = placer.place(x0, y0, y1, tag)
                ax.text(tx, ty, tag, color="white", fontsize=FONT_PT, va="top", ha="left", clip_on=True, alpha=alpha,
                        bbox=dict(facecolor=col, alpha=0.85 * alpha, pad=1, edgecolor="none"))
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=FONT_PT + 1, pad=2)
            if c == 0:
                ax.set_ylabel(_ROW_TITLES.get(row, row), fontsize=FONT_PT + 1)


def _default_frames(T: int, n: int, start: int = 0) -> list[int]:
    return list(range(start, min(T, start + n)))


def bitrack_figure(video: VideoPredictions, result: BiTrackResult, frame_indices: Sequence[int],
                   frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                   panel_width: float = 2.4, rows: Sequence[str] = ROWS, highlight: MergeEvent | None = None,
                   tracker: TrackerConfig | None = None, title: str | None = None) -> Figure:
    """The grid of :func:`draw_bitrack_frames` at natural size: each panel ``panel_width`` inches
    wide (height by the video's aspect), fixed margins, the legend below; the figure's size
    follows from the number of panels and legend lines, so nothing is stretched."""
    tracker = tracker or TrackerConfig()
    n_c, n_r = len(frame_indices), len(rows)
    pw, ph = panel_width, panel_width * video.height / video.width
    left, right, gap, top = 0.35, 0.1, 0.06, 0.55
    fig_w = left + n_c * pw + (n_c - 1) * gap + right
    width_chars = int(fig_w * 72 / (FONT_PT * 0.62)) - 4
    legend = _legend_lines(video, result, rows, class_names, tracker, max(width_chars, 40))
    line_in = FONT_PT / 72 * 1.5
    bottom = 0.15 + line_in * len(legend)
    fig_h = top + n_r * ph + (n_r - 1) * gap + bottom
    fig = Figure(figsize=(fig_w, fig_h))
    axes = np.empty((n_r, n_c), dtype=object)
    for r in range(n_r):
        for c in range(n_c):
            x = left + c * (pw + gap)
            y = fig_h - top - (r + 1) * ph - r * gap
            axes[r, c] = fig.add_axes((x / fig_w, y / fig_h, pw / fig_w, ph / fig_h))
    draw_bitrack_frames(axes, video, result, frame_indices, frame_loader, class_names, rows=rows, highlight=highlight,
                        tracker=tracker, panel_size=(pw, ph))
    for i, line in enumerate(legend):
        fig.text(left / fig_w, (bottom - 0.1 - i * line_in) / fig_h, line, fontsize=FONT_PT, va="top", ha="left")
    if title is None:
        title = (f"BiTrack, video {video.video_id}: {len(result.forward)} forward, {len(result.backward)} backward "
                 f"tracklets, {len(result.pairs)} merged, {len(result.tracks)} tracks")
    fig.text(left / fig_w, 1 - 0.08 / fig_h, title, fontsize=FONT_PT + 1, va="top", ha="left")
    return fig


def plot_bitrack_fig4(video: VideoPredictions, result: BiTrackResult | None = None, config: BiTrackConfig | None = None,
                      frame_indices: Sequence[int] | None = None, n_frames: int = 5,
                      frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                      name: str | None = None, panel_width: float = 2.4) -> Figure:
    """Fig. 4 for one video: forward / backward / merged rows over ``frame_indices`` (default:
    ``n_frames`` evenly spaced over the frames where any tracklet exists). Runs BiTrack with ``config`` unless ``result`` is given.
    With ``name``, also saved as ``figures/<name>.png`` through :func:`visrc.viz.plots.savefig`."""
    if len(video) == 0:
        raise ValueError(f"video {video.video_id} has no frames to draw")
    result = result if result is not None else bitrack(video, config)
    if frame_indices is None:  # evenly over the frames where some tracklet exists (the whole video if none)
        seen = np.flatnonzero(np.concatenate([result.forward, result.backward]).max(0, initial=-1) >= 0)
        lo, hi = (int(seen[0]), int(seen[-1])) if len(seen) else (0, len(video) - 1)
        frame_indices = sorted(set(np.linspace(lo, hi, min(n_frames, hi - lo + 1)).round().astype(int).tolist()))
    tracker = config.tracker if config is not None else None
    fig = bitrack_figure(video, result, frame_indices, frame_loader, class_names, panel_width, tracker=tracker)
    if name is not None:
        from visrc.viz.plots import savefig
        savefig(fig, name)
    return fig
