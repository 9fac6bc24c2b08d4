"""BiTrack on hand-made videos: merging, valid frames, thresholds, unmatched tracklets, results."""
import json

import numpy as np
import pytest

from helpers import make_video
from visrc.evaluation.export import results_for_split, tracks_to_results
from visrc.tracking import (BiTrackConfig, FramePredictions, TrackerConfig, VideoPredictions, bitrack,
                            build_bitrack_config, greedy_pairs, merge_tracklets, pair_mean_iou, synthetic_video,
                            track_forward, track_split, tracklets_from_ids, tracks_from_tracklets)


def _frames(track):
    return track.frames.tolist()


def test_object_only_the_backward_pass_follows():
    # small/occluded first (score 0.35 < init 0.5), clear from frame 4 on
    video = make_video([{"frames": range(10), "box": lambda t: (10 + 2 * t, 10, 40 + 2 * t, 40),
                         "score": lambda t: 0.35 if t < 4 else 0.9}], 10)
    fwd = track_forward(video)
    assert len(fwd) == 1 and _frames(fwd[0]) == list(range(4, 10))
    res = bitrack(video)
    assert res.forward.shape == (1, 10) and res.backward.shape == (1, 10)
    assert res.pairs.tolist() == [[0, 0]] and res.pair_iou[0, 0] == 1.0 and res.valid_frames[0, 0] == 6
    (tr,) = res.tracks
    assert tr.source == "merged" and _frames(tr) == list(range(10))
    assert tr.score == pytest.approx((4 * 0.35 + 6 * 0.9) / 10, rel=1e-6)  # mean of frame scores


def test_fig4_two_objects_each_direction_helps_one():
    # object A is weak at the start (backward helps), object B weak at the end (forward helps)
    video = make_video([
        {"frames": range(8), "box": (0, 0, 20, 20), "emb": 0, "score": lambda t: 0.35 if t < 3 else 0.9},
        {"frames": range(8), "box": (50, 50, 80, 80), "emb": 1, "score": lambda t: 0.35 if t >= 5 else 0.9},
    ], 8)
    res = bitrack(video)
    a_first = lambda tracks: [len(t) for t in sorted(tracks, key=lambda t: t.boxes[~np.isnan(t.boxes[:, 0])][0, 0])]
    assert a_first(track_forward(video)) == [5, 8]  # forward misses A's weak start
    assert a_first(tracks_from_tracklets(video, res.backward, "backward")) == [8, 5]  # backward misses B's weak end
    assert len(res.tracks) == 2 and all(t.source == "merged" and len(t) == 8 for t in res.tracks)


def test_merge_threshold_is_strict():
    # frame 0 holds two detections whose IoU is exactly 0.5; forward took one, backward the other
    video = VideoPredictions(1, 100, 100, [FramePredictions([[0, 0, 10, 10], [0, 0, 10, 20]], [0.6, 0.8], [0, 1], np.eye(2))])
    assert pair_mean_iou(np.array([[[0, 0, 10, 10]]], float), np.array([[[0, 0, 10, 20]]], float))[0][0, 0] == 0.5
    at = merge_tracklets(video, [[0]], [[1]], BiTrackConfig(merge_iou_thr=0.5))
    assert at.pair_iou[0, 0] == 0.5 and len(at.pairs) == 0
    assert sorted(t.source for t in at.tracks) == ["backward", "forward"]
    below = merge_tracklets(video, [[0]], [[1]], BiTrackConfig(merge_iou_thr=0.4999))
    (tr,) = below.tracks
    assert tr.source == "merged" and tr.det_index.tolist() == [0]  # equal lengths: the forward tracklet is the base
    assert tr.label == 0


def test_valid_frames_when_tracklets_do_not_overlap_in_time():
    box = (10, 10, 30, 30)
    video = make_video([{"frames": range(6), "box": box}], 6)
    fwd = np.array([[0, 0, 0, -1, -1, -1]])
    bwd = np.array([[-1, -1, -1, 0, 0, 0]])
    res = merge_tracklets(video, fwd, bwd)
    assert res.valid_frames[0, 0] == 0 and np.isnan(res.pair_iou[0, 0]) and len(res.pairs) == 0
    assert sorted((t.source, _frames(t)) for t in res.tracks) == [("backward", [3, 4, 5]), ("forward", [0, 1, 2])]
    # partial overlap: only frames 2-3 are valid, the mean is not diluted by the others
    res = merge_tracklets(video, [[0, 0, 0, 0, -1, -1]], [[-1, -1, 0, 0, 0, 0]])
    assert res.valid_frames[0, 0] == 2 and res.pair_iou[0, 0] == 1.0
    (tr,) = res.tracks
    assert _frames(tr) == list(range(6))
    # a minimum of valid frames can be asked for
    res = merge_tracklets(video, [[0, 0, 0, 0, -1, -1]], [[-1, -1, 0, 0, 0, 0]], BiTrackConfig(min_valid_frames=3))
    assert len(res.pairs) == 0 and len(res.tracks) == 2


def test_pair_iou_mean_over_valid_frames_vectorized():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (3, 5, 2))
    bf = np.concatenate([xy, xy + 20], -1)
    bb = bf[[2, 0]] + rng.normal(0, 3, (2, 5, 4))
    bf[0, :2] = np.nan
    bb[1, 4] = np.nan
    mean, n = pair_mean_iou(bf, bb)
    from visrc.tracking import box_iou
    for f in range(3):
        for b in range(2):
            ious = [box_iou(bf[f, t], bb[b, t])[0, 0] for t in range(5) if not (np.isnan(bf[f, t, 0]) or np.isnan(bb[b, t, 0]))]
            assert n[f, b] == len(ious) and mean[f, b] == pytest.approx(np.mean(ious))


def test_greedy_pairs_one_to_one():
    iou = np.array([[0.9, 0.95], [0.8, 0.6]])
    valid = np.array([[3, 3], [3, 3]])
    assert greedy_pairs(iou, valid, 0.5).tolist() == [[0, 1], [1, 0]]
    assert greedy_pairs(np.array([[0.9, 0.9]]), np.array([[2, 5]]), 0.5).tolist() == [[0, 1]]  # tie: more valid frames
    assert greedy_pairs(np.array([[np.nan]]), np.array([[0]]), 0.5).shape == (0, 2)


def test_merged_track_keeps_the_longer_chain_and_fills_its_gaps():
    # two detections per frame nearly on top of each other; forward and backward chose differently
    frames = [FramePredictions([[0, 0, 10, 10], [0, 0, 10, 11]], [0.9, 0.7] if t < 2 else [0.5, 0.95], [3, 4], np.eye(2)) for t in range(4)]
    video = VideoPredictions(1, 50, 50, frames)
    res = merge_tracklets(video, [[0, 0, 0, -1]], [[1, 1, 1, 1]])
    (tr,) = res.tracks  # backward is longer: its chain is kept whole, scores do not pick per frame
    assert tr.det_index.tolist() == [1, 1, 1, 1] and tr.label == 4
    res = merge_tracklets(video, [[0, 0, 0, -1]], [[-1, 1, 1, -1]])
    (tr,) = res.tracks  # forward is longer (3 > 2) and covers every frame backward has: forward alone
    assert tr.det_index.tolist() == [0, 0, 0, -1]
    res = merge_tracklets(video, [[0, 0, -1, -1]], [[-1, 1, 1, 1]])
    (tr,) = res.tracks  # backward base (3 > 2); forward fills frame 0, which backward lacks
    assert tr.det_index.tolist() == [0, 1, 1, 1]
    np.testing.assert_allclose(tr.scores, [0.9, 0.7, 0.95, 0.95], rtol=1e-6)


def test_class_duplicates_paired_crosswise_stay_two_tracks():
    # the regression seen on real predictions: one object, two detections per frame (classes 0 and 1,
    # the same box); backward pairs the duplicates crosswise halfway. A per-frame score pick made both
    # merged tracks take detection 0 everywhere (class 1 lost); each track must keep its own chain.
    frames = [FramePredictions([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.6], [0, 1], np.eye(2)) for _ in range(4)]
    video = VideoPredictions(1, 50, 50, frames)
    res = merge_tracklets(video, [[0, 0, 0, 0], [1, 1, 1, 1]], [[0, 0, 1, 1], [1, 1, 0, 0]])
    assert len(res.pairs) == 2
    assert sorted((t.det_index.tolist(), t.label) for t in res.tracks) == [([0, 0, 0, 0], 0), ([1, 1, 1, 1], 1)]


def test_unmatched_tracklet_overlapping_a_merged_one_is_absorbed():
    # forward split the object into two tracklets over near-identical detections; backward followed it
    # once. F0 merges with B0; F1 also overlaps B0 (IoU 10/11 > 0.5) but B0 is taken: F1 is a duplicate.
    frames = [FramePredictions([[0, 0, 10, 10], [0, 0, 10, 11], [40, 40, 50, 50]], [0.9, 0.7, 0.8], [0, 1, 2], np.eye(3))
              for _ in range(4)]
    video = VideoPredictions(1, 60, 60, frames)
    fwd, bwd = [[0, 0, 0, 0], [-1, -1, 1, 1], [2, 2, -1, -1]], [[0, 0, 0, 0]]
    res = merge_tracklets(video, fwd, bwd)
    assert res.pairs.tolist() == [[0, 0]] and res.pair_iou[1, 0] == pytest.approx(10 / 11)
    # F2 (another object, no overlap with a merged tracklet) is kept; F1 is absorbed
    assert [(t.source, t.forward) for t in res.tracks] == [("merged", 0), ("forward", 2)]
    kept = merge_tracklets(video, fwd, bwd, BiTrackConfig(absorb_unmatched=False)).tracks
    assert [(t.source, t.forward) for t in kept] == [("merged", 0), ("forward", 1), ("forward", 2)]
    # the absorbing overlap uses the merge threshold: above 10/11 F1 no longer counts as the same object
    kept = merge_tracklets(video, fwd, bwd, BiTrackConfig(merge_iou_thr=0.95)).tracks
    assert [(t.source, t.forward) for t in kept] == [("merged", 0), ("forward", 1), ("forward", 2)]
    # a backward tracklet is absorbed the same way by a merged forward one
    res = merge_tracklets(video, bwd, fwd)
    assert [(t.source, t.backward) for t in res.tracks] == [("merged", 0), ("backward", 2)]


def test_label_voting_through_tracking():
    labels = [1, 2, 1, 2, 2, 1]
    scores = [0.9, 0.6, 0.9, 0.6, 0.6, 0.9]  # 3 votes each; class 1 sums 2.7, class 2 sums 1.8
    video = make_video([{"frames": range(6), "box": (10, 10, 40, 40), "label": lambda t: labels[t],
                         "score": lambda t: scores[t]}], 6)
    (tr,) = bitrack(video).tracks
    assert len(tr) == 6 and tr.label == 1
    split = bitrack(video, BiTrackConfig(tracker=TrackerConfig(class_aware=True))).tracks
    assert sorted((t.label, len(t)) for t in split) == [(1, 3), (2, 3)]


def test_empty_and_single_frame_videos():
    for video in (VideoPredictions(5, 10, 10, []),
                  VideoPredictions(5, 10, 10, [FramePredictions.empty(8) for _ in range(4)])):
        res = bitrack(video)
        assert res.tracks == [] and res.pair_iou.shape == (0, 0) and res.pairs.shape == (0, 2)
        assert track_forward(video) == []
        assert tracks_to_results(5, res.tracks, [1]) == []
    single = make_video([{"frames": [0], "box": (0, 0, 5, 5), "emb": 0}, {"frames": [0], "box": (5, 5, 9, 9), "emb": 1},
                         {"frames": [0], "box": (1, 1, 3, 3), "emb": 2, "score": 0.2}], 1)
    res = bitrack(single)
    assert res.forward.shape == (2, 1) and len(res.pairs) == 2
    assert sorted(t.det_index.tolist() for t in res.tracks) == [[0], [1]]


def test_unmatched_tracklets_rule():
    video = make_video([{"frames": range(6), "box": (10, 10, 30, 30)}], 6)
    fwd = [[0, 0, 0, 0, -1, -1]]
    bwd = [[-1, -1, -1, -1, 0, -1]]  # no valid frame: both unmatched
    kept = merge_tracklets(video, fwd, bwd, BiTrackConfig(min_unmatched_len=2)).tracks
    assert [(t.source, len(t)) for t in kept] == [("forward", 4)]
    kept = merge_tracklets(video, fwd, bwd).tracks
    assert [(t.source, len(t)) for t in kept] == [("forward", 4), ("backward", 1)]
    with pytest.raises(ValueError, match="min_unmatched_len"):
        BiTrackConfig(min_unmatched_len=0)
    with pytest.raises(ValueError, match=r"fwd has shape \(1, 5\)"):
        merge_tracklets(video, [[0, 0, 0, 0, 0]], bwd)
    with pytest.raises(ValueError, match="bwd holds an index outside"):
        merge_tracklets(video, fwd, [[1, -1, -1, -1, -1, -1]])
    assert [len(t) for t in tracks_from_tracklets(video, [[-1] * 6, [0] * 6])] == [6]  # empty rows skipped


def test_bitrack_equals_forward_when_both_passes_agree():
    video = synthetic_video(num_frames=15, num_objects=8, dim=32, seed=1, score_range=(0.6, 1.0))
    fwd = track_forward(video)
    res = bitrack(video)
    assert len(res.pairs) == len(fwd) == len(res.tracks) == 8
    assert sorted(t.det_index.tolist() for t in res.tracks) == sorted(t.det_index.tolist() for t in fwd)


def test_tracklets_from_ids():
    ids = [np.array([3, -1, 7]), np.array([], np.int64), np.array([7])]
    np.testing.assert_array_equal(tracklets_from_ids(ids), [[0, -1, -1], [2, -1, 0]])
    assert tracklets_from_ids([]).shape == (0, 0)


def test_results_format():
    video = make_video([{"frames": range(3), "box": (10, 10, 30, 30), "emb": 0, "label": 0},
                        {"frames": [1, 2], "box": (50, 50, 70, 70), "emb": 1, "label": 2, "score": 0.7}], 3, masks=True)
    tracks = bitrack(video).tracks
    res = tracks_to_results(video.video_id, tracks, {0: 1, 2: 3})
    json.dumps(res)
    assert sorted((r["category_id"], round(r["score"], 4)) for r in res) == [(1, 0.9), (3, 0.7)]
    two = next(r for r in res if r["category_id"] == 3)
    assert two["video_id"] == 1 and len(two["segmentations"]) == 3 and two["segmentations"][0] is None
    assert two["segmentations"][1]["size"] == [100, 100]
    assert len(tracks_to_results(1, tracks, [1, 2, 3])) == 2  # a list indexed by label works too
    assert len(tracks_to_results(1, tracks, {0: 1}, skip_unmapped=True)) == 1
    with pytest.raises(KeyError, match="label 2"):
        tracks_to_results(1, tracks, {0: 1})
    boxes_only = make_video([{"frames": [0], "box": (0, 0, 5, 5)}], 1)
    with pytest.raises(ValueError, match="no masks"):
        tracks_to_results(1, bitrack(boxes_only).tracks, [1])


def test_track_split_and_split_results():
    videos = [synthetic_video(video_id=i, num_frames=4, num_objects=3, dim=8, height=40, width=60, seed=i, with_masks=True,
                              num_classes=2) for i in range(3)]
    for mode in ("bitrack", "forward"):
        by_video = track_split(videos, BiTrackConfig(), mode=mode)
        assert sorted(by_video) == [0, 1, 2]
        res = results_for_split(by_video, [1, 2])
        assert {r["video_id"] for r in res} <= {0, 1, 2} and all(len(r["segmentations"]) == 4 for r in res)
    with pytest.raises(ValueError, match="mode"):
        track_split(videos, mode="both")


def test_build_config():
    cfg = build_bitrack_config({"merge_iou_thr": 0.7, "tracker": {"max_age": 3, "similarity": "bisoftmax"}})
    assert cfg.merge_iou_thr == 0.7 and cfg.tracker.max_age == 3 and cfg.tracker.similarity == "bisoftmax"
    assert build_bitrack_config(None) == BiTrackConfig()


def test_oracle_predictions_on_toy(toy_small, tmp_path):
    """GT-derived detections -> saved file -> tracking -> results -> the evaluator."""
    from visrc.data.predictions import load_predictions, predictions_from_gt, save_predictions
    from visrc.data.ytvis import load_ytvis
    from visrc.evaluation.ytvis_eval import evaluate_ytvis

    gt = load_ytvis(toy_small / "valid" / "instances.json")
    cats = [c["id"] for c in gt["categories"]]
    ap = {}
    for min_score in (0.6, 0.3):  # every detection confident enough to start a track / small ones weak
        videos = predictions_from_gt(gt, dim=16, seed=0, min_score=min_score)
        visible = sum(s is not None for a in gt["annotations"] for s in a["segmentations"])
        assert sum(len(f) for v in videos for f in v.frames) == visible
        videos = load_predictions(save_predictions(videos, tmp_path / "valid_oracle.npz"))
        for mode in ("forward", "bitrack"):
            res = results_for_split(track_split(videos, BiTrackConfig(), mode=mode), cats)
            ap[min_score, mode] = evaluate_ytvis(gt, res).stats["AP"]
    assert ap[0.6, "forward"] == ap[0.6, "bitrack"] == 1.0
    assert ap[0.3, "bitrack"] > ap[0.3, "forward"]  # weak first frames: only the backward pass keeps them
