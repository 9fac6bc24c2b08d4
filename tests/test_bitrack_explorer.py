"""BiTrack's merge events, the explorer (headless: its callbacks are driven directly), Fig. 4, and the
noisy ground-truth source whose merge threshold matters."""
import ast
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import make_video
from visrc.tracking import BiTrackConfig, FramePredictions, VideoPredictions, bitrack, merge_events, merge_tracklets
from visrc.tracking.merge_events import (backward_recovered_frames, detection_passes, format_frames,
                                         shared_detections)

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_bitrack_explorer.ipynb"


# ------------------------------------------------------------------------------------ merge events

def _two_objects_with_duplicates():
    """4 frames; object P: detection 0 (original) and 1 (duplicate, IoU 10/12); object Q: 2 and 3 (IoU 0.5).

    F0 = Q's originals; F1 = P's original in frames 0-2. B0 = P in frames 1-3 (duplicate in 2-3),
    B1 = Q's duplicate in frames 0-2 and original in 3, B2 = Q's original in frame 0 only.
    """
    frame = FramePredictions([[0, 0, 10, 10], [0, 0, 10, 12], [50, 50, 60, 60], [50, 50, 60, 70]],
                             [0.9, 0.6, 0.9, 0.6], [0, 0, 1, 1], np.eye(4))
    video = VideoPredictions(3, 100, 100, [frame] * 4)
    fwd = [[2, 2, 2, 2], [0, 0, 0, -1]]
    bwd = [[-1, 0, 1, 1], [3, 3, 3, 2], [2, -1, -1, -1]]
    return video, fwd, bwd


def test_merge_events_are_the_pairs_in_greedy_order_with_explanations():
    video, fwd, bwd = _two_objects_with_duplicates()
    res = merge_tracklets(video, fwd, bwd)
    # F0+B2: IoU 1 on one frame; F1+B0: (1 + 10/12) / 2 on frames 1-2; F0+B1: (0.5 * 3 + 1) / 4
    assert res.pairs.tolist() == [[0, 2], [1, 0]]
    events = merge_events(res)
    assert [e.pair for e in events if e.kind == "merge"] == [tuple(p) for p in res.pairs.tolist()]
    first, second, third = events
    assert first.single_frame and first.shared_frames == 1 and first.base == "forward" and first.filled_frames == ()
    assert first.explanation == ("F0 + B2 merged: mean IoU 1.00 over 1 shared frame; base F0 (4 detections, "
                                 "frames 1-3 not in B2) B2 added no frame (decided on a single frame)")
    assert not second.single_frame and second.base == "forward" and second.filled_frames == (3,)
    assert second.mean_iou == pytest.approx((1 + 10 / 12) / 2) and second.frames == (0, 1, 2, 3)
    assert second.explanation == ("F1 + B0 merged: mean IoU 0.92 over 2 shared frames; base F1 (3 detections, "
                                  "frame 0 not in B0) filled frame 3 from B0")
    assert third.kind == "backward only" and third.pair == (-1, 1) and third.track == -1
    assert third.explanation == "B1 found only backward: 4 detections in frames 0-3; absorbed by merged F0 (mean IoU 0.62)"
    assert [res.tracks[e.track].det_index.tolist() for e in (first, second)] == [[2, 2, 2, 2], [0, 0, 0, 1]]
    assert detection_passes(res, second.track).tolist() == ["F", "F", "F", "B"]
    assert shared_detections(res) == {} and backward_recovered_frames(res) == 1  # frame 3 of F1 + B0

    kept = merge_tracklets(video, fwd, bwd, BiTrackConfig(absorb_unmatched=False))
    (b1,) = [e for e in merge_events(kept) if e.kind != "merge"]
    assert b1.explanation.endswith("kept as track 2") and detection_passes(kept, 2).tolist() == ["B"] * 4
    assert shared_detections(kept) == {(3, 2): [0, 2]}  # B1's frame 3 is F0's detection
    assert backward_recovered_frames(kept) == 1 + 3     # + B1's frames 0-2, which no forward tracklet holds
    short = merge_tracklets(video, fwd, bwd, BiTrackConfig(min_unmatched_len=5, absorb_unmatched=False))
    assert merge_events(short, BiTrackConfig(min_unmatched_len=5))[-1].explanation.endswith(
        "dropped (fewer than 5 detections)")


def test_merge_events_equal_bitrack_pairs_on_a_hand_made_video():
    video = make_video([
        {"frames": range(8), "box": (0, 0, 20, 20), "emb": 0, "score": lambda t: 0.35 if t < 3 else 0.9},
        {"frames": range(8), "box": (50, 50, 80, 80), "emb": 1, "score": lambda t: 0.35 if t >= 5 else 0.9},
        {"frames": range(2, 6), "box": (20, 60, 40, 90), "emb": 2},
    ], 8)
    res = bitrack(video)
    events = merge_events(res)
    assert [e.pair for e in events if e.kind == "merge"] == [tuple(p) for p in res.pairs.tolist()]
    assert res.pairs.tolist() == [[0, 2], [2, 0], [1, 1]] and [e.kind for e in events] == ["merge"] * 3
    # the pass that followed an object through its weak end is the base and covers it
    assert [e.explanation for e in events] == [
        "F0 + B2 merged: mean IoU 1.00 over 5 shared frames; base F0 (8 detections, frames 5-7 not in B2) B2 added no frame",
        "F2 + B0 merged: mean IoU 1.00 over 5 shared frames; base B0 (8 detections, frames 0-2 not in F2) F2 added no frame",
        "F1 + B1 merged: mean IoU 1.00 over 4 shared frames; base F1 (4 detections) B1 added no frame"]
    assert backward_recovered_frames(res) == 3  # frames 0-2 of the object weak at the start


def test_format_frames():
    assert format_frames([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8" and format_frames([]) == "none"
    assert format_frames([4]) == "4"


# ------------------------------------------------------------------------------------------ figures

def _explorer_videos():
    weak_first = make_video([{"frames": range(6), "box": lambda t: (10 + 3 * t, 10, 40 + 3 * t, 40), "emb": 0,
                              "score": lambda t: 0.35 if t < 2 else 0.9},
                             {"frames": range(1, 6), "box": (50, 50, 90, 80), "emb": 1, "label": 1}], 6, video_id=4, masks=True)
    single = make_video([{"frames": [0], "box": (0, 0, 10, 10)}], 1, video_id=9)
    return [weak_first, single, VideoPredictions(12, 30, 30, [])]


def _all_texts(fig):
    return [t for ax in fig.axes for t in ax.texts] + list(fig.texts) + [ax.title for ax in fig.axes]


def test_fig4_figure_is_saved(tmp_path, monkeypatch):
    from visrc.viz.bitrack_figure import plot_bitrack_fig4
    monkeypatch.setenv("VISRC_FIGURES_DIR", str(tmp_path))
    video = _explorer_videos()[0]
    fig = plot_bitrack_fig4(video, n_frames=3, class_names=["fish", "shark"], name="bitrack_fig4_test")
    assert len(fig.axes) == 9 and [ax.get_title() for ax in fig.axes[:3]] == ["frame 0", "frame 2", "frame 5"]
    assert (tmp_path / "bitrack_fig4_test.png").stat().st_size > 1000
    assert [t.get_text() for t in fig.axes[6].texts] == ["M1 B"]  # merged row, frame 0: from the backward pass
    assert [t.get_text() for t in fig.axes[0].texts] == []  # forward row, frame 0: not yet tracked
    legend = " ".join(t.get_text() for t in fig.texts)
    assert "M1 fish 0.72 (F1+B0)" in legend and "F1 fish 0.90" in legend  # forward numbered it second
    assert min(t.get_fontsize() for t in _all_texts(fig)) >= 8
    # natural size: panels of a fixed size in inches, the figure grows with the columns
    wide = plot_bitrack_fig4(video, frame_indices=[0, 1, 2, 3, 4], panel_width=2.0)
    assert [round(ax.get_position().width * wide.get_figwidth(), 6) for ax in wide.axes] == [2.0] * 15
    assert {round(ax.get_position().height * wide.get_figheight(), 6) for ax in wide.axes} == {2.0 * 100 / 100}
    with pytest.raises(ValueError, match="no frames"):
        plot_bitrack_fig4(_explorer_videos()[2])


def test_box_tags_do_not_overlap():
    from visrc.viz.bitrack_figure import _TagPlacer
    placer = _TagPlacer(100, 100, 2.0, 2.0)
    spots = [placer.place(10, 30, 60, "M0 F*") for _ in range(3)]
    assert len(set(spots)) == 3 and all(0 <= y <= 100 for _, y in spots)
    assert placer.place(10, 0, 40, "F1")[1] >= 0  # a box at the top edge: the tag goes inside


def test_pair_table_marks_merged_above_threshold_single_frame_and_highlight():
    from visrc.viz.bitrack_explorer import pair_table_html
    video = VideoPredictions(1, 100, 100, [FramePredictions([[0, 0, 10, 10], [0, 0, 10, 20]], [0.6, 0.8], [0, 1], np.eye(2))])
    res = merge_tracklets(video, [[0], [-1]], [[1]], BiTrackConfig(merge_iou_thr=0.5))
    table = pair_table_html(res, 0.5)
    assert '<td style="">0.50<sub>1</sub></td>' in table and "&ndash;" in table  # F1 has no valid frame with B0
    res = merge_tracklets(video, [[0], [-1]], [[1]], BiTrackConfig(merge_iou_thr=0.4))
    table = pair_table_html(res, 0.4, highlight=(0, 0))
    assert ('<td style="background:#cde8c4;font-weight:bold;font-style:italic;outline:2px solid #d62728;">'
            '0.50<sub>1</sub></td>') in table
    assert '<th style="outline:2px solid #d62728;">F0</th>' in table


# ----------------------------------------------------------------------------------------- explorer

def test_explorer_builds_headless_and_callbacks_update():
    from visrc.viz.bitrack_explorer import BiTrackExplorer
    ex = BiTrackExplorer(_explorer_videos(), class_names=["fish", "shark"], n_cols=3)
    assert ex.image.value[:4] == b"\x89PNG" and "2 merged pairs" in ex.info.value
    assert ex.frames_shown() == [0, 1, 2] and len(ex.figure.axes) == 9
    ex.frame.value = 4
    assert ex.frames_shown() == [4, 5] and len(ex.figure.axes) == 6
    ex.threshold.value = 1.0  # mean IoU 1.0 is not > 1.0: nothing merges, all 4 tracklets kept unmatched
    assert len(ex.result.pairs) == 0 and len(ex.result.tracks) == 4 and "0 merged pairs" in ex.info.value
    assert "1.00<sub>5</sub>" in ex.info.value and "font-weight" not in ex.info.value
    ex.threshold.value = 0.5
    assert len(ex.result.pairs) == 2
    ex.min_valid.value = 5  # F1 + B0 share 4 frames only
    assert ex.result.pairs.tolist() == [[0, 1]]
    ex.min_valid.value = 1
    ex.video.value = 9
    assert ex.frame.value == 0 and ex.frame.max == 0 and ex.frames_shown() == [0]
    assert ex.result.pairs.tolist() == [[0, 0]] and len(ex.figure.axes) == 3
    assert "1 on a single shared frame" in ex.info.value
    ex.video.value = 12  # a video without frames: no figure, the table still renders
    assert ex.figure is None and ex.image.value == b"" and "0 frames" in ex.info.value
    ex.video.value = 4
    assert ex._passes.keys() == {4, 9, 12}  # passes computed once per video
    with pytest.raises(ValueError, match="at least one video"):
        BiTrackExplorer([])


def test_explorer_steps_through_merges_and_renders_once_per_action():
    from visrc.viz.bitrack_explorer import BiTrackExplorer
    ex = BiTrackExplorer(_explorer_videos(), class_names=["fish", "shark"], n_cols=2)
    assert ex.render_count == 1 and ex.event is None and "2 merge decisions" in ex.event_info.value
    assert [e.pair for e in ex.events] == [tuple(p) for p in ex.result.pairs.tolist()]
    ex.next_event.click()
    assert ex.render_count == 2 and ex.event_index == 0 and ex.event_info.value.startswith("<b>1 / 2</b>: F0 + B1 merged")
    assert ex.frame.value == 1                             # F0 + B1 lives in frames 1-5
    assert "outline:2px solid" in ex.info.value and ex.figure.texts[-1].get_text() == ex.event.explanation
    widths = {p.get_linewidth() for ax in ex.figure.axes for p in ax.patches}
    assert widths == {1.5, 3.0}                             # the pair thick, the rest thin
    ex.next_event.click()
    assert ex.render_count == 3 and ex.event.pair == (1, 0) and ex.frame.value == 0
    ex.next_event.click()                                   # at the last event: stays
    assert ex.event_index == 1
    ex.prev_event.click()
    assert ex.event_index == 0 and ex.render_count == 5
    ex.video.value = 9                                      # frame, merge and labels change: one render
    assert ex.render_count == 6 and ex.event is None
    ex.frame.value = 0                                      # no change: no render
    ex.n_cols.value = 3
    assert ex.render_count == 7
    ex.threshold.value = 0.9
    assert ex.render_count == 8


def test_explorer_video_labels_sorting_detections_row_and_natural_size():
    from visrc.viz.bitrack_explorer import BiTrackExplorer
    ex = BiTrackExplorer(_explorer_videos(), class_names=["fish", "shark"], n_cols=3, dpi=50)
    labels = [label for label, _ in ex.video.options]
    assert labels == ["video 4: 6 frames, 2 F / 2 B tracklets, 2 merges", "video 9: 1 frame, 1 F / 1 B tracklets, 1 merge",
                      "video 12: 0 frames, 0 F / 0 B tracklets, 0 merges"]
    ex.video.value = 9
    ex.sort.value = "merges"
    assert [vid for _, vid in ex.video.options] == [4, 9, 12] and ex.video.value == 9
    ex.threshold.value = 1.0
    assert [label.split(", ")[-1] for label, _ in ex.video.options] == ["0 merges"] * 3 and ex.video.value == 9
    ex.video.value = 4
    ex.show_detections.value = True
    assert len(ex.figure.axes) == 12 and ex.figure.axes[9].get_ylabel() == "all detections"
    assert [t.get_text() for t in ex.figure.axes[9].texts] == ["0.35"]  # frame 0: the weak start, below init
    w_in, h_in = ex.figure.get_size_inches()
    assert ex.image.width == str(round(w_in * 50)) and ex.image.layout.width == f"{round(w_in * 50)}px"
    assert ex.image.layout.max_width == "none"
    assert min(t.get_fontsize() for t in _all_texts(ex.figure)) >= 8
    for w in (ex.video, ex.sort, ex.threshold, ex.min_valid, ex.frame, ex.n_cols, ex.show_detections):
        assert w.style.description_width == "initial", w.description


# ------------------------------------------------------------------------------- noisy detections

def _notebook_parameters() -> dict:
    nb = json.loads(NOTEBOOK.read_text())
    (cell,) = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    out = {}
    for node in ast.parse("".join(cell["source"])).body:
        if isinstance(node, ast.Assign):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_notebook_defaults_are_explorer_predictions_defaults():
    from visrc.experiments.bitrack_study import explorer_predictions
    params = _notebook_parameters()
    defaults = {k: p.default for k, p in inspect.signature(explorer_predictions).parameters.items()}
    for name in ("emb_noise", "label_flip", "box_jitter", "miss_rate", "duplicate_rate"):
        assert params[name] == defaults[name], name


def test_merge_threshold_matters_on_noisy_ground_truth(toy_small):
    from visrc.experiments.bitrack_study import explorer_predictions
    videos, _ = explorer_predictions("gt_noisy", toy_small)  # notebook 06's defaults
    merges = {thr: [len(bitrack(v, BiTrackConfig(merge_iou_thr=thr)).pairs) for v in videos] for thr in (0.3, 0.9)}
    assert merges[0.3] != merges[0.9]
    clean, _ = explorer_predictions("gt_noisy", toy_small, box_jitter=0.0, miss_rate=0.0, duplicate_rate=0.0)
    clean_merges = {thr: [len(bitrack(v, BiTrackConfig(merge_iou_thr=thr)).pairs) for v in clean] for thr in (0.3, 0.9)}
    assert clean_merges[0.3] == clean_merges[0.9]  # both passes follow the same detections: IoU 1 or another object's
