"""Look at BiTrack interactively: the ipywidgets explorer of forward tracklets, backward tracklets
and merged tracks (the static Fig. 4 is :mod:`visrc.viz.bitrack_figure`).

* :class:`BiTrackExplorer` — pick a video, step through BiTrack's merge
  decisions one at a time (:func:`visrc.tracking.merge_events.merge_events`), step through frames,
  move the merge threshold and the minimum number of shared frames and see the pair table (mean
  box IoU over valid frames) change. It renders to a PNG ``widgets.Image``, so it builds and
  updates without a browser (tests drive its callbacks).

Drawing conventions (colours, tags, natural sizes): :mod:`visrc.viz.bitrack_figure`.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import replace
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from visrc.data.predictions import VideoPredictions
from visrc.tracking.associate import associate_video
from visrc.tracking.bitrack import BiTrackConfig, BiTrackResult, merge_tracklets, tracklets_from_ids
from visrc.tracking.merge_events import MergeEvent, merge_events, shared_detections
from visrc.viz.bitrack_figure import DETECTIONS_ROW, ROWS, FrameLoader, _default_frames, bitrack_figure


# The explorer's widgets by attribute name; each gets the CSS class ``visrc-<name>``.
CONTROLS = ("video", "sort", "threshold", "min_valid", "prev_event", "next_event", "event_info", "frame", "play",
            "n_cols", "show_detections", "image", "info")


def pair_table_html(result: BiTrackResult, thr: float, max_rows: int = 30,
                    highlight: tuple[int, int] | None = None) -> str:
    """The (forward x backward) mean-IoU table as HTML: merged pairs shaded, values above ``thr``
    bold, single-frame merges in italics, and the ``highlight`` pair (forward, backward; -1 for a
    one-direction tracklet, whose row or column header is then marked) outlined."""
    kf, kb = result.pair_iou.shape
    merged = {(int(f), int(b)) for f, b in result.pairs}
    hf, hb = highlight if highlight is not None else (-1, -1)
    mark = "outline:2px solid #d62728;"
    head = "".join(f'<th style="{mark if b == hb else ""}">B{b}</th>' for b in range(min(kb, max_rows)))
    rows = []
    for f in range(min(kf, max_rows)):
        cells = []
        for b in range(min(kb, max_rows)):
            v, n = result.pair_iou[f, b], int(result.valid_frames[f, b])
            txt = "&ndash;" if np.isnan(v) else f"{v:.2f}<sub>{n}</sub>"
            style = "background:#cde8c4;" if (f, b) in merged else ""
            if not np.isnan(v) and v > thr:
                style += "font-weight:bold;"
            if (f, b) in merged and n == 1:
                style += "font-style:italic;"
            if (f, b) == (hf, hb):
                style += mark
            cells.append(f'<td style="{style}">{txt}</td>')
        rows.append(f'<tr><th style="{mark if f == hf else ""}">F{f}</th>{"".join(cells)}</tr>')
    more = f"<p>(first {max_rows} of {kf} x {kb})</p>" if max(kf, kb) > max_rows else ""
    return (f"<p>mean box IoU over valid frames (subscript: number of valid frames); shaded = merged, "
            f"bold = above threshold {thr:.2f}, italic = merged on a single frame, outlined = current event</p>"
            f"<table>{'<tr><th></th>' + head + '</tr>' if kb else ''}{''.join(rows)}</table>{more}")


def video_label(video: VideoPredictions, result: BiTrackResult) -> str:
    """``video 3: 15 frames, 7 F / 6 B tracklets, 4 merges`` (the explorer's video list)."""
    n = len(result.pairs)
    return (f"video {video.video_id}: {len(video)} frame{'' if len(video) == 1 else 's'}, "
            f"{len(result.forward)} F / {len(result.backward)} B "
            f"tracklets, {n} merge{'' if n == 1 else 's'}")


class BiTrackExplorer:
    """Interactive BiTrack: ``BiTrackExplorer(videos).widget`` in a notebook.

    Widgets: ``video`` (Dropdown; labels give frames, tracklets and merges) and ``sort`` (order of
    that list: video id, or most merges first); ``threshold`` (FloatSlider, the merge threshold) and
    ``min_valid`` (IntSlider, ``min_valid_frames``); ``prev_event``/``next_event`` (Buttons: step
    through the video's merge decisions, :func:`~visrc.tracking.merge_events.merge_events`; each
    jumps the frame window to the pair, highlights it in the picture and the pair table and shows
    its explanation in ``event_info``); ``frame`` (IntSlider, first frame shown) with ``play``,
    ``n_cols`` (frames side by side), ``show_detections`` (Checkbox: a row of all detections with
    their scores, those below the tracking thresholds too), ``image`` (the rendered figure, PNG, at
    its pixel size) and ``info`` (HTML: summary line and pair table).

    Each of these widgets carries the CSS class ``visrc-<name>`` (``_`` written ``-``, e.g.
    ``visrc-next-event``) and the whole explorer ``visrc-bitrack-explorer``: stable hooks for
    browser tests (``tests/test_browser_explorer.py``) and user styles.

    The two passes of every video are computed once; moving the threshold re-runs only the merge.
    Each user action renders the picture once (``render_count`` counts renders).
    """

    def __init__(self, videos: Sequence[VideoPredictions], config: BiTrackConfig | None = None,
                 frame_loader: FrameLoader | None = None, class_names: Sequence[str] | None = None,
                 n_cols: int = 4, panel_width: float = 2.4, dpi: int = 90) -> None:
        import ipywidgets as W

        if not videos:
            raise ValueError("BiTrackExplorer needs at least one video")
        self.videos = {v.video_id: v for v in videos}
        self.config = config or BiTrackConfig()
        self.frame_loader, self.class_names, self.panel_width, self.dpi = frame_loader, class_names, panel_width, dpi
        self._passes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.result: BiTrackResult | None = None
        self.events: list[MergeEvent] = []
        self.event_index: int | None = None
        self.figure: Figure | None = None
        self.render_count = 0
        self._hold, self._dirty, self._relabelling = 0, False, False
        style = {"description_width": "initial"}
        first = videos[0]
        self.sort = W.Dropdown(options=[("video id", "id"), ("most merges first", "merges")], value="id",
                               description="sort videos by", style=style)
        self.video = W.Dropdown(options=[(str(v.video_id), v.video_id) for v in videos], value=first.video_id,
                                description="video", style=style, layout=W.Layout(width="auto"))
        self.threshold = W.FloatSlider(value=self.config.merge_iou_thr, min=0.0, max=1.0, step=0.05, readout_format=".2f",
                                       description="merge if mean IoU >", continuous_update=False, style=style)
        self.min_valid = W.IntSlider(value=self.config.min_valid_frames, min=1, max=max(10, self.config.min_valid_frames),
                                     description="min shared frames", continuous_update=False, style=style)
        self.prev_event = W.Button(description="◀ previous merge", tooltip="previous merge decision")
        self.next_event = W.Button(description="next merge ▶", tooltip="next merge decision")
        self.event_info = W.HTML()
        self.frame = W.IntSlider(value=0, min=0, max=max(len(first) - 1, 0), description="first frame shown",
                                 continuous_update=False, style=style)
        self.play = W.Play(value=0, min=0, max=max(len(first) - 1, 0), interval=800, description="play")
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.n_cols = W.IntSlider(value=n_cols, min=1, max=8, description="frames shown", continuous_update=False,
                                  style=style)
        self.show_detections = W.Checkbox(value=False, description="row of all detections (with scores)", indent=False,
                                          style=style)
        self.image = W.Image(format="png")
        self.info = W.HTML()
        for v in videos:
            self._tracklets(v)
        self._refresh_video_labels()
        self.video.observe(self.on_video, names="value")
        self.sort.observe(self.on_sort, names="value")
        self.frame.observe(self.on_frame, names="value")
        self.n_cols.observe(self.on_frame, names="value")
        self.show_detections.observe(self.on_frame, names="value")
        self.threshold.observe(self.on_threshold, names="value")
        self.min_valid.observe(self.on_threshold, names="value")
        self.prev_event.on_click(lambda _: self.step_event(-1))
        self.next_event.on_click(lambda _: self.step_event(+1))
        self.widget = W.VBox([W.HBox([self.video, self.sort]), W.HBox([self.threshold, self.min_valid]),
                              W.HBox([self.prev_event, self.next_event, self.event_info]),
                              W.HBox([self.play, self.frame, self.n_cols, self.show_detections]),
                              self.image, self.info])
        for name in CONTROLS:
            getattr(self, name).add_class("visrc-" + name.replace("_", "-"))
        self.widget.add_class("visrc-bitrack-explorer")
        self._merge()
        self.render()

    # ------------------------------------------------------------------------------- batching
    @contextmanager
    def _batch(self):
        """Widget changes inside render the picture once, at the end."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if self._hold == 0 and self._dirty:
                self.render()

    def _request_render(self) -> None:
        if self._hold:
            self._dirty = True
        else:
            self.render()

    # --------------------------------------------------------------------------------- callbacks
    def on_video(self, change=None) -> None:
        if self._relabelling:
            return
        with self._batch():
            T = len(self.current)
            self.frame.max = self.play.max = max(T - 1, 0)
            self.frame.value = 0
            self._merge()
            self._dirty = True

    def on_frame(self, change=None) -> None:
        self._request_render()

    def on_threshold(self, change=None) -> None:
        with self._batch():
            self._merge()
            self._refresh_video_labels()
            self._dirty = True

    def on_sort(self, change=None) -> None:
        self._refresh_video_labels()

    def step_event(self, step: int) -> None:
        """Go to the next (``step=+1``) or previous (-1) merge event of the video and show it."""
        if not self.events:
            return
        i = (0 if step > 0 else len(self.events) - 1) if self.event_index is None else self.event_index + step
        self.show_event(min(max(i, 0), len(self.events) - 1))

    def show_event(self, index: int) -> None:
        """Jump the frame window to event ``index`` and highlight it."""
        with self._batch():
            self.event_index = index
            self.frame.value = self._window_start(self.events[index])
            self._dirty = True

    # ----------------------------------------------------------------------------------- state
    @property
    def current(self) -> VideoPredictions:
        return self.videos[self.video.value]

    @property
    def event(self) -> MergeEvent | None:
        return None if self.event_index is None else self.events[self.event_index]

    def _config(self) -> BiTrackConfig:
        return replace(self.config, merge_iou_thr=float(self.threshold.value), min_valid_frames=int(self.min_valid.value))

    def _tracklets(self, v: VideoPredictions) -> tuple[np.ndarray, np.ndarray]:
        if v.video_id not in self._passes:
            self._passes[v.video_id] = (tracklets_from_ids(associate_video(v, self.config.tracker)),
                                        tracklets_from_ids(associate_video(v, self.config.tracker, reverse=True)))
        return self._passes[v.video_id]

    def _merge(self) -> None:
        v = self.current
        self.result = merge_tracklets(v, *self._tracklets(v), self._config())
        self.events = merge_events(self.result, self._config())
        self.event_index = None

    def _refresh_video_labels(self) -> None:
        """Video labels under the current merge settings, in the order ``sort`` asks for."""
        cfg = self._config()
        results = {vid: merge_tracklets(v, *self._tracklets(v), cfg) for vid, v in self.videos.items()}
        ids = list(self.videos)
        if self.sort.value == "merges":
            ids.sort(key=lambda vid: -len(results[vid].pairs))  # stable: video order among equals
        options = [(video_label(self.videos[vid], results[vid]), vid) for vid in ids]
        if options != list(self.video.options):
            current = self.video.value
            self._relabelling = True  # replacing the options may pass through another value: not a user's pick
            try:
                self.video.options = options
                self.video.value = current
            finally:
                self._relabelling = False

    def _window_start(self, event: MergeEvent) -> int:
        """First frame of a window of ``n_cols`` frames that shows the event: its filled frames with
        one frame of context before them, or else the start of its frames."""
        T, n = len(self.current), int(self.n_cols.value)
        lo = event.frames[0] if event.frames else 0
        start = max(lo, event.filled_frames[0] - 1) if event.filled_frames else lo
        return int(min(max(start, 0), max(T - n, 0)))

    def frames_shown(self) -> list[int]:
        return _default_frames(len(self.current), int(self.n_cols.value), int(self.frame.value))

    def summary(self) -> str:
        """One line: counts of tracklets, merges (single-frame ones), tracks and shared detections."""
        v, r = self.current, self.result
        single = sum(e.single_frame for e in self.events)
        shared = shared_detections(r)
        return (f"video {v.video_id}: {len(v)} frame{'' if len(v) == 1 else 's'}; {len(r.forward)} forward and {len(r.backward)} backward "
                f"tracklets; {len(r.pairs)} merged pairs ({single} on a single shared frame), "
                f"{len(r.tracks) - len(r.pairs)} unmatched tracklets kept; {len(r.tracks)} tracks; "
                f"{len(shared)} detection{'' if len(shared) == 1 else 's'} held by two or more output tracks")

    def render(self) -> None:
        self._dirty = False
        self.render_count += 1
        v, r, ev = self.current, self.result, self.event
        thr = float(self.threshold.value)
        n_events = len(self.events)
        if ev is None:
            self.event_info.value = (f"{n_events} merge decision{'' if n_events == 1 else 's'}; "
                                     f"next merge &#9654; steps through them" if n_events else "no merge decision")
        else:
            self.event_info.value = f"<b>{self.event_index + 1} / {n_events}</b>: {ev.explanation}"
        self.info.value = (f"<p><b>{self.summary()}</b></p>"
                           + pair_table_html(r, thr, highlight=None if ev is None else ev.pair))
        frames = self.frames_shown()
        if not frames:
            self.figure = None
            self.image.value = b""
            return
        rows = ROWS + ((DETECTIONS_ROW,) if self.show_detections.value else ())
        title = None if ev is None else ev.explanation
        self.figure = bitrack_figure(v, r, frames, self.frame_loader, self.class_names, self.panel_width, rows=rows,
                                     highlight=ev, tracker=self.config.tracker, title=title)
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=self.dpi)
        w_in, h_in = self.figure.get_size_inches()
        px_w, px_h = int(round(w_in * self.dpi)), int(round(h_in * self.dpi))
        self.image.width, self.image.height = str(px_w), str(px_h)
        lay = self.image.layout
        lay.width, lay.height, lay.max_width, lay.object_fit = f"{px_w}px", f"{px_h}px", "none", "contain"
        self.image.value = buf.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)
