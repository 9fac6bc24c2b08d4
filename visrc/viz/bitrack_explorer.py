"""Look at BiTrack: forward tracklets, backward tracklets and the merged tracks, as the paper's Fig. 4.

* :func:`plot_bitrack_fig4` — the static figure for one video: three rows (forward, backward,
  merged) by a few frames; saved through :func:`visrc.viz.plots.savefig` when given a ``name``.
* :class:`BiTrackExplorer` — the ipywidgets version: pick a video, step through frames, move the
  merge threshold and see the pair table (mean box IoU over valid frames) change. It renders to a
  PNG ``widgets.Image``, so it builds and updates without a browser (tests drive its callbacks).

Colours follow objects, not ids: a merged pair and its track share one colour in all three rows;
an unmatched tracklet gets its own. Labels read ``F3 fish .87`` (forward tracklet 3, its
detection's class and score), ``B1 ...``, ``M0 fish .81 (F3+B1)`` (merged track 0, voted class,
track score, and where it came from).
"""
from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from visrc.tracking.associate import associate_video
from visrc.tracking.bitrack import BiTrackConfig, BiTrackResult, bitrack, merge_tracklets, tracklets_from_ids
from visrc.data.predictions import VideoPredictions

FrameLoader = Callable[[VideoPredictions, int], "np.ndarray | None"]
ROWS = ("forward", "backward", "merged")
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


def _row_entries(video: VideoPredictions, result: BiTrackResult, row: str, t: int, class_names) -> list[tuple[int, int, str]]:
    """(index in row, detection index in frame t, caption) of every entry of ``row`` present at t."""
    name = (lambda c: class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c))
    out = []
    if row in ("forward", "backward"):
        mat, tag = (result.forward, "F") if row == "forward" else (result.backward, "B")
        for k in np.flatnonzero(mat[:, t] >= 0) if mat.size else []:
            d = int(mat[k, t])
            fr = video.frames[t]
            out.append((int(k), d, f"{tag}{k} {name(int(fr.labels[d]))} {fr.scores[d]:.2f}"))
    else:
        for k, tr in enumerate(result.tracks):
            d = int(tr.det_index[t])
            if d >= 0:
                origin = "+".join(s for s in (f"F{tr.forward}" if tr.forward >= 0 else "", f"B{tr.backward}" if tr.backward >= 0 else "") if s)
                out.append((k, d, f"M{k} {name(tr.label)} {tr.score:.2f} ({origin})"))
    return out


def draw_bitrack_frames(axes: np.ndarray, video: VideoPredictions, result: BiTrackResult, frame_indices: Sequence[int],
                        frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                        show_masks: bool = True) -> None:
    """Draw the 3 x C grid (rows forward / backward / merged, columns ``frame_indices``) into ``axes``."""
    from visrc.data.masks import decode_rle

    axes = np.asarray(axes).reshape(3, len(frame_indices))
    colours = object_colours(result)
    h, w = int(video.height), int(video.width)
    for c, t in enumerate(frame_indices):
        img = frame_loader(video, t) if frame_loader is not None else None
        if img is None:
            img = np.full((h, w, 3), 0.85)
        for r, row in enumerate(ROWS):
            ax = axes[r, c]
            ax.imshow(img, extent=(0, w, h, 0))
            entries = _row_entries(video, result, row, t, class_names)
            masks = video.frames[t].masks if show_masks else None
            if masks is not None and entries:
                over = np.zeros((h, w, 4))
                for k, d, _ in entries:
                    m = decode_rle(masks[d]).astype(bool)
                    over[m] = (*colours[(row, k)], 0.45)
                ax.imshow(over, extent=(0, w, h, 0))
            for k, d, caption in entries:
                x0, y0, x1, y1 = video.frames[t].boxes[d]
                col = colours[(row, k)]
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=col, linewidth=1.5))
                ax.text(x0, y0, caption, color="white", fontsize=6, va="top", clip_on=True,
                        bbox=dict(facecolor=col, alpha=0.8, pad=1, edgecolor="none"))
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {t}", fontsize=8)
            if c == 0:
                ax.set_ylabel(row, fontsize=9)


def _default_frames(T: int, n: int, start: int = 0) -> list[int]:
    return list(range(start, min(T, start + n)))


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
    aspect = video.height / video.width
    fig = Figure(figsize=(panel_width * len(frame_indices), panel_width * aspect * 3 + 0.6))
    axes = fig.subplots(3, len(frame_indices), squeeze=False)
    draw_bitrack_frames(axes, video, result, frame_indices, frame_loader, class_names)
    fig.suptitle(f"BiTrack, video {video.video_id}: {len(result.forward)} forward, {len(result.backward)} backward "
                 f"tracklets, {len(result.pairs)} merged, {len(result.tracks)} tracks", fontsize=9)
    fig.subplots_adjust(wspace=0.03, hspace=0.05)
    if name is not None:
        from visrc.viz.plots import savefig
        savefig(fig, name)
    return fig


def pair_table_html(result: BiTrackResult, thr: float, max_rows: int = 30) -> str:
    """The (forward x backward) mean-IoU table as HTML: merged pairs shaded, values above ``thr`` bold."""
    kf, kb = result.pair_iou.shape
    merged = {(int(f), int(b)) for f, b in result.pairs}
    head = "".join(f"<th>B{b}</th>" for b in range(min(kb, max_rows)))
    rows = []
    for f in range(min(kf, max_rows)):
        cells = []
        for b in range(min(kb, max_rows)):
            v, n = result.pair_iou[f, b], int(result.valid_frames[f, b])
            txt = "&ndash;" if np.isnan(v) else f"{v:.2f}<sub>{n}</sub>"
            style = "background:#cde8c4;" if (f, b) in merged else ""
            if not np.isnan(v) and v > thr:
                style += "font-weight:bold;"
            cells.append(f'<td style="{style}">{txt}</td>')
        rows.append(f"<tr><th>F{f}</th>{''.join(cells)}</tr>")
    more = f"<p>(first {max_rows} of {kf} x {kb})</p>" if max(kf, kb) > max_rows else ""
    return (f"<p>mean box IoU over valid frames (subscript: number of valid frames); shaded = merged, "
            f"bold = above threshold {thr:.2f}</p><table>{'<tr><th></th>' + head + '</tr>' if kb else ''}"
            f"{''.join(rows)}</table>{more}")


class BiTrackExplorer:
    """Interactive BiTrack: ``BiTrackExplorer(videos).widget`` in a notebook.

    Widgets: ``video`` (Dropdown), ``frame`` (IntSlider, first frame shown), ``n_cols`` (frames
    shown side by side), ``threshold`` (FloatSlider, the merge threshold), ``image`` (the rendered
    figure, PNG), ``info`` (HTML: counts and the pair table). The two passes of a video are computed
    once and cached; moving the threshold re-runs only the merge.
    """

    def __init__(self, videos: Sequence[VideoPredictions], config: BiTrackConfig | None = None,
                 frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                 n_cols: int = 4, panel_width: float = 2.4) -> None:
        import ipywidgets as W

        if not videos:
            raise ValueError("BiTrackExplorer needs at least one video")
        self.videos = {v.video_id: v for v in videos}
        self.config = config or BiTrackConfig()
        self.frame_loader, self.class_names, self.panel_width = frame_loader, class_names, panel_width
        self._passes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.result: BiTrackResult | None = None
        self.figure: Figure | None = None
        first = videos[0]
        self.video = W.Dropdown(options=[(f"{v.video_id} ({len(v)} frames)", v.video_id) for v in videos],
                                value=first.video_id, description="video")
        self.frame = W.IntSlider(value=0, min=0, max=max(len(first) - 1, 0), description="frame", continuous_update=False)
        self.play = W.Play(value=0, min=0, max=max(len(first) - 1, 0), interval=800, description="play")
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.n_cols = W.IntSlider(value=n_cols, min=1, max=8, description="frames shown", continuous_update=False)
        self.threshold = W.FloatSlider(value=self.config.merge_iou_thr, min=0.0, max=1.0, step=0.05, readout_format=".2f",
                                       description="merge IoU >", continuous_update=False)
        self.image = W.Image(format="png")
        self.info = W.HTML()
        self.video.observe(self.on_video, names="value")
        self.frame.observe(self.on_frame, names="value")
        self.n_cols.observe(self.on_frame, names="value")
        self.threshold.observe(self.on_threshold, names="value")
        self.widget = W.VBox([W.HBox([self.video, self.threshold]), W.HBox([self.play, self.frame, self.n_cols]),
                              self.image, self.info])
        self._merge()
        self.render()

    # --------------------------------------------------------------------------------- callbacks
    def on_video(self, change=None) -> None:
        T = len(self.current)
        self.frame.unobserve(self.on_frame, names="value")
        self.frame.max = self.play.max = max(T - 1, 0)
        self.frame.value = 0
        self.frame.observe(self.on_frame, names="value")
        self._merge()
        self.render()

    def on_frame(self, change=None) -> None:
        self.render()

    def on_threshold(self, change=None) -> None:
        self._merge()
        self.render()

    # ----------------------------------------------------------------------------------- state
    @property
    def current(self) -> VideoPredictions:
        return self.videos[self.video.value]

    def _merge(self) -> None:
        v = self.current
        if v.video_id not in self._passes:
            self._passes[v.video_id] = (tracklets_from_ids(associate_video(v, self.config.tracker)),
                                        tracklets_from_ids(associate_video(v, self.config.tracker, reverse=True)))
        fwd, bwd = self._passes[v.video_id]
        self.result = merge_tracklets(v, fwd, bwd, replace(self.config, merge_iou_thr=float(self.threshold.value)))

    def frames_shown(self) -> list[int]:
        return _default_frames(len(self.current), int(self.n_cols.value), int(self.frame.value))

    def render(self) -> None:
        v, r = self.current, self.result
        n_merged, n_unm = len(r.pairs), len(r.tracks) - len(r.pairs)
        summary = (f"<b>video {v.video_id}</b>: {len(v)} frames; {len(r.forward)} forward and {len(r.backward)} "
                   f"backward tracklets; {n_merged} merged pairs, {n_unm} unmatched tracklets kept; "
                   f"{len(r.tracks)} tracks")
        self.info.value = summary + pair_table_html(r, float(self.threshold.value))
        frames = self.frames_shown()
        if not frames:
            self.figure = None
            self.image.value = b""
            return
        self.figure = plot_bitrack_fig4(v, r, frame_indices=frames, frame_loader=self.frame_loader,
                                        class_names=self.class_names, panel_width=self.panel_width)
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=90)
        self.image.value = buf.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)
